"""Evaluation runs: embedding with an on-disk cache, generation metrics and reconstruction metrics.

The cache stores one ``.safetensors`` per (file, embedder) keyed by the file's absolute path, mtime and size
and the embedder's ``cache_id``, so re-runs only embed new or changed files (unlike audioldm_eval, whose
folder-level cache goes stale silently).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from sara.audio.dsp import resample
from sara.audio.io import load_audio
from sara.errors import ConfigError, SaraError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput
from sara.eval.metrics import (
    clap_score,
    frechet_audio_distance,
    frechet_distance,
    inception_score,
    mel_distance,
    paired_kl,
    si_sdr,
    stft_distance,
    visqol,
    waveform_l1,
)

__all__ = ["EmbeddingCache", "embed_files", "evaluate_generation", "evaluate_reconstruction", "paired_fraction"]


class EmbeddingCache:
    """Per-file embedding cache under ``root`` (disabled when ``root`` is None)."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root is not None else None

    def _file(self, path: Path, embedder: AudioEmbedder) -> Path | None:
        if self.root is None:
            return None
        st = path.stat()
        key = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{embedder.cache_id}"
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.root / embedder.name / digest[:2] / f"{digest}.safetensors"

    def get(self, path: Path, embedder: AudioEmbedder) -> EmbedderOutput | None:
        """Cached embeddings of ``path`` or None."""
        f = self._file(path, embedder)
        if f is None or not f.is_file():
            return None
        t = load_file(str(f))
        return EmbedderOutput(frames=t["frames"], clip=t["clip"], logits=t.get("logits"))

    def put(self, path: Path, embedder: AudioEmbedder, out: EmbedderOutput) -> None:
        """Store atomically (temp file + rename)."""
        f = self._file(path, embedder)
        if f is None:
            return
        f.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"frames": out.frames.contiguous().clone(), "clip": out.clip.contiguous().clone()}
        if out.logits is not None:
            tensors["logits"] = out.logits.contiguous().clone()
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp))
        os.replace(tmp, f)


def embed_files(embedder: AudioEmbedder, files: Sequence[Path], cache: EmbeddingCache, *,
                desc: str = "embed") -> dict[str, EmbedderOutput]:
    """Embed each file (cache first), returning ``{str(path): EmbedderOutput}`` in input order."""
    out: dict[str, EmbedderOutput] = {}
    for path in tqdm(files, desc=f"{desc} [{embedder.name}]", leave=False):
        emb = cache.get(path, embedder)
        if emb is None:
            wav, sr = load_audio(path)
            emb = embedder.run(wav, sr)
            cache.put(path, embedder, emb)
        out[str(path)] = emb
    return out


def paired_fraction(a: Iterable[Path], b: Iterable[Path]) -> float:
    """Smallest fraction of basenames of either set found in the other (audioldm_eval: > 0.99 = paired)."""
    na, nb = {p.name for p in a}, {p.name for p in b}
    if not na or not nb:
        return 0.0
    common = len(na & nb)
    return min(common / len(na), common / len(nb))


def _embedder_metrics(gen: dict[str, EmbedderOutput], ref: dict[str, EmbedderOutput], paired: bool) -> dict[str, Any]:
    """FD (clip vectors), FAD (frames), and KL / IS when the embedder has logits."""
    m: dict[str, Any] = {
        "fd": frechet_distance(np.stack([e.clip.numpy() for e in gen.values()]),
                               np.stack([e.clip.numpy() for e in ref.values()])),
        "fad": frechet_audio_distance([e.frames for e in gen.values()], [e.frames for e in ref.values()]),
    }
    if next(iter(gen.values())).logits is None:
        return m
    gen_logits = {k: e.logits.numpy() for k, e in gen.items()}  # type: ignore[union-attr]
    if paired:
        kl = paired_kl({k: e.logits.numpy() for k, e in ref.items()}, gen_logits)  # type: ignore[union-attr]
        m.update(kl_softmax=kl.kl_softmax, kl_sigmoid=kl.kl_sigmoid, kl_pairs=kl.num_pairs)
    if len(gen_logits) >= 10:
        m["is_mean"], m["is_std"] = inception_score(np.stack(list(gen_logits.values())))
    return m


