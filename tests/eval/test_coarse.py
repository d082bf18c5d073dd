"""Coarse sound groups: the packaged class mapping, the probability aggregation and the everyday prompt set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sara.cli.demo import DEMO_PROMPTS
from sara.errors import ConfigError
from sara.eval.coarse import (
    COARSE_GROUPS,
    GROUPS,
    OTHER,
    EverydayPrompt,
    caption_collisions,
    coarse_classifier_fn,
    coarse_predictions,
    coarse_scores,
    group_matrix,
    load_coarse_groups,
    load_everyday_prompts,
)

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "recipes" / "everyday_prompts.csv"
CORPUS = Path("/work/corpus_full")
DEMO_GROUPS = {"a dog barking": "animal", "a piano playing a melody": "melodic instrument",
               "a man speaking": "speech", "a bell ringing": "percussion"}
needs_corpus = pytest.mark.skipif(not (CORPUS / "manifest.jsonl").is_file(), reason="corpus not on this machine")


def test_packaged_mapping_is_complete_and_valid() -> None:
    mapping = load_coarse_groups()
    assert len(mapping) == 253
    assert set(mapping.values()) <= set(GROUPS)
    assert set(COARSE_GROUPS) <= set(mapping.values())  # every coarse group has classes
    others = sorted(c for c, g in mapping.items() if g == OTHER)
    assert others == ["applause", "coin chime", "jump", "laser", "power-up", "whistle down"]  # kept rare
    assert mapping["dog"] == "animal" and mapping["man speaking"] == "speech" and mapping["rain"] == "nature/weather"


@needs_corpus
def test_every_corpus_class_is_mapped() -> None:
    classes = json.loads((CORPUS / "classes.json").read_text())["classes"]
    assert set(load_coarse_groups()) == set(classes)


def test_mapping_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "groups.csv"
    bad.write_text("class,group\ndog,animal\ncat,pets\n")
    with pytest.raises(ConfigError, match=r"groups.csv:3: class 'cat' has unknown group 'pets'"):
        load_coarse_groups(bad)
    bad.write_text("class,group\ndog,animal\ndog,animal\n")
    with pytest.raises(ConfigError, match="repeated class 'dog'"):
        load_coarse_groups(bad)
    bad.write_text("name,group\ndog,animal\n")
    with pytest.raises(ConfigError, match="missing column"):
        load_coarse_groups(bad)


MAPPING = {"dog": "animal", "cat": "animal", "piano": "melodic instrument", "rain": "nature/weather",
           "beep": OTHER}
NAMES = ["dog", "piano", "cat", "rain", "beep"]


def test_probabilities_are_summed_per_group() -> None:
    probs = torch.tensor([[0.2, 0.3, 0.25, 0.05, 0.2], [0.0, 0.1, 0.0, 0.1, 0.8]])
    scores = coarse_scores(probs, NAMES, MAPPING)
    assert scores.shape == (2, len(GROUPS))
    col = {g: GROUPS.index(g) for g in GROUPS}
    assert scores[0, col["animal"]].item() == pytest.approx(0.45)  # dog + cat beat the single best class, piano
    assert scores[0, col["melodic instrument"]].item() == pytest.approx(0.3)
    assert scores[1, col[OTHER]].item() == pytest.approx(0.8)
    assert scores[0, col["speech"]].item() == 0.0
    assert torch.allclose(scores.sum(-1), torch.ones(2))
    assert coarse_predictions(probs, NAMES, MAPPING) == ["animal", OTHER]


def test_logits_are_softmaxed_first() -> None:
    logits = torch.randn(3, len(NAMES))
    assert torch.allclose(coarse_scores(logits, NAMES, MAPPING, logits=True),
                          coarse_scores(logits.softmax(-1), NAMES, MAPPING))


def test_unmapped_or_misshaped_classes_raise() -> None:
    with pytest.raises(ConfigError, match="no coarse group for class"):
        group_matrix(["dog", "unicorn"], MAPPING)
    with pytest.raises(ConfigError, match="5 classes, class_names 2"):
        coarse_scores(torch.zeros(1, 5), ["dog", "cat"], MAPPING)


def test_classifier_fn_on_a_tiny_classifier() -> None:
    from sara.eval.embedders.classifier import AudioClassifier, ClassifierConfig, ClassifierEmbedder

    torch.manual_seed(0)
    clf = ClassifierEmbedder(AudioClassifier(ClassifierConfig.tiny(class_names=("dog", "piano", "rain"))))
    classify = coarse_classifier_fn(clf, MAPPING)
    out = classify(torch.randn(8000) * 0.1, 16000)
    assert out.group in GROUPS and out.fine in ("dog", "piano", "rain")
    assert out.fine_group == MAPPING[out.fine]
    assert sum(out.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert out.group == max(out.scores, key=out.scores.__getitem__)


def test_everyday_prompt_set() -> None:
    prompts = load_everyday_prompts(PROMPTS)
    for group in COARSE_GROUPS:
        assert sum(p.group == group for p in prompts) >= 8, group
    demo = {p.prompt: p.group for p in prompts if p.demo}
    assert set(demo) == set(DEMO_PROMPTS)
    assert demo == DEMO_GROUPS


@needs_corpus
def test_prompts_are_not_corpus_captions() -> None:
    records = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    prompts = load_everyday_prompts(PROMPTS)
    assert caption_collisions([p for p in prompts if not p.demo], records) == []
    # the demo prompts are fixed by `sara demo`; none is a primary caption ("a man speaking" is one of the
    # alternative captions of the espeak clips)
    assert caption_collisions([p for p in prompts if p.demo], records, alternates=False) == []


def test_caption_collisions_fixture() -> None:
    records = [{"caption": "the sound of a dog barking", "captions": ["A Dog Barking ", "a dog barks"]},
               {"caption": "Rain on a roof"}]
    prompts = [EverydayPrompt("a dog barking", "animal"), EverydayPrompt("rain on a roof", "nature/weather"),
               EverydayPrompt("a cat meowing", "animal")]
    assert caption_collisions(prompts, records) == ["a dog barking", "rain on a roof"]
    assert caption_collisions(prompts, records, alternates=False) == ["rain on a roof"]


def test_prompt_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("prompt,group,demo\na cat meowing,animal,0\nA cat meowing,animal,0\n")
    with pytest.raises(ConfigError, match=r"p.csv:3: repeated prompt"):
        load_everyday_prompts(bad)
    bad.write_text("prompt,group\na cat meowing,pets\n")
    with pytest.raises(ConfigError, match="unknown group 'pets'"):
        load_everyday_prompts(bad)
    bad.write_text("prompt,group,demo\na cat meowing,animal,yes\n")
    with pytest.raises(ConfigError, match="demo must be 0 or 1"):
        load_everyday_prompts(bad)
    assert load_everyday_prompts(_write(tmp_path, "prompt,group\na cat meowing,animal\n")) == [
        EverydayPrompt("a cat meowing", "animal", False)]
    with pytest.raises(ConfigError, match="no such prompt file"):
        load_everyday_prompts(tmp_path / "missing.csv")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.csv"
    path.write_text(text)
    return path
