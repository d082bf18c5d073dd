"""EnCodec token files for ``sara encode --codec`` and ``sara decode --codec``: audio <-> tokens.

A token file holds one clip in the per-clip format of the token cache (:mod:`sara.codec.tokens`): tensor
``codes [K, F]`` int16 (int32 for codebooks over 32767 entries) with ``F = ceil(T / hop)`` at the codec's rate,
and string metadata ``{"path", "num_samples", "sample_rate", "codec_fingerprint"}``.  The fingerprint
(:func:`~sara.codec.tokens.codec_fingerprint`) names the codec weights that wrote the file; files of the
token cache carry none (their ``codec.json`` does) and decode without the check.

Latent files (``sara encode`` without ``--codec``) hold a tensor ``latents`` instead; :func:`check_kinds`
tells the two apart from the file header before any model is loaded, so passing one kind to the other mode
is a bad argument (exit 2) and nothing is written.

A fingerprint that differs from the decoding codec's is a **warning**, not an error: token ids of any codec
with the same ``K`` and cardinality are valid input (a fine-tuned decoder, a re-exported codec, comparing two
codecs on the same tokens), whereas ids the codec cannot decode (wrong ``K``, ids out of range, another
sample rate) are errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.errors import AudioError, ConfigError, SaraError

__all__ = ["TOKENS", "check_kinds", "load_codec", "read_tokens", "run_decode", "run_encode", "token_file_bytes"]

TOKENS, LATENTS = "codes", "latents"  # the tensor names of token files and of latent files
MAX_SECONDS = 3600  # one hour of tokens, as for latents


def load_codec(path: str, device: str) -> Any:
    """The :class:`~sara.codec.model.EncodecCodec` at ``--codec path``, in eval mode on ``device``.

    Raises:
        ConfigError: the path does not exist.
        CheckpointError: not a codec release or audiocraft ``compression_state_dict.bin``.
    """
    from sara.codec import EncodecCodec

    if not Path(path).exists():
        raise ConfigError(f"--codec {path}: no such file or directory")
    return EncodecCodec.from_pretrained(path, map_location=device).eval()


def _tensor_names(path: Path) -> set[str]:
    """Tensor names in the header of a ``.safetensors`` file; empty when it cannot be read (reported later)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return set(f.keys())
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return set()


def check_kinds(files: Iterable[Path], *, codec: bool) -> None:
    """Refuse token files without ``--codec`` and latent files with it (read from the headers only).

    Raises:
        ConfigError: one line naming the first file of the wrong kind and the flag to use.
    """
    for path in files:
        names = _tensor_names(path)
        if not codec and TOKENS in names and LATENTS not in names:
            raise ConfigError(f"{path}: holds EnCodec tokens ('codes'); pass --codec DIR to decode it")
        if codec and LATENTS in names and TOKENS not in names:
            raise ConfigError(f"{path}: holds semantic latents ('latents'), not EnCodec tokens; "
                              "decode it without --codec (--model selects the vocoder)")


def token_file_bytes(codec: Any, source: Path, rel: str, fingerprint: str) -> bytes:
    """The token file of audio ``source`` (mono, resampled to the codec's rate), serialized.

    Raises:
        AudioError: the audio is missing, unreadable, empty, too long or non-finite.
    """
    from safetensors.torch import save

    from sara.audio.io import load_audio

    wav, _ = load_audio(source, sample_rate=codec.sample_rate, mono=True, max_duration=MAX_SECONDS)
    dtype = torch.int16 if codec.cardinality <= 32767 else torch.int32
    codes = codec.encode(wav.unsqueeze(0))[0].to(dtype).cpu().contiguous()
    meta = {"path": rel, "num_samples": str(wav.shape[-1]), "sample_rate": str(codec.sample_rate),
            "codec_fingerprint": fingerprint}
    return save({TOKENS: codes}, metadata=meta)


def _report(command: str, source: Path, error: str) -> None:
    """One stderr line that names its input."""
    line = error if str(source) in error else f"{source}: {error}"
    print(f"sara {command}: {line}", file=sys.stderr)


