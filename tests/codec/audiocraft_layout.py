"""Writes an audiocraft-format ``compression_state_dict.bin`` (random weights, tiny sizes) for loader tests.

An independent statement of the layout, written from audiocraft's module structure rather than from sara's
loader:

* ``audiocraft/utils/export.py`` ``export_encodec``: ``torch.save({"best_state": state, "xp.cfg": yaml,
  "version": ..., "exported": True})``;
* ``audiocraft/modules/seanet.py``: ``SEANetEncoder.model = [StreamableConv1d, (SEANetResnetBlock x R, ELU,
  StreamableConv1d(stride=ratio, kernel=2 ratio)) for reversed(ratios), StreamableLSTM, ELU, StreamableConv1d]``;
  ``SEANetDecoder.model = [StreamableConv1d, StreamableLSTM, (ELU, StreamableConvTranspose1d, SEANetResnetBlock
  x R) for ratios, ELU, StreamableConv1d]``; a resnet block's ``block = [ELU, conv, ELU, conv]``;
* ``audiocraft/modules/conv.py``: ``StreamableConv1d.conv`` (NormConv1d) ``.conv`` = ``weight_norm(nn.Conv1d)``
  -> ``conv.conv.{bias, weight_g, weight_v}``; transposed: ``convtr.convtr.*``;
* ``audiocraft/modules/lstm.py``: ``StreamableLSTM.lstm = nn.LSTM(dim, dim, num_layers)``;
* ``audiocraft/quantization/core_vq.py``: ``vq.layers.{k}._codebook.{inited [1], cluster_size [bins],
  embed [bins, dim], embed_avg [bins, dim]}``.

Old-style weight norm (``torch.nn.utils.weight_norm``, dim 0): ``weight_g`` has shape ``[dim0, 1, 1]`` and
holds ``||weight_v||`` over the other dims; for ``ConvTranspose1d`` dim 0 is the *input* channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


@dataclass(frozen=True)
class TinyEncodec:
    """The sizes written into both the weights and the yaml."""

    sample_rate: int = 16000
    n_filters: int = 4
    ratios: tuple[int, ...] = (4, 2)
    dimension: int = 8
    lstm: int = 1
    n_q: int = 2
    bins: int = 16


def _wn_conv(state: dict[str, Tensor], prefix: str, cout: int, cin: int, k: int, g: torch.Generator) -> None:
    v = torch.randn(cout, cin, k, generator=g) * 0.3
    state[f"{prefix}.conv.conv.bias"] = torch.randn(cout, generator=g) * 0.01
    state[f"{prefix}.conv.conv.weight_g"] = v.flatten(1).norm(dim=1).view(cout, 1, 1)
    state[f"{prefix}.conv.conv.weight_v"] = v


def _wn_convtr(state: dict[str, Tensor], prefix: str, cin: int, cout: int, k: int, g: torch.Generator) -> None:
    v = torch.randn(cin, cout, k, generator=g) * 0.3
    state[f"{prefix}.convtr.convtr.bias"] = torch.randn(cout, generator=g) * 0.01
    state[f"{prefix}.convtr.convtr.weight_g"] = v.flatten(1).norm(dim=1).view(cin, 1, 1)
    state[f"{prefix}.convtr.convtr.weight_v"] = v


def _lstm(state: dict[str, Tensor], prefix: str, dim: int, layers: int, g: torch.Generator) -> None:
    for i in range(layers):
        state[f"{prefix}.lstm.weight_ih_l{i}"] = torch.randn(4 * dim, dim, generator=g) * 0.1
        state[f"{prefix}.lstm.weight_hh_l{i}"] = torch.randn(4 * dim, dim, generator=g) * 0.1
        state[f"{prefix}.lstm.bias_ih_l{i}"] = torch.zeros(4 * dim)
        state[f"{prefix}.lstm.bias_hh_l{i}"] = torch.zeros(4 * dim)


def _resblock(state: dict[str, Tensor], prefix: str, dim: int, g: torch.Generator) -> None:
    _wn_conv(state, f"{prefix}.block.1", dim // 2, dim, 3, g)  # compress 2, residual kernel 3
    _wn_conv(state, f"{prefix}.block.3", dim, dim // 2, 1, g)


def encodec_best_state(t: TinyEncodec, seed: int = 0) -> dict[str, Tensor]:
    """``best_state`` of an audiocraft EncodecModel with one residual layer per stage and inited codebooks."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, Tensor] = {}
    width, i = t.n_filters, 1
    _wn_conv(s, "encoder.model.0", width, 1, 7, g)
    for ratio in reversed(t.ratios):
        _resblock(s, f"encoder.model.{i}", width, g)           # i: resnet block, i+1: ELU
        _wn_conv(s, f"encoder.model.{i + 2}", 2 * width, width, 2 * ratio, g)
        width, i = 2 * width, i + 3
    _lstm(s, f"encoder.model.{i}", width, t.lstm, g)             # then i+1: ELU
    _wn_conv(s, f"encoder.model.{i + 2}", t.dimension, width, 7, g)
    _wn_conv(s, "decoder.model.0", width, t.dimension, 7, g)
    _lstm(s, "decoder.model.1", width, t.lstm, g)
    i = 2
    for ratio in t.ratios:                                        # i: ELU
        _wn_convtr(s, f"decoder.model.{i + 1}", width, width // 2, 2 * ratio, g)
        _resblock(s, f"decoder.model.{i + 2}", width // 2, g)
        width, i = width // 2, i + 3
    _wn_conv(s, f"decoder.model.{i + 1}", 1, width, 7, g)        # i: ELU
    for k in range(t.n_q):
        embed = torch.randn(t.bins, t.dimension, generator=g)
        s[f"quantizer.vq.layers.{k}._codebook.inited"] = torch.Tensor([True])
        s[f"quantizer.vq.layers.{k}._codebook.cluster_size"] = torch.rand(t.bins, generator=g) * 10
        s[f"quantizer.vq.layers.{k}._codebook.embed"] = embed
        s[f"quantizer.vq.layers.{k}._codebook.embed_avg"] = embed * 3
    return s


# the fields in braces are filled by xp_cfg_yaml; doubled braces are literal yaml / interpolation braces
XP_CFG_TEMPLATE = """device: cuda
dtype: float32
autocast: false
autocast_dtype: bfloat16
seed: 2036
show: false
continue_from: null
execute_only: null
execute_inplace: false
benchmark_no_load: false
efficient_attention_backend: torch
num_threads: 1
mp_start_method: forkserver
label: null
logging:
  level: INFO
  log_updates: 10
  log_tensorboard: false
  log_wandb: false
dora:
  dir: ${{oc.env:AUDIOCRAFT_DORA_DIR}}/outputs
  exclude:
  - device
  - wandb.*
  use_rendezvous: false
  git_save: true
datasource:
  max_sample_rate: ${{sample_rate}}
  max_channels: ${{channels}}
  train: ${{oc.env:AUDIOCRAFT_DATA}}/egs/train
solver: compression
sample_rate: {sample_rate}
channels: 1
losses:
  adv: 4.0
  feat: 4.0
  l1: 0.1
  mel: 0.0
  msspec: 2.0
  sisnr: 0.0
balancer:
  balance_grads: true
  ema_decay: 0.999
  per_batch_item: true
  total_norm: 1.0
msspec:
  sample_rate: ${{sample_rate}}
  range_start: 6
  range_end: 11
  n_mels: 64
  f_min: 64
  f_max: null
  normalized: true
  alphas: false
  floor_level: 1e-5
dataset:
  batch_size: 64
  num_workers: 10
  segment_duration: 1
optim:
  epochs: 200
  lr: 3e-4
  ema:
    use: true
    device: ${{device}}
    decay: 0.99
compression_model: encodec
encodec:
  autoencoder: seanet
  quantizer: rvq
  sample_rate: ${{sample_rate}}
  channels: ${{channels}}
  causal: false
  renormalize: false
seanet:
  dimension: {dimension}
  channels: ${{channels}}
  causal: ${{encodec.causal}}
  n_filters: {n_filters}
  n_residual_layers: 1
  ratios: [{ratios}]
  activation: ELU
  activation_params:
    alpha: 1.0
  norm: weight_norm
  norm_params: {{}}
  kernel_size: 7
  residual_kernel_size: 3
  last_kernel_size: 7
  dilation_base: 2
  pad_mode: constant
  true_skip: true
  compress: 2
  lstm: {lstm}
  disable_norm_outer_blocks: 0
  decoder:
    trim_right_ratio: 1.0
    final_activation: null
    final_activation_params: null
  encoder: {{}}
rvq:
  n_q: {n_q}
  q_dropout: false
  bins: {bins}
  decay: 0.99
  kmeans_init: true
  kmeans_iters: 50
  threshold_ema_dead_code: 2
  orthogonal_reg_weight: 0.0
  orthogonal_reg_active_codes_only: false
no_quant: {{}}
"""


def xp_cfg_yaml(t: TinyEncodec) -> str:
    """A hydra dump in the shape of audiocraft's ``xp.cfg`` for ``solver=compression/encodec_audiogen_16khz``:
    the full composition with unresolved interpolations and environment lookups in unrelated keys."""
    return XP_CFG_TEMPLATE.format(sample_rate=t.sample_rate, dimension=t.dimension, n_filters=t.n_filters,
                                  lstm=t.lstm, n_q=t.n_q, bins=t.bins, ratios=", ".join(str(r) for r in t.ratios))


def write_compression_package(directory: Path, t: TinyEncodec = TinyEncodec(), *, seed: int = 0,
                              state: dict[str, Tensor] | None = None, cfg: str | None = None) -> Path:
    """Write ``<directory>/compression_state_dict.bin`` as audiocraft's exporter does; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    pkg = {"best_state": encodec_best_state(t, seed) if state is None else state,
           "xp.cfg": xp_cfg_yaml(t) if cfg is None else cfg, "version": "1.3.0", "exported": True}
    path = directory / "compression_state_dict.bin"
    torch.save(pkg, path)
    return path
