"""Writes an AudioGen LM package in audiocraft's exact layout (tiny sizes, random weights).

An independent statement of the official format, from the reference code (not from sara's loader):

* packaging (``audiocraft/utils/export.py`` ``export_lm``; read by ``audiocraft/models/loaders.py``): a
  ``torch.save``d dict ``{"best_state", "xp.cfg", "version", "exported"}`` named ``state_dict.bin``; ``xp.cfg``
  is ``OmegaConf.to_yaml`` of the full, unresolved Hydra config (``config/config.yaml``,
  ``config/solver/musicgen/default.yaml``, ``config/solver/audiogen/{default,audiogen_base_16khz}.yaml``,
  ``config/model/lm/{default,audiogen_lm}.yaml``, ``config/conditioner/text2sound.yaml``), interpolations and
  environment lookups included;
* ``best_state`` keys: the module tree of ``LMModel`` (``audiocraft/models/lm.py``) built with
  ``memory_efficient: true`` (custom attention: packed ``in_proj_weight``, ``out_proj``), ``bias_*: false``,
  ``norm_first: true`` (``out_norm``), cross-attention enforced by the fuser (``cross_attention``,
  ``norm_cross``); the T5 itself is kept out of the state (``T5Conditioner`` stores it in ``__dict__``), only its
  ``output_proj`` (``nn.Linear`` with bias) is saved.
"""

from __future__ import annotations

from pathlib import Path

import torch

T5_DIMS = {"t5-small": 512, "t5-base": 768, "t5-large": 1024}

XP_CFG = """\
device: cuda
dtype: float32
autocast: true
autocast_dtype: float16
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
  log_tensorboard: true
  log_wandb: false
tensorboard:
  with_media_logging: false
  name: null
  sub_dir: null
wandb:
  with_media_logging: true
  project: null
  name: null
  group: null
slurm:
  gpus: 64
  mem_per_gpu: 40
  time: 3600
  constraint: null
  partition: null
  comment: null
  setup: []
  exclude: ''
dora:
  dir: /checkpoint/${oc.env:USER}/experiments/audiocraft/outputs
  exclude:
  - device
  - wandb.*
  - tensorboard.*
  - logging.*
  - dataset.num_workers
  use_rendezvous: false
  git_save: true
datasource:
  max_sample_rate: 44100
  max_channels: 2
  train: egs/audiocaps/train
  valid: egs/audiocaps/valid
  evaluate: egs/audiocaps/test
  generate: egs/audiocaps/test
solver: audiogen
fsdp:
  use: false
  param_dtype: float16
profiler:
  enabled: false
deadlock:
  use: true
  timeout: 600
sample_rate: 16000
channels: 1
compression_model_checkpoint: //reference/bd44a852/checkpoint.th
tokens:
  padding_with_special_token: false
cache:
  path: null
  write: false
  write_shard: 0
  write_num_shards: 1
dataset:
  batch_size: 128
  num_workers: 10
  segment_duration: 10
  num_samples: null
  return_info: true
  shuffle: false
  sample_on_duration: false
  sample_on_weight: false
  min_segment_ratio: 1.0
  external_metadata_source: null
  train:
    num_samples: 1000000
    shuffle: true
    batch_size: 256
    aug_p: 0.5
    mix_p: 0.5
    mix_snr_low: -5
    mix_snr_high: 5
    mix_min_overlap: 0.5
  valid:
    num_samples: 10000
  generate:
    num_samples: 50
    segment_duration: ${dataset.segment_duration}
metrics:
  fad:
    use_gt: false
    model: tf
    tf:
      bin: null
      model_path: //reference/fad/vggish_model.ckpt
  kld:
    use_gt: false
    model: passt
    passt:
      pretrained_length: 10
  text_consistency:
    use_gt: false
    model: clap
  chroma_cosine:
    use_gt: false
    model: chroma_base
    chroma_base:
      sample_rate: ${sample_rate}
      n_chroma: 12
      radix2_exp: 14
      argmax: true
generate:
  every: 25
  num_workers: 5
  path: samples
  audio:
    format: wav
    strategy: loudness
    sample_rate: ${sample_rate}
    loudness_headroom_db: 14
  lm:
    prompted_samples: true
    unprompted_samples: true
    gen_gt_samples: false
    prompt_duration: null
    gen_duration: null
    remove_prompts: false
    use_sampling: true
    temperature: 1.0
    top_k: 250
    top_p: 0.0
evaluate:
  every: 25
  num_workers: 5
  metrics:
    base: false
    fad: false
    kld: false
    text_consistency: false
checkpoint:
  save_last: true
  save_every: 50
  keep_last: 10
  keep_every_states: null
optim:
  epochs: 100
  updates_per_epoch: 2000
  lr: 0.0005
  optimizer: adamw
  max_norm: 1.0
  eager_sync: true
  adam:
    betas:
    - 0.9
    - 0.95
    weight_decay: 0.1
    eps: 1.0e-08
  ema:
    use: true
    updates: 10
    device: cuda
    decay: 0.99
schedule:
  lr_scheduler: inverse_sqrt
  inverse_sqrt:
    warmup: 3000
    warmup_init_lr: 0.0
lm_model: transformer_lm
codebooks_pattern:
  modeling: delay
  delay:
    delays:
    - 0
    - 1
    - 2
    - 3
    flatten_first: 0
    empty_initial: 0
  unroll:
    flattening:
    - 0
    - 1
    - 2
    - 3
    delays:
    - 0
    - 0
    - 0
    - 0
  music_lm:
    group_by: 2
  valle:
    delays:
    - 0
    - 0
    - 0
lm_card: @CARD@
transformer_lm:
  dim: @DIM@
  num_heads: @HEADS@
  num_layers: @LAYERS@
  hidden_scale: 4
  n_q: 4
  card: ${lm_card}
  dropout: 0.0
  emb_lr: null
  activation: gelu
  norm_first: true
  bias_ff: false
  bias_attn: false
  bias_proj: false
  past_context: null
  causal: true
  custom: false
  memory_efficient: true
  attention_as_float32: false
  layer_scale: null
  positional_embedding: sin
  xpos: false
  checkpointing: none
  weight_init: gaussian
  depthwise_init: current
  zero_bias_init: true
  norm: layer_norm
  cross_attention: false
  qk_layer_norm: false
  qk_layer_norm_cross: false
  attention_dropout: null
  kv_repeat: 1
  two_step_cfg: false
classifier_free_guidance:
  training_dropout: 0.1
  inference_coef: 3.0
attribute_dropout: {}
fuser:
  cross_attention_pos_emb: false
  cross_attention_pos_emb_scale: 1
  sum: []
  prepend: []
  cross:
  - description
  input_interpolate: []
conditioners:
  description:
    model: t5
    t5:
      name: @T5@
      finetune: false
      word_dropout: 0.0
      normalize_text: false
"""