def evaluate_generation(generated: Sequence[Path], reference: Sequence[Path], embedders: Sequence[AudioEmbedder],
                        cache: EmbeddingCache, *, captions: dict[str, str] | None = None) -> dict[str, Any]:
    """Generation metrics of ``generated`` against ``reference`` for every embedder.

    Returns:
        ``{"num_generated", "num_reference", "paired", "metrics": {embedder name: {fd, fad, kl_*, is_*,
        clap_score}}}``.  KL needs paired sets (same file names); CLAP score needs ``captions`` (file stem ->
        text) and a ``clap`` embedder.
    """
    if len(generated) < 2 or len(reference) < 2:
        raise SaraError("generation metrics need at least 2 generated and 2 reference files")
    if captions is not None and not any(hasattr(e, "embed_text") for e in embedders):
        raise ConfigError("a captions file is only used by the CLAP score: add --embedder clap:DIR")
    paired = paired_fraction(generated, reference) > 0.99
    result: dict[str, Any] = {"num_generated": len(generated), "num_reference": len(reference), "paired": paired,
                              "metrics": {}}
    for i, embedder in enumerate(embedders):
        gen = embed_files(embedder, generated, cache, desc="generated")
        ref = embed_files(embedder, reference, cache, desc="reference")
        metrics = _embedder_metrics(gen, ref, paired)
        if captions is not None and hasattr(embedder, "embed_text"):
            metrics.update(_clap_metrics(embedder, gen, captions))
        key = embedder.name if embedder.name not in result["metrics"] else f"{embedder.name}#{i}"
        result["metrics"][key] = metrics
    return result


def _clap_metrics(embedder: Any, gen: dict[str, EmbedderOutput], captions: dict[str, str]) -> dict[str, Any]:
    """Mean / std text-audio cosine over generated files that have a caption (matched by file stem)."""
    keys = [k for k in gen if Path(k).stem in captions]
    if not keys:
        raise SaraError("no generated file name matches an entry of the captions file")
    text = embedder.embed_text([captions[Path(k).stem] for k in keys]).numpy()
    mean, std = clap_score(text, np.stack([gen[k].clip.numpy() for k in keys]))
    return {"clap_score": mean, "clap_score_std": std, "clap_pairs": len(keys)}


def _reconstruction_row(ref: torch.Tensor, rec: torch.Tensor, sr_ref: int, sr_rec: int, rates: Sequence[int],
                        with_visqol: bool) -> dict[str, float]:
    """Metrics for one clip (mono ``[T]`` each) at every rate in ``rates``."""
    row: dict[str, float] = {}
    for rate in rates:
        x, y = resample(ref, sr_ref, rate), resample(rec, sr_rec, rate)
        tag = f"@{rate // 1000 if rate % 1000 == 0 else rate / 1000:g}k"
        row[f"mel{tag}"] = mel_distance(x, y, rate)
        row[f"stft{tag}"] = stft_distance(x, y)
        row[f"l1{tag}"] = waveform_l1(x, y)
        row[f"si_sdr{tag}"] = si_sdr(x, y)
    if with_visqol:
        score = visqol(ref, resample(rec, sr_rec, sr_ref), sr_ref)
        if score is not None:
            row["visqol"] = score
    return row


def evaluate_reconstruction(vocoder: Any, files: Sequence[Path], *, steps: int | None = None,
                            rates: Sequence[int] = (44100, 22050), with_visqol: bool = False,
                            seed: int = 0) -> dict[str, Any]:
    """Encode -> decode each file with ``vocoder.reconstruct`` and average DAC-style distances.

    Args:
        vocoder: has ``sample_rate`` and ``reconstruct(wav [1, C, T], sr, steps=, seed=) -> [1, T']``.
        files: audio files (mono-mixed before comparison).
        rates: rates (Hz) both signals are resampled to before measuring (DAC uses 44.1k and 22.05k).
        with_visqol: add ViSQOL (audio mode, 48 kHz) when ``visqol-python`` is importable.

    Returns:
        ``{"num_files", "steps", "metrics": {name: mean}, "per_file": {path: {name: value}}}``.
    """
    if not files:
        raise SaraError("reconstruction: no audio files")
    per_file: dict[str, dict[str, float]] = {}
    for path in tqdm(files, desc="reconstruct", leave=False):
        wav, sr = load_audio(path, mono=True)
        with torch.inference_mode():
            rec = vocoder.reconstruct(wav[None], sr, steps=steps, seed=seed)
        per_file[str(path)] = _reconstruction_row(wav[0], rec.reshape(-1).float().cpu(), sr,
                                                  int(vocoder.sample_rate), rates, with_visqol)
    names = list(next(iter(per_file.values())))
    means = {n: float(np.mean([row[n] for row in per_file.values()])) for n in names}
    return {"num_files": len(files), "steps": steps, "metrics": means, "per_file": per_file}
