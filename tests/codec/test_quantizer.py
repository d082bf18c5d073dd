"""Residual VQ: decoding sums codebook rows, k-means init, the EMA formulas, dead-code replacement."""

from __future__ import annotations

import dataclasses

import torch

from sara.codec import CodecConfig, EncodecCodec
from sara.codec.quantizer import EuclideanCodebook, ResidualVectorQuantizer, kmeans

CFG = dataclasses.replace(CodecConfig.tiny(), num_codebooks=3, bins=8, dimension=4, kmeans_iters=3)


def _inited_rvq(seed: int = 0) -> ResidualVectorQuantizer:
    rvq = ResidualVectorQuantizer(CFG)
    rvq(torch.randn(2, 4, 40, generator=torch.Generator().manual_seed(seed)), torch.Generator().manual_seed(1))
    return rvq.eval()


def test_decode_latent_is_the_sum_of_codebook_rows() -> None:
    codec = EncodecCodec(dataclasses.replace(CFG, ratios=(2,)))
    codec.quantizer.load_state_dict(_inited_rvq().state_dict())
    codec.eval()
    codes = torch.randint(0, 8, (2, 3, 5))
    latent = codec.decode_latent(codes)
    embeds = [codec.state_dict()[f"quantizer.vq.layers.{k}._codebook.embed"] for k in range(3)]
    for b in range(2):
        for t in range(5):
            expected = sum(embeds[k][codes[b, k, t]] for k in range(3))
            torch.testing.assert_close(latent[b, :, t], expected)


def test_eval_forward_equals_encode_then_decode_and_leaves_buffers() -> None:
    rvq = _inited_rvq()
    before = {k: v.clone() for k, v in rvq.state_dict().items()}
    x = torch.randn(1, 4, 12)
    out = rvq(x)
    assert torch.equal(out.codes, rvq.encode(x))
    torch.testing.assert_close(out.quantized, rvq.decode(out.codes))
    assert float(out.commitment) == 0.0
    assert all(torch.equal(before[k], v) for k, v in rvq.state_dict().items())


def test_kmeans_init_on_first_training_batch() -> None:
    book = EuclideanCodebook(4, 8, CFG)
    assert float(book.inited) == 0.0 and not book.embed.any()
    # four tight, well separated clusters of 25 points each
    centres = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0], [0, 0, 0, 5.0]])
    x = centres.repeat_interleave(25, 0) + 0.01 * torch.randn(100, 4)
    means, counts = kmeans(x, 8, 10, torch.Generator().manual_seed(0))
    assert counts.sum() == 100
    for c in centres:  # every true centre is (nearly) a centroid
        assert (means - c).norm(dim=1).min() < 0.05
    book.train()
    book.init_embed_(x, torch.Generator().manual_seed(0))
    assert float(book.inited) == 1.0
    torch.testing.assert_close(book.embed, means)
    torch.testing.assert_close(book.embed_avg, means)
    torch.testing.assert_close(book.cluster_size, counts.float())


def test_ema_update_follows_the_formulas() -> None:
    cfg = dataclasses.replace(CFG, threshold_ema_dead_code=0.0)
    book = EuclideanCodebook(4, 8, cfg).train()
    book.embed.copy_(torch.randn(8, 4))
    book.embed_avg.copy_(book.embed * 2)
    book.cluster_size.copy_(torch.full((8,), 2.0))
    book.inited.fill_(1.0)
    old_size, old_avg, old_embed = book.cluster_size.clone(), book.embed_avg.clone(), book.embed.clone()
    x = torch.randn(30, 4)
    rows, codes = book(x)
    expected_codes = torch.cdist(x, old_embed).argmin(dim=1)
    assert torch.equal(codes, expected_codes)
    torch.testing.assert_close(rows, old_embed[codes])  # outputs use the pre-update codebook
    onehot = torch.nn.functional.one_hot(codes, 8).float()
    size = 0.99 * old_size + 0.01 * onehot.sum(0)
    avg = 0.99 * old_avg + 0.01 * (onehot.T @ x)
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 8 * 1e-5) * n
    torch.testing.assert_close(book.cluster_size, size)
    torch.testing.assert_close(book.embed_avg, avg)
    torch.testing.assert_close(book.embed, avg / smoothed[:, None])


def test_dead_codes_are_replaced_by_batch_vectors() -> None:
    book = EuclideanCodebook(4, 8, CFG).train()
    book.inited.fill_(1.0)
    far = torch.full((8, 4), 100.0)
    book.embed.copy_(far)
    book.embed_avg.copy_(far * 10)
    book.cluster_size.copy_(torch.tensor([10.0, 10.0, 0.5, 10.0, 1.0, 10.0, 10.0, 10.0]))  # 2 and 4 are dead
    x = torch.randn(20, 4)
    book.expire_codes_(x, torch.Generator().manual_seed(0))
    for code in (2, 4):
        assert (x - book.embed[code]).norm(dim=1).min() < 1e-6  # now a vector of the batch
        assert float(book.cluster_size[code]) == 2.0
        torch.testing.assert_close(book.embed_avg[code], book.embed[code] * 2.0)
    assert torch.equal(book.embed[[0, 1, 3, 5, 6, 7]], far[:6])
    book(x)  # the full training step keeps the replacement (EMA normalisation does not undo it)
    for code in (2, 4):
        assert (x - book.embed[code]).norm(dim=1).min() < 5.0


def test_straight_through_and_commitment() -> None:
    rvq = _inited_rvq().train()
    x = torch.randn(1, 4, 10, requires_grad=True)
    out = rvq(x, torch.Generator().manual_seed(2))
    assert float(out.commitment.detach()) > 0
    out.quantized.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))  # identity gradient through the quantizer


def test_training_updates_are_deterministic_given_the_generator() -> None:
    states = []
    for _ in range(2):
        rvq = ResidualVectorQuantizer(CFG)
        torch.manual_seed(123 + len(states))  # the global RNG must not matter
        rvq(torch.ones(2, 4, 9).cumsum(-1), torch.Generator().manual_seed(5))
        states.append(rvq.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_non_finite_batches_leave_the_buffers_alone() -> None:
    rvq = _inited_rvq().train()
    before = {k: v.clone() for k, v in rvq.state_dict().items()}
    x = torch.randn(1, 4, 10)
    x[0, 0, 3] = float("nan")
    rvq(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(before[k], v) for k, v in rvq.state_dict().items())
    fresh = ResidualVectorQuantizer(CFG).train()
    fresh(torch.full((1, 4, 10), float("inf")))
    assert float(fresh.vq.layers[0]._codebook.inited) == 0.0  # k-means waits for a finite batch


def test_first_batch_is_kmeans_then_ema_without_replacement() -> None:
    cfg = dataclasses.replace(CFG, threshold_ema_dead_code=1000.0)  # every code counts as dead
    x = torch.randn(50, 4)
    means, counts = kmeans(x, 8, CFG.kmeans_iters, torch.Generator().manual_seed(7))
    book = EuclideanCodebook(4, 8, cfg).train()
    book(x, torch.Generator().manual_seed(7))
    codes = torch.cdist(x, means).argmin(dim=1)
    size = 0.99 * counts.float() + 0.01 * torch.bincount(codes, minlength=8).float()
    avg = 0.99 * means + 0.01 * torch.zeros(8, 4).index_add_(0, codes, x)
    n = size.sum()
    torch.testing.assert_close(book.embed, avg / ((size + 1e-5) / (n + 8e-5) * n)[:, None])
    book(x, torch.Generator().manual_seed(8))  # the second batch does expire them
    assert torch.all(book.cluster_size > 900)