def xp_cfg(dim: int, num_heads: int, num_layers: int, card: int, t5_name: str) -> str:
    """The Hydra YAML with the sizes filled in (``transformer_lm.card`` stays an interpolation)."""
    values = {"@DIM@": dim, "@HEADS@": num_heads, "@LAYERS@": num_layers, "@CARD@": card, "@T5@": t5_name}
    text = XP_CFG
    for marker, value in values.items():
        text = text.replace(marker, str(value))
    return text


def best_state(dim: int, num_layers: int, card: int, text_dim: int, n_q: int = 4, seed: int = 0) -> dict:
    """Random weights under LMModel's key names."""
    g = torch.Generator().manual_seed(seed)
    shapes: dict[str, tuple[int, ...]] = {
        "condition_provider.conditioners.description.output_proj.weight": (dim, text_dim),
        "condition_provider.conditioners.description.output_proj.bias": (dim,),
    }
    shapes.update({f"emb.{k}.weight": (card + 1, dim) for k in range(n_q)})
    for i in range(num_layers):
        layer = f"transformer.layers.{i}."
        for attn in ("self_attn", "cross_attention"):
            shapes[layer + attn + ".in_proj_weight"] = (3 * dim, dim)
            shapes[layer + attn + ".out_proj.weight"] = (dim, dim)
        shapes[layer + "linear1.weight"] = (4 * dim, dim)
        shapes[layer + "linear2.weight"] = (dim, 4 * dim)
        for norm in ("norm1", "norm_cross", "norm2"):
            shapes[layer + norm + ".weight"] = (dim,)
            shapes[layer + norm + ".bias"] = (dim,)
    shapes.update({"out_norm.weight": (dim,), "out_norm.bias": (dim,)})
    shapes.update({f"linears.{k}.weight": (card, dim) for k in range(n_q)})
    return {k: 0.2 * torch.randn(s, generator=g) for k, s in shapes.items()}


def write_audiocraft_lm(directory: Path, *, dim: int = 16, num_heads: int = 2, num_layers: int = 2, card: int = 32,
                        t5_name: str = "t5-large", state: dict | None = None, cfg: str | None = None) -> Path:
    """Write ``directory/state_dict.bin``; ``state`` / ``cfg`` replace the default weights / YAML."""
    directory.mkdir(parents=True, exist_ok=True)
    package = {
        "best_state": state if state is not None else best_state(dim, num_layers, card, T5_DIMS[t5_name]),
        "xp.cfg": cfg if cfg is not None else xp_cfg(dim, num_heads, num_layers, card, t5_name),
        "version": "1.3.0",
        "exported": True,
    }
    path = directory / "state_dict.bin"
    torch.save(package, path)
    return path
