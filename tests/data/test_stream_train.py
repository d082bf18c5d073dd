"""Streaming from shards: the split over ranks x workers (no duplicates), seeded shuffling, per-item seeds,
resume semantics (stream level and a real loop run), and every trainer stepping from shards via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from sara.cli.__main__ import main
from sara.data.stream import ShardStream, buffer_order
from sara.errors import ConfigError
from sara.train import LossOutput, TrainConfig, TrainTask, fit, load_run_model, registry
from sara.train.resume import SeededCollate

from .shard_fixtures import FakeTextEncoder, Prepared, prepare_all


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare_all(tmp_path_factory.mktemp("stream"))


class ClipDecoder:
    """Items ``(clip id, a draw from the global torch RNG)``: the draw shows the item's seeded randomness."""

    def __call__(self, sample, position: int):  # noqa: ANN001, ANN204
        return sample.meta["id"], float(torch.rand(()))


def _stream(spec: Path, **kw) -> ShardStream:  # noqa: ANN003
    return ShardStream(str(spec), ClipDecoder(), **kw)


def _epoch(stream: ShardStream, world: int, workers: int) -> dict[tuple[int, int], list]:
    """Every reader's ``((id, draw), seed)`` list for the stream's current epoch."""
    out = {}
    for rank in range(world):
        stream.bind(seed=stream.seed, batch_size=stream.batch_size, rank=rank, world_size=world, num_workers=workers)
        for w in range(max(1, workers)):
            out[rank, w] = list(stream.reader(w, max(1, workers)))
    return out


def test_buffer_order_is_a_permutation_bounded_by_the_buffer() -> None:
    import random

    order = buffer_order(50, 8, random.Random(0))
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert all(order.index(i) >= i - 8 for i in range(50))  # an item leaves at most 8 places early
    assert buffer_order(5, 1, random.Random(0)) == [0, 1, 2, 3, 4]


def test_no_duplicates_across_2_ranks_x_2_workers(data: Prepared) -> None:
    stream = _stream(data.shards, shuffle_buffer=2)
    stream.bind(seed=3, batch_size=1, world_size=2, num_workers=2)
    readers = _epoch(stream, 2, 2)
    ids = [item[0] for items in readers.values() for item, _ in items]
    assert stream.num_items == 10 and stream.items_per_reader == 2
    assert len(ids) == 8 and len(set(ids)) == 8  # 4 readers x q = 2; the 10 - 8 left over sit this epoch out
    seeds = [seed for items in readers.values() for _, seed in items]
    assert len(set(seeds)) == 8
    train_ids = {json.loads(ln)["id"] for ln in data.corpus.manifest.read_text().splitlines()
                 if json.loads(ln)["split"] == "train"}
    assert set(ids) <= train_ids  # the valid clip never enters the training stream


def test_real_dataloader_workers_match_the_readers(data: Prepared) -> None:
    stream = _stream(data.shards, shuffle_buffer=2)
    stream.bind(seed=5, batch_size=2, rank=1, world_size=2, num_workers=2)
    loader = DataLoader(stream, batch_size=2, num_workers=2, drop_last=True, collate_fn=SeededCollate(lambda x: x))
    batches = [[item[0] for item in batch] for batch in loader]
    expected = [[item[0] for item, _ in stream.reader(w, 2)] for w in range(2)]
    assert batches == [expected[0], expected[1]]  # round-robin: batch j from worker j % 2


def test_shuffling_depends_on_seed_and_epoch_only(data: Prepared) -> None:
    def order(seed: int, epoch: int) -> list[str]:
        stream = _stream(data.shards, shuffle_buffer=4)
        stream.bind(seed=seed, batch_size=1)
        stream.set_epoch(epoch)
        return [item[0] for item, _ in stream.reader(0, 1)]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(1, 0) and order(0, 0) != order(0, 1)
    assert sorted(order(0, 0)) == sorted(order(1, 0))  # one reader: every train clip, in another order


def test_item_randomness_follows_the_item_not_the_reader(data: Prepared) -> None:
    stream = _stream(data.shards, shuffle_buffer=3)
    stream.bind(seed=7, batch_size=1)
    one = {seed: item for item, seed in stream.reader(0, 1)}
    many = {seed: item for items in _epoch(stream, 2, 1).values() for item, seed in items}
    assert many and all(one[seed] == item for seed, item in many.items())  # same (id, draw) for the same seed


class DictDecoder:
    """Dict items, as the trainers' decoders make: the stream adds each one's loss-noise seed."""

    def __call__(self, sample, position: int):  # noqa: ANN001, ANN204
        return {"id": sample.meta["id"]}


def test_stream_items_carry_noise_seeds_that_follow_the_item(data: Prepared) -> None:
    from sara.train.item_noise import NOISE_SEED

    stream = ShardStream(str(data.shards), DictDecoder(), shuffle_buffer=3)
    stream.bind(seed=7, batch_size=1)
    one = {item["id"]: int(item[NOISE_SEED]) for item, _ in stream.reader(0, 1)}
    many = {item["id"]: int(item[NOISE_SEED]) for items in _epoch(stream, 2, 1).values() for item, _ in items}
    assert many and all(one[i] == s for i, s in many.items())  # the same noise seed whichever reader
    assert len(set(one.values())) == len(one)  # and a different one per item
    stream.set_epoch(1)
    assert {item["id"]: int(item[NOISE_SEED]) for item, _ in stream.reader(0, 1)} != one  # new epoch, new noise


