"""Audio file I/O through soundfile (wav, flac, ogg/vorbis, mp3 via libsndfile >= 1.1).

Loading validates what a user can get wrong -- missing/unreadable files, empty audio, NaN/Inf samples,
absurd durations -- and raises :class:`~sara.errors.AudioError` with one clear line.  Saving is atomic: a
temporary file is renamed into place, so a failure never leaves a half-written output, and a directory,
device or FIFO where the output should go is refused rather than replaced.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from sara.audio.dsp import resample
from sara.errors import AudioError
from sara.serialization import check_output_file, write_bytes_atomically

__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_DURATION_S",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "WRITE_FORMATS",
    "check_sample_rate",
    "check_waveform",
    "iter_audio_files",
    "load_audio",
    "prepare_waveform",
    "save_audio",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")
MAX_SAMPLE_RATE = 1_000_000  # Hz; rates above this are corrupt headers, not audio
MAX_CHANNELS = 64
MAX_DURATION_S = 3600.0  # one hour: longer inputs are almost always a mistake (wrong file, wrong rate)


def load_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = None,
    mono: bool = False,
    max_duration: float | None = MAX_DURATION_S,
) -> tuple[Tensor, int]:
    """Read an audio file.

    Args:
        path: audio file path.
        sample_rate: resample to this rate (Hz) with :func:`sara.audio.dsp.resample`; None keeps the file's.
        mono: average channels to one.
        max_duration: reject files longer than this many seconds (None disables the check).

    Returns:
        ``(waveform [C, T] float32 in [-1, 1], sample_rate)``.

    Raises:
        AudioError: the file is missing, unreadable, empty, too long or contains non-finite samples.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such file")
    try:
        info = sf.info(str(p))
        check_sample_rate(info.samplerate, name=str(p))  # a corrupt header must not size the read below
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise AudioError(f"{p}: {info.channels} channels (at most {MAX_CHANNELS} are supported)")
        if max_duration is not None and info.frames > max_duration * info.samplerate:
            raise AudioError(f"{p}: {info.frames / info.samplerate:.1f} s is longer than the {max_duration:.0f} s limit")
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{p}: cannot read audio ({str(exc).strip() or type(exc).__name__})") from None
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    check_waveform(wav, sr, name=str(p), max_duration=max_duration)
    return prepare_waveform(wav, sr, sample_rate, mono=mono), (sample_rate or sr)


def check_waveform(wav: Tensor, sample_rate: int, *, name: str = "input", max_duration: float | None = MAX_DURATION_S) -> None:
    """Raise :class:`AudioError` if ``wav [..., T]`` is empty, non-finite, or longer than ``max_duration`` s."""
    check_sample_rate(sample_rate, name=name)
    if wav.numel() == 0 or wav.shape[-1] == 0:
        raise AudioError(f"{name}: audio is empty")
    if not torch.isfinite(wav).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if max_duration is not None and wav.shape[-1] > max_duration * sample_rate:
        raise AudioError(f"{name}: {wav.shape[-1] / sample_rate:.1f} s is longer than the {max_duration:.0f} s limit")


def prepare_waveform(wav: Tensor, sample_rate: int, target_rate: int | None = None, *, mono: bool = False) -> Tensor:
    """Optionally downmix ``wav [C, T]`` (or ``[B, C, T]``) to mono and resample to ``target_rate`` Hz."""
    if mono and wav.dim() >= 2:
        wav = wav.mean(dim=-2, keepdim=True)
    if target_rate is not None and target_rate != sample_rate:
        rate = check_sample_rate(sample_rate)
        wav = resample(wav, rate, check_sample_rate(target_rate, name="target"))
    return wav


# suffix -> (libsndfile format, subtype used for float input); `save_audio` refuses any other suffix
WRITE_FORMATS: dict[str, tuple[str, str | None]] = {
    ".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III"), ".aif": ("AIFF", "PCM_16"),
    ".aiff": ("AIFF", "PCM_16"), ".au": ("AU", "PCM_16"),
}


def save_audio(
    path: str | os.PathLike[str], wav: Tensor | np.ndarray, sample_rate: int, *, subtype: str = "PCM_16"
) -> Path:
    """Write ``wav`` (``[T]`` or ``[C, T]``, float in [-1, 1], clipped) atomically; the format follows the suffix.

    The file is encoded in memory and written with :func:`sara.serialization.write_output_atomically`:
    an existing directory, device or FIFO at ``path`` is refused, and a failed write (disk full, file-size
    limit) leaves no partial file.  Suffixes: those of :data:`WRITE_FORMATS` (``subtype`` applies to WAV).

    Returns:
        The written path.

    Raises:
        AudioError: bad shape or non-finite samples.
        OutputError: unusable path, unknown extension or failed write.
    """
    p = check_output_file(path, suffixes=tuple(WRITE_FORMATS))
    arr = wav.detach().float().cpu().numpy() if isinstance(wav, Tensor) else np.asarray(wav, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.T  # soundfile wants [T, C]
    elif arr.ndim != 1:
        raise AudioError(f"{p}: cannot write audio of shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise AudioError(f"{p}: refusing to write empty audio")
    if not np.isfinite(arr).all():
        raise AudioError(f"{p}: refusing to write audio with NaN or infinite samples")
    check_sample_rate(sample_rate, name=str(p))
    fmt, default_subtype = WRITE_FORMATS[p.suffix.lower()]
    buffer = io.BytesIO()
    try:
        sf.write(buffer, np.clip(arr, -1.0, 1.0), int(sample_rate), format=fmt,
                 subtype=subtype if fmt == "WAV" else default_subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{p}: cannot encode {fmt} at {sample_rate} Hz ({str(exc).strip()})") from None
    return write_bytes_atomically(p, buffer.getvalue())


def check_sample_rate(sample_rate: object, *, name: str = "input") -> int:
    """Return ``sample_rate`` as an int; :class:`AudioError` unless it is an integer in ``[1, MAX_SAMPLE_RATE]`` Hz."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer)) \
            or not float(sample_rate).is_integer() or not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: invalid sample rate {sample_rate!r} (need an integer number of Hz "
                         f"in [1, {MAX_SAMPLE_RATE}])")
    return int(sample_rate)


def iter_audio_files(inputs: Iterable[str | os.PathLike[str]], *, recursive: bool = True) -> Iterator[Path]:
    """Expand files and directories into audio file paths (sorted within each directory).

    Inside a directory, hidden entries (any path part starting with ``.``, e.g. a ``.cache``) are skipped.
    """
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            yield from sorted(
                f for f in p.glob(pattern)
                if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        else:
            yield p
