"""``sara data shard``: AudioCaps + Clotho fixtures -> manifest -> WebDataset shards (original audio bytes, the
records, optional latents), atomic resumable writes, shard specs, and one-line errors for bad shards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sara.cli.__main__ import main
from sara.data.latent_store import LatentStore
from sara.data.manifest import load_manifest
from sara.data.shard_source import iter_samples, resolve_shards
from sara.data.shards import read_index
from sara.data.stream import ShardStream
from sara.errors import ConfigError, SaraError

from .shard_fixtures import AUDIOCAPS_TRAIN, CLOTHO_DEV, Prepared, prepare_all, tone


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare_all(tmp_path_factory.mktemp("shards"))


def _samples(spec: Path | str) -> list:
    return [s for ref in resolve_shards(str(spec))[0] for s in iter_samples(ref.url)]


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("shard-*.tar"))}


def test_fixtures_become_a_manifest_of_both_datasets(data: Prepared) -> None:
    rows = {r["id"]: r for r in load_manifest(data.corpus.manifest)}
    assert len(rows) == len(AUDIOCAPS_TRAIN) + 1 + len(CLOTHO_DEV)
    assert rows["audiocaps/vV1_ab_0"]["captions"] == ["a bell rings", "a church bell is ringing"]
    assert rows["audiocaps/vV1_ab_0"]["split"] == "valid"
    assert len(rows["clotho/Wind in trees"]["captions"]) == 5 and rows["clotho/Wind in trees"]["sample_rate"] == 22050


def test_shards_hold_the_original_bytes_and_records(data: Prepared) -> None:
    index = read_index(data.shards / "shards.json")
    assert [s.name for s in index.shards] == [f"shard-{i:06d}.tar" for i in range(4)]
    assert [s.count for s in index.shards] == [3, 3, 3, 2] and index.split_counts() == {"train": 10, "valid": 1}
    assert index.complete and index.latent_dim is None and index.shard_size == 3
    records, samples = load_manifest(data.corpus.manifest), _samples(data.shards)
    assert [s.key for s in samples] == [f"{i:09d}" for i in range(11)]
    for record, sample in zip(records, samples, strict=True):
        audio = data.corpus.manifest.parent / record["path"]
        assert sample.meta == record and sample.audio == audio.read_bytes()  # never re-encoded
        assert sample.audio_ext == audio.suffix[1:] and sample.latents is None
    assert {s.audio_ext for s in samples} == {"wav", "flac"}
    assert not list(data.shards.glob("*.part"))


def test_shards_with_latents_hold_the_store_values(data: Prepared) -> None:
    store = LatentStore(data.store)
    assert read_index(data.shards_lat / "shards.json").latent_dim == 32
    for sample in _samples(data.shards_lat):
        assert sample.latents.dtype == np.float16
        assert np.array_equal(sample.latents, store.read(sample.clip_key).numpy())


def test_rerun_resumes_and_a_different_plan_is_refused(data: Prepared, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["data", "shard", str(data.corpus.manifest), str(out), "--shard-size", "4"]
    assert main(args) == 0
    clean = _bytes(out)
    (out / "shard-000001.tar").unlink()  # as if killed while writing shard 1: only its .part remains
    (out / "shard-000001.tar.part").write_bytes(b"half a shard")
    index = json.loads((out / "shards.json").read_text())
    (out / "shards.json").write_text(json.dumps({**index, "complete": False}))
    with pytest.raises(ConfigError, match="still being written"):
        resolve_shards(str(out))
    capsys.readouterr()
    assert main(args) == 0
    assert "1 new, 2 already done" in capsys.readouterr().out
    assert _bytes(out) == clean and not list(out.glob("*.part")) and read_index(out / "shards.json").complete
    assert main(["data", "shard", str(data.corpus.manifest), str(out), "--shard-size", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds shards of other data" in err[0]


def test_split_selection_and_skipped_clips(data: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_manifest(data.corpus.manifest)
    root = data.corpus.manifest.parent
    bad = tone(tmp_path / "bad.wav", 0.5, 16000, 300.0, 0)
    bad.write_bytes(b"not audio" * 50)
    extra = [{"id": "x/bad", "path": str(bad), "captions": ["x"], "split": "train"},
             {"id": "x/gone", "path": str(tmp_path / "gone.wav"), "captions": ["y"], "split": "train"}]
    manifest = root / "with_bad.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    assert main(["data", "shard", str(manifest), str(tmp_path / "s"), "--shard-size", "8", "--split", "train"]) == 0
    cap = capsys.readouterr()
    assert "skipped 2 of 12 clips" in cap.err and "bad.wav" in cap.err and "no such file" in cap.err
    assert "10 train" in cap.out and read_index(tmp_path / "s" / "shards.json").split_counts() == {"train": 10}


def test_shard_specs_resolve_alike(data: Prepared, tmp_path: Path) -> None:
    by_dir, index = resolve_shards(str(data.shards))
    by_pattern, _ = resolve_shards(f"{data.shards}/shard-{{000000..000003}}.tar")
    by_index, _ = resolve_shards(str(data.shards / "shards.json"))
    assert index is not None and by_dir == by_pattern == by_index
    bare = tmp_path / "bare"  # tars only, no index: counted once by the stream
    bare.mkdir()
    for p in data.shards.glob("*.tar"):
        shutil.copy(p, bare / p.name)
    refs, none = resolve_shards(str(bare))
    assert none is None and all(r.splits is None for r in refs)
    assert ShardStream(str(bare), lambda s, p: s).counts == ShardStream(str(data.shards), lambda s, p: s).counts
    with pytest.raises(ConfigError, match="no such shard"):
        resolve_shards(f"{data.shards}/shard-{{000000..000009}}.tar")
    with pytest.raises(ConfigError, match="no shards"):
        resolve_shards(str(tmp_path))


def test_corrupt_index_or_shard_is_one_line(data: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(data.shards, broken)
    (broken / "shards.json").write_text('{"format": "sara-shards", "shards": [')
    code = main(["train", "encoder", "--run-dir", str(tmp_path / "run"), "--shards", str(broken), "--preset", "tiny"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "unreadable shard index" in err[0]
    assert not (tmp_path / "run").exists()
    (broken / "shards.json").write_text(json.dumps({"format": "sara-shards", "shards": [{"name": "x"}]}))
    with pytest.raises(SaraError, match="malformed shard index"):
        resolve_shards(str(broken))
    tar = broken / "shard-000000.tar"
    tar.write_bytes(tar.read_bytes()[:700])  # cut inside the first member
    with pytest.raises(SaraError, match="cannot read shard") as exc:
        list(iter_samples(str(tar)))
    assert "\n" not in str(exc.value)
