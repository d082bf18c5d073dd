"""The sara LatentDiffusion release format: reading and writing ``config.json`` and the text encoder.

Layout (written by :meth:`~sara.pipelines.latent_diffusion.LatentDiffusion.save_pretrained`)::

    config.json    {"format_version": 1, "class": "LatentDiffusion", "components": {"unet": "unet", "vae": "vae",
                    "vocoder": "vocoder"}, "config": {"text_encoder": TextEncoderSpec, "mel": MelConfig,
                    "scheduler": SchedulerConfig, "defaults": LDMDefaults}}
    unet/          an ``LDMUNet`` release (sara.ldm.unet);  vae/: a MelVAE release;  vocoder/: a HiFiGAN release
    text_encoder/  the T5 (config, tokenizer, weights) unless the spec names the packaged MiniLM
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sara.errors import CheckpointError
from sara.serialization import (
    FORMAT_VERSION,
    config_from_dict,
    config_to_dict,
    read_json_object,
    upgrade_release_config,
)

__all__ = ["CONFIG_KEYS", "RELEASE_CLASS", "ldm_text_encoder", "read_release_config", "release_class",
           "save_text_encoder", "set_release_defaults", "text_spec", "write_release_config"]

RELEASE_CLASS = "LatentDiffusion"
CONFIG_KEYS = ("text_encoder", "mel", "scheduler", "defaults")


def release_class(p: Path) -> str | None:
    """The ``class`` of ``p/config.json`` (None when absent or unreadable)."""
    try:
        return json.loads((p / "config.json").read_text()).get("class")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def read_release_config(p: Path) -> dict[str, Any]:
    """The upgraded ``config.json`` payload of a release (CheckpointError: invalid JSON, unknown config keys)."""
    try:
        payload = upgrade_release_config(json.loads((p / "config.json").read_text()))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p / 'config.json'}: invalid JSON ({exc})") from None
    unknown = sorted(set(payload.get("config", {})) - set(CONFIG_KEYS))
    if unknown:
        raise CheckpointError(f"{p / 'config.json'}: unknown LatentDiffusion config keys {unknown}")
    return payload


def write_release_config(out: Path, spec: Any, mel_config: Any, scheduler_config: Any, defaults: Any) -> Path:
    """Write ``out/config.json`` of a LatentDiffusion release (the components are ``unet/``, ``vae/``,
    ``vocoder/`` sub-releases)."""
    payload = {"format_version": FORMAT_VERSION, "class": RELEASE_CLASS,
               "config": {"text_encoder": config_to_dict(spec), "mel": config_to_dict(mel_config),
                          "scheduler": config_to_dict(scheduler_config), "defaults": config_to_dict(defaults)},
               "components": {"unet": "unet", "vae": "vae", "vocoder": "vocoder"}}
    path = out / "config.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def text_spec(data: Any) -> Any:
    """A :class:`~sara.text.factory.TextEncoderSpec` from its dict (ConfigError on unknown keys)."""
    from sara.text.factory import TextEncoderSpec

    return config_from_dict(TextEncoderSpec, dict(data))


def ldm_text_encoder(spec: Any, base_dir: Path) -> Any:
    """The text conditioner of a :class:`~sara.text.factory.TextEncoderSpec` (``sara.ldm.conditioning``: Tango's
    T5 batching and "" unconditional input for ``"t5"``, zero states for the MiniLM demo)."""
    from sara.ldm.conditioning import build_conditioner

    return build_conditioner(spec, base_dir=base_dir)


def save_text_encoder(text_encoder: Any, spec: Any, out: Path) -> Any:
    """Keep a packaged/named spec, or write the encoder to ``out/text_encoder`` and return the spec naming it."""
    from sara.text.factory import TextEncoderSpec

    if spec is not None and spec.kind == "minilm" and spec.path is None:
        return spec
    inner = getattr(text_encoder, "encoder", None)  # T5EncoderModel (T5) or a sara TextEncoder (MiniLM)
    tokenizer = getattr(text_encoder, "tokenizer", None) or getattr(inner, "tokenizer", None)
    model = inner if hasattr(inner, "save_pretrained") else getattr(inner, "model", None)
    if model is None or tokenizer is None:
        raise CheckpointError("cannot save this text encoder (no model/tokenizer); give a text_encoder_spec")
    model.save_pretrained(out / "text_encoder")
    tokenizer.save_pretrained(out / "text_encoder")
    return TextEncoderSpec(kind=spec.kind if spec is not None else "t5", path="text_encoder")


def set_release_defaults(directory: str | os.PathLike[str], **changes: Any) -> Any:
    """Change the stored generation defaults of the LatentDiffusion (or DCLDM) release in ``directory`` (rewrites its
    ``config.json``), e.g. ``set_release_defaults(out, steps=25, sampler="dpmsolver++")``.

    Raises:
        CheckpointError: not a LatentDiffusion release.  ConfigError: unknown fields or invalid values.
    """
    from sara.pipelines.latent_diffusion import LDMDefaults

    p = Path(directory)
    if release_class(p) not in (RELEASE_CLASS, "DCLDM"):  # a DCLDM release stores the same defaults
        raise CheckpointError(f"{p}: not a sara LatentDiffusion or DCLDM release")
    payload = read_json_object(p / "config.json")  # only ``defaults`` changes; the rest is kept as written
    defaults = config_from_dict(LDMDefaults, {**payload["config"].get("defaults", {}), **changes})
    payload["config"]["defaults"] = config_to_dict(defaults)
    (p / "config.json").write_text(json.dumps(payload, indent=2) + "\n")
    return defaults
