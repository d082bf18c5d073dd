"""Tiny AudioCaps- and Clotho-format datasets (caption CSVs in the official column layouts, synthesized audio
under the download tools' file names), a tiny semantic encoder, and the manifest / shards / latent store made
from them through the CLI -- shared by the shard, latent-store and streaming-training tests."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sara.cli.__main__ import main

# AudioCaps: audiocap_id, youtube_id, start_time, caption (one row per caption; val/test have five per clip)
AUDIOCAPS_TRAIN = [
    (101, "aB3-x_k", 30, "a dog barks twice"), (102, "Zq9_p0c", 0, "rain falls on a roof"),
    (103, "-mN4tYw", 10, "a car engine idles"), (104, "kk2Rr_s", 20, "birds chirp in the morning"),
    (105, "t7_Lm-q", 0, "a man speaks loudly"), (106, "Po0o-1a", 40, "water runs from a tap"),
]
AUDIOCAPS_VAL = [(201, "vV1_ab", 0, "a bell rings"), (202, "vV1_ab", 0, "a church bell is ringing")]
# Clotho: file_name, caption_1 .. caption_5 (one row per clip)
CLOTHO_DEV = ["Wind in trees.wav", "Footsteps.on.gravel.wav", "Kitchen ambience.wav", "Distant thunder.wav"]


def tone(path: Path, seconds: float, sample_rate: int, freq: float, seed: int) -> Path:
    """A decaying sine plus a little noise (never silent) in the format of ``path``'s extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    wav = 0.4 * np.sin(2 * np.pi * freq * t) * np.exp(-t) + 0.02 * rng.standard_normal(t.size)
    sf.write(str(path), wav.astype(np.float32), sample_rate)
    return path


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_audiocaps(root: Path) -> tuple[Path, Path, Path]:
    """``(train.csv, val.csv, audio dir)``: DCASE-style names ``Y<id>_<start>.000_<end>.000.wav`` (16 kHz)."""
    audio = root / "audiocaps" / "audio"
    for i, (_, yid, start, _) in enumerate(AUDIOCAPS_TRAIN + AUDIOCAPS_VAL[:1]):
        tone(audio / f"Y{yid}_{start}.000_{start + 10}.000.wav", 0.9 + 0.1 * (i % 3), 16000, 220.0 + 60 * i, i)
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    train = _csv(root / "audiocaps" / "train.csv", header, [list(r) for r in AUDIOCAPS_TRAIN])
    val = _csv(root / "audiocaps" / "val.csv", header, [list(r) for r in AUDIOCAPS_VAL])
    return train, val, audio


def write_clotho(root: Path) -> tuple[Path, Path]:
    """``(clotho_captions_development.csv, audio dir)``: Freesound names in ``development/`` (22.05 kHz flac
    converted from the wav the CSV names, as people often store them)."""
    audio = root / "clotho"
    for i, name in enumerate(CLOTHO_DEV):
        tone(audio / "development" / Path(name).with_suffix(".flac").name, 1.1, 22050, 500.0 + 90 * i, 10 + i)
    rows = [[name, *[f"{Path(name).stem.lower()} caption {k}" for k in range(1, 6)]] for name in CLOTHO_DEV]
    header = ["file_name", *[f"caption_{k}" for k in range(1, 6)]]
    return _csv(root / "clotho_captions_development.csv", header, rows), audio


def tiny_encoder_dir(root: Path) -> Path:
    """A saved tiny semantic encoder (32-d latents at 25 Hz) with non-trivial BatchNorm statistics."""
    from sara.encoder import EncoderConfig, SemanticEncoder

    torch.manual_seed(0)
    enc = SemanticEncoder(EncoderConfig.tiny()).eval()
    bn, g = enc.init_bn[1], torch.Generator().manual_seed(0)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(64, generator=g) * 10 - 40)
        bn.running_var.copy_(torch.rand(64, generator=g) * 200 + 50)
    return enc.save_pretrained(root / "encoder")


@dataclass(frozen=True)
class Corpus:
    """What :func:`build_corpus` made."""

    root: Path
    manifest: Path
    encoder: Path


def build_corpus(root: Path) -> Corpus:
    """AudioCaps (train + val) and Clotho (development) fixtures -> one manifest via ``sara data prepare``."""
    train, val, ac_audio = write_audiocaps(root)
    clotho_csv, cl_audio = write_clotho(root)
    manifest = root / "manifest.jsonl"
    for args in (["audiocaps", "--csv", str(train), "--audio-dir", str(ac_audio)],
                 ["audiocaps", "--csv", str(val), "--audio-dir", str(ac_audio), "--append"],
                 ["clotho", "--csv", str(clotho_csv), "--audio-dir", str(cl_audio), "--append"]):
        assert main(["data", "prepare", *args, "-o", str(manifest), "--jobs", "1"]) == 0
    return Corpus(root, manifest, tiny_encoder_dir(root))


def manifest_ids(manifest: Path) -> list[str]:
    """The clip ids of a manifest, in file order."""
    return [json.loads(line)["id"] for line in manifest.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Prepared:
    """A corpus with its shards (``shards``: 3 clips each), a sharded latent store (``store``: 4 clips per
    shard) and shards holding those latents (``shards_lat``)."""

    corpus: Corpus
    shards: Path
    store: Path
    shards_lat: Path


def prepare_all(root: Path) -> Prepared:
    """:func:`build_corpus`, then ``sara data shard``, ``sara encode --manifest`` and ``sara data shard
    --latent-cache`` through the CLI."""
    corpus = build_corpus(root)
    shards, store, shards_lat = root / "shards", root / "store", root / "shards_lat"
    assert main(["data", "shard", str(corpus.manifest), str(shards), "--shard-size", "3"]) == 0
    assert main(["encode", "--manifest", str(corpus.manifest), "-o", str(store), "--shard-size", "4",
                 "--encoder", str(corpus.encoder)]) == 0
    assert main(["data", "shard", str(corpus.manifest), str(shards_lat), "--shard-size", "3",
                 "--latent-cache", str(store)]) == 0
    return Prepared(corpus, shards, store, shards_lat)


class FakeTextEncoder(torch.nn.Module):
    """A stand-in for the MiniLM text encoder (384-d states from a hash of each word): the streaming tests
    exercise the data path, and loading MiniLM would cost seconds per test."""

    dim = 384

    def encode_one(self, caption: str) -> torch.Tensor:
        """``[words, 384]`` states, a deterministic function of the caption."""
        import zlib

        rows = [torch.Generator().manual_seed(zlib.crc32(w.encode())) for w in caption.split() or [""]]
        return torch.stack([torch.randn(self.dim, generator=g) for g in rows])
