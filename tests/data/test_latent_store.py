"""The sharded latent store: random access equals the per-file cache (fp16), one-line errors for a corrupt
index, resume after an interrupted encode, the split by rank, and encoding from shards."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from sara.cli.__main__ import main
from sara.data import encode_store
from sara.data.latent_store import FileLatentCache, LatentStore, open_latent_cache
from sara.data.manifest import load_manifest
from sara.data.shards import clip_key
from sara.errors import SaraError

from .shard_fixtures import Prepared, prepare_all


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare_all(tmp_path_factory.mktemp("store"))


def _encode(data: Prepared, out: Path, *extra: str) -> int:
    return main(["encode", "--manifest", str(data.corpus.manifest), "-o", str(out), "--encoder",
                 str(data.corpus.encoder), *extra])


def _files(root: Path) -> dict[str, object]:
    """Every shard's metadata and tensors, and the index and plan (safetensors orders metadata keys at random,
    so equal stores need not be equal bytes)."""
    from safetensors import safe_open

    out: dict[str, object] = {}
    for p in sorted(root.iterdir()):
        if p.suffix == ".json":
            out[p.name] = json.loads(p.read_text())
        elif p.suffix == ".safetensors":
            with safe_open(str(p), framework="pt") as f:
                out[p.name] = (f.metadata(), {k: f.get_tensor(k).tolist() for k in f.keys()})
    return out


def test_random_access_equals_the_per_file_cache_in_fp16(data: Prepared, tmp_path: Path) -> None:
    root = data.corpus.root
    assert main(["encode", str(root / "audiocaps"), str(root / "clotho"), "-o", str(tmp_path / "files"),
                 "--encoder", str(data.corpus.encoder)]) == 0
    files, store = open_latent_cache(tmp_path / "files"), open_latent_cache(data.store)
    assert isinstance(files, FileLatentCache) and isinstance(store, LatentStore)
    assert len(store) == 11 and store.latent_dim == 32 and len(store.shards) == 3
    for record in load_manifest(data.corpus.manifest):
        ref = files.locate(clip_key(record), Path(record["path"]), root / record["path"])
        assert ref is not None
        full = files.read(ref)
        got = store.read(clip_key(record))
        assert got.dtype == torch.float16 and torch.equal(got, full.half())
        assert store.frames(clip_key(record)) == full.shape[1]
        assert torch.equal(store.read(clip_key(record), 3, 5), full[:, 3:8].half())


def test_store_opens_only_the_shards_it_reads_and_pickles(data: Prepared) -> None:
    store = LatentStore(data.store)
    key = store.keys()[-1]
    value = store.read(key)
    assert list(store._handles) == [store._entries[key][0]]  # one shard handle, no other shard touched
    copy = pickle.loads(pickle.dumps(store))  # DataLoader workers started with spawn
    assert copy._handles == {} and torch.equal(copy.read(key), value)


def test_corrupt_index_is_a_one_line_error(data: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(data.store, bad)
    index = json.loads((bad / "index.json").read_text())
    (bad / "index.json").write_text((data.store / "index.json").read_text()[:50])
    code = main(["train", "t2a", "--run-dir", str(tmp_path / "run"), "--data", str(data.corpus.manifest),
                 "--latent-cache", str(bad), "--preset", "tiny"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "unreadable latent store index" in err[0]
    for broken, match in (({**index, "entries": {"k": [7, 3]}}, "entry 'k'"),
                          ({**index, "latent_dim": None}, "malformed"), ({**index, "format": "x"}, "not a sara")):
        (bad / "index.json").write_text(json.dumps(broken))
        with pytest.raises(SaraError, match=match):
            LatentStore(bad)
    (bad / "index.json").write_text(json.dumps(index))
    (bad / "latents-000001.safetensors").unlink()
    with pytest.raises(SaraError, match="latents-000001.safetensors: listed in the index but missing"):
        LatentStore(bad)


def test_interrupted_encode_resumes_to_the_clean_result(data: Prepared, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert _encode(data, tmp_path / "clean", "--shard-size", "3") == 0
    real, calls = encode_store.write_store_shard, []

    def dies_after_one_shard(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if calls:
            raise KeyboardInterrupt  # killed while encoding the second shard
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(encode_store, "write_store_shard", dies_after_one_shard)
    assert _encode(data, tmp_path / "run", "--shard-size", "3") == 130
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["latents-000000.safetensors", "plan.json"]
    monkeypatch.setattr(encode_store, "write_store_shard", real)
    capsys.readouterr()
    assert _encode(data, tmp_path / "run", "--shard-size", "3") == 0
    assert "3 shard(s) written, 1 already done, of 4" in capsys.readouterr().out
    assert _files(tmp_path / "run") == _files(tmp_path / "clean")
    assert _encode(data, tmp_path / "run", "--shard-size", "2") == 2  # another plan in the same directory
    assert "holds a latent store of other clips" in capsys.readouterr().err


def test_each_rank_writes_its_own_shards_and_the_last_writes_the_index(data: Prepared, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert _encode(data, tmp_path / "dp", "--shard-size", "4") == 0
    assert "index.json follows" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "dp").glob("latents-*")) == ["latents-000001.safetensors"]
    monkeypatch.setenv("RANK", "0")
    assert _encode(data, tmp_path / "dp", "--shard-size", "4") == 0
    assert "index.json written" in capsys.readouterr().out
    assert _files(tmp_path / "dp") == _files(data.store)  # the same store as one process wrote


def test_encode_from_shards(data: Prepared, tmp_path: Path) -> None:
    assert main(["encode", "--shards", str(data.shards), "-o", str(tmp_path / "s"), "--encoder",
                 str(data.corpus.encoder), "--split", "train"]) == 0
    from_shards, from_manifest = LatentStore(tmp_path / "s"), LatentStore(data.store)
    assert len(from_shards.shards) == 4 and len(from_shards) == 10  # one store shard per tar; train clips only
    for key in from_shards.keys():
        assert torch.allclose(from_shards.read(key).float(), from_manifest.read(key).float(), atol=2e-3)


def test_arguments_are_checked(data: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", "-o", str(tmp_path / "x")]) == 2
    assert main(["encode", str(tmp_path), "--manifest", str(data.corpus.manifest), "-o", str(tmp_path / "x")]) == 2
    assert main(["encode", "--manifest", str(data.corpus.manifest), "--codec", str(tmp_path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--codec" in err[2]
