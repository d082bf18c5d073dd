"""``sara eval`` smoke tests through ``sara.cli.__main__.main`` on tiny directories of wavs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sara.audio.dsp import resample
from sara.audio.io import save_audio
from sara.cli.__main__ import main
from sara.eval.embedders.classifier import AudioClassifier, ClassifierConfig

SR = 16000


def tone(freq: float, seconds: float = 1.0, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    return (0.3 * torch.sin(2 * math.pi * freq * t) + noise * torch.randn(t.shape, generator=g))[None]


@pytest.fixture
def gen_ref(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(12):
        save_audio(tmp_path / "ref" / f"clip{i:02d}.wav", tone(200 + 50 * i, noise=0.01, seed=i), SR)
        save_audio(tmp_path / "gen" / f"clip{i:02d}.wav", tone(210 + 50 * i, noise=0.05, seed=100 + i), SR)
    return tmp_path / "gen", tmp_path / "ref"


def test_generation_cli_with_mel_and_classifier(tmp_path: Path, gen_ref: tuple[Path, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    AudioClassifier(ClassifierConfig.tiny(("a", "b", "c"))).save_pretrained(tmp_path / "clf")
    out = tmp_path / "out"
    argv = ["eval", "generation", "--generated", str(gen_ref[0]), "--reference", str(gen_ref[1]),
            "--embedder", "mel", "--embedder", f"classifier:{tmp_path / 'clf'}", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| embedder |" in printed and "classifier" in printed
    res = json.loads((out / "generation.json").read_text())
    assert res["paired"] is True and res["num_generated"] == 12
    mel, clf = res["metrics"]["mel"], res["metrics"]["classifier"]
    assert mel["fd"] > 0 and mel["fad"] > 0 and "kl_softmax" not in mel
    assert {"fd", "fad", "kl_softmax", "kl_sigmoid", "is_mean", "is_std"} <= set(clf)
    assert 1.0 <= clf["is_mean"] <= 3.0 and clf["kl_pairs"] == 12
    assert (out / "generation.md").read_text().startswith("# Generation metrics")
    cached = sorted((out / "cache").rglob("*.safetensors"))
    assert len(cached) == 2 * 24
    # re-run: everything comes from the cache (same numbers, no new files)
    assert main(argv) == 0
    again = json.loads((out / "generation.json").read_text())["metrics"]
    for name, metrics in res["metrics"].items():  # BLAS / sqrtm round-off may differ in the last digits
        assert again[name] == pytest.approx(metrics, rel=1e-5)
    assert sorted((out / "cache").rglob("*.safetensors")) == cached


def test_generation_cli_user_errors(tmp_path: Path, gen_ref: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "generation", "--generated", str(tmp_path / "missing"), "--reference", str(gen_ref[1]),
                 "--out", str(tmp_path / "o")]) == 2
    assert main(["eval", "generation", "--generated", str(gen_ref[0]), "--reference", str(gen_ref[1]),
                 "--embedder", "cnn14", "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "caps.tsv").write_text("clip00.wav\tx\n")
    assert main(["eval", "generation", "--generated", str(gen_ref[0]), "--reference", str(gen_ref[1]),
                 "--captions", str(tmp_path / "caps.tsv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "needs a local path" in err and "clap:DIR" in err


class FakeVocoder:
    """Stands in for ``SemanticVocoder``: 'reconstructs' by resampling to 24 kHz and adding a little noise."""

    sample_rate = 24000

    def reconstruct(self, wav: torch.Tensor, sample_rate: int, steps: int | None = None, seed: int | None = None) -> torch.Tensor:
        out = resample(wav.mean(1), sample_rate, self.sample_rate)
        return out + 0.001 * torch.randn(out.shape, generator=torch.Generator().manual_seed(seed or 0))


def test_reconstruction_cli_with_fake_vocoder(tmp_path: Path, gen_ref: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sara.vocoder

    monkeypatch.setattr(sara.vocoder.SemanticVocoder, "from_pretrained", classmethod(lambda cls, path: FakeVocoder()))
    out = tmp_path / "rec"
    assert main(["eval", "reconstruction", "--model", "fake", "--audio", str(gen_ref[1]), "--limit", "3",
                 "--rates", "44100", "16000", "--steps", "2", "--out", str(out)]) == 0
    res = json.loads((out / "reconstruction.json").read_text())
    m = res["metrics"]
    assert res["num_files"] == 3 and {"mel@44.1k", "stft@44.1k", "l1@44.1k", "si_sdr@44.1k", "mel@16k"} <= set(m)
    assert m["si_sdr@16k"] > 20 and m["mel@16k"] < 1.0


class FakeEncoder:
    """Latents that separate tones from noise: [D=4, N] at 25 Hz from simple frame statistics."""

    sample_rate = 16000

    def encode(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        x = wav.mean(1)[0]
        frames = x[: x.shape[-1] // 640 * 640].reshape(-1, 640)
        diff = frames.diff(dim=-1).abs().mean(-1)
        feats = torch.stack([frames.abs().mean(-1), diff, frames.std(-1), diff / (frames.abs().mean(-1) + 1e-3)])
        return feats[None]


def _corpus(tmp_path: Path) -> Path:
    rows = []
    for i in range(30):
        label = "tone" if i % 2 else "noise"
        wav = tone(300 + 10 * i, noise=0.0, seed=i) if label == "tone" else tone(0, noise=0.3, seed=i)
        save_audio(tmp_path / "corpus" / f"c{i}.wav", wav, SR)
        split = ("train", "train", "train", "valid", "test")[i % 5]
        rows.append(json.dumps({"path": f"c{i}.wav", "class": label, "caption": label, "split": split, "group": str(i % 3)}))
    (tmp_path / "corpus" / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    return tmp_path / "corpus" / "manifest.jsonl"


def test_probe_cli_with_fake_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sara.eval.embedders.semantic import SemanticEmbedder

    monkeypatch.setattr(SemanticEmbedder, "from_pretrained", classmethod(lambda cls, path: cls(FakeEncoder())))
    manifest, out = _corpus(tmp_path), tmp_path / "probe"
    assert main(["eval", "probe", "--encoder", "fake", "--manifest", str(manifest), "--grid", "fast", "--kinds", "linear",
                 "--out", str(out)]) == 0
    res = json.loads((out / "probe.json").read_text())
    assert res["num_classes"] == 2 and set(res["results"]) == {"semantic", "mel"}
    assert res["results"]["semantic"]["linear"]["mean"] >= 0.8
    assert (out / "tsne_semantic_class.png").is_file() and (out / "tsne_mel_class.png").is_file()
    assert main(["eval", "probe", "--encoder", "fake", "--manifest", str(manifest), "--grid", "fast", "--kinds", "mlp",
                 "--label", "group", "--folds", "group", "--baseline", "none", "--max-clips", "24", "--no-tsne",
                 "--out", str(out)]) == 0
    res = json.loads((out / "probe_group.json").read_text())
    assert res["num_clips"] == 24 and res["num_classes"] == 3 and list(res["results"]) == ["semantic"]
    assert len(res["results"]["semantic"]["mlp"]["per_split"]) == 3


def test_train_classifier_cli(tmp_path: Path) -> None:
    manifest = _corpus(tmp_path)
    out = tmp_path / "clf"
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(out), "--epochs", "3",
                 "--tiny"]) == 0
    stats = json.loads((out / "classifier_training.json").read_text())
    assert stats["num_classes"] == 2 and 0.0 <= stats["valid_accuracy"] <= 1.0
    model = AudioClassifier.from_pretrained(out)
    assert model.config.class_names == ("noise", "tone")
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(tmp_path / "clf_aug"),
                 "--epochs", "2", "--tiny", "--augment"]) == 0
    assert AudioClassifier.from_pretrained(tmp_path / "clf_aug").config.class_names == ("noise", "tone")


def test_train_classifier_seed(tmp_path: Path) -> None:
    """The same seed gives the same weights bit for bit; another seed gives other weights."""
    from safetensors.torch import load_file

    manifest = _corpus(tmp_path)
    weights = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(tmp_path / name),
                     "--epochs", "1", "--tiny", "--augment", "--seed", seed]) == 0
        weights[name] = load_file(str(tmp_path / name / "model.safetensors"))
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(tmp_path / "d"),
                 "--seed", "-1"]) == 2


def test_import_has_no_matplotlib_side_effect() -> None:
    code = "import sara.eval, sara.eval.tsne, sara.eval.probes, sys; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_cli_with_real_tiny_encoder_and_vocoder(tmp_path: Path, gen_ref: tuple[Path, Path]) -> None:
    """Integration with the colleagues' modules: untrained tiny SemanticEncoder / SemanticVocoder releases."""
    import dataclasses

    from sara.encoder import EncoderConfig, SemanticEncoder
    from sara.vocoder import SemanticVocoder, VocoderConfig

    torch.manual_seed(0)
    enc = SemanticEncoder(EncoderConfig.tiny())
    enc.save_pretrained(tmp_path / "enc")
    SemanticVocoder(dataclasses.replace(VocoderConfig.tiny(), latent_dim=enc.latent_dim), encoder=enc).save_pretrained(
        tmp_path / "voc")
    out = tmp_path / "out"
    assert main(["eval", "reconstruction", "--model", str(tmp_path / "voc"), "--audio", str(gen_ref[1]),
                 "--limit", "2", "--steps", "2", "--rates", "24000", "--out", str(out)]) == 0
    m = json.loads((out / "reconstruction.json").read_text())["metrics"]
    assert all(math.isfinite(v) for v in m.values()) and m["mel@24k"] > 0
    manifest = _corpus(tmp_path)
    assert main(["eval", "probe", "--encoder", str(tmp_path / "enc"), "--manifest", str(manifest), "--grid", "fast",
                 "--kinds", "linear", "--no-tsne", "--baseline", "none", "--out", str(out)]) == 0
    res = json.loads((out / "probe.json").read_text())["results"]["semantic"]["linear"]
    assert res["dim"] == enc.latent_dim and 0.0 <= res["mean"] <= 1.0
