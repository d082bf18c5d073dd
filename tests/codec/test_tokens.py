"""Token cache: exact-path keys, atomic resumable writes, codec fingerprint, and the LM's reader accepts it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from sara.audio.io import load_audio
from sara.codec import EncodecCodec, encode_manifest_to_tokens, load_tokens
from sara.errors import ConfigError
from tests.codec.audiocraft_layout import write_compression_package


@pytest.fixture()
def codec(tmp_path: Path) -> EncodecCodec:
    return EncodecCodec.from_pretrained(write_compression_package(tmp_path / "codec"))


def _corpus(root: Path, names: list[str]) -> Path:
    rows = []
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        wav = 0.3 * np.sin(np.arange(2400 + 240 * i) * (0.05 + 0.01 * i))
        sf.write(root / name, wav.astype(np.float32), 24000, subtype="PCM_16")
        rows.append({"path": name, "split": "train" if i else "valid", "captions": [f"tone {i}"]})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def test_writes_codes_at_the_exact_relative_paths(codec: EncodecCodec, tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "corpus", ["audio/a/x.wav", "audio/b/x.wav", "audio/b/y.wav"])
    summary = encode_manifest_to_tokens(codec, manifest, tmp_path / "tokens")
    assert summary == {"written": 3, "skipped": 0, "failed": {}}
    for rel in ("audio/a/x.wav", "audio/b/x.wav", "audio/b/y.wav"):
        wav, _ = load_audio(manifest.parent / rel, sample_rate=16000, mono=True)
        expected = codec.encode(wav.unsqueeze(0))[0]
        codes = load_tokens(tmp_path / "tokens", rel)
        assert torch.equal(codes, expected) and codes.dtype == torch.long
        with safe_open(str(tmp_path / "tokens" / Path(rel).with_suffix(".safetensors")), framework="pt") as f:
            assert f.metadata()["path"] == rel and f.get_slice("codes").get_dtype() == "I16"
    record = json.loads((tmp_path / "tokens" / "codec.json").read_text())
    assert (record["frame_rate"], record["num_codebooks"], record["cardinality"]) == (2000, 2, 16)
    assert not list((tmp_path / "tokens").rglob(".tmp-*"))


def test_rerun_skips_and_split_filter(codec: EncodecCodec, tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "corpus", ["a.wav", "b.wav", "c.wav"])
    assert encode_manifest_to_tokens(codec, manifest, tmp_path / "t", split="train")["written"] == 2
    assert not (tmp_path / "t" / "a.safetensors").exists()  # the valid clip
    again = encode_manifest_to_tokens(codec, manifest, tmp_path / "t")
    assert (again["written"], again["skipped"]) == (1, 2)


def test_refuses_a_cache_of_another_codec(codec: EncodecCodec, tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "corpus", ["a.wav"])
    encode_manifest_to_tokens(codec, manifest, tmp_path / "t")
    other = EncodecCodec.from_pretrained(write_compression_package(tmp_path / "other", seed=1))
    with pytest.raises(ConfigError, match="another codec"):
        encode_manifest_to_tokens(other, manifest, tmp_path / "t")
    assert encode_manifest_to_tokens(other, manifest, tmp_path / "t", overwrite=True)["written"] == 1


def test_collisions_and_unreadable_audio(codec: EncodecCodec, tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "corpus", ["x.wav", "y.wav"])
    (tmp_path / "corpus" / "y.wav").write_bytes(b"not audio")
    summary = encode_manifest_to_tokens(codec, manifest, tmp_path / "t")
    assert summary["written"] == 1 and list(summary["failed"]) == ["y.wav"]
    assert "y.wav" in json.loads((tmp_path / "t" / "failures.json").read_text())
    with manifest.open("a") as f:
        f.write(json.dumps({"path": "x.flac", "split": "train"}) + "\n")
    with pytest.raises(ConfigError, match="share a token file"):
        encode_manifest_to_tokens(codec, manifest, tmp_path / "t2")


def test_the_lm_token_dataset_reads_the_cache(codec: EncodecCodec, tmp_path: Path) -> None:
    from sara.audiogen.training import TokenCaptionDataset

    manifest = _corpus(tmp_path / "corpus", ["audio/a.wav", "audio/b.wav"])
    encode_manifest_to_tokens(codec, manifest, tmp_path / "t")
    ds = TokenCaptionDataset(manifest, tmp_path / "t", "train", frames=400, num_codebooks=2, special=16, train=False)
    item = ds[0]
    assert torch.equal(item["codes"][:, : int(item["mask"].sum())], load_tokens(tmp_path / "t", "audio/b.wav"))
