"""`sara eval relevance` end to end: a tiny release, a tiny corpus classifier, several samples per caption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sara.cli.__main__ import main
from tests.eval.test_cli import _corpus


def test_relevance_cli_scores_every_sample(tiny_release: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _corpus(tmp_path)
    clf = tmp_path / "clf"
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(clf), "--epochs", "1",
                 "--tiny"]) == 0
    out = tmp_path / "rel"
    common = ["eval", "relevance", "--model", str(tiny_release), "--classifier", str(clf), "--manifest",
              str(manifest), "--per-class", "1", "--steps", "2", "--duration", "1", "--cfg", "1", "--out", str(out)]
    assert main([*common, "--samples-per-prompt", "2", "--also-classifier", str(clf)]) == 0
    res = json.loads((out / "relevance.json").read_text())
    assert res["other_classifiers"] == {str(clf): {"generated_accuracy": res["generated_accuracy"],
                                                   "real_accuracy": res["real_accuracy"]}}  # same audio, same model
    assert res["num_prompts"] == 4 and res["samples_per_prompt"] == 2 and res["chance"] == 0.5
    captions = [p["caption"] for p in res["predictions"]]
    assert captions[:2] == captions[2:] and sorted(captions[:2]) == ["noise", "tone"]
    assert 0.0 <= res["generated_accuracy"] <= 1.0 and 0.0 <= res["real_accuracy"] <= 1.0
    capsys.readouterr()
    assert main([*common, "--samples-per-prompt", "0"]) != 0
    assert "--samples-per-prompt" in capsys.readouterr().err


def test_relevance_scores_a_latent_diffusion_release_with_the_same_protocol(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

    manifest = _corpus(tmp_path)
    clf = tmp_path / "clf"
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(clf), "--epochs", "1",
                 "--tiny"]) == 0
    release = tiny_minilm_pipeline().save_pretrained(tmp_path / "ldm")
    out = tmp_path / "rel"
    common = ["eval", "relevance", "--model", str(release), "--classifier", str(clf), "--manifest", str(manifest),
              "--per-class", "1", "--steps", "2", "--duration", "0.5", "--out", str(out)]
    assert main(common) == 0
    res = json.loads((out / "relevance.json").read_text())
    assert res["system"] == "LatentDiffusion" and res["num_prompts"] == 2 and res["steps"] == 2
    assert res["cfg"] == tiny_minilm_pipeline().defaults.guidance_scale  # the model's default guidance
    assert 0.0 <= res["generated_accuracy"] <= 1.0
    capsys.readouterr()
    assert main([*common, "--vocoder-steps", "3"]) == 2  # a SARA-only option
    assert "--vocoder-steps applies to SARA models only" in capsys.readouterr().err


def test_reconstruction_scores_the_vae_and_hifigan_path_of_a_latent_diffusion_release(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf
    import torch

    from sara.eval.mel_reconstruction import MelReconstructor
    from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

    pipe = tiny_minilm_pipeline()
    release = pipe.save_pretrained(tmp_path / "ldm")
    audio = tmp_path / "clips"
    audio.mkdir()
    t = np.arange(22050) / 22050.0
    sf.write(audio / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22050)  # 1 s at another rate
    rec = MelReconstructor(pipe).reconstruct(torch.from_numpy(0.3 * np.sin(2 * np.pi * 440 * t))[None, None].float(),
                                             22050)
    assert rec.shape == (1, 16000) and torch.isfinite(rec).all()
    out = tmp_path / "rec"
    assert main(["eval", "reconstruction", "--model", str(release), "--audio", str(audio), "--out", str(out),
                 "--no-cache"]) == 0
    res = json.loads((out / "reconstruction.json").read_text())
    assert res["num_files"] == 1 and all(np.isfinite(v) for v in res["metrics"].values())


def test_reconstruction_scores_an_encodec_release_through_its_codes(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf
    import torch

    from sara.codec.config import CodecConfig
    from sara.codec.model import EncodecCodec
    from sara.eval.codec_reconstruction import CodecReconstructor

    codec = EncodecCodec(CodecConfig.tiny()).eval()
    release = codec.save_pretrained(tmp_path / "codec")
    audio = tmp_path / "clips"
    audio.mkdir()
    t = np.arange(22050) / 22050.0
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(audio / "tone.wav", tone, 22050)  # 1 s at another rate
    rec = CodecReconstructor(codec).reconstruct(torch.from_numpy(tone)[None, None].float(), 22050)
    assert rec.shape == (1, codec.sample_rate) and torch.isfinite(rec).all()
    resampled = torch.from_numpy(tone).float()[None, None]
    from sara.audio.dsp import resample

    mono = resample(resampled[0, 0], 22050, codec.sample_rate)
    assert torch.allclose(rec, codec.decode(codec.encode(mono[None, None]))[:, 0, : mono.numel()])
    out = tmp_path / "rec"
    assert main(["eval", "reconstruction", "--model", str(release), "--audio", str(audio), "--out", str(out),
                 "--no-cache"]) == 0
    res = json.loads((out / "reconstruction.json").read_text())
    assert res["num_files"] == 1 and all(np.isfinite(v) for v in res["metrics"].values())
