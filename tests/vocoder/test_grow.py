"""Deepening a trained vocoder: identity at the start, the new blocks train under ScaledAdam, CLI and resume."""

import json

import pytest
import torch

from sara.cli.__main__ import main
from sara.vocoder import SemanticVocoder
from sara.vocoder.gan import VocoderGANTask, VocoderGANTrainConfig
from sara.vocoder.grow import check_deepening, deepen_generator, grown_min_rms, grown_parameters
from sara.vocoder.model import VocoderGenerator
from sara.vocoder.optim import ScaledAdam

from .helpers import randomize, tiny_config, tiny_encoder, write_tone


def _generator() -> VocoderGenerator:
    return randomize(VocoderGenerator(tiny_config())).eval()


def test_deepened_generator_computes_the_same_function() -> None:
    gen = _generator()
    deeper = deepen_generator(gen, (3, 2)).eval()
    assert [len(e.decoder.blocks) for e in deeper.estimators] == [3, 2] and deeper.cfg.num_layers == (3, 2)
    torch.manual_seed(0)
    x, t, lat = torch.randn(2, 1920), torch.rand(2), torch.randn(2, 32, 2)
    torch.testing.assert_close(deeper(x, t, latents=lat), gen(x, t, latents=lat), rtol=0, atol=0)
    assert len(grown_parameters(deeper, (1, 1))) > 0 and not grown_parameters(deeper, (3, 2))
    first, copies = deeper.estimators[0].decoder.blocks[0], list(deeper.estimators[0].decoder.blocks)[1:]
    for new in copies:  # hidden layers start as the trained block's; the output projection at zero
        torch.testing.assert_close(new.pwconv1.weight, first.pwconv1.weight)
        assert not new.pwconv2.weight.any() and not new.pwconv2.bias.any()


def test_deepening_refuses_shallower_or_other_branch_counts() -> None:
    check_deepening((3, 3), (3, 5))
    for bad in ((2, 3), (3,), (3, 3, 3)):
        with pytest.raises(ValueError, match="cannot deepen"):
            check_deepening((3, 3), bad)
    check_deepening((0, 3), (0, 4))
    with pytest.raises(ValueError, match="without blocks"):
        check_deepening((0, 3), (1, 3))


def test_rms_floor_lets_zero_initialised_blocks_train() -> None:
    """Under ScaledAdam's default floor a zero output projection barely moves; with :func:`grown_min_rms` it
    moves like a trained tensor of that size."""
    moved = {}
    for label, floor in (("default", None), ("grown", True)):
        deeper = deepen_generator(_generator(), (2, 2)).train()
        new = grown_parameters(deeper, (1, 1))
        group = {"params": new, "lr": 0.002, **({"param_min_rms": grown_min_rms(deeper, (1, 1))} if floor else {})}
        opt = ScaledAdam([group])
        torch.manual_seed(0)
        for _ in range(5):
            opt.zero_grad()
            x, t, lat = torch.randn(2, 1920), torch.rand(2), torch.randn(2, 32, 2)
            deeper(x, t, latents=lat).pow(2).mean().backward()
            opt.step()
        w = deeper.estimators[0].decoder.blocks[1].pwconv2.weight
        moved[label] = float(w.detach().pow(2).mean().sqrt())
        if floor:  # five steps of size about lr * floor each
            assert moved[label] > 0.5 * 0.002 * group["param_min_rms"]
    assert moved["grown"] > 100 * moved["default"]


@pytest.fixture()
def data(tmp_path):  # noqa: ANN001, ANN201
    for i in range(3):
        write_tone(tmp_path / "data" / f"t{i}.wav", 0.8, 24000, 200.0 + 150 * i)
    tiny_encoder().save_pretrained(tmp_path / "enc")
    voc = SemanticVocoder(tiny_config())
    randomize(voc.generator)
    voc.save_pretrained(tmp_path / "stage1")
    return tmp_path


def test_task_deepens_init_and_gives_new_blocks_their_own_group(data) -> None:  # noqa: ANN001
    cfg = VocoderGANTrainConfig(model=tiny_config(num_layers=(2, 3)), train_data=(str(data / "data"),),
                                encoder=str(data / "enc"), segment_seconds=0.4, init=str(data / "stage1"),
                                adversarial=False, gen_steps=2)
    task = VocoderGANTask(cfg)
    model = task.build_model().eval()
    stage1 = SemanticVocoder.from_pretrained(data / "stage1").generator.eval()
    torch.manual_seed(0)
    x, t, lat = torch.randn(1, 1920), torch.rand(1), torch.randn(1, 32, 2)
    torch.testing.assert_close(model.generator(x, t, latents=lat), stage1(x, t, latents=lat), rtol=0, atol=0)
    opt, _ = task.build_optimizer(model, 10)
    assert len(opt.param_groups) == 2
    assert opt.param_groups[1]["param_min_rms"] == pytest.approx(grown_min_rms(model.generator, (1, 1)))
    assert {id(p) for p in opt.param_groups[1]["params"]} == {id(p) for p in grown_parameters(model.generator, (1, 1))}


def test_train_vocoder_gan_cli_deepens_and_resumes(data, capsys) -> None:  # noqa: ANN001
    common = ["--stage", "gan", "--no-adversarial", "--gan-steps", "1", "--init", str(data / "stage1"),
              "--data", str(data / "data"), "--encoder", str(data / "enc"), "--segment-seconds", "0.4",
              "--batch-size", "2", "--ckpt-every", "1", "--run-dir", str(data / "run")]
    assert main(["train", "vocoder", *common, "--num-layers", "2", "2", "--max-steps", "2"]) == 0, \
        capsys.readouterr().err
    run = json.loads((data / "run" / "run.json").read_text())
    assert run["task_config"]["model"]["num_layers"] == [2, 2]
    code = main(["train", "vocoder", *common, "--num-layers", "2", "2", "--max-steps", "3",
                 "--export", str(data / "rel")])
    assert code == 0, capsys.readouterr().err
    assert SemanticVocoder.from_pretrained(data / "rel").config.num_layers == (2, 2)
    code = main(["train", "vocoder", *common[:-1], str(data / "run2"), "--num-layers", "2", "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot deepen" in err and "Traceback" not in err
