"""Release format, config round trips and the safe pickle reader."""

import dataclasses
import functools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sara.errors import CheckpointError, ConfigError
from sara.serialization import (
    PretrainedMixin,
    config_from_dict,
    config_to_dict,
    load_release,
    load_torch_checkpoint,
    save_release,
    upgrade_release_config,
)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    dim: int = 4
    sizes: tuple[int, ...] = (1, 2)
    name: str = "x"

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError("dim must be >= 1")


class _Net(PretrainedMixin, nn.Module):
    config_class = _Cfg

    def __init__(self, config: _Cfg) -> None:
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.dim, config.dim)
        self.register_buffer("window", torch.hann_window(8), persistent=False)


def test_config_roundtrip_and_validation() -> None:
    cfg = _Cfg(dim=3, sizes=(4, 5))
    d = json.loads(json.dumps(config_to_dict(cfg)))
    assert config_from_dict(_Cfg, d) == cfg
    with pytest.raises(ConfigError, match="unknown config keys"):
        config_from_dict(_Cfg, {"dim": 2, "dimm": 3})
    with pytest.raises(ConfigError, match="dim must be"):
        config_from_dict(_Cfg, {"dim": 0})


def test_release_roundtrip(tmp_path: Path) -> None:
    net = _Net(_Cfg(dim=3))
    net.save_pretrained(tmp_path / "rel")
    payload = json.loads((tmp_path / "rel" / "config.json").read_text())
    assert payload["format_version"] == 1 and payload["class"] == "_Net"
    loaded = _Net.from_release(tmp_path / "rel")
    x = torch.randn(2, 3)
    assert torch.equal(loaded.lin(x), net.lin(x))
    _, state = load_release(tmp_path / "rel")
    assert "window" not in state  # DSP buffers are rebuilt, never stored


def test_release_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no config.json"):
        load_release(tmp_path)
    save_release(tmp_path / "r", "Other", {}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a '_Net'"):
        _Net.from_release(tmp_path / "r")
    full = {"dim": 3, "sizes": [1, 2], "name": "x"}
    save_release(tmp_path / "k", "_Net", full, {"lin.weight": torch.zeros(3, 3), "extra": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"missing keys \[lin.bias\].*unexpected keys \[extra\]"):
        _Net.from_release(tmp_path / "k")
    save_release(tmp_path / "m", "_Net", {"dim": 3}, {"lin.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match=r"config.json: _Cfg: missing config keys \['name', 'sizes'\]"):
        _Net.from_release(tmp_path / "m")  # never silently defaulted: that could change the architecture
    save_release(tmp_path / "t", "_Net", {**full, "dim": "3"}, {"lin.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="dim must be int, got '3'"):
        _Net.from_release(tmp_path / "t")
    with pytest.raises(CheckpointError, match="newer"):
        upgrade_release_config({"format_version": 99})


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


def test_torch_checkpoint_reader(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": {"norm_layer": functools.partial(nn.LayerNorm, eps=1e-6),
                                                         "depth": 2}}, good)
    ck = load_torch_checkpoint(good)
    assert torch.equal(ck["model"]["w"], torch.ones(2)) and ck["config"]["depth"] == 2
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_torch_checkpoint(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError):
        load_torch_checkpoint(junk)


class _AttrDict(dict):
    """Like icefall's AttributeDict: a dict subclass weights_only refuses to rebuild."""


def test_inert_fallback_reads_data_without_running_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pathlib

    path = tmp_path / "train_state.pt"
    torch.save({"model": {"w": torch.arange(3.0)}, "params": _AttrDict(exp_dir=pathlib.PosixPath("/x")),
                "evil": _Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_torch_checkpoint(path)
    ck = load_torch_checkpoint(path, inert_fallback=True)
    assert torch.equal(ck["model"]["w"], torch.arange(3.0))
    assert "pwned" not in capsys.readouterr().out  # the __reduce__ payload built an inert object instead


def test_inert_fallback_legacy_format_header_runs_no_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The legacy (non-zip) format starts with pickles torch reads through ``pickle_module.load``."""
    import pickle

    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps(_Evil()) + b"\x00rest")
    with pytest.raises(CheckpointError):
        load_torch_checkpoint(path, inert_fallback=True)
    assert "pwned" not in capsys.readouterr().out
    legacy = tmp_path / "legacy_ok.pt"
    torch.save({"model": {"w": torch.arange(2.0)}, "p": _AttrDict(a=1)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(load_torch_checkpoint(legacy, inert_fallback=True)["model"]["w"], torch.arange(2.0))
