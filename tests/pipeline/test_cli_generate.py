"""``sara generate`` through ``main([...])``: single prompt, batch mode (official names, resumable), bad args."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from sara.cli.__main__ import main
from sara.cli.generate import batch_subdir, official_file_name


def test_generate_writes_24k_wav_of_requested_duration(tiny_release, tmp_path, capsys) -> None:
    out = tmp_path / "dog.wav"
    code = main(["generate", "a dog barks", "-o", str(out), "--model", str(tiny_release), "--duration", "1.5",
                 "--steps", "2", "--vocoder-steps", "2", "--seed", "0", "--cfg", "2"])
    assert code == 0
    info = sf.info(str(out))
    assert info.samplerate == 24000 and info.channels == 1 and info.frames == round(1.5 * 24000)  # exact
    assert "wrote" in capsys.readouterr().out


def test_batch_mode_official_names_and_resume(tiny_release, tmp_path, capsys) -> None:
    captions = tmp_path / "caption.jsonl"
    rows = [{"audio_id": "Y7fmOlUlwoNg.wav", "caption": "A dog barks: loud?"},
            {"audio_id": "Yabc.wav", "caption": "rain on a roof"}]
    captions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = ["generate", "--captions", str(captions), "--output-dir", str(tmp_path / "outs"), "--model",
            str(tiny_release), "--duration", "1", "--steps", "2", "--vocoder-steps", "1", "--cfg", "3.5"]
    assert main(args) == 0
    sub = tmp_path / "outs" / "guidance_scale-3.5_dit_steps-2_vocoder_steps-1_latent_shape-768-25"
    names = sorted(p.name for p in sub.iterdir())
    assert names == ["Y7fmOlUlwoNg_A_dog_barks__loud_.wav", "Yabc_rain_on_a_roof.wav"]
    assert "wrote 2 files" in capsys.readouterr().out
    assert main(args) == 0
    assert "wrote 0 files, skipped 2" in capsys.readouterr().out


def test_official_name_rules() -> None:
    assert official_file_name("Yx.wav", 'a/b\\c*d?e:f"g<h>i|j k') == "Yx_a_b_c_d_e_f_g_h_i_j_k.wav"
    long = official_file_name("Y" * 10 + ".wav", "word " * 50)
    assert len(long) == 104 and long.endswith(".wav")
    assert batch_subdir(3.5, 100, 200, 768, 250) == "guidance_scale-3.5_dit_steps-100_vocoder_steps-200_latent_shape-768-250"


@pytest.mark.parametrize("extra", [["", "-o", "x.wav"], ["a dog", "-o", "x.wav", "--duration", "0"],
                                   ["a dog", "-o", "x.wav", "--duration", "-2"],
                                   ["a dog", "-o", "x.wav", "--duration", "100000"],
                                   ["a dog", "-o", "x.wav", "--duration", "nan"],
                                   ["a dog", "-o", "x.wav", "--duration", "3601"],  # > the long-form cap
                                   ["a dog", "-o", "x.wav", "--steps", "0"],
                                   ["a dog", "-o", "x.wav", "--cfg", "nan"],
                                   ["a dog", "-o", "x.wav", "--cfg", "inf"],
                                   ["a dog", "-o", "x.wav", "--vocoder-steps", "0"]])
def test_bad_arguments_one_line_no_traceback(tiny_release, tmp_path, capsys, extra) -> None:
    code = main(["generate", *extra, "--model", str(tiny_release)])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "error" in err


def test_missing_model_is_one_line(tmp_path, capsys) -> None:
    code = main(["generate", "a dog", "-o", str(tmp_path / "x.wav"), "--model", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and "no such model directory" in err and "Traceback" not in err


def test_generate_without_duration_uses_the_models_default(tiny_pipe, tmp_path) -> None:
    from sara.pipelines.text_to_audio import TextToAudio

    model = TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder,
                        text_encoder_spec=tiny_pipe.text_encoder_spec, default_duration=0.8)
    model.save_pretrained(tmp_path / "m")
    out = tmp_path / "x.wav"
    assert main(["generate", "a dog", "-o", str(out), "--model", str(tmp_path / "m"), "--steps", "1",
                 "--vocoder-steps", "1"]) == 0
    assert sf.info(str(out)).frames == 20 * 960


def test_demo_uses_the_models_default_duration(tiny_pipe, tmp_path, capsys) -> None:
    from sara.pipelines.text_to_audio import TextToAudio

    model = TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder,
                        text_encoder_spec=tiny_pipe.text_encoder_spec, default_duration=0.4)
    model.save_pretrained(tmp_path / "m")
    assert main(["demo", "--model", str(tmp_path / "m"), "--output", str(tmp_path / "out"),
                 "--prompt", "a dog barking"]) == 0
    assert sf.info(str(tmp_path / "out" / "a_dog_barking.wav")).frames == 10 * 960
    assert main(["demo", "--model", str(tmp_path / "m"), "--output", str(tmp_path / "bad"),
                 "--duration", "-1"]) == 2
    assert not (tmp_path / "bad").exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_demo_runs_every_bundled_model_into_its_own_folder(tiny_pipe, tmp_path, monkeypatch) -> None:
    import sara.pretrained
    from sara.pipelines.text_to_audio import TextToAudio
    from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

    TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder, text_encoder_spec=tiny_pipe.text_encoder_spec,
                default_duration=0.4).save_pretrained(tmp_path / "bundled" / "sara-demo")
    tiny_minilm_pipeline().save_pretrained(tmp_path / "bundled" / "ldm-demo")
    (tmp_path / "bundled" / "audiogen-demo").mkdir()  # no config.json: not a bundled model
    monkeypatch.setattr(sara.pretrained, "BUNDLED_DIR", tmp_path / "bundled")
    assert [p.name for p in sara.pretrained.bundled_models()] == ["sara-demo", "ldm-demo"]
    assert main(["demo", "--output", str(tmp_path / "out"), "--prompt", "a dog barking", "--duration", "0.32"]) == 0
    for name in ("sara-demo", "ldm-demo"):
        info = sf.info(str(tmp_path / "out" / name / "a_dog_barking.wav"))
        assert abs(info.frames / info.samplerate - 0.32) < 0.05
    monkeypatch.setattr(sara.pretrained, "BUNDLED_DIR", tmp_path / "none")
    assert main(["demo", "--output", str(tmp_path / "out2")]) == 2
