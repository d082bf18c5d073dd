"""Relevance score: prompt selection and accuracy bookkeeping with stand-in generator/classifier."""

from pathlib import Path

import torch

from sara.eval.relevance import relevance_score, select_prompts


def _records() -> list[dict]:
    rows = []
    for i, (cls, split) in enumerate([("dog", "test"), ("dog", "test"), ("dog", "train"), ("piano", "test"),
                                      ("piano", "test"), ("piano", "test"), ("owl", "test")]):
        rows.append({"id": f"{cls}{i}", "path": f"audio/{cls}{i}.wav", "caption": f"a {cls} number {i}",
                     "class": cls, "split": split})
    rows.append({"id": "mix", "path": "audio/mix.wav", "caption": "a dog while a piano", "class": "dog",
                 "split": "test", "kind": "mixture"})
    return rows


def test_select_prompts_filters_split_classes_and_mixtures() -> None:
    prompts = select_prompts(_records(), ["dog", "piano"], root=Path("/c"), per_class=2)
    assert [(p.label, p.caption) for p in prompts] == [
        ("dog", "a dog number 0"), ("dog", "a dog number 1"), ("piano", "a piano number 3"),
        ("piano", "a piano number 4")]
    assert prompts[0].audio_path == Path("/c/audio/dog0.wav")


def test_relevance_accuracy() -> None:
    prompts = select_prompts(_records(), ["dog", "piano"], root=Path("/c"), per_class=2)
    # the "generator" encodes the class in the waveform's sign; the classifier reads it back
    def generate(captions: list[str]) -> torch.Tensor:
        return torch.stack([torch.full((8,), 1.0 if "dog" in c else -1.0) for c in captions])

    def classify(wav: torch.Tensor, sr: int) -> str:
        return "dog" if float(wav.mean()) > 0 else "piano"

    def load(path: Path) -> tuple[torch.Tensor, int]:
        return torch.full((1, 8), 1.0), 16000  # every real clip "sounds like" a dog

    res = relevance_score(prompts, generate, classify, sample_rate=24000, load=load, batch_size=3,
                          others={"always-dog": lambda wav, sr: "dog"})
    assert res["other_classifiers"] == {"always-dog": {"generated_accuracy": 0.5, "real_accuracy": 0.5}}
    assert res["generated_accuracy"] == 1.0
    assert res["real_accuracy"] == 0.5
    assert res["per_class"]["piano"] == {"generated": 1.0, "real": 0.0, "n": 2}
    assert res["num_prompts"] == 4 and res["num_classes"] == 2
