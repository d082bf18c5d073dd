"""The AudioGen branch of ``sara generate``: directory detection, one prompt to a file, a captions file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf

from sara.audiogen.cli import is_audiogen_dir, run_generate
from tests.audiogen.audiocraft_lm_layout import write_audiocraft_lm
from tests.audiogen.tiny_text import write_tiny_t5


def _model(root: Path) -> Path:
    from tests.codec.audiocraft_layout import TinyEncodec, write_compression_package

    write_audiocraft_lm(root)
    write_tiny_t5(root / "t5-large", d_model=1024)
    write_compression_package(root, TinyEncodec(n_q=4, bins=32))  # 16 kHz, hop 8: 2000 frames/s
    return root


def _args(**kw) -> argparse.Namespace:  # noqa: ANN003
    base = dict(prompt=None, output=None, captions=None, output_dir="out", duration=0.003, cfg=None, seed=0,
                device="cpu")
    return argparse.Namespace(**{**base, **kw})


def test_detection(tmp_path: Path) -> None:
    assert not is_audiogen_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"class": "TextToAudio"}))
    assert not is_audiogen_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"class": "AudioGen"}))
    assert is_audiogen_dir(tmp_path)
    assert is_audiogen_dir(_model(tmp_path / "ag"))


def test_single_prompt_and_batch(tmp_path: Path) -> None:
    model = _model(tmp_path / "ag")
    out = tmp_path / "dog.wav"
    assert run_generate(_args(model=str(model), prompt="a dog barks", output=str(out))) == 0
    wav, sr = sf.read(out)
    assert sr == 16000 and wav.shape == (6 * 8,)
    captions = tmp_path / "caption.jsonl"
    captions.write_text("\n".join(json.dumps({"audio_id": f"Y{i}.wav", "caption": c})
                                  for i, c in enumerate(["a dog barks", "rain falls"])) + "\n")
    args = _args(model=str(model), captions=str(captions), output_dir=str(tmp_path / "batch"))
    assert run_generate(args) == 0
    files = sorted((tmp_path / "batch").rglob("*.wav"))
    assert [f.name for f in files] == ["Y0_a_dog_barks.wav", "Y1_rain_falls.wav"]
    assert run_generate(args) == 0  # resumable: existing files are skipped
