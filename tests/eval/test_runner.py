"""Runner pieces: pairing rule, CLAP-score path, captions parsing, embedding cache invalidation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sara.audio.io import save_audio
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput
from sara.eval.manifest import read_captions
from sara.eval.runner import EmbeddingCache, embed_files, evaluate_generation, paired_fraction


class CountingEmbedder(AudioEmbedder):
    """Clip = [rms, 1]; fake text embeddings; counts real runs."""

    name = "counting"
    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0

    @property
    def cache_id(self) -> str:
        return "counting-v1"

    def run(self, wav: torch.Tensor, sample_rate: int) -> EmbedderOutput:
        self.calls += 1
        rms = float(wav.pow(2).mean().sqrt())
        clip = torch.tensor([rms, 1.0])
        return EmbedderOutput(frames=torch.stack([clip, clip + 0.1]), clip=clip)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[0.0, 1.0]] * len(texts))


def _write(dirname: Path, names: list[str], amp: float) -> list[Path]:
    paths = []
    for i, n in enumerate(names):
        paths.append(save_audio(dirname / n, amp * (i + 1) * torch.ones(1, 1600) / len(names), 16000))
    return paths


def test_unpaired_sets_skip_kl_and_clap_score_is_mean_cosine(tmp_path: Path) -> None:
    gen = _write(tmp_path / "gen", ["g1.wav", "g2.wav", "g3.wav"], 0.5)
    ref = _write(tmp_path / "ref", ["r1.wav", "r2.wav"], 0.5)
    assert paired_fraction(gen, ref) == 0.0
    emb = CountingEmbedder()
    res = evaluate_generation(gen, ref, [emb], EmbeddingCache(None), captions={"g1": "x", "g3": "y"})
    assert res["paired"] is False
    m = res["metrics"]["counting"]
    assert "kl_softmax" not in m and m["clap_pairs"] == 2
    clips = [np.array([float(p), 1.0]) for p in (0.5 / 3, 0.5)]  # rms of the constant signals g1 and g3
    want = np.mean([c[1] / np.linalg.norm(c) for c in clips])
    assert m["clap_score"] == pytest.approx(want, rel=1e-3)


def test_cache_hits_and_invalidates_on_change(tmp_path: Path) -> None:
    files = _write(tmp_path / "a", ["x.wav", "y.wav"], 0.5)
    emb, cache = CountingEmbedder(), EmbeddingCache(tmp_path / "cache")
    first = embed_files(emb, files, cache)
    embed_files(emb, files, cache)
    assert emb.calls == 2
    save_audio(files[0], 0.9 * torch.ones(1, 1600), 16000)  # content (and mtime / size) change
    st = files[0].stat()
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = embed_files(emb, files, cache)
    assert emb.calls == 3
    assert not torch.equal(again[str(files[0])].clip, first[str(files[0])].clip)


def test_read_captions_formats(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text('file,caption\nout/a.wav,"a dog, barking"\nb.wav,rain\n')
    assert read_captions(tmp_path / "c.csv") == {"a": "a dog, barking", "b": "rain"}
    (tmp_path / "c.jsonl").write_text('{"path": "x/a.wav", "captions": ["one", "two"]}\n')
    assert read_captions(tmp_path / "c.jsonl") == {"a": "one"}
    (tmp_path / "c.tsv").write_text("a.wav\tbirds\n")
    assert read_captions(tmp_path / "c.tsv") == {"a": "birds"}
