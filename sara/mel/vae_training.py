"""Training the mel VAE (``sara train vae``) on the shared loop, with LDM's ``LPIPSWithDiscriminator`` objective.

AudioLDM trains its VAE (haoheliu/AudioLDM-training-finetuning ``audioldm_train/modules/latent_encoder/
autoencoder.py``, config ``2023_11_13_vae_autoencoder/16k_64.yaml``) with LDM's ``LPIPSWithDiscriminator``
(``disc_start`` 50001, ``disc_weight`` 0.5, ``disc_in_channels`` 1), two Adam(0.5, 0.9) optimizers and the
discriminator stepped first on every batch.  The terms implemented here, per batch of B log-mels ``x``:

* reconstruction NLL: ``sum(|x - x_hat| / exp(s) + s) / B`` with a scalar log-variance ``s`` (``logvar_init``
  0).  LDM and AudioLDM leave ``s`` out of both optimizers, so it stays 0 and the term is the summed L1;
  ``learn_logvar=True`` trains it (LDM's intended learned-variance likelihood);
* KL: ``kl_weight * sum(KL(q(z|x) || N(0, I))) / B``.  The default is LDM's ``kl_weight`` 1e-6 on the KL
  summed over latent elements; AudioLDM's own config uses ``kl_weight`` 1000 with its per-element *mean* KL
  (``kl_reduction="mean"``: ``1000 / (C H W)`` of the summed KL, 0.03 at the paper's 8 x 256 x 16 latent);
* adversarial, from batch ``disc_start`` on: hinge discriminator loss ``disc_factor * (mean(relu(1 - D(x))) +
  mean(relu(1 + D(x_hat)))) / 2`` and generator loss ``-mean(D(x_hat))`` weighted by LDM's adaptive weight
  ``disc_weight * ||grad_L nll|| / (||grad_L g|| + 1e-4)`` (clamped to [0, 1e4]; L = the decoder's last
  convolution) times ``disc_factor``;
* **not** the LPIPS perceptual term (``perceptual_weight`` 1 in LDM): LPIPS needs pretrained VGG weights,
  which cannot be downloaded here, and an image-trained perceptual metric has no established meaning on
  log-mels; the adversarial term is what sharpens the reconstructions.

One optimizer and one backward per batch (the pattern of :mod:`sara.vocoder.gan`): an Adam(0.5, 0.9) with a
VAE group and a discriminator group; the discriminator sees the reconstruction detached and the generator's
adversarial term is computed with the discriminator's parameters frozen, so each half gets exactly the
gradients of its own loss (both from the same discriminator state: one step of staleness compared with
AudioLDM's discriminator-first order).  Before ``disc_start`` the discriminator is not run at all (its
weight is 0 there in LDM too).  ``disc_start`` counts training batches (a checkpointed buffer).

Data: crops of ``crop_frames * hop`` samples at 16 kHz from corpus manifests, directories or files
(:class:`MelCropDataset`: the crop of item ``i`` in epoch ``e`` depends on ``(seed, e, i)`` only), each prepared as Tango prepares a clip (:func:`sara.mel.frontend.tango_log_mel`: mean removed, peak 0.5,
log-mel, ``crop_frames`` frames).  The posterior noise comes from a generator seeded by ``(seed, batches
seen)``, never the global RNG, so a resumed run is bit-identical to an uninterrupted one.

Export writes a :class:`~sara.mel.vae.MelVAE` release whose ``scale_factor`` is ``1 / std`` of sampled latents
of up to ``scale_items`` training clips (:func:`estimate_scale_factor`; LDM's ``scale_by_std``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import soundfile as sf
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.errors import ConfigError
from sara.mel.discriminator import PatchDiscriminator, PatchDiscriminatorConfig, hinge_discriminator_loss
from sara.mel.frontend import MelConfig, tango_log_mel
from sara.mel.vae import MelVAE, MelVAEConfig
from sara.train.task import LossOutput, TrainTask
from sara.vocoder.data import ClipRef, list_clips, read_segment

__all__ = ["MelCropDataset", "VAEGAN", "VAETask", "VAETrainConfig", "adaptive_disc_weight", "estimate_scale_factor",
           "item_seed"]


@dataclass(frozen=True)
class VAETrainConfig:
    """``sara train vae`` settings.

    Attributes:
        train_data: manifests (``*.jsonl``, their ``train`` split), audio directories or files.
        valid_data: validation sources (default: the manifests' ``valid`` split).
        model: the VAE to train (``small`` by default; ``paper`` = Tango's).
        mel: the front end (its ``n_mels`` must equal ``model.n_mels``).
        adversarial: train against the patch discriminator (False: reconstruction + KL only, no discriminator).
        discriminator: the patch discriminator's sizes.
        crop_frames: mel frames per training crop (a multiple of the VAE's downsample factor; Tango: 1024).
        lr: Adam learning rate of both groups (AudioLDM's ``base_learning_rate`` 8e-6; small CPU runs ~1e-4).
        kl_weight, kl_reduction: KL weight and how the KL is reduced over latent elements (see module doc).
        disc_start: training batches before the adversarial terms start (AudioLDM 50001).
        disc_weight: LDM ``discriminator_weight`` (AudioLDM 0.5).
        disc_factor: LDM ``disc_factor`` (multiplies both adversarial terms once started).
        adaptive_weight: LDM's gradient-norm ratio on top of ``disc_weight``; False uses ``disc_weight`` alone.
        learn_logvar, logvar_init: the NLL's scalar log-variance (trained only when ``learn_logvar``).
        seed: data and posterior-noise seed.
        min_rms: training crops quieter than this RMS are re-drawn (up to 3 times).
        scale_items: training clips whose latents set the exported ``scale_factor``.
        num_log_samples: validation clips reconstructed by ``log_samples``.
    """

    train_data: tuple[str, ...] = ()
    valid_data: tuple[str, ...] = ()
    model: MelVAEConfig = field(default_factory=MelVAEConfig.small)
    mel: MelConfig = field(default_factory=MelConfig)
    adversarial: bool = True
    discriminator: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig.paper)
    crop_frames: int = 1024
    lr: float = 8e-6
    kl_weight: float = 1e-6
    kl_reduction: Literal["sum", "mean"] = "sum"
    disc_start: int = 50001
    disc_weight: float = 0.5
    disc_factor: float = 1.0
    adaptive_weight: bool = True
    learn_logvar: bool = False
    logvar_init: float = 0.0
    seed: int = 0
    min_rms: float = 1e-3
    scale_items: int = 64
    num_log_samples: int = 2

    def __post_init__(self) -> None:
        f = self.model.downsample_factor
        if self.crop_frames <= 0 or self.crop_frames % f:
            raise ValueError(f"crop_frames {self.crop_frames} must be a positive multiple of the VAE's downsample "
                             f"factor {f}")
        if self.mel.n_mels != self.model.n_mels:
            raise ValueError(f"mel.n_mels {self.mel.n_mels} != model.n_mels {self.model.n_mels}")
        for name in ("lr", "kl_weight", "disc_weight", "disc_factor", "disc_start", "scale_items"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.kl_reduction not in ("sum", "mean"):
            raise ValueError(f"kl_reduction must be 'sum' or 'mean', got {self.kl_reduction!r}")


# ------------------------------------------------------------------------------------------ data


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that is a fixed function of ``(seed, epoch, index)``."""
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63 - 1)


class MelCropDataset(Dataset):
    """Tango-prepared log-mel crops of audio clips: items ``{"mel": [crop_frames, n_mels]}``.

    A training crop starts at a random sample drawn from a generator seeded by ``(seed, epoch, index)``
    (re-drawn up to ``rms_tries`` times while quieter than ``min_rms``); a validation crop is the clip's start.
    Shorter clips are zero-padded.  Only the crop is decoded (:func:`sara.vocoder.data.read_segment`).

    Args:
        clips: the clips.
        mel: front-end config (its rate is the crop rate).
        crop_frames: frames per item (``crop_frames * hop`` samples).
        train: random crops; otherwise the first.
        seed: data seed.
        min_rms, rms_tries: silence re-draws.
    """

    def __init__(self, clips: list[ClipRef], mel: MelConfig, crop_frames: int, *, train: bool, seed: int = 0,
                 min_rms: float = 1e-3, rms_tries: int = 3) -> None:
        self.clips, self.mel, self.crop_frames = clips, mel, crop_frames
        self.train, self.seed, self.epoch, self.min_rms, self.rms_tries = train, seed, 0, min_rms, rms_tries
        self.samples = crop_frames * mel.hop_length
        self._lengths: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops ``__getitem__`` returns (accelerate's loader calls it each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def _num_samples(self, index: int) -> int:
        if index not in self._lengths:
            info = sf.info(str(self.clips[index].path))
            self._lengths[index] = int(info.frames * self.mel.sample_rate // info.samplerate)
        return self._lengths[index]

    def _read(self, index: int, start: int) -> Tensor:
        wav = read_segment(self.clips[index].path, start, self.samples, self.mel.sample_rate)
        return torch.nn.functional.pad(wav, (0, self.samples - wav.numel()))

    def crop(self, index: int) -> Tensor:
        """The ``[crop_frames * hop]`` waveform crop of item ``index`` in the current epoch."""
        if not self.train:
            return self._read(index, 0)
        last = max(0, self._num_samples(index) - self.samples)
        gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
        for _ in range(max(1, self.rms_tries)):
            wav = self._read(index, int(torch.randint(0, last + 1, (), generator=gen)))
            if float(wav.pow(2).mean().sqrt()) >= self.min_rms:
                break
        return wav

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """``{"mel": [crop_frames, n_mels]}``: Tango's preparation and log-mel of :meth:`crop`."""
        return {"mel": tango_log_mel(self.crop(index), self.mel.sample_rate, self.crop_frames, self.mel)[0]}


# ------------------------------------------------------------------------------------------ model


class VAEGAN(nn.Module):
    """What ``sara train vae`` trains: the VAE, the patch discriminator and the NLL log-variance.

    Args:
        vae: the mel VAE.
        discriminator: patch discriminator, or None.
        logvar_init, learn_logvar: the NLL's scalar log-variance and whether it trains.
        seed: seed of the per-batch posterior noise.
    """

    def __init__(self, vae: MelVAE, discriminator: PatchDiscriminator | None, logvar_init: float,
                 learn_logvar: bool, seed: int) -> None:
        super().__init__()
        self.vae, self.discriminator, self.seed = vae, discriminator, seed
        self.logvar = nn.Parameter(torch.full((), float(logvar_init)), requires_grad=learn_logvar)
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.long))  # training batches seen

    def noise_generator(self) -> torch.Generator:
        """Posterior noise of this batch: a function of ``(seed, batches seen)``."""
        return torch.Generator().manual_seed(item_seed(self.seed, 1 << 20, int(self.num_batches)))

    def forward(self, mel: Tensor, adversarial: bool) -> dict[str, Any]:
        """Reconstruct ``mel [B, 1, T, F]``; with ``adversarial`` also score real / detached fake / fake.

        Returns:
            ``{"recon": [B, 1, T, F], "posterior": MelPosterior}`` and, when adversarial, ``"real"``,
            ``"fake"`` (on the detached reconstruction) and ``"gen"`` (discriminator parameters frozen) logits.
        """
        posterior = self.vae.encode(mel)
        z = posterior.sample(self.noise_generator()) if self.training else posterior.mode()
        recon = self.vae.decode_unscaled(z)
        out: dict[str, Any] = {"recon": recon, "posterior": posterior}
        d = self.discriminator
        if adversarial and d is not None:
            out["real"], out["fake"] = d(mel), d(recon.detach())
            d.requires_grad_(False)
            try:
                out["gen"] = d(recon)
            finally:
                d.requires_grad_(True)
        return out


def adaptive_disc_weight(nll: Tensor, g_loss: Tensor, last_layer: Tensor, disc_weight: float) -> Tensor:
    """LDM's ``calculate_adaptive_weight``: ``disc_weight * ||dNLL/dL|| / (||dG/dL|| + 1e-4)``, clamped, detached.

    Args:
        nll, g_loss: scalar losses that depend on ``last_layer``.
        last_layer: the decoder's output convolution weight ``L``.
        disc_weight: LDM's ``discriminator_weight``.
    """
    nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = torch.norm(nll_grad) / (torch.norm(g_grad) + 1e-4)
    return torch.clamp(weight, 0.0, 1e4).detach() * disc_weight


@torch.no_grad()
def estimate_scale_factor(vae: MelVAE, mels: Iterable[Tensor], generator: torch.Generator | None = None) -> float:
    """``1 / std`` of sampled latents over ``mels`` (LDM's ``scale_by_std``, over all elements of all batches).

    Args:
        vae: the trained VAE (eval mode recommended).
        mels: batches ``[B, 1, T, F]`` of log-mels.
        generator: posterior-noise generator (deterministic estimates).

    Returns:
        The factor that gives diffusion latents unit standard deviation.
    """
    total = total_sq = count = 0.0
    for mel in mels:
        z = vae.encode(mel).sample(generator).double()
        total, total_sq, count = total + float(z.sum()), total_sq + float(z.pow(2).sum()), count + z.numel()
    if count < 2:
        raise ConfigError("estimate_scale_factor: no latents to estimate the scale from")
    var = (total_sq - total * total / count) / (count - 1)
    if not var > 0:
        raise ConfigError("estimate_scale_factor: the latents have zero variance")
    return float(var**-0.5)


# ------------------------------------------------------------------------------------------ task


class VAETask(TrainTask):
    """``sara train vae``: the AudioLDM mel VAE with reconstruction, KL and (from ``disc_start``) adversarial loss."""

    name: ClassVar[str] = "vae"
    config_class: ClassVar[type] = VAETrainConfig
    config: VAETrainConfig
    default_grad_clip: ClassVar[float | None] = None  # LDM / AudioLDM do not clip gradients

    def build_model(self) -> nn.Module:
        """A fresh :class:`VAEGAN` (VAE, discriminator when configured, NLL log-variance)."""
        cfg = self.config
        disc = PatchDiscriminator(cfg.discriminator) if cfg.adversarial else None
        return VAEGAN(MelVAE(cfg.model), disc, cfg.logvar_init, cfg.learn_logvar, cfg.seed)

    def build_optimizer(self, model: nn.Module, max_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """Adam(0.5, 0.9) at ``lr`` with a VAE group (+ log-variance) and a discriminator group; constant lr."""
        m: VAEGAN = getattr(model, "module", model)
        vae_params = [p for p in [*m.vae.parameters(), m.logvar] if p.requires_grad]
        groups = [{"params": vae_params}]
        if m.discriminator is not None:
            groups.append({"params": list(m.discriminator.parameters())})
        return torch.optim.Adam(groups, lr=self.config.lr, betas=(0.5, 0.9)), None

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """The discriminator gets no gradients before ``disc_start``."""
        return self.config.adversarial

    # ------------------------------------------------------------------------------------ data
    def _mel_dataset(self, clips: list[ClipRef], train: bool) -> MelCropDataset:
        cfg = self.config
        return MelCropDataset(clips, cfg.mel, cfg.crop_frames, train=train, seed=cfg.seed, min_rms=cfg.min_rms)

    def _valid_clips(self) -> list[ClipRef]:
        cfg = self.config
        if cfg.valid_data:
            return list_clips(cfg.valid_data, "valid")
        return list_clips(tuple(s for s in cfg.train_data if s.endswith(".jsonl")), "valid")

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Random training crops and the validation clips' first crops (None when there are none)."""
        if not self.config.train_data:
            raise ConfigError("vae: no training data (--data)")
        clips = list_clips(self.config.train_data, "train")
        if not clips:
            raise ConfigError(f"vae: no training clips in {list(self.config.train_data)}")
        valid = self._valid_clips()
        return self._mel_dataset(clips, True), (self._mel_dataset(valid, False) if valid else None)

    # ------------------------------------------------------------------------------------ loss
    def _vae_terms(self, m: VAEGAN, mel: Tensor, out: dict[str, Any]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``(nll, kl, terms)``: the summed-L1 NLL with log-variance and the reduced KL, both per item."""
        batch = mel.shape[0]
        rec = (mel - out["recon"]).abs()
        nll = (rec / torch.exp(m.logvar) + m.logvar).sum() / batch
        kl = out["posterior"].kl(self.config.kl_reduction).sum() / batch
        terms = {"loss/rec_l1": rec.mean().detach(), "loss/nll": nll.detach(), "loss/kl": kl.detach(),
                 "vae/logvar": m.logvar.detach()}
        return nll, kl, terms

    def _adversarial(self, m: VAEGAN, nll: Tensor, out: dict[str, Any], terms: dict[str, Tensor]) -> Tensor:
        """Generator term (adaptive weight) + discriminator hinge term, both times ``disc_factor``."""
        cfg = self.config
        g_loss = -out["gen"].mean()
        if cfg.adaptive_weight:
            last_layer = m.vae.autoencoder.decoder.conv_out.weight
            weight = adaptive_disc_weight(nll, g_loss, last_layer, cfg.disc_weight)
        else:
            weight = torch.tensor(cfg.disc_weight, device=nll.device)
        d_loss = hinge_discriminator_loss(out["real"], out["fake"])
        terms.update({"loss/g": g_loss.detach(), "loss/d": d_loss.detach(), "disc/weight": weight,
                      "disc/logits_real": out["real"].detach().mean(), "disc/logits_fake": out["fake"].detach().mean()})
        return cfg.disc_factor * (weight * g_loss + d_loss)

    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOutput:
        """Training: NLL + KL (+ adversarial from ``disc_start``); evaluation: NLL + KL of the posterior mean."""
        cfg = self.config
        m: VAEGAN = getattr(model, "module", model)
        mel = batch["mel"].unsqueeze(1).float()
        adversarial = m.training and m.discriminator is not None and int(m.num_batches) >= cfg.disc_start
        out = model(mel, adversarial)
        if m.training:
            m.num_batches += 1
        nll, kl, terms = self._vae_terms(m, mel, out)
        total = nll + cfg.kl_weight * kl
        if adversarial:
            total = total + self._adversarial(m, nll, out, terms)
        return LossOutput(total, terms)

    # ------------------------------------------------------------------------------ samples/export
    def _release(self, model: nn.Module) -> MelVAE:
        m: VAEGAN = getattr(model, "module", model)
        vae = MelVAE(self.config.model)
        vae.load_state_dict(m.vae.state_dict())
        return vae.eval()

    def scale_mels(self) -> list[Tensor]:
        """Batches ``[<=8, 1, T, F]`` of the first crops of up to ``scale_items`` evenly spread training clips."""
        clips = list_clips(self.config.train_data, "train")
        n = min(self.config.scale_items, len(clips))
        picked = [clips[round(i * len(clips) / n)] for i in range(n)] if n else []
        data = self._mel_dataset(picked, False)
        mels = [data[i]["mel"] for i in range(len(data))]
        return [torch.stack(mels[i : i + 8]).unsqueeze(1) for i in range(0, len(mels), 8)]

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """A :class:`MelVAE` release with ``scale_factor = 1 / std`` of its latents on training clips."""
        vae = self._release(model)
        generator = torch.Generator().manual_seed(self.config.seed)
        vae.set_scale_factor(estimate_scale_factor(vae, self.scale_mels(), generator))
        return vae.save_pretrained(out_dir)

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """``recon.safetensors``: ``mel`` and ``recon`` ``[N, T, F]`` of the first validation (or training) clips."""
        from safetensors.torch import save_file

        clips = self._valid_clips() or list_clips(self.config.train_data, "train")
        data = self._mel_dataset(clips[: self.config.num_log_samples], False)
        if len(data) == 0:
            return
        mel = torch.stack([data[i]["mel"] for i in range(len(data))]).unsqueeze(1)
        vae = self._release(model)
        recon = vae.decode_unscaled(vae.encode(mel).mode())
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file({"mel": mel[:, 0].contiguous(), "recon": recon[:, 0].contiguous()}, str(out_dir / "recon.safetensors"))
