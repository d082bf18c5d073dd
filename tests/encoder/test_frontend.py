"""Front-end parity with independent numpy implementations of the spec's formulas (A.1)."""

import numpy as np
import pytest
import torch

from sara.encoder import EncoderConfig, SemanticEncoder
from sara.encoder.frontend import power_mel_frames

from ._reference import db, power_mel, randomize_bn


@pytest.fixture(scope="module")
def encoder() -> SemanticEncoder:
    torch.manual_seed(0)
    enc = SemanticEncoder(EncoderConfig.tiny()).eval()
    randomize_bn(enc)
    return enc


def _loud_and_quiet(n: int = 8000) -> torch.Tensor:
    """Item 0 is loud; item 1 is 1e-5 quieter with a silent half, so a batch-wide 120 dB floor bites."""
    g = torch.Generator().manual_seed(3)
    loud = 0.5 * torch.randn(n, generator=g)
    quiet = 1e-5 * torch.randn(n, generator=g)
    quiet[n // 2 :] = 0.0
    return torch.stack([loud, quiet]).double()


def test_power_mel_matches_numpy(encoder: SemanticEncoder) -> None:
    wav = _loud_and_quiet()
    ours = encoder.front_end[0].double()(wav).numpy()
    encoder.front_end[0].float()
    ref = power_mel(wav.numpy())
    assert ours.shape == (2, 64, 1 + 8000 // 160)
    # the window/filterbank buffers are float32 (as torchaudio's), hence ~1e-7 relative error in float64
    np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=1e-18)


@pytest.mark.parametrize("scope", ["batch", "item"])
def test_db_top_db_matches_numpy_including_batch_quirk(encoder: SemanticEncoder, scope: str) -> None:
    wav = _loud_and_quiet().float()
    ours = encoder.mel_db(wav, scope).double().numpy()
    ref = db(power_mel(wav.double().numpy()), 120.0, batch_wide=scope == "batch")
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_batch_quirk_changes_the_quiet_item_only(encoder: SemanticEncoder) -> None:
    wav = _loud_and_quiet().float()
    batch, item = encoder.mel_db(wav, "batch"), encoder.mel_db(wav, "item")
    torch.testing.assert_close(batch[0], item[0])
    assert (batch[1] - item[1]).abs().max() > 10.0  # the floor really moved
    alone = encoder.mel_db(wav[1:], "batch")[0]
    torch.testing.assert_close(alone, item[1])  # a batch of one: identical scopes


def test_init_bn_is_per_mel_bin_affine(encoder: SemanticEncoder) -> None:
    db_mel = encoder.mel_db(_loud_and_quiet().float())
    bn = encoder.init_bn[1]
    expected = (db_mel - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + 1e-5)
    expected = expected * bn.weight[:, None] + bn.bias[:, None]
    out = encoder.normalize_spec(db_mel)
    assert out.shape == (2, 1, 64, db_mel.shape[-1])
    torch.testing.assert_close(out[:, 0], expected, rtol=1e-5, atol=1e-5)


def test_blockwise_power_mel_equals_full(encoder: SemanticEncoder) -> None:
    wav = torch.randn(16000 * 3 + 77) * 0.3
    full = encoder.front_end[0](wav[None])[0]
    n = full.shape[-1]
    blocks = torch.cat([power_mel_frames(encoder.front_end[0], wav, a, min(a + 37, n)) for a in range(0, n, 37)], -1)
    assert blocks.shape == full.shape
    torch.testing.assert_close(blocks, full, rtol=1e-5, atol=1e-6)


def test_power_mel_frames_equal_any_slice_of_the_full_spectrogram(encoder: SemanticEncoder) -> None:
    """Frame ranges touching either reflect-padded edge, or neither, equal that slice of the centred mel."""
    from sara.encoder.frontend import db_with_floor, power_mel_frames

    mel = encoder.front_end[0]
    wav = torch.randn(16000 + 77, generator=torch.Generator().manual_seed(5))
    full = mel(wav[None])[0]
    n = full.shape[-1]
    for start, stop in ((0, 1), (0, 7), (3, 50), (n - 5, n), (0, n), (n - 1, n)):
        torch.testing.assert_close(power_mel_frames(mel, wav, start, stop), full[:, start:stop], atol=1e-6, rtol=1e-5)
    db_full = encoder.front_end[1](full[None])[0]  # one floor from the whole clip's peak
    halves = [db_with_floor(full[:, a:b], float(full.max()), encoder.front_end[1].top_db) for a, b in ((0, 40), (40, n))]
    torch.testing.assert_close(torch.cat(halves, dim=-1), db_full)
