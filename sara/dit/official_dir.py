"""Read an official SemanticVocoder text-to-audio model directory (HF ``AutoModel`` layout).

Layout: ``config.json`` with ``model_type == "semantic_vocoder"`` and a hydra ``model_config`` tree whose
nodes ``backbone`` (UDiT arguments), ``content_encoder.text_encoder`` (``model_name``, ``embed_dim``) and
``autoencoder`` (the vocoder) we read; weights in ``model.safetensors`` or ``pytorch_model.bin`` with the
prefixes ``model.backbone.``, ``model.content_encoder.text_encoder.{model,proj}.``,
``model.autoencoder.generator.`` and optionally ``model.autoencoder.cond_module.dasheng_model.``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from sara.errors import CheckpointError
from sara.serialization import load_torch_checkpoint, read_json_object, strip_prefix

__all__ = ["OfficialModelDir", "is_official_dir", "official_encoder", "official_vocoder", "read_official_dir"]

T5_PREFIX = "model.content_encoder.text_encoder.model."
GENERATOR_PREFIX = "model.autoencoder.generator."
DASHENG_PREFIX = "model.autoencoder.cond_module.dasheng_model."


@dataclass
class OfficialModelDir:
    """The parts of an official model directory.

    Attributes:
        path: the directory.
        backbone_config: UDiT constructor arguments.
        autoencoder_config: the hydra ``autoencoder`` node (vocoder).
        text_model_name: the T5 ``model_name`` (a local dir or a HF repo id).
        state_dict: all weights (official key names).
    """

    path: Path
    backbone_config: dict[str, Any]
    autoencoder_config: dict[str, Any]
    text_model_name: str
    state_dict: dict[str, Tensor]

    def t5_state(self) -> dict[str, Tensor] | None:
        """T5 encoder weights (prefix stripped) or None when the checkpoint has none."""
        return strip_prefix(self.state_dict, T5_PREFIX) or None

    def dasheng_state(self) -> dict[str, Tensor] | None:
        """Dasheng encoder weights (prefix stripped) or None."""
        return strip_prefix(self.state_dict, DASHENG_PREFIX) or None


def is_official_dir(path: str | Path) -> bool:
    """True if ``path/config.json`` declares ``model_type == "semantic_vocoder"``."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("model_type") == "semantic_vocoder"
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def read_official_dir(path: str | Path) -> OfficialModelDir:
    """Parse config and weights of an official model directory.

    Raises:
        CheckpointError: missing nodes or weight files.
    """
    p = Path(path)
    payload = read_json_object(p / "config.json")
    tree = payload.get("model_config")
    if not isinstance(tree, Mapping):
        raise CheckpointError(f"{p}/config.json: no 'model_config' tree")
    text_node = _node(tree, ("content_encoder", "text_encoder"), p)
    if "model_name" not in text_node:
        raise CheckpointError(f"{p}/config.json: content_encoder.text_encoder has no 'model_name'")
    return OfficialModelDir(
        path=p,
        backbone_config=dict(_node(tree, ("backbone",), p)),
        autoencoder_config=dict(_node(tree, ("autoencoder",), p)),
        text_model_name=str(text_node["model_name"]),
        state_dict=_read_weights(p),
    )


def _node(tree: Mapping[str, Any], keys: tuple[str, ...], source: Path) -> Mapping[str, Any]:
    node: Any = tree
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise CheckpointError(f"{source}/config.json: model_config has no '{'.'.join(keys)}' node")
    return node


def _read_weights(p: Path) -> dict[str, Tensor]:
    if (p / "model.safetensors").is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(p / "model.safetensors"))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corrupt files
            raise CheckpointError(f"{p}/model.safetensors: cannot read weights ({exc})") from None
    if (p / "pytorch_model.bin").is_file():
        state = load_torch_checkpoint(p / "pytorch_model.bin")
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{p}/pytorch_model.bin: not a state dict")
        return dict(state)
    raise CheckpointError(f"{p}: no model.safetensors or pytorch_model.bin (sharded weights are not supported)")


def official_vocoder(info: OfficialModelDir):  # noqa: ANN201 - a sara.SemanticVocoder
    """Build the SemanticVocoder from ``model.autoencoder.generator.*`` and the ``autoencoder`` node."""
    from sara.serialization import load_state_dict_strict
    from sara.vocoder import SemanticVocoder
    from sara.vocoder.loading import config_from_hydra, drop_rebuilt_buffers, infer_config

    source = str(info.path)
    state = strip_prefix(info.state_dict, GENERATOR_PREFIX)
    if not state:
        raise CheckpointError(f"{source}: no {GENERATOR_PREFIX}* weights")
    overrides, _ = config_from_hydra({"model": {"autoencoder": info.autoencoder_config}}, source)
    vocoder = SemanticVocoder(infer_config(state, source, **overrides))
    state = drop_rebuilt_buffers(vocoder.generator, state, source)
    load_state_dict_strict(vocoder.generator, state, source=source)
    return vocoder.eval()


def official_encoder(info: OfficialModelDir):  # noqa: ANN201 - a sara.SemanticEncoder or None
    """The Dasheng encoder when the checkpoint carries ``cond_module.dasheng_model.*`` weights."""
    state = info.dasheng_state()
    if state is None:
        return None
    from sara.encoder import SemanticEncoder

    return SemanticEncoder.from_official_state_dict(state, source=str(info.path))