def test_resume_skips_exactly_the_consumed_batches(data: Prepared) -> None:
    stream = _stream(data.shards, shuffle_buffer=3)
    stream.bind(seed=1, batch_size=2, num_workers=2)
    stream.set_epoch(2)
    full = [list(stream.reader(w, 2)) for w in range(2)]
    assert stream.batches_per_epoch == 4 and all(len(f) == 5 for f in full)
    for done in range(stream.batches_per_epoch + 1):
        stream.set_epoch(2, skip_batches=done)
        for w in range(2):  # worker w made batches w, w + 2, ... of the `done` consumed ones (round-robin)
            made = len(range(w, done, 2))
            assert list(stream.reader(w, 2)) == full[w][2 * made:]


def test_bind_refuses_a_stream_smaller_than_a_batch(data: Prepared) -> None:
    stream = _stream(data.shards)
    with pytest.raises(ConfigError, match="fewer than batch_size"):
        stream.bind(seed=0, batch_size=3, world_size=2, num_workers=2)


# ------------------------------------------------------------------------------------ the loop on a stream


class FeatureDecoder:
    """A 2-d feature per clip: its duration and a seeded random draw (as crops and gains are)."""

    def __call__(self, sample, position: int):  # noqa: ANN001, ANN204
        return {"x": torch.tensor([float(sample.meta["duration"]), float(torch.rand(()))])}


class StreamToyTask(TrainTask):
    name = "stream_toy"
    config_class = dict  # type: ignore[assignment]

    def __init__(self, config: dict) -> None:
        super().__init__(config)

    @classmethod
    def from_config_dict(cls, data: dict) -> StreamToyTask:
        return cls(dict(data))

    def config_dict(self) -> dict:
        return dict(self.config)

    def build_model(self) -> nn.Module:
        torch.manual_seed(0)
        return nn.Linear(2, 1)

    def build_datasets(self):  # noqa: ANN201
        return ShardStream(self.config["shards"], FeatureDecoder(), shuffle_buffer=3), None

    def compute_loss(self, model: nn.Module, batch) -> LossOutput:  # noqa: ANN001
        x = batch["x"] + 0.01 * torch.randn_like(batch["x"])  # the process RNG, as real losses use it
        loss = (model(x) - x[:, :1]).pow(2).mean()
        return LossOutput(loss, {"loss/mse": loss})

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        return out_dir


def test_loop_resume_on_a_stream_equals_the_uninterrupted_run(data: Prepared, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "stream_toy", f"{__name__}:StreamToyTask")
    task = {"shards": str(data.shards)}

    def cfg(run: str, steps: int) -> TrainConfig:  # 2 workers, 4 batches per epoch: stops mid-epoch 0 at step 3
        return TrainConfig(run_dir=str(tmp_path / run), max_steps=steps, batch_size=2, num_workers=2,
                           ckpt_every=3, log_every=1, ema_decay=None, valid_every=0)

    fit(StreamToyTask(task), cfg("a", 6))
    fit(StreamToyTask(task), cfg("b", 3))
    fit(StreamToyTask(task), cfg("b", 6))
    _, a, _ = load_run_model(tmp_path / "a")
    _, b, step = load_run_model(tmp_path / "b")
    assert step == 6 and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    losses = [[json.loads(ln)["loss/mse"] for ln in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
              for r in ("a", "b")]
    assert losses[0] == losses[1]


# ------------------------------------------------------------------------------------ trainers via the CLI


def _common(run: Path) -> list[str]:
    return ["--run-dir", str(run), "--max-steps", "2", "--batch-size", "2", "--ckpt-every", "2", "--seed", "1"]


def test_train_vocoder_from_shards_with_the_sharded_cache(data: Prepared, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "vocoder", *_common(tmp_path / "voc"), "--shards", str(data.shards), "--latent-cache",
                 str(data.store), "--preset", "tiny", "--segment-seconds", "0.4", "--sample-every", "2",
                 "--num-log-samples", "1", "--sample-steps", "1", "--valid-every", "2"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "voc" / "run.json").read_text())
    assert run["task_config"]["shards"] == str(data.shards) and run["task_config"]["model"]["latent_dim"] == 32
    assert (tmp_path / "voc" / "samples" / "step-00000002" / "sample-0.wav").is_file()
    assert any("valid/" in k for ln in (tmp_path / "voc" / "metrics.jsonl").read_text().splitlines()
               for k in json.loads(ln))  # validated on the shards' valid split


def test_train_t2a_from_shards_holding_latents(data: Prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sara.dit.training.build_text_encoder", lambda spec: FakeTextEncoder())
    code = main(["train", "t2a", *_common(tmp_path / "t2a"), "--shards", str(data.shards_lat), "--preset", "tiny",
                 "--segment-seconds", "1", "--warmup-steps", "0"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "t2a" / "run.json").read_text())["task_config"]["model"]["latent_dim"] == 32
    capsys.readouterr()
    code = main(["train", "t2a", *_common(tmp_path / "t2a-nolat"), "--shards", str(data.shards), "--preset", "tiny"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "hold no latents" in err[0]


def test_train_t2a_from_a_manifest_with_the_sharded_store(data: Prepared, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sara.dit.training.build_text_encoder", lambda spec: FakeTextEncoder())
    code = main(["train", "t2a", *_common(tmp_path / "t2a"), "--data", str(data.corpus.manifest), "--latent-cache",
                 str(data.store), "--preset", "tiny", "--segment-seconds", "1", "--warmup-steps", "0"])
    assert code == 0, capsys.readouterr().err


def test_train_encoder_from_shards(data: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "encoder", *_common(tmp_path / "enc"), "--shards", f"{data.shards}/shard-{{000000..000003}}.tar",
                 "--preset", "tiny", "--crop-seconds", "1", "--num-workers", "1"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "enc" / "checkpoints" / "step-00000002").is_dir()
