"""Encoding audio files into latent cache files (the library side of ``sara encode``).

One ``<stem>.safetensors`` per input holds tensor ``latents [D, N]`` (float32) and string metadata
``sample_rate`` (the encoder's input rate, Hz), ``frame_rate`` (latent frames/s), ``source`` (input path),
``source_sample_rate`` and ``num_samples`` (of the file).  Files found under a directory input keep their
sub-path relative to that directory, so ``a/x.wav`` and ``b/x.wav`` do not collide.

Items of equal length, rate and channel count are batched; the dB floor is computed per item
(``db_scope="item"``), so a file's latents do not depend on its batch mates and equal a batch-of-one
``encode``.  Files longer than ``long_seconds`` are encoded alone with a block-wise spectrogram.

``pad_seconds`` appends digital silence to shorter files before encoding, so a short event is followed by the
latents of silence *in its context* (the ViT attends across the chunk, so these differ from the latents of a
silent file).  This is how a text-to-latent model learns to end a short sound in silence: the official
pipeline pads its 10 s training audio the same way.  ``num_samples`` keeps the file's own length and
``padded_samples`` records the padded one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import Tensor

from sara.audio.io import AUDIO_EXTENSIONS, load_audio
from sara.encoder.encoder import SemanticEncoder
from sara.errors import SaraError
from sara.serialization import write_bytes_atomically

__all__ = ["EncodeItem", "EncodeResult", "encode_files", "plan_items", "write_latents"]


@dataclass(frozen=True)
class EncodeItem:
    """One input file and where its latents go."""

    source: Path
    output: Path


@dataclass(frozen=True)
class EncodeResult:
    """Outcome for one item: ``error`` is None on success."""

    item: EncodeItem
    error: str | None = None


def plan_items(inputs: Iterable[str | os.PathLike[str]], out_dir: Path) -> tuple[list[EncodeItem], list[EncodeResult]]:
    """Expand inputs (files and directories) into items; name clashes are returned as failures.

    Returns:
        ``(items, failures)``: a later input whose output path is already taken fails with a clear message.
    """
    items: list[EncodeItem] = []
    failures: list[EncodeResult] = []
    taken: dict[Path, Path] = {}
    for source, rel in _expand(inputs):
        item = EncodeItem(source, out_dir / rel.with_suffix(".safetensors"))
        if item.output in taken:
            failures.append(EncodeResult(item, f"output {item.output} already used by {taken[item.output]}"))
            continue
        taken[item.output] = source
        items.append(item)
    return items, failures


def _expand(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, Path]]:
    """``(file, output path relative to out_dir without suffix change)`` for every input."""
    for entry in inputs:
        p = Path(entry)
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS):
                yield f, f.relative_to(p)
        else:
            yield p, Path(p.name)


def write_latents(path: Path, latents: Tensor, metadata: dict[str, str]) -> None:
    """Atomically write ``latents [D, N]`` (float32) with string ``metadata`` to ``path``.

    Raises:
        OutputError: the path is a directory / device / FIFO, or the write failed (no partial file is left).
    """
    data = save({"latents": latents.detach().float().cpu().contiguous()}, metadata=metadata)
    write_bytes_atomically(path, data)


def encode_files(
    encoder: SemanticEncoder,
    items: list[EncodeItem],
    *,
    batch_size: int = 8,
    long_seconds: float = 60.0,
    pad_seconds: float = 0.0,
    on_result: Callable[[EncodeResult], None] | None = None,
) -> list[EncodeResult]:
    """Encode ``items`` and write their latent files; failures are recorded, never raised.

    Args:
        encoder: the encoder (its device is used).
        items: from :func:`plan_items`.
        batch_size: max items per forward pass (only equal-length items are batched).
        long_seconds: files longer than this are encoded one at a time, block-wise.
        on_result: called after each item (e.g. to advance a progress bar).

    Returns:
        One result per item, in completion order.
    """
    results: list[EncodeResult] = []

    def report(result: EncodeResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    groups: dict[tuple[int, int, int], list[EncodeItem]] = {}
    for item in items:
        try:
            info = sf.info(str(item.source))
        except Exception as exc:  # soundfile raises several types for unreadable files
            report(EncodeResult(item, f"cannot read audio ({str(exc).strip() or type(exc).__name__})"))
            continue
        long = info.frames > long_seconds * info.samplerate
        frames = max(info.frames, padded_length(pad_seconds, info.samplerate))
        key = (info.samplerate, frames, info.channels) if not long else (-1, len(groups), 0)
        groups.setdefault(key, []).append(item)
    for key, group in groups.items():
        size = 1 if key[0] == -1 else batch_size
        for start in range(0, len(group), size):
            for result in _encode_batch(encoder, group[start : start + size], long=key[0] == -1,
                                        pad_seconds=pad_seconds):
                report(result)
    return results


def padded_length(pad_seconds: float, sample_rate: int) -> int:
    """Samples of ``pad_seconds`` at ``sample_rate`` (rounded up; 0 when not padding)."""
    return math.ceil(pad_seconds * sample_rate) if pad_seconds > 0 else 0


def _encode_batch(encoder: SemanticEncoder, batch: list[EncodeItem], *, long: bool,
                  pad_seconds: float = 0.0) -> list[EncodeResult]:
    """Load, (pad,) encode and write one batch of equal-shape files."""
    loaded: list[tuple[EncodeItem, Tensor, int, int]] = []  # item, wav, sr, file samples
    results: list[EncodeResult] = []
    for item in batch:
        try:
            wav, sr = load_audio(item.source)
            pad = max(0, padded_length(pad_seconds, sr) - wav.shape[-1])
            loaded.append((item, F.pad(wav, (0, pad)) if pad else wav, sr, wav.shape[-1]))
        except SaraError as exc:
            results.append(EncodeResult(item, _strip_path(str(exc), item.source)))
    if not loaded:
        return results
    sr = loaded[0][2]
    device = encoder.norm.weight.device
    try:
        if long:
            latents = [encoder.encode_long(loaded[0][1].to(device), sr)]
        else:
            wavs = torch.stack([w for _, w, _, _ in loaded]).to(device)
            latents = list(encoder.encode(wavs, sr, db_scope="item"))
    except SaraError as exc:  # e.g. too short: the batch shares one shape, so it shares the failure
        return results + [EncodeResult(item, str(exc)) for item, _, _, _ in loaded]
    for (item, wav, _, file_samples), z in zip(loaded, latents):
        results.append(_write(encoder, item, z, sr, file_samples, wav.shape[-1]))
    return results


def _write(encoder: SemanticEncoder, item: EncodeItem, z: Tensor, sr: int, num_samples: int,
           encoded_samples: int) -> EncodeResult:
    """Write one item's latents; ``encoded_samples`` > ``num_samples`` when silence was appended."""
    meta = {"sample_rate": str(encoder.sample_rate), "frame_rate": repr(float(encoder.frame_rate)),
            "source": str(item.source), "source_sample_rate": str(sr), "num_samples": str(num_samples)}
    if encoded_samples > num_samples:
        meta["padded_samples"] = str(encoded_samples)
    try:
        write_latents(item.output, z, meta)
    except SaraError as exc:
        return EncodeResult(item, str(exc))
    return EncodeResult(item)


def _strip_path(message: str, path: Path) -> str:
    """Drop a leading ``"<path>: "`` from an error message (the CLI prints the path itself)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message

