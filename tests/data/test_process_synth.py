"""Audio processing (trim, cut, cache) and the synthesizers (skipped when the tools are not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sara.data.clips import RawClip
from sara.data.process import ProcessConfig, cut_segments, process_clip, trim_silence

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def test_trim_silence_keeps_margin():
    sr = 1000
    wav = np.zeros(3000, dtype=np.float32)
    wav[1000:2000] = 0.5
    out = trim_silence(wav, sr, silence_db=50, margin_s=0.05)
    assert 1000 <= len(out) <= 1120


def test_cut_segments_limits_and_drops_short_tail():
    cfg = ProcessConfig(max_duration=1.0, min_last_segment=0.5)
    sr = 100
    assert len(cut_segments(np.ones(90, np.float32), sr, cfg, 5)) == 1
    assert [len(s) for s in cut_segments(np.ones(330, np.float32), sr, cfg, 5)] == [100, 100, 100]
    assert [len(s) for s in cut_segments(np.ones(360, np.float32), sr, cfg, 5)] == [100, 100, 100, 60]
    assert len(cut_segments(np.ones(360, np.float32), sr, cfg, 1)) == 1


def _tone_clip(uid: str, seconds: float, amp: float = 0.5, max_segments: int = 1) -> RawClip:
    def load():
        t = np.arange(int(seconds * 16000)) / 16000
        return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000

    return RawClip(
        source="test",
        uid=uid,
        load=load,
        class_name="tone",
        group="ui and alerts",
        captions=("a tone",),
        license="CC0",
        split_key=uid,
        kind="ui",
        max_segments=max_segments,
    )


def test_process_clip_resamples_cuts_and_caches(tmp_path):
    cfg = ProcessConfig()
    entry = process_clip(_tone_clip("long", 25.0, max_segments=3), tmp_path, cfg)
    assert [s["duration"] for s in entry["segments"]] == [10.0, 10.0, 5.0]
    import soundfile as sf

    info = sf.info(str(tmp_path / entry["segments"][0]["path"]))
    assert info.samplerate == 24000
    mtime = (tmp_path / entry["segments"][0]["path"]).stat().st_mtime_ns
    assert process_clip(_tone_clip("long", 25.0, max_segments=3), tmp_path, cfg) == entry
    assert (tmp_path / entry["segments"][0]["path"]).stat().st_mtime_ns == mtime  # reused, not rewritten
    assert "skip" in process_clip(_tone_clip("quiet", 1.0, amp=1e-5), tmp_path, cfg)


@pytest.mark.skipif(not SOUNDFONT.is_file(), reason="FluidR3_GM soundfont not installed")
def test_tinysoundfont_phrases_and_sfx_render():
    pytest.importorskip("tinysoundfont")
    from sara.data.synth_music import iter_drum_clips, iter_gm_sfx_clips, iter_phrase_clips

    clips = [
        *iter_phrase_clips(2, 0, SOUNDFONT, 24000),
        *iter_drum_clips(1, 0, SOUNDFONT, 24000),
        *list(iter_gm_sfx_clips(1, 0, SOUNDFONT, 24000))[:2],
    ]
    for clip in clips:
        wav, sr = clip.load()
        assert sr == 24000 and np.sqrt(np.mean(wav**2)) > 1e-3
    a, _ = clips[0].load()
    pad = next(c for c in iter_phrase_clips(120, 0, SOUNDFONT, 24000) if "pad" in c.captions[0])
    pad.load()  # a long-release render in between must not leak into the next one
    b, _ = clips[0].load()
    assert np.array_equal(a, b)  # deterministic, independent of render order
    assert "bpm" in clips[0].captions[0] and clips[0].synthetic


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_speech_has_exact_transcript_and_gender():
    from sara.data.synth_speech import iter_espeak_clips

    clip = next(iter_espeak_clips(1, 0, {}))
    wav, sr = clip.load()
    assert len(wav) / sr > 0.5
    assert clip.extra["transcript"] in clip.captions[0]
    assert clip.extra["gender"] in ("female", "male")
    assert clip.class_name == {"female": "woman speaking", "male": "man speaking"}[clip.extra["gender"]]
