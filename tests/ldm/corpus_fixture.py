"""A tiny captioned corpus (a manifest + 16 kHz wav files) and the tiny models the LDM tests train with."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

CAPTIONS = [("A dog barks", "Barking of a dog"), ("Rain falls on a tin roof",), ("A car engine idles",),
            ("Birds sing",), ("People talk loudly",), ("Wind blows in the distance",)]


def _clip(k: int, seconds: float, rate: int = 16000) -> torch.Tensor:
    """Tone of pitch depending on k, with a little noise (deterministic)."""
    t = torch.arange(int(seconds * rate)) / rate
    g = torch.Generator().manual_seed(k)
    return 0.3 * torch.sin(2 * math.pi * (220 + 110 * k) * t) + 0.02 * torch.randn(t.shape, generator=g)


def make_corpus(root: Path, seconds: float = 0.7) -> Path:
    """Write ``root/manifest.jsonl`` and its clips; two clips share the stem ``x`` in different folders."""
    from sara.audio.io import save_audio

    records = []
    for k, caps in enumerate(CAPTIONS):
        rel = f"audio/{'a' if k % 2 else 'b'}/{'x' if k < 2 else f'clip{k}'}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        save_audio(root / rel, _clip(k, seconds), 16000)
        split = "valid" if k == len(CAPTIONS) - 1 else "train"
        records.append({"path": rel, "caption": caps[0], "captions": list(caps), "split": split})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return manifest


def tiny_vae(seed: int = 0):  # noqa: ANN201 - MelVAE
    from sara.mel.vae import MelVAE, MelVAEConfig

    torch.manual_seed(seed)
    return MelVAE(MelVAEConfig.tiny()).eval()


def tiny_mel_config():  # noqa: ANN201 - MelConfig
    from sara.mel.frontend import MelConfig

    return MelConfig.tiny()
