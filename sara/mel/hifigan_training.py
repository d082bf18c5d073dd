"""Training the 16 kHz HiFi-GAN (``sara train hifigan``) on the shared loop, with HiFi-GAN V1's objective.

Kong et al. 2020 (https://arxiv.org/abs/2010.05646), section 2.3 / 2.4, as AudioLDM trains its
``HIFIGAN_16K_64`` (batch 16, 8192-sample segments, AdamW(0.8, 0.99) lr 2e-4 decayed 0.999 per epoch):

* discriminators: the multi-period discriminator (periods 2, 3, 5, 7, 11; sara's
  :class:`~sara.vocoder.discriminators.MultiPeriodDiscriminator`, the HiFi-GAN layout) and HiFi-GAN's
  multi-scale discriminator (:class:`~sara.mel.hifigan_discriminators.MultiScaleDiscriminator`: three grouped-conv stacks on the raw, 2x and 4x
  average-pooled waveform, spectral norm on the first, weight norm on the others);
* losses: least-squares GAN (``D: (1 - D(x))^2 + D(G(s))^2``, ``G: (1 - D(G(s)))^2``), feature matching x2 and
  the L1 distance of log-mels x45 -- the log-mel of :func:`sara.mel.frontend.log_mel`, the front end whose
  output the vocoder inverts;
* the generator trains with weight norm (``torch.nn.utils.parametrizations``), folded away at export.

Deviations, all documented choices: one optimizer with a generator and a discriminator parameter group and
one backward per batch (the pattern of :mod:`sara.vocoder.gan`: the discriminator terms see the generated
audio detached, the generator's adversarial and feature-matching terms are computed with the
discriminators' parameters frozen, so each half receives exactly its own loss' gradients; both halves are
updated from the same discriminator state, where HiFi-GAN steps the discriminator first -- one step of
staleness).  The learning rate decays per step, continuously: ``lr * lr_decay ** (step / lr_decay_steps)``
(HiFi-GAN multiplies by 0.999 once per epoch; its LJSpeech epoch is 12,950 clips / 16 = 810 steps, and
AudioLDM's corpus is far larger, so ``lr_decay_steps`` is a setting, default 1000).
Segments are 8160 samples (51 frames), the whole number of 160-sample frames nearest below HiFi-GAN's 8192.
Audio is prepared as Tango prepares it (:func:`sara.mel.frontend.prepare_waveform`: mean removed, peak 0.5,
per clip), so the vocoder trains on the level it sees at inference.
``adversarial=False`` trains on the mel loss alone (no discriminators): about 10x cheaper on a CPU (small
generator, batch 16 x 8160 samples, one shared core: 1.4 s per step against 14 s with the small MPD + MSD), at
the price of the over-smoothed, buzzy detail that a pure regression loss gives.

Crops are a function of ``(seed, epoch, item)`` only, so a resumed run sees the same data as an uninterrupted
one: each item gets its own ``torch.Generator``, seeded from ``(seed, epoch, index)`` once ``set_epoch`` has been
called, and otherwise from the global RNG, which sara's loop seeds per item from ``(seed, epoch, position)``
(:class:`sara.train.resume.SeededDataset`, whose wrapper hides ``set_epoch``); the dataset never draws from
the global RNG in between, so it cannot shift the training step's stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.errors import ConfigError
from sara.mel.frontend import MelConfig, MelFrontend, prepare_waveform
from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
from sara.mel.hifigan_discriminators import (
    HiFiGANDiscriminatorConfig,
    MultiScaleDiscriminator,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from sara.mel.hifigan_official import fold_weight_norm
from sara.serialization import load_state_dict_strict
from sara.train.task import LossOutput, TrainTask
from sara.vocoder.discriminators import MultiPeriodDiscriminator
from sara.vocoder.gan import feature_matching_loss

__all__ = ["HiFiGANDiscriminatorConfig", "HiFiGANGAN", "HiFiGANSegments", "HiFiGANTask", "HiFiGANTrainConfig",
           "MultiScaleDiscriminator", "lsgan_discriminator_loss", "lsgan_generator_loss"]

Scores = list[Tensor]
Features = list[list[Tensor]]


# ------------------------------------------------------------------------------------------- data
def _item_generator(seed: int, epoch: int | None, index: int) -> torch.Generator:
    """A generator seeded by ``(seed, epoch, index)``; with ``epoch`` None, by one draw of the global RNG (which
    sara's loop seeds per item from ``(seed, epoch, position)``)."""
    if epoch is None:
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63))


