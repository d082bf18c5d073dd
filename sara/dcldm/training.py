"""``DCLDMTask`` (``sara train dcldm``): the Tango UNet with acoustic cross-attention, trained on cached latents.

Everything of :class:`sara.ldm.training.LDMTask` carries over (v-prediction DDPM on the SD-2.1 schedule, Tango's
Min-SNR weights, AdamW 3e-5 / (0.9, 0.999) / 1e-8 / 1e-2 with a linear schedule, no clipping, validation at
t = 500, every per-sample draw from a generator seeded by ``(seed, draw, index)``); what DC-LDM adds:

* the model is a :class:`~sara.dcldm.unet.DualConditionUNet` around a fresh UNet or the ``init_from`` UNet (a
  Tango directory, a LatentDiffusion / UNet release, an ``ldm`` run) or a DCLDM release's whole wrapper;
* ``train_modules="acoustic"`` freezes the UNet and trains only the added modules (``"all"``: everything);
* the acoustic condition of each item comes from its tokens (:mod:`sara.dcldm.tokens`: the clip's codec tokens
  or the LM's tokens for the chosen caption) through the frozen AudioGen (+ mel VAE for E'_t2a), computed
  once per key and memoised (deterministic: E'_t2a uses the posterior mode);
* **joint condition dropout** (a design choice; the paper does not say): with probability ``uncondition_prob``
  a sample gets *both* null conditions, exactly the inputs of the unconditional branch at inference: the text
  conditioner's unconditional input (Tango's "" encoding for T5, zeros for MiniLM) and zero acoustic states
  (mask kept, equivalent to :func:`~sara.dcldm.acoustic.null_acoustic`).  Joint, because Eq. 8 guides with
  one unconditional branch where both are empty; training never sees one condition without the other.
  (Tango itself trains with zeroed T5 states but guides with ""; sara trains on what it guides with.)

``conditioning="acoustic"`` trains the paper's acoustic-only LDM: the UNet's own cross-attention reads the
acoustic states (``unet.cross_attention_dim`` = the acoustic width, no placements, no text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from sara.dcldm.acoustic import AcousticConfig, AcousticEncoder
from sara.dcldm.unet import DualConditionUNet, check_placements
from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.data import CachedLatentDataset, check_latent_shape, collate_latents
from sara.ldm.training import LDMTask, LDMTrainConfig, draw_batch, min_snr_weights, training_target
from sara.train.task import LossOutput

__all__ = ["DCLDMDataset", "DCLDMTask", "DCLDMTrainConfig", "DCLDMTrainModule", "joint_dropout"]


@dataclass(frozen=True)
class DCLDMTrainConfig(LDMTrainConfig):
    """Task config of ``sara train dcldm``: :class:`~sara.ldm.training.LDMTrainConfig` plus the fields below.

    Attributes:
        audiogen: AudioGen directory (sara release or audiocraft layout) whose codec (and LM) make the tokens.
        placements: acoustic module positions (``down1``, ``mid``, ``up1``; the paper's best: down1 + up1).
        conditioning: ``"dual"`` (DC-LDM) or ``"acoustic"`` (acoustic-only LDM baseline, no placements).
        acoustic: which encoding (E_t2a ``t2a`` / E'_t2a ``t2a_mel``), positions, LM sampling.
        acoustic_source: ``"codec"`` (the clip's tokens) or ``"lm"`` (LM tokens per caption).
        token_cache: the codec token cache (``codec``) or the LM token cache (``lm``) directory.
        train_modules: ``"all"`` (UNet + added modules) or ``"acoustic"`` (added modules only).
        bundle_audiogen: export copies AudioGen into the release (False: records its absolute path).
        mixtures: caption mixtures have no clip tokens: only with ``acoustic_source="lm"``.
        sample_guidance: CFG of ``log_samples`` (the paper's w = 4).
    """

    audiogen: str | None = None
    placements: tuple[str, ...] = ("down1", "up1")
    conditioning: Literal["dual", "acoustic"] = "dual"
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    acoustic_source: Literal["codec", "lm"] = "codec"
    token_cache: str | None = None
    train_modules: Literal["all", "acoustic"] = "all"
    bundle_audiogen: bool = True
    mixtures: bool = False
    sample_guidance: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.audiogen or not self.token_cache:
            raise ValueError("dcldm training needs audiogen (an AudioGen directory) and token_cache")
        if self.acoustic_source not in ("codec", "lm") or self.train_modules not in ("all", "acoustic"):
            raise ValueError("acoustic_source must be codec|lm and train_modules all|acoustic")
        check_placements(self.placements)
        if self.conditioning not in ("dual", "acoustic"):
            raise ValueError(f"conditioning must be 'dual' or 'acoustic', got {self.conditioning!r}")
        if (self.conditioning == "dual") != bool(self.placements):
            raise ValueError("conditioning 'dual' needs placements; 'acoustic' (acoustic-only LDM) takes none")
        if self.conditioning == "acoustic" and self.train_modules == "acoustic":
            raise ValueError("the acoustic-only LDM has no added modules: use train_modules 'all'")
        if self.mixtures and self.acoustic_source == "codec":
            raise ValueError("caption mixtures have no clip tokens: use acoustic_source 'lm' or mixtures false")


class DCLDMTrainModule(nn.Module):
    """What the loop trains and checkpoints: the DualConditionUNet plus the ``draws`` counter.

    Args:
        unet: a :class:`~sara.dcldm.unet.DualConditionUNet`.
    """

    def __init__(self, unet: DualConditionUNet) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))

    def forward(self, x_t: Tensor, t: Tensor, states: Tensor, mask: Tensor, acoustic: Tensor | None,
                acoustic_mask: Tensor | None) -> Tensor:
        """UNet output ``[B, C, H, W]`` for ``x_t [B, C, H, W]``, timesteps ``t [B]``, text ``[B, L, D]`` / ``[B, L]``
        and acoustic ``[B, F, D_a]`` / ``[B, F]`` (None for the acoustic-only LDM, whose text *is* acoustic)."""
        return self.unet(x_t, t, states, encoder_attention_mask=mask, acoustic_states=acoustic,
                         acoustic_mask=acoustic_mask).sample


def joint_dropout(text: tuple[Tensor, Tensor], null_text: tuple[Tensor, Tensor], acoustic: Tensor | None,
                  drop: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """Replace the conditions of rows ``drop [B]`` by the null ones.

    Args:
        text: ``(states [B, L, D], mask [B, L])``; null_text: the unconditional input of the same shape.
        acoustic: ``[B, F, D_a]`` acoustic states (zeroed in dropped rows; their mask is kept) or None.

    Returns:
        ``(text states, text mask, acoustic states)``.
    """
    rows = drop[:, None, None]
    states = torch.where(rows, null_text[0].to(text[0]), text[0])
    mask = torch.where(drop[:, None], null_text[1].to(text[1].device), text[1])
    return states, mask, None if acoustic is None else acoustic.masked_fill(rows, 0.0)


class DCLDMDataset(CachedLatentDataset):
    """:class:`~sara.ldm.data.CachedLatentDataset` items plus ``"path"``: the clip's manifest path (None for a
    caption mixture), the key of its codec tokens."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        paths = self.items[index].paths
        item["path"] = paths[0] if len(paths) == 1 else None
        return item


class DCLDMTask(LDMTask):
    """Trains a DC-LDM (see the module docstring)."""

    name: ClassVar[str] = "dcldm"
    config_class: ClassVar[type] = DCLDMTrainConfig
    acoustic_cache_size: ClassVar[int] = 65536  # memoised acoustic rows (CPU)

    def __init__(self, config: DCLDMTrainConfig, conditioner: Any | None = None,
                 acoustic_encoder: AcousticEncoder | None = None) -> None:
        """``conditioner`` / ``acoustic_encoder``: already built frozen parts (else built lazily from the config)."""
        super().__init__(config, conditioner)
        self._acoustic = acoustic_encoder
        self._acoustic_rows: dict[str, Tensor] = {}
        self._cache_settings: dict[str, Any] | None = None

    @property
    def acoustic_encoder(self) -> AcousticEncoder:
        """The frozen AudioGen (+ mel VAE for E'_t2a), built on first use."""
        if self._acoustic is None:
            from sara.audiogen import AudioGen

            cfg = self.config
            vae = None
            if cfg.acoustic.kind == "t2a_mel":
                from sara.mel.vae import MelVAE

                if cfg.vae is None:
                    raise ConfigError("the t2a_mel acoustic encoding needs vae (a mel-VAE release)")
                vae = MelVAE.from_pretrained(cfg.vae)
            self._acoustic = AcousticEncoder(AudioGen.from_pretrained(cfg.audiogen), cfg.acoustic, vae,
                                             self.mel_config())
        return self._acoustic

    def cache_settings(self) -> dict[str, Any]:
        """The latent cache's ``cache.json`` settings (read once: the index of a large corpus is big)."""
        if self._cache_settings is None:
            from sara.ldm.cache import LatentCache

            self._cache_settings = LatentCache(self.config.latent_cache).settings
        return self._cache_settings

    def mel_config(self) -> Any:
        """The latent cache's mel front end (what the VAE latents were computed with)."""
        from sara.mel.frontend import MelConfig
        from sara.serialization import config_from_dict

        return config_from_dict(MelConfig, self.cache_settings()["mel"])

    # ------------------------------------------------------------------------------------- parts
    def build_model(self) -> DCLDMTrainModule:
        """The UNet (fresh, or ``init_from``'s) wrapped with zero-initialised acoustic modules."""
        cfg = self.config
        wrapper = _load_dcldm_unet(cfg.init_from) if cfg.init_from else None
        if wrapper is None:
            from sara.ldm.unet import build_unet, load_any_unet

            unet = load_any_unet(cfg.init_from) if cfg.init_from else build_unet(cfg.unet)
            wrapper = DualConditionUNet(unet, cfg.placements, self.acoustic_encoder.dim)
        if tuple(wrapper.placements) != check_placements(cfg.placements):
            raise ConfigError(f"init_from has placements {list(wrapper.placements)}, the config {list(cfg.placements)}")
        if cfg.train_modules == "acoustic":
            wrapper.unet.requires_grad_(False)
        return DCLDMTrainModule(wrapper.train())

    def unet_config(self) -> UNetConfig:
        """The trained UNet's architecture (the init source's when ``init_from`` is set)."""
        if not self.config.init_from:
            return self.config.unet
        if self._init_config is None:
            wrapper = _load_dcldm_unet(self.config.init_from)
            if wrapper is not None:
                self._init_config = UNetConfig.from_unet(wrapper.unet)
            else:
                return super().unet_config()
        return self._init_config

    def build_datasets(self) -> tuple[DCLDMDataset, DCLDMDataset | None]:
        """Train / valid items of the latent cache with their token keys; checks widths and the token cache."""
        cfg = self.config
        train = DCLDMDataset(cfg.latent_cache, cfg.train_split, mixtures=cfg.mixtures)
        if len(train) == 0:
            raise ConfigError(f"{cfg.latent_cache}: no {cfg.train_split!r} items in the latent cache")
        unet_cfg = self.unet_config()
        check_latent_shape(train.latent_shape, unet_cfg.in_channels)
        width = self.acoustic_encoder.dim if cfg.conditioning == "acoustic" else self.conditioner.dim
        if width != unet_cfg.cross_attention_dim:
            raise ConfigError(f"{'acoustic' if cfg.conditioning == 'acoustic' else 'text'} width {width} != UNet "
                              f"cross_attention_dim {unet_cfg.cross_attention_dim}")
        if cfg.acoustic_source == "codec":
            from sara.dcldm.tokens import check_codec_token_cache

            check_codec_token_cache(cfg.token_cache, self.acoustic_encoder.codec)
        valid = DCLDMDataset(cfg.latent_cache, cfg.valid_split) if cfg.valid_split else None
        return train, valid if valid is not None and len(valid) else None

    def collate(self, items: list[dict]) -> dict:
        """:func:`~sara.ldm.data.collate_latents` plus ``paths`` (list of B, None for mixtures)."""
        return {**collate_latents(items), "paths": [it["path"] for it in items]}

    def build_optimizer(self, model: nn.Module, max_steps: int):  # noqa: ANN201 - (optimizer, scheduler)
        """Tango's AdamW on the trainable parameters (the added modules only with ``train_modules="acoustic"``)."""
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("nothing to train (every parameter is frozen)")
        return super().build_optimizer(model, max_steps)

    # -------------------------------------------------------------------------------------- loss
    def latent_seconds(self, latent_height: int) -> float:
        """Seconds of audio a latent of ``latent_height`` rows covers (``H * f`` mel frames of ``hop`` samples)."""
        settings, mel = self.cache_settings(), self.mel_config()
        factor = int(settings["frames"]) // int(settings["latent_shape"][1])
        return latent_height * factor * mel.hop_length / mel.sample_rate

    def token_frames(self, latent_height: int) -> int:
        """Token frames covering a latent of ``latent_height`` rows: ``ceil(seconds * frame_rate)``."""
        return self.acoustic_encoder.token_frames(self.latent_seconds(latent_height))

    def acoustic_batch(self, paths: list[str | None], captions: list[str], frames: int) -> tuple[Tensor, Tensor]:
        """Acoustic states ``[B, F, D]`` + mask ``[B, F]`` (CPU) of a batch, each row memoised by its token key."""
        from sara.dcldm.tokens import codec_codes, lm_codes

        cfg, rows = self.config, []
        for path, caption in zip(paths, captions, strict=True):
            key = f"clip:{path}" if cfg.acoustic_source == "codec" else f"caption:{caption}"
            if key not in self._acoustic_rows:
                codes = codec_codes(cfg.token_cache, path, frames) if cfg.acoustic_source == "codec" else lm_codes(
                    cfg.token_cache, caption, frames)
                if len(self._acoustic_rows) >= self.acoustic_cache_size:
                    self._acoustic_rows.pop(next(iter(self._acoustic_rows)))
                self._acoustic_rows[key] = self.acoustic_encoder.raw_from_codes(codes[None])[0].cpu()
            rows.append(self._acoustic_rows[key])
        return self.acoustic_encoder.finish(rows)

    def conditions(self, batch: dict, captions: list[str], drop: Tensor, device: torch.device
                   ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(text states, text mask, acoustic states, acoustic mask)`` after joint dropout, on ``device``."""
        frames = self.token_frames(int(batch["mean"].shape[2]))
        ac, ac_mask = (t.to(device) for t in self.acoustic_batch(batch["paths"], captions, frames))
        if self.config.conditioning == "acoustic":
            states, mask, _ = joint_dropout((ac, ac_mask), (torch.zeros_like(ac), ac_mask), None, drop)
            return states, mask, None, None
        self.conditioner.to(device)
        text = tuple(t.to(device) for t in self.encode_captions(captions))
        null = tuple(t.to(device) for t in self.conditioner.encode_unconditional(*text[0].shape[:2]))
        states, mask, ac = joint_dropout(text, null, ac, drop)
        return states, mask, ac, ac_mask

    def compute_loss(self, model: nn.Module, batch: dict) -> LossOutput:
        """One training step: LDMTask's loss with the acoustic condition and joint dropout."""
        inner = getattr(model, "module", model)  # DDP
        validation = not inner.training
        draws = draw_batch(self.config.seed, -1 if validation else int(inner.draws), batch["index"].tolist(),
                           batch["captions"], tuple(batch["mean"].shape[1:]),
                           self.noise_scheduler.config.num_train_timesteps, self.config.uncondition_prob, validation)
        if not validation:
            inner.draws += 1
        mean, device = batch["mean"], batch["mean"].device
        x0 = mean + batch["std"] * draws.eps.to(device) if self.config.sample_posterior else mean
        t, noise = draws.t.to(device), draws.noise.to(device)
        captions = [caps[i] for caps, i in zip(batch["captions"], draws.caption, strict=True)]
        states, mask, ac, ac_mask = self.conditions(batch, captions, draws.drop.to(device), device)
        pred = model(self.noise_scheduler.add_noise(x0, noise, t), t, states, mask, ac, ac_mask)
        mse = (pred.float() - training_target(self.noise_scheduler, x0, noise, t).float()).pow(2).mean(dim=(1, 2, 3))
        weights = torch.ones_like(mse) if self.config.snr_gamma is None else min_snr_weights(
            self.noise_scheduler.alphas_cumprod, t, self.config.snr_gamma)
        loss = (mse * weights).mean()
        return LossOutput(total=loss, terms={"loss/diffusion": loss.detach(), "loss/mse": mse.mean().detach()})

    # --------------------------------------------------------------------------- samples / export
    def pipeline(self, model: nn.Module) -> Any:
        """A :class:`~sara.dcldm.pipeline.DCLDM` around ``model``'s UNet and the config's VAE / vocoder."""
        from sara.dcldm.pipeline import DCLDM
        from sara.mel.hifigan import HiFiGAN
        from sara.mel.vae import MelVAE

        cfg = self.config
        if cfg.vae is None or cfg.vocoder is None:
            raise ConfigError("a DCLDM pipeline needs vae and vocoder releases in the task config")
        unet = getattr(model, "module", model).unet
        enc = self.acoustic_encoder
        text = None if cfg.conditioning == "acoustic" else self.conditioner
        vae = enc.vae if enc.vae is not None else MelVAE.from_pretrained(cfg.vae)
        return DCLDM(unet, vae, HiFiGAN.from_pretrained(cfg.vocoder), text, enc.audiogen, acoustic_config=cfg.acoustic,
                     conditioning=cfg.conditioning, mel_config=self.mel_config(), scheduler_config=cfg.scheduler,
                     text_encoder_spec=None if text is None else cfg.text_encoder)

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """``<i>.wav`` for ``sample_prompts`` (DPM-Solver++, w = ``sample_guidance``); needs ``vae`` + ``vocoder``."""
        from sara.audio.io import save_audio

        cfg = self.config
        if cfg.vae is None or cfg.vocoder is None:
            print("dcldm samples skipped: give vae and vocoder releases to hear samples")
            return
        inner = getattr(model, "module", model)
        was_training = inner.unet.training
        pipe = self.pipeline(model)
        seconds = self.latent_seconds(CachedLatentDataset(cfg.latent_cache, cfg.train_split).latent_shape[1])
        wav = pipe(list(cfg.sample_prompts), duration=seconds, steps=cfg.sample_steps,
                   guidance_scale=cfg.sample_guidance, seed=cfg.seed, sampler="dpmsolver++")
        inner.unet.train(was_training)  # the pipeline put the UNet in eval mode
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, w in enumerate(wav):
            save_audio(out_dir / f"{i}.wav", w[None].cpu(), pipe.sample_rate)

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """A DCLDM release with ``vae`` + ``vocoder`` (AudioGen bundled or referenced), else the DualConditionUNet
        release alone."""
        unet = getattr(model, "module", model).unet
        if self.config.vae is None or self.config.vocoder is None:
            return unet.save_pretrained(out_dir)
        was_training = unet.training
        pipe = self.pipeline(model)
        audiogen = None if self.config.bundle_audiogen else str(Path(self.config.audiogen).resolve())
        out = pipe.save_pretrained(out_dir, audiogen_path=audiogen)
        unet.train(was_training)
        return out


def _load_dcldm_unet(path: str | None) -> DualConditionUNet | None:
    """The DualConditionUNet of a DualConditionUNet / DCLDM release at ``path`` (None for other sources)."""
    import json

    if not path:
        return None
    p = Path(path)
    try:
        cls = json.loads((p / "config.json").read_text()).get("class")
    except (OSError, ValueError, AttributeError):
        return None
    if cls == "DualConditionUNet":
        return DualConditionUNet.from_pretrained(p)
    if cls == "DCLDM":
        return DualConditionUNet.from_pretrained(p / "unet")
    return None

