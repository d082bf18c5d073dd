"""Official CNN14 / VGGish checkpoint layouts (written here with the true key names and shapes), front ends,
and the embedder interface of the offline embedders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sara.audio.dsp import spectrogram
from sara.errors import CheckpointError, ConfigError
from sara.eval.embedders import build_embedder
from sara.eval.embedders.classifier import (
    AudioClassifier,
    ClassifierConfig,
    ClassifierEmbedder,
    ClassifierEnsemble,
    load_classifier,
)
from sara.eval.embedders.cnn14 import Cnn14, Cnn14Config, Cnn14Embedder, load_cnn14
from sara.eval.embedders.semantic import SemanticEmbedder
from sara.eval.embedders.vggish import VGGish, VGGishEmbedder, load_vggish, vggish_examples, vggish_mel_matrix

# Official PANNs Cnn14_16k_mAP=0.438.pth "model" entries (subset; every conv block has the same pattern).
CNN14_16K_SHAPES = {
    "spectrogram_extractor.stft.conv_real.weight": (257, 1, 512),
    "spectrogram_extractor.stft.conv_imag.weight": (257, 1, 512),
    "logmel_extractor.melW": (257, 64),
    "bn0.weight": (64,), "bn0.running_mean": (64,), "bn0.num_batches_tracked": (),
    "conv_block1.conv1.weight": (64, 1, 3, 3), "conv_block1.conv2.weight": (64, 64, 3, 3),
    "conv_block1.bn1.weight": (64,), "conv_block1.bn2.running_var": (64,),
    "conv_block2.conv1.weight": (128, 64, 3, 3), "conv_block3.conv1.weight": (256, 128, 3, 3),
    "conv_block4.conv1.weight": (512, 256, 3, 3), "conv_block5.conv1.weight": (1024, 512, 3, 3),
    "conv_block6.conv1.weight": (2048, 1024, 3, 3), "conv_block6.conv2.weight": (2048, 2048, 3, 3),
    "fc1.weight": (2048, 2048), "fc1.bias": (2048,),
    "fc_audioset.weight": (527, 2048), "fc_audioset.bias": (527,),
}
# torchvggish vggish-10086976.pth (complete).
VGGISH_SHAPES = {
    "features.0.weight": (64, 1, 3, 3), "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3), "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3), "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3), "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3), "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3), "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288), "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096), "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096), "embeddings.4.bias": (128,),
}


def _random_state(shapes: dict[str, tuple[int, ...]], template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint with the template's keys, small random weights, positive BN variances."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for k, v in template.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(100)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=gen) + 0.5
        elif "stft" in k or "melW" in k:
            out[k] = v.clone()  # the official file holds the fixed DFT / mel matrices
        else:
            out[k] = torch.randn(v.shape, generator=gen) * 0.02
    return out


def test_cnn14_official_layout_loads_and_runs(tmp_path: Path) -> None:
    template = Cnn14(Cnn14Config.sr16k()).state_dict()
    for key, shape in CNN14_16K_SHAPES.items():
        assert tuple(template[key].shape) == shape, key
    assert len(template) == 2 + 1 + 5 + 6 * 12 + 4  # stft, melW, bn0, 6 x (2 conv + 2 BN x 5), fc1 + fc_audioset
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": _random_state(CNN14_16K_SHAPES, template), "iteration": 1}, path)
    emb = Cnn14Embedder.from_checkpoint(path)
    assert emb.sample_rate == 16000 and emb.model.config == Cnn14Config.sr16k()
    out = emb.run(torch.randn(2, 24000), 24000)  # stereo 1 s at 24 kHz -> first channel, 16 kHz, padded to 2 s
    assert out.clip.shape == (2048,) and out.logits.shape == (527,) and out.frames.shape == (1, 2048)
    assert torch.all(out.clip >= 0)  # "2048" is post-ReLU
    assert emb.probs(torch.randn(1, 16000), 16000).max() <= 1.0


def test_cnn14_front_end_is_power_spectrogram_and_slaney_mel() -> None:
    model = Cnn14(Cnn14Config.tiny())
    x = torch.randn(2, 4000)
    power = model.spectrogram_extractor(x)[:, 0].transpose(1, 2)  # [B, F, N]
    torch.testing.assert_close(power, spectrogram(x, 512, 160), rtol=1e-3, atol=1e-3)
    assert model.logmel_extractor.melW.shape == (257, 64)


def test_cnn14_32k_config_is_inferred_from_window(tmp_path: Path) -> None:
    cfg = Cnn14Config(sample_rate=32000, window_size=1024, hop_size=320, fmax=14000.0, channels=(4, 4, 8, 8, 16, 16),
                      classes_num=527)
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": Cnn14(cfg).state_dict()}, path)
    model = load_cnn14(path)
    assert model.config == cfg
    emb, logits = model(torch.randn(1, 32000))
    assert emb.shape == (1, 16) and logits.shape == (1, 527)


def test_cnn14_wrong_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"model": {"foo": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="CNN14"):
        load_cnn14(path)


def test_vggish_official_layout_loads_and_runs(tmp_path: Path) -> None:
    from sara.eval.embedders.vggish import VGGishConfig

    template = VGGish(VGGishConfig()).state_dict()
    assert {k: tuple(v.shape) for k, v in template.items()} == VGGISH_SHAPES
    path = tmp_path / "vggish-10086976.pth"
    torch.save(_random_state(VGGISH_SHAPES, template), path)
    emb = VGGishEmbedder.from_checkpoint(path)
    out = emb.run(torch.randn(1, 48000 * 3), 48000)  # 3 s -> 16 kHz -> 298 frames -> 3 examples
    assert out.frames.shape == (3, 128) and out.clip.shape == (128,) and out.logits is None
    assert (out.frames < 0).any()  # final ReLU removed, as the FAD tools do


def test_vggish_front_end() -> None:
    assert vggish_examples(torch.randn(160000)).shape == (10, 1, 96, 64)  # 998 frames -> 10 examples
    mel = vggish_mel_matrix()
    assert mel.shape == (257, 64) and torch.all(mel[0] == 0)
    silence = vggish_examples(torch.zeros(16000 * 2))
    torch.testing.assert_close(silence, torch.full_like(silence, float(np.log(0.01))))


def test_vggish_tiny_checkpoint_infers_widths(tmp_path: Path) -> None:
    from sara.eval.embedders.vggish import VGGishConfig

    path = tmp_path / "v.pth"
    torch.save(VGGish(VGGishConfig.tiny()).state_dict(), path)
    assert load_vggish(path).config == VGGishConfig.tiny()


def test_classifier_release_roundtrip_and_interface(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AudioClassifier(ClassifierConfig.tiny(("dog", "rain", "siren")))
    model.save_pretrained(tmp_path / "clf")
    emb = build_embedder(f"classifier:{tmp_path / 'clf'}")
    assert isinstance(emb, ClassifierEmbedder)
    wav = torch.randn(1, 24000)
    out = emb.run(wav, 24000)
    assert out.frames.shape == (51, 16) and out.clip.shape == (16,) and out.logits.shape == (3,)
    torch.testing.assert_close(out.logits, ClassifierEmbedder(model).run(wav, 24000).logits)
    assert emb.probs(wav, 24000).sum() == pytest.approx(1.0, abs=1e-5)


def test_classifier_ensemble_scores_with_the_mean_of_its_members_probabilities(tmp_path: Path) -> None:
    names = ("dog", "rain", "siren")
    for seed in (0, 1):
        torch.manual_seed(seed)
        AudioClassifier(ClassifierConfig.tiny(names)).save_pretrained(tmp_path / f"s{seed}")
    assert isinstance(load_classifier([tmp_path / "s0"]), ClassifierEmbedder)
    ens = load_classifier([tmp_path / "s0", tmp_path / "s1"])
    assert isinstance(ens, ClassifierEnsemble) and ens.model.config.class_names == names
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    members = [ClassifierEmbedder.from_pretrained(tmp_path / f"s{s}").probs(wav, 16000) for s in (0, 1)]
    assert not torch.allclose(members[0], members[1])  # two seeds really are two scorers
    torch.testing.assert_close(ens.probs(wav, 16000), (members[0] + members[1]) / 2)
    assert ens.run(wav, 16000).frames.shape == ClassifierEmbedder.from_pretrained(tmp_path / "s0").run(wav, 16000).frames.shape
    assert ens.cache_id != load_classifier([tmp_path / "s0"]).cache_id
    AudioClassifier(ClassifierConfig.tiny(("dog", "rain"))).save_pretrained(tmp_path / "other")
    with pytest.raises(ConfigError, match="differ in their classes"):
        load_classifier([tmp_path / "s0", tmp_path / "other"])
    with pytest.raises(ConfigError, match="at least one"):
        ClassifierEnsemble([])


class FakeEncoder:
    sample_rate = 16000

    def encode(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        n = wav.shape[-1] * 25 // sample_rate
        return torch.arange(n * 4, dtype=torch.float32).reshape(1, 4, n)


def test_semantic_and_mel_embedders() -> None:
    out = SemanticEmbedder(FakeEncoder()).run(torch.randn(2, 32000), 16000)
    assert out.frames.shape == (50, 4)
    torch.testing.assert_close(out.clip, out.frames.mean(0))
    mel = build_embedder("mel").run(torch.randn(16000), 16000)
    assert mel.frames.shape == (101, 128) and mel.logits is None