class HiFiGANSegments(Dataset):
    """Fixed-length 16 kHz segments of whole clips prepared as Tango prepares them.

    Args:
        clips: audio files (any rate; mono-mixed).
        segment_samples: crop length at ``mel.sample_rate`` (shorter clips are zero-padded at the end).
        mel: the front end whose preparation (:func:`prepare_waveform`: resample, mean removal, peak 0.5) is
            applied to the whole clip before cropping.
        seed: data seed; after ``set_epoch(e)`` crop ``i`` depends on ``(seed, e, i)`` only (before it, on the
            global RNG as seeded for the item by the loop; see the module docstring).
        train: random crops (up to ``rms_tries`` starts, the first with RMS >= ``min_rms`` wins); otherwise the
            centre crop.
    """

    def __init__(self, clips: list[Path], segment_samples: int, mel: MelConfig, *, seed: int = 0, train: bool = True,
                 min_rms: float = 0.005, rms_tries: int = 3) -> None:
        self.clips, self.segment, self.mel = clips, segment_samples, mel
        self.seed, self.train, self.min_rms, self.rms_tries = seed, train, min_rms, rms_tries
        self.epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (accelerate's data loader calls it when it sees the dataset)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def waveform(self, index: int) -> Tensor:
        """The prepared clip ``[N]`` at ``mel.sample_rate``."""
        from sara.audio.io import load_audio

        wav, sr = load_audio(self.clips[index], mono=True)
        return prepare_waveform(wav, sr, None, self.mel)[0]

    def _start(self, wav: Tensor, index: int) -> int:
        """Crop start: 0 for short clips, the centre for validation, else a seeded draw (see the class)."""
        last = wav.numel() - self.segment
        if last <= 0:
            return 0
        if not self.train:
            return last // 2
        gen = _item_generator(self.seed, self.epoch, index)
        starts = torch.randint(0, last + 1, (self.rms_tries,), generator=gen).tolist()
        for s in starts:
            if float(wav[s : s + self.segment].pow(2).mean().sqrt()) >= self.min_rms:
                return s
        return starts[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """``{"audio": [segment_samples]}`` float32."""
        wav = self.waveform(index)
        s = self._start(wav, index)
        crop = wav[s : s + self.segment]
        return {"audio": F.pad(crop, (0, self.segment - crop.numel())).float()}


# ----------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class HiFiGANTrainConfig:
    """Everything ``sara train hifigan`` needs besides the generic loop settings.

    Attributes:
        model: generator size (from ``init`` when fine-tuning).
        mel: the front end of the input and of the mel loss (its n_mels / hop / rate must match ``model``).
        train_data: manifests (``split == "train"`` items), audio directories or files.
        valid_data: validation sources; when empty, the ``valid`` split of the train manifests.
        init: a vocoder to fine-tune (anything :meth:`HiFiGAN.from_pretrained` reads); None = fresh weights.
        segment_samples: crop length (a multiple of the hop, > n_fft / 2).
        seed: data seed (crops).
        min_rms, rms_tries: silent-crop retry.
        adversarial: train against MPD + MSD; False = mel L1 only.
        discriminator: discriminator sizes.
        weight_norm: train the generator with weight norm (HiFi-GAN); folded at export.
        init_std: None = PyTorch's default initialisation, which HiFi-GAN effectively uses; a float = the
            N(0, std) its ``init_weights`` intends (see :meth:`HiFiGAN.reset_parameters`).  Ignored with ``init``.
        lr, betas, weight_decay: AdamW for both parameter groups (HiFi-GAN: 2e-4, (0.8, 0.99), 0.01).
        lr_decay, lr_decay_steps: ``lr * lr_decay ** (step / lr_decay_steps)``.
        mel_weight, fm_weight: loss weights (HiFi-GAN: 45, 2).
        num_log_samples, log_sample_seconds: what ``log_samples`` writes.
    """

    model: HiFiGANConfig = field(default_factory=HiFiGANConfig.small)
    mel: MelConfig = field(default_factory=MelConfig)
    train_data: tuple[str, ...] = ()
    valid_data: tuple[str, ...] = ()
    init: str | None = None
    segment_samples: int = 8160
    seed: int = 0
    min_rms: float = 0.005
    rms_tries: int = 3
    adversarial: bool = True
    discriminator: HiFiGANDiscriminatorConfig = field(default_factory=HiFiGANDiscriminatorConfig.paper)
    weight_norm: bool = True
    init_std: float | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    lr_decay: float = 0.999
    lr_decay_steps: int = 1000
    mel_weight: float = 45.0
    fm_weight: float = 2.0
    num_log_samples: int = 2
    log_sample_seconds: float = 4.0

    def __post_init__(self) -> None:
        m, mel = self.model, self.mel
        if (m.n_mels, m.hop_length, m.sample_rate) != (mel.n_mels, mel.hop_length, mel.sample_rate):
            raise ValueError(f"the generator ({m.n_mels} mels, hop {m.hop_length}, {m.sample_rate} Hz) does not fit "
                             f"the front end ({mel.n_mels} mels, hop {mel.hop_length}, {mel.sample_rate} Hz)")
        if self.segment_samples % m.hop_length or self.segment_samples <= mel.n_fft // 2:
            raise ValueError(f"segment_samples {self.segment_samples} must be a multiple of the hop {m.hop_length} "
                             f"and longer than n_fft / 2 = {mel.n_fft // 2}")
        if not (self.lr > 0 and 0 < self.lr_decay <= 1 and self.lr_decay_steps >= 1):
            raise ValueError("need lr > 0, 0 < lr_decay <= 1 and lr_decay_steps >= 1")
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError(f"init_std must be > 0 (or None for PyTorch's default), got {self.init_std}")
        if min(self.mel_weight, self.fm_weight, self.weight_decay, self.min_rms) < 0 or self.rms_tries < 1:
            raise ValueError("loss weights, weight_decay and min_rms must be >= 0 and rms_tries >= 1")


# ------------------------------------------------------------------------------------------ model
class HiFiGANGAN(nn.Module):
    """What ``sara train hifigan`` trains: the ``generator``, its front end (non-persistent buffers only) and,
    when adversarial, the ``mpd`` and ``msd``.  Every network evaluation of a step happens in :meth:`forward`."""

    def __init__(self, generator: HiFiGAN, mel: MelConfig, discriminator: HiFiGANDiscriminatorConfig | None,
                 use_weight_norm: bool = True) -> None:
        super().__init__()
        self.generator = generator
        if use_weight_norm:
            generator.generator.apply_weight_norm()  # exact: g = ||w||, v = w
        self.frontend = MelFrontend(mel)
        self.mpd = MultiPeriodDiscriminator(discriminator.mpd_config()) if discriminator is not None else None
        self.msd = MultiScaleDiscriminator(discriminator) if discriminator is not None else None

    def discriminate(self, wav: Tensor) -> tuple[tuple[Scores, Features], tuple[Scores, Features]]:
        """``((mpd scores, mpd features), (msd scores, msd features))`` of ``wav [B, L]``."""
        assert self.mpd is not None and self.msd is not None
        return self.mpd(wav), self.msd(wav)

    def forward(self, real: Tensor) -> dict[str, Any]:
        """Vocode the log-mel of ``real [B, F * hop]`` and score real and generated audio.

        Returns:
            ``fake [B, F * hop]``, ``mel_real`` / ``mel_fake [B, F + 1, n_mels]`` and, when training with
            discriminators, ``d_real`` / ``d_fake`` (of the detached fake) / ``d_gen`` (of the fake with the
            discriminators' parameters frozen), each ``((mpd scores, features), (msd scores, features))``.
        """
        frames = real.shape[-1] // self.generator.hop_length
        mel_real = self.frontend(real)
        fake = self.generator(mel_real[:, :frames])
        out: dict[str, Any] = {"fake": fake, "mel_real": mel_real, "mel_fake": self.frontend(fake)}
        if self.mpd is None or self.msd is None or not self.training:
            return out
        out["d_real"], out["d_fake"] = self.discriminate(real), self.discriminate(fake.detach())
        for d in (self.mpd, self.msd):
            d.requires_grad_(False)  # this pass gives gradients to the generated audio only
        try:
            out["d_gen"] = self.discriminate(fake)
        finally:
            for d in (self.mpd, self.msd):
                d.requires_grad_(True)
        return out


def _unwrap(model: nn.Module) -> HiFiGANGAN:
    """The :class:`HiFiGANGAN` inside a DDP / accelerate wrapper."""
    return getattr(model, "module", model)  # type: ignore[return-value]


def _gan_terms(out: dict[str, Any]) -> dict[str, Tensor]:
    """Discriminator (``disc_*``), adversarial (``adv_*``) and feature-matching (``fm_*``) losses, per family."""
    terms = {}
    for i, name in enumerate(("mpd", "msd")):
        (real, real_f), (fake, _), (gen, gen_f) = out["d_real"][i], out["d_fake"][i], out["d_gen"][i]
        terms[f"disc_{name}"] = lsgan_discriminator_loss(real, fake)
        terms[f"adv_{name}"] = lsgan_generator_loss(gen)
        terms[f"fm_{name}"] = feature_matching_loss(real_f, gen_f)
    return terms


# ------------------------------------------------------------------------------------------- task
class HiFiGANTask(TrainTask):
    """HiFi-GAN V1 training of :class:`~sara.mel.hifigan.HiFiGAN` on 16 kHz log-mels."""

    name: ClassVar[str] = "hifigan"
    config_class: ClassVar[type] = HiFiGANTrainConfig
    config: HiFiGANTrainConfig
    default_grad_clip: ClassVar[float | None] = None  # HiFi-GAN does not clip gradients

    def build_model(self) -> nn.Module:
        """The generator (fresh, or ``init``) with the front end and, when adversarial, fresh MPD + MSD."""
        cfg = self.config
        if cfg.init is None:
            generator = HiFiGAN(cfg.model, init_weights=False)
            generator.reset_parameters(cfg.init_std)
        else:
            generator = HiFiGAN.from_pretrained(cfg.init).train()
        if generator.config != cfg.model:
            raise ConfigError(f"{cfg.init}: its generator config differs from the task's model config")
        return HiFiGANGAN(generator, cfg.mel, cfg.discriminator if cfg.adversarial else None, cfg.weight_norm)

    def _dataset(self, sources: tuple[str, ...], split: str, train: bool,
                 segment: int | None = None) -> HiFiGANSegments:
        """Segments of the ``split`` items of ``sources`` (``segment`` samples; default: the task's)."""
        from sara.vocoder.data import list_clips

        cfg = self.config
        clips = [c.path for c in list_clips(sources, split)]
        return HiFiGANSegments(clips, segment or cfg.segment_samples, cfg.mel, seed=cfg.seed, train=train,
                               min_rms=cfg.min_rms, rms_tries=cfg.rms_tries)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Random training crops; centre crops of the validation clips (None when there are none)."""
        cfg = self.config
        train = self._dataset(cfg.train_data, "train", True)
        if len(train) == 0:
            raise ConfigError(f"no training clips found in {list(cfg.train_data)}")
        valid_src = cfg.valid_data or tuple(s for s in cfg.train_data if s.endswith(".jsonl"))
        valid = self._dataset(valid_src, "valid", False) if valid_src else None
        return train, (valid if valid is not None and len(valid) else None)

    def build_optimizer(self, model: nn.Module, max_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """AdamW with a generator group and (adversarial) a discriminator group; per-step exponential decay."""
        cfg, m = self.config, _unwrap(model)
        groups = [{"params": list(m.generator.parameters())}]
        if m.mpd is not None and m.msd is not None:
            groups.append({"params": [*m.mpd.parameters(), *m.msd.parameters()]})
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        decay = math.log(cfg.lr_decay) / cfg.lr_decay_steps
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: math.exp(decay * step))

    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOutput:
        """Training: discriminator + generator losses; evaluation (or ``adversarial=False``): the mel L1."""
        cfg = self.config
        out = model(batch["audio"].float())
        mel = F.l1_loss(out["mel_fake"], out["mel_real"])
        if "d_gen" not in out:
            return LossOutput(cfg.mel_weight * mel, {"loss/mel": mel.detach()})
        t = _gan_terms(out)
        total = (t["disc_mpd"] + t["disc_msd"] + t["adv_mpd"] + t["adv_msd"]
                 + cfg.fm_weight * (t["fm_mpd"] + t["fm_msd"]) + cfg.mel_weight * mel)
        return LossOutput(total, {"loss/mel": mel.detach(), **{f"loss/{k}": v.detach() for k, v in t.items()}})

    # ------------------------------------------------------------------------------ samples/export
    def release(self, model: nn.Module) -> HiFiGAN:
        """A plain :class:`HiFiGAN` (weight norm folded) holding the trained generator's weights."""
        state = fold_weight_norm(_unwrap(model).generator.state_dict())
        vocoder = HiFiGAN(self.config.model, init_weights=False)
        load_state_dict_strict(vocoder, state, source="training generator")
        return vocoder.eval()

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Vocode the log-mels of the first validation (or training) clips; writes wavs and ``mel_l1.json``."""
        import json

        from sara.audio.io import save_audio

        cfg = self.config
        hop = cfg.model.hop_length
        seconds = max(cfg.mel.n_fft // hop + 1, round(cfg.log_sample_seconds * cfg.model.sample_rate / hop)) * hop
        ds = self._dataset(cfg.valid_data or cfg.train_data, "valid", False, seconds)
        ds = ds if len(ds) else self._dataset(cfg.train_data, "train", False, seconds)
        vocoder, frontend = self.release(model), MelFrontend(cfg.mel)
        out_dir.mkdir(parents=True, exist_ok=True)
        dists = {}
        for i in range(min(cfg.num_log_samples, len(ds))):
            real = ds[i]["audio"][None]
            fake = vocoder(frontend(real)[:, : seconds // hop])
            save_audio(out_dir / f"sample-{i}.wav", fake[0], cfg.model.sample_rate)
            save_audio(out_dir / f"reference-{i}.wav", real[0], cfg.model.sample_rate)
            dists[ds.clips[i].name] = float(F.l1_loss(frontend(fake), frontend(real)))
        (out_dir / "mel_l1.json").write_text(json.dumps({"step": step, **dists}, indent=2) + "\n")

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """A :class:`HiFiGAN` release of the generator alone."""
        return self.release(model).save_pretrained(out_dir)
