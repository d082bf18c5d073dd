"""Fixtures for the corpus tests: tiny wav bytes and fake package trees (no network, no apt)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tone_bytes(freq: float = 440.0, seconds: float = 0.5, sr: int = 22050, fmt: str = "WAV") -> bytes:
    """A short sine tone encoded as an audio file (``fmt`` is a soundfile format: WAV, OGG, FLAC)."""
    t = np.arange(int(seconds * sr)) / sr
    wav = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16")
    return buf.getvalue()


@pytest.fixture
def tone():
    """The :func:`tone_bytes` factory."""
    return tone_bytes