def run_encode(args: argparse.Namespace) -> int:
    """``sara encode --codec``: one token file per input; 0 if all succeeded, 1 if any failed."""
    from tqdm.auto import tqdm

    from sara.cli._output import check_output_dir
    from sara.codec.tokens import codec_fingerprint
    from sara.encoder.files import plan_items
    from sara.serialization import write_bytes_atomically

    if args.pad_seconds:
        raise ConfigError("--pad-seconds applies to semantic latents, not to --codec")
    out_dir = check_output_dir(args.output)
    items, planned = plan_items(args.inputs, out_dir)
    if not items and not planned:
        raise ConfigError("no audio files found in the inputs")
    codec = load_codec(args.codec, args.device)
    fingerprint = codec_fingerprint(codec)
    failures = [(f.item.source, str(f.error)) for f in planned]
    for item in tqdm(items, desc="encode", unit="file", dynamic_ncols=True):
        rel = item.output.relative_to(out_dir).with_suffix(item.source.suffix).as_posix()
        try:
            write_bytes_atomically(item.output, token_file_bytes(codec, item.source, rel, fingerprint))
        except SaraError as exc:
            failures.append((item.source, str(exc)))
    for source, error in failures:
        _report("encode", source, error)
    done = len(items) + len(planned) - len(failures)
    print(f"encoded {done} file(s) into {args.output} as EnCodec tokens; {len(failures)} failed")
    return 1 if failures else 0


def _meta_int(meta: dict[str, str], key: str, path: Path) -> int | None:
    """Positive integer metadata ``key`` (None when absent); AudioError when it is not one."""
    if key not in meta:
        return None
    try:
        value = int(meta[key])
    except ValueError:
        value = 0
    if value <= 0:
        raise AudioError(f"{path}: metadata {key}={meta[key]!r} is not a positive integer")
    return value


def _load_token_tensor(path: Path) -> tuple[Tensor, dict[str, str]]:
    """``(codes, metadata)`` of a token file; AudioError when it is missing, unreadable or has no ``codes``."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            if TOKENS not in f.keys():
                raise AudioError(f"{path}: no 'codes' tensor (write it with `sara encode --codec`)")
            return f.get_tensor(TOKENS), dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise AudioError(f"{path}: not a readable .safetensors file ({str(exc).splitlines()[0]})") from None


def read_tokens(path: Path, codec: Any) -> tuple[Tensor, int, str | None]:
    """``(codes [K, F] long, num_samples, fingerprint or None)`` of a token file, checked against ``codec``.

    Raises:
        AudioError: unreadable file, wrong shape or dtype, ids out of range, another sample rate, or a
            ``num_samples`` that does not match ``F``.
    """
    codes, meta = _load_token_tensor(path)
    k, card = codec.num_codebooks, codec.cardinality
    if codes.dim() != 2 or codes.shape[0] != k or codes.shape[1] == 0:
        raise AudioError(f"{path}: 'codes' must be [{k}, F] with F > 0 for this codec, got {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise AudioError(f"{path}: 'codes' must be integer token ids, got {codes.dtype}")
    if codes.shape[1] > MAX_SECONDS * codec.frame_rate:
        raise AudioError(f"{path}: {codes.shape[1]} token frames is more than an hour of audio")
    if int(codes.min()) < 0 or int(codes.max()) >= card:
        raise AudioError(f"{path}: token ids must lie in [0, {card}), got [{int(codes.min())}, {int(codes.max())}]")
    rate = _meta_int(meta, "sample_rate", path)
    if rate is not None and rate != codec.sample_rate:
        raise AudioError(f"{path}: tokens of a {rate} Hz codec; this codec runs at {codec.sample_rate} Hz")
    frames = codes.shape[1]
    num_samples = _meta_int(meta, "num_samples", path) or frames * codec.hop_length
    if codec.num_frames(num_samples) != frames:
        raise AudioError(f"{path}: num_samples={num_samples} does not match {frames} token frames "
                         f"(hop {codec.hop_length})")
    return codes.long(), num_samples, meta.get("codec_fingerprint")


def run_decode(args: argparse.Namespace, files: list[Path], out_dir: Path) -> int:
    """``sara decode --codec``: each token file -> ``OUT_DIR/<stem>.wav`` at the codec's rate (16 kHz)."""
    from sara.audio.io import save_audio
    from sara.cli._output import UniqueNames
    from sara.codec.tokens import codec_fingerprint

    if args.steps is not None:
        raise ConfigError("--steps applies to the vocoder, not to --codec")
    codec = load_codec(args.codec, args.device)
    fingerprint = codec_fingerprint(codec)
    failed, names = 0, UniqueNames("decode")
    for f in files:
        target = out_dir / names.claim(f"{f.stem}.wav", str(f))
        try:
            codes, num_samples, written_by = read_tokens(f, codec)
            if written_by is not None and written_by != fingerprint:
                print(f"sara decode: warning: {f}: tokens were written by codec {written_by}, decoding with "
                      f"{fingerprint}; the audio may not match", file=sys.stderr)
            wav = codec.decode(codes.unsqueeze(0))[0, :, :num_samples]
            save_audio(target, wav.cpu(), codec.sample_rate)
        except SaraError as exc:
            _report("decode", f, str(exc))
            failed += 1
    print(f"decoded {len(files) - failed} file(s) into {out_dir}; {failed} failed")
    return 1 if failed else 0
