"""The delay pattern against a hand-written example and an independent layout-based statement of audiocraft's
``DelayedPatternProvider`` (list of (frame, codebook) coordinates per step)."""

from __future__ import annotations

import math

import torch

from sara.audiogen.patterns import (
    build_delay_sequence,
    delay_step_frames,
    first_step_with_frame,
    revert_delay_logits,
    revert_delay_sequence,
)

S = 99  # special token in the examples


def layout(frames: int, delays: list[int]) -> list[list[tuple[int, int]]]:
    """audiocraft's layout: step 0 empty; step 1 + t holds (t - delay_q, q) for t - delay_q >= 0."""
    out: list[list[tuple[int, int]]] = [[]]
    for t in range(frames + max(delays)):
        out.append([(t - d, q) for q, d in enumerate(delays) if t - d >= 0])
    return out


def reference_sequence(codes: torch.Tensor, delays: list[int], steps: int) -> torch.Tensor:
    b, k, frames = codes.shape
    seq = torch.full((b, k, steps), S, dtype=torch.long)
    for s, coords in enumerate(layout(frames, delays)[:steps]):
        for t, q in coords:
            if t < frames:
                seq[:, q, s] = codes[:, q, t]
    return seq


def test_hand_written_example() -> None:
    codes = torch.tensor([[[1, 2, 3, 4]] * 3])
    seq, valid = build_delay_sequence(codes, [0, 1, 2], S)
    expected = torch.tensor([[[S, 1, 2, 3, 4, S, S],
                              [S, S, 1, 2, 3, 4, S],
                              [S, S, S, 1, 2, 3, 4]]])
    assert torch.equal(seq, expected)
    assert torch.equal(valid, expected[0] != S)


def test_matches_layout_reference_full_and_teacher_forcing() -> None:
    delays = [0, 1, 2, 3]
    codes = torch.randint(0, 50, (2, 4, 7))
    full, _ = build_delay_sequence(codes, delays, S)
    assert full.shape == (2, 4, 7 + 3 + 1)
    assert torch.equal(full, reference_sequence(codes, delays, 11))
    tf, _ = build_delay_sequence(codes, delays, S, num_steps=8)
    assert torch.equal(tf, reference_sequence(codes, delays, 8))


def test_special_tokens_in_the_right_places() -> None:
    delays = [0, 1, 2, 3]
    codes = torch.randint(0, 50, (1, 4, 6))
    seq, _ = build_delay_sequence(codes, delays, S)
    assert (seq[..., 0] == S).all()  # step 0: all special
    for k, d in enumerate(delays):
        assert (seq[0, k, : d + 1] == S).all() and (seq[0, k, d + 1 + 6:] == S).all()
        assert torch.equal(seq[0, k, d + 1: d + 7], codes[0, k])


def test_round_trip() -> None:
    for delays in ([0, 1, 2, 3], [0, 0, 0, 0], [0, 2, 2, 5]):
        codes = torch.randint(0, 2048, (3, 4, 13))
        seq, _ = build_delay_sequence(codes, delays, 2048)
        assert torch.equal(revert_delay_sequence(seq, delays, 13), codes)


def test_revert_logits_takes_output_at_step_t_plus_delay() -> None:
    delays, frames, v = [0, 1, 2, 3], 6, 3
    steps = frames + 1
    step_id = torch.arange(steps, dtype=torch.float32)[None, None, :, None].expand(2, 4, steps, v)
    out, valid = revert_delay_logits(step_id.clone(), delays)
    assert out.shape == (2, 4, frames, v)
    for k, d in enumerate(delays):
        for t in range(frames):
            if t + d < frames:
                assert valid[k, t] and (out[:, k, t] == t + d).all()
            else:
                assert not valid[k, t] and all(math.isnan(x) for x in out[:, k, t].flatten().tolist())


def test_frame_index_and_first_step() -> None:
    frame, valid = delay_step_frames([0, 1], num_frames=2, num_steps=4)
    assert frame.tolist() == [[-1, 0, 1, 2], [-2, -1, 0, 1]]
    assert valid.tolist() == [[False, True, True, False], [False, False, True, True]]
    assert first_step_with_frame([0, 1, 2, 3], 0) == 1 and first_step_with_frame([0, 1, 2, 3], 5) == 6
