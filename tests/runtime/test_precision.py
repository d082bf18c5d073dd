"""Compute dtype: parsing, the autocast forward wrapper, and every pipeline at every CPU dtype."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch
from torch import nn

from sara.cli.__main__ import main
from sara.errors import ConfigError
from sara.pipelines.detect import load_pipeline
from sara.pretrained import BUNDLED_DIR
from sara.runtime.precision import resolve_dtype, set_forward_precision, to_float32


def test_resolve_dtype_names_aliases_and_refusals() -> None:
    assert resolve_dtype(None) == torch.float32
    assert resolve_dtype("bf16") == resolve_dtype("bfloat16") == resolve_dtype(torch.bfloat16) == torch.bfloat16
    assert resolve_dtype("float16", "cuda") == torch.float16  # no GPU needed to parse
    with pytest.raises(ConfigError, match="float16 needs a GPU"):
        resolve_dtype("fp16", "cpu")
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_dtype("int8")
    with pytest.raises(ConfigError, match="unsupported compute dtype"):
        resolve_dtype(torch.float64)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.lin(x)
        return {"h": h, "dtype_seen": torch.tensor(float(h.dtype == torch.bfloat16)), "n": self.norm(h)}


def test_forward_wrapper_runs_bf16_returns_float32_and_unwraps_exactly() -> None:
    torch.manual_seed(0)
    net, x = _Net(), torch.randn(4, 16)
    ref = net(x)
    set_forward_precision(net, torch.bfloat16)
    set_forward_precision(net, torch.bfloat16)  # idempotent: wrappers never stack
    out = net(x)
    assert float(out["dtype_seen"]) == 1.0 and out["h"].dtype == torch.float32
    torch.testing.assert_close(out["h"], ref["h"], atol=0.05, rtol=0.02)
    assert not torch.equal(out["h"], ref["h"])
    set_forward_precision(net, torch.float32)
    assert "forward" not in net.__dict__
    assert torch.equal(net(x)["h"], ref["h"])  # back to the exact float32 forward
    assert net.lin.weight.dtype == torch.float32  # weights are never cast


def test_to_float32_handles_nested_outputs() -> None:
    out = to_float32({"a": [torch.ones(2, dtype=torch.bfloat16), 3], "b": (torch.zeros(1, dtype=torch.int64),)})
    assert out["a"][0].dtype == torch.float32 and out["a"][1] == 3 and out["b"][0].dtype == torch.int64


@pytest.mark.parametrize(("name", "kwargs"), [
    ("sara-demo", {"steps": 4, "vocoder_steps": 2}),
    ("ldm-demo", {"steps": 2}),
    ("audiogen-demo", {}),
    ("dcldm-demo", {"steps": 2}),
])
def test_every_bundled_pipeline_generates_finite_audio_in_bfloat16(name: str, kwargs: dict) -> None:
    pipe = load_pipeline(BUNDLED_DIR / name, dtype="bfloat16")
    assert pipe.inference_settings == {"dtype": "bfloat16", "compile": False}
    wav = pipe(["a dog barking"], duration=1.0, seed=0, **kwargs)
    assert wav.dtype == torch.float32 and torch.isfinite(wav).all()
    assert wav.reshape(-1).shape[-1] == pipe.sample_rate
    reference = pipe.set_inference(dtype="float32")(["a dog barking"], duration=1.0, seed=0, **kwargs)
    assert reference.shape == wav.shape


def test_sara_bf16_stays_close_to_float32() -> None:
    """The quality cost is small: bf16 latents stay within a few percent of the float32 ones."""
    pipe = load_pipeline(BUNDLED_DIR / "sara-demo")
    ref = pipe.generate_latents(["rain on a roof"], 2.0, 8, generator=torch.Generator().manual_seed(0))
    pipe.set_inference(dtype="bfloat16")
    low = pipe.generate_latents(["rain on a roof"], 2.0, 8, generator=torch.Generator().manual_seed(0))
    rel = float((low - ref).norm() / ref.norm())
    assert 0 < rel < 0.1


def test_cli_dtype_flag_writes_audio_and_refuses_cpu_float16(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dog.wav"
    assert main(["generate", "a dog barking", "-o", str(out), "--duration", "0.5", "--steps", "3",
                 "--dtype", "bfloat16", "--threads", "1"]) == 0
    assert sf.info(str(out)).frames == 12000
    assert main(["generate", "a dog barking", "-o", str(tmp_path / "x.wav"), "--dtype", "float16"]) == 2
    assert "float16 needs a GPU" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
