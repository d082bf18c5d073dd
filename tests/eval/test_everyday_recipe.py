"""recipes/everyday_relevance.py --real-clips (the classifier's ceiling per coarse group) and class-balanced
classifier training."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from sara.audio.io import save_audio
from sara.cli.__main__ import main
from sara.eval.train_classifier import ClassifierTrainConfig, epoch_order

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "everyday_relevance.py"
SR = 16000


def _recipe():  # noqa: ANN202 - the recipe module
    spec = importlib.util.spec_from_file_location("everyday_relevance", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus(root: Path) -> Path:
    """30 one-second clips: ``dog`` (noise, animal) and ``piano`` (tones, melodic instrument), plus a mixture."""
    rows, gen = [], torch.Generator().manual_seed(0)
    t = torch.arange(SR) / SR
    for i in range(30):
        label = "piano" if i % 2 else "dog"
        wav = 0.5 * torch.sin(2 * torch.pi * (300 + 10 * i) * t) if label == "piano" else 0.3 * torch.randn(SR, generator=gen)
        save_audio(root / f"c{i}.wav", wav[None], SR)
        split = ("train", "train", "train", "valid", "test")[i % 5]
        rows.append({"path": f"c{i}.wav", "class": label, "caption": label, "split": split, "kind": "sfx"})
    rows.append({**rows[3], "kind": "mixture"})  # mixtures are not real clips of one group
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def test_real_clips_mode_scores_every_real_clip_per_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _corpus(tmp_path / "corpus")
    clf = tmp_path / "clf"
    assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(clf), "--epochs", "3",
                 "--tiny", "--min-train-clips", "1", "--class-balance", "1"]) == 0
    recipe = _recipe()
    assert recipe.main(["--classifier", str(clf), "--manifest", str(manifest), "--real-clips", "--split", "valid",
                        "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "real_clips_valid.json").read_text())
    assert res["clips"] == 6  # the valid mixture is left out
    assert {g: v["n"] for g, v in res["per_group"].items()} == {"animal": 3, "melodic instrument": 3}
    accs = [v["accuracy"] for v in res["per_group"].values()]
    assert res["coarse_accuracy"] == pytest.approx(sum(accs) / 2) and res["balanced_accuracy"] == pytest.approx(sum(accs) / 2)
    assert recipe.main(["--classifier", str(clf), "--manifest", str(manifest), "--test-captions", "--split", "valid",
                        "--steps", "2", "--duration", "1", "--samples-per-prompt", "1", "--out", str(tmp_path / "out")]) == 0
    cap = json.loads((tmp_path / "out" / "test_captions.json").read_text())
    items, coarse = cap["fine"]["predictions"], cap["coarse"]
    assert len(items) == cap["fine"]["num_prompts"] > 0
    for key in ("generated", "real"):  # the mean probability of each caption's own coarse group
        probs = [i[f"{key}_group_probability"] for i in items]
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert coarse[f"{key}_group_probability"] == pytest.approx(sum(probs) / len(probs))
    capsys.readouterr()
    bad_runs = {"no real 'nope' clips": ["--real-clips", "--split", "nope"],
                "no such model directory": ["--test-captions", "--model", str(tmp_path / "missing")]}
    for message, extra in bad_runs.items():  # one error line and exit code 1, no traceback
        assert recipe.main(["--classifier", str(clf), "--manifest", str(manifest), *extra,
                            "--out", str(tmp_path / "bad")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("everyday_relevance.py: error:")
    assert not (tmp_path / "bad").exists()


def test_several_classifiers_score_as_one_ensemble(tmp_path: Path) -> None:
    manifest = _corpus(tmp_path / "corpus")
    clfs = [tmp_path / f"clf{s}" for s in (0, 1)]
    for seed, clf in enumerate(clfs):
        assert main(["eval", "train-classifier", "--manifest", str(manifest), "--out", str(clf), "--epochs", "2",
                     "--tiny", "--min-train-clips", "1", "--seed", str(seed)]) == 0
    assert _recipe().main(["--classifier", *map(str, clfs), "--manifest", str(manifest), "--real-clips",
                           "--split", "valid", "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "real_clips_valid.json").read_text())
    assert res["classifier"] == f"{clfs[0]} + {clfs[1]}" and res["clips"] == 6
    card_eval = importlib.util.spec_from_file_location("card_eval", RECIPE.parent / "card_eval.py")
    module = importlib.util.module_from_spec(card_eval)
    card_eval.loader.exec_module(module)
    assert module.scorer_name(res["classifier"]) == "clf0 + clf1"


def test_epoch_order_draws_thin_classes_as_often_as_thick_ones() -> None:
    from sara.data.balance import class_weights

    gen = torch.Generator().manual_seed(0)
    assert sorted(epoch_order(10, None, gen).tolist()) == list(range(10))  # no balance: each clip once
    labels = [0] * 90 + [1] * 10
    order = epoch_order(100, class_weights(labels, 1.0), gen)
    draws = torch.stack([epoch_order(100, class_weights(labels, 1.0), gen) for _ in range(50)])
    thin = (draws >= 90).float().mean()
    assert order.shape == (100,) and 0.4 < float(thin) < 0.6  # classes equal: half the draws from the 10 % class
    half = torch.stack([epoch_order(100, class_weights(labels, 0.5), gen) for _ in range(50)])
    assert 0.1 < float((half >= 90).float().mean()) < 0.4  # halfway in log-frequency: 1/(1+3) = 25 %


def test_class_balance_is_range_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="class_balance"):
        ClassifierTrainConfig(class_balance=-1.0)
    assert main(["eval", "train-classifier", "--manifest", "m.jsonl", "--out", "o", "--class-balance", "9"]) == 2
    assert "class-balance" in capsys.readouterr().err


def _module(name: str):  # noqa: ANN202 - a recipe module
    spec = importlib.util.spec_from_file_location(name, RECIPE.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_card_everyday_section_is_built_from_the_json_and_replaced_in_place(tmp_path: Path) -> None:
    cards, evals = _module("model_cards"), _module("card_eval")
    d = tmp_path / "everyday"
    d.mkdir()
    assert evals._everyday_section(tmp_path) == ""  # nothing evaluated: no section
    per_group = {"speech": {"accuracy": 0.8, "clips": 20}, "music": {"accuracy": 0.1, "clips": 20}}
    (d / "everyday.json").write_text(json.dumps({
        "classifier": "/x/classifier_bal05", "clips_per_prompt": 2, "per_group": per_group,
        "settings": {"steps": 32, "solver": "dpm2m", "cfg": 7.0, "duration": 4.0},
        "overall": {"prompts": 20, "clip_accuracy": 0.45, "chance_uniform_group": 0.125, "groups_meeting_target": 1,
                    "demo_recognised": 1, "demo_prompts": 2}}))
    (d / "real_clips_valid.json").write_text(json.dumps({"per_group": {"speech": {"accuracy": 0.95, "n": 30}}}))
    section = evals._everyday_section(tmp_path)
    assert section.startswith(evals.EVERYDAY_TITLE) and "groups recognised in >= 50 % of their clips: 1/8" in section
    assert "| speech | 0.80 (n=20) | 0.95 (n=30) |" in section and "| music | 0.10 (n=20) | - |" in section
    card = ("# card\n\n## Training\n\n## Evaluation\n### Vocoder reconstruction (test split)\n\nkept\n\n"
            "Reproduce the evaluation with the commands.\n\n## Limitations\nsmall\n")
    once = cards.update_card(card, tmp_path)
    assert once.index("kept") < once.index(evals.EVERYDAY_TITLE) < once.index("Reproduce the evaluation")
    twice = cards.update_card(once, tmp_path)
    assert twice == once and twice.count(evals.EVERYDAY_TITLE) == 1 and "0.80 (n=20)" in twice
    (d / "everyday.json").unlink()
    assert cards.update_card(twice, tmp_path) == twice  # no files: the card's own block is kept
    assert twice.endswith("## Limitations\nsmall\n")


def _fake_run(run: Path, task_config: dict, steps: int) -> None:
    """A run folder with what the card reads: run.json, metrics.jsonl and a checkpoint's trainer.json."""
    (run / "checkpoints" / f"step-{steps:08d}").mkdir(parents=True)
    (run / "checkpoints" / f"step-{steps:08d}" / "trainer.json").write_text(json.dumps({"step": steps}))
    (run / "run.json").write_text(json.dumps({"task_config": task_config, "train_config": {"batch_size": 16}}))
    rows = [{"step": 10, "loss/flow": 0.5, "time/session_s": 60.0}, {"step": steps, "loss/flow": 0.4,
            "time/session_s": 600.0}, {"step": steps, "valid/flow": 0.35}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_model_card_update_adds_a_new_stage_row_and_demotes_the_release_it_replaces(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    cards = _module("model_cards")
    _fake_run(tmp_path / "runs" / "vocoder_ft", {"mel_floor": 1e-4, "semantic_weight": 0.0, "gen_steps": 2}, 3000)
    (tmp_path / "bundle" / "vocoder").mkdir(parents=True)
    save_file({"w": torch.zeros(10, 100)}, str(tmp_path / "bundle" / "vocoder" / "model.safetensors"))
    old_rows = ("| SemanticVocoder stage 1 (flow matching, x1 prediction) | (intermediate) | 1 x 8 | 1 min | a | b |\n"
                "| SemanticVocoder stage 2 (fine-tuned through a fixed-step sampler on the mel loss) (the shipped "
                "vocoder) | 4.39 M | 2 x 8 | 2 min | c | d |\n"
                "| text-to-latent DiT fine-tuning (the shipped DiT): y | 5.41 M | 3 x 16 | 3 min | e | f |")
    card = (f"# card\n\n## Training\nHardware: a machine.\n\n{cards.TABLE_HEADER}\n{old_rows}\n\nReproduce: x\n\n"
            "## Evaluation\nReproduce the evaluation with y.\n")
    out = cards.update_card(card, tmp_path / "eval", tmp_path / "runs", tmp_path / "bundle")
    rows = [r for r in out.splitlines() if r.startswith(("| SemanticVocoder", "| text-to-latent"))]
    assert len(rows) == 4 and rows[0] == old_rows.splitlines()[0] and rows[3] == old_rows.splitlines()[2]
    assert rows[1] == ("| SemanticVocoder stage 2 (fine-tuned through a fixed-step sampler on the mel loss) | "
                       "(intermediate) | 2 x 8 | 2 min | c | d |")
    assert rows[2] == ("| SemanticVocoder stage 2 continued (the shipped vocoder): mel floor 0.0001, semantic "
                       "consistency weight 0, 2 steps | 0.00 M | 3000 x 16 | 10 min | loss/flow 0.5 -> loss/flow 0.4 | "
                       "valid/flow 0.35 |")
    assert "Reproduce: x" in out and out.count(cards.TABLE_HEADER.splitlines()[0]) == 1
    assert "Hardware: a machine. Rows regenerated later (SemanticVocoder stage 2 continued): " in out
    assert cards.update_card(out, tmp_path / "eval", tmp_path / "runs", tmp_path / "bundle") == out


def test_model_card_releases_are_the_last_dit_and_vocoder_stages_run(tmp_path: Path) -> None:
    cards = _module("model_cards")
    runs, bundle = tmp_path / "runs", tmp_path / "bundle"
    for name in ("t2a", "t2a_ft", "vocoder_gan", "vocoder_ft"):
        _fake_run(runs / name, {}, 10)
    assert cards._releases(runs, bundle) == {"t2a_ft": bundle / "dit", "vocoder_ft": bundle / "vocoder"}
    disc = {"mpd_channels": [16, 32], "mrd_channels": 16}
    _fake_run(runs / "t2a_ft2", {}, 10)
    _fake_run(runs / "vocoder_adv", {"mel_floor": 1e-4, "gen_steps": 2, "discriminator": disc, "gen_start_step": 200}, 10)
    assert cards._releases(runs, bundle) == {"t2a_ft2": bundle / "dit", "vocoder_adv": bundle / "vocoder"}
    row = cards._stage_row(runs, "vocoder_adv", None)
    assert row.startswith("| SemanticVocoder stage 2 continued against discriminators: mel floor 0.0001, semantic "
                          "consistency weight 0, 2 steps, MPD widths (16, 32), MRD width 16, 200 "
                          "discriminator-only batches | (intermediate) |")
    assert cards._row_stage(row) == "vocoder_adv"
    deep = {"mel_floor": 1e-4, "gen_steps": 2, "lr_gen": 5e-4, "model": {"num_layers": [6, 6, 6]}}
    _fake_run(runs / "vocoder_deep", deep, 10)
    assert cards._releases(runs, bundle)["vocoder_deep"] == bundle / "vocoder"
    row = cards._stage_row(runs, "vocoder_deep", None)
    assert row.startswith("| SemanticVocoder stage 2 continued, deepened: mel floor 0.0001, semantic consistency "
                          "weight 0, 2 steps, generator lr 0.0005, blocks per branch (6, 6, 6) | (intermediate) |")
    assert cards._row_stage(row) == "vocoder_deep"
    for ckpt in (runs / "vocoder_adv" / "checkpoints").iterdir():
        (ckpt / "trainer.json").unlink()
    with pytest.raises(cards.SaraError, match="no checkpoint"):
        cards._stage_row(runs, "vocoder_adv", None)


def test_model_card_update_adds_a_rebuilt_manifest_to_the_data_section_once(tmp_path: Path) -> None:
    cards = _module("model_cards")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"class": c, "split": sp, "duration": 1800.0}) + "\n"
                                for c, sp in (("dog", "train"), ("cat", "valid"), ("dog", "test"))))
    card = "# c\n\n## Data\n`manifest.jsonl` (sha256 0000000000000000...): old.\n\n## Training\nHardware: x.\n"
    out = cards.update_data(card, manifest)
    data = out.split("## Data\n")[1].split("## Training")[0]
    assert data.startswith("`manifest.jsonl` (sha256 0000000000000000...): old.\n\nRebuilt later (the rows and ")
    assert "3 clips, 1.50 h, 2 classes; train 0.50 h" in data and out.endswith("## Training\nHardware: x.\n")
    assert cards.update_data(out, manifest) == out  # the card names it now
    with pytest.raises(cards.SaraError, match="no '## Data' section"):
        cards.update_data("# c\n", manifest)


def test_model_card_dit_selection_block_lists_each_candidate(tmp_path: Path) -> None:
    cards, evals = _module("model_cards"), _module("card_eval")
    assert evals._dit_selection_block(tmp_path) == ""
    for name, hits in (("a_shipped", [1, 1, 0, 0]), ("b_longer", [1, 0, 1, 1])):  # fine hits per clip
        preds = [{"caption": f"c{i}", "class": "dog", "generated": "dog" if h else "cat", "group": "animal",
                  "generated_group": "animal"} for i, h in enumerate(hits)]
        (tmp_path / "dit_selection" / name).mkdir(parents=True)
        (tmp_path / "dit_selection" / name / "test_captions.json").write_text(json.dumps({
            "classifier": "/x/classifier_bal05", "split": "valid", "every": 1, "samples_per_prompt": 2,
            "settings": {"steps": 50, "solver": "euler", "cfg": 7.0},
            "fine": {"num_prompts": 4, "generated_accuracy": sum(hits) / 4, "real_accuracy": 0.65, "predictions": preds},
            "coarse": {"generated_accuracy": 1.0, "real_accuracy": 0.77, "generated_group_probability": 0.4}}))
    block = evals._dit_selection_block(tmp_path)
    assert block.startswith(evals.DIT_SELECTION_TITLE) and "(4 clips, 2 per caption, 50 euler DiT steps)" in block
    assert "| a_shipped | 7.0 | 0.500 | 1.000 | 0.400 | - | - |" in block and "0.650 fine / 0.770" in block
    assert "| b_longer | 7.0 | 0.750 | 1.000 | 0.400 | 1 / 2 (0.5) | 0 / 0 (1) |" in block  # P(X >= 2), X ~ Bin(3, 1/2)
    card = "# c\n\n## Evaluation\n### Choices made on the valid split\n\nold\n\nReproduce the evaluation with x.\n"
    out = cards.update_card(card, tmp_path)
    assert out.index("old") < out.index(evals.DIT_SELECTION_TITLE) < out.index("Reproduce the evaluation")


def test_model_card_dit_selection_block_adds_the_latent_probe_when_every_candidate_has_it(tmp_path: Path) -> None:
    evals = _module("card_eval")
    for name in ("a_shipped", "b_longer"):
        preds = [{"caption": "c", "class": "dog", "generated": "dog", "group": "animal", "generated_group": "animal"}]
        (tmp_path / "dit_selection" / name).mkdir(parents=True)
        (tmp_path / "dit_selection" / name / "test_captions.json").write_text(json.dumps({
            "classifier": "/x/c", "split": "valid", "every": 1, "samples_per_prompt": 1, "settings": {"steps": 50, "cfg": 7.0},
            "fine": {"num_prompts": 1, "generated_accuracy": 1.0, "real_accuracy": 0.6, "predictions": preds},
            "coarse": {"generated_accuracy": 1.0, "real_accuracy": 0.7}}))
    assert "latent probe" not in evals._dit_selection_block(tmp_path)  # only when every candidate has one
    for name, hits in (("a_shipped", [True, False, False, False]), ("b_longer", [True, True, True, False])):
        (tmp_path / "dit_selection" / name / "latent_relevance.json").write_text(json.dumps({
            "split": "valid", "repeats": 2, "prompts": 2, "steps": 50, "cfg": 7.0, "real_test_latent_acc": 0.5,
            "generated_latent_acc": sum(hits) / 4, "captions": ["x", "y", "x", "y"], "hits": hits}))
    block = evals._dit_selection_block(tmp_path)
    assert "labels 4 DiT latents of 2 captions (50 DiT steps, guidance 7; real valid latents 0.500)" in block
    assert "| a_shipped | 7.0 | 1.000 | 1.000 | - | - | - | 0.250 | - |" in block
    assert "| b_longer | 7.0 | 1.000 | 1.000 | - | 0 / 0 (1) | 0 / 0 (1) | 0.750 | 0 / 2 (0.25) |" in block


def test_model_card_vocoder_selection_block_pairs_each_candidate_with_the_first(tmp_path: Path) -> None:
    cards, evals = _module("model_cards"), _module("card_eval")
    assert evals._vocoder_selection_block(tmp_path) == ""
    for name, fine, coarse in (("a_shipped", [1, 0, 0, 0], [1, 1, 0, 0]), ("b_deeper", [1, 1, 1, 0], [1, 1, 1, 0])):
        items = [{"caption": f"c{i}", "class": "dog", "real": "dog", "reconstructed": "dog" if f else "cat",
                  "real_group": "animal", "reconstructed_group": "animal" if c else "speech"}
                 for i, (f, c) in enumerate(zip(fine, coarse))]
        (tmp_path / "vocoder_selection" / name).mkdir(parents=True)
        (tmp_path / "vocoder_selection" / name / "vocoder_coarse.json").write_text(json.dumps({
            "classifier": "/x/classifier_bal05", "split": "valid", "clips": 4, "vocoder_steps": 2,
            "fine": {"reconstructed_accuracy": sum(fine) / 4, "real_accuracy": 1.0},
            "coarse": {"reconstructed_accuracy": sum(coarse) / 4, "real_accuracy": 1.0},
            "ratio": {"coarse": sum(coarse) / 4, "fine": sum(fine) / 4}, "items": items}))
    (tmp_path / "vocoder_selection" / "README.md").write_text("How they were trained.\n")
    block = evals._vocoder_selection_block(tmp_path)
    assert block.startswith(evals.VOCODER_SELECTION_TITLE) and "(2 steps) of 4 real valid clips" in block
    assert "| a_shipped | 0.250 | 0.500 | 0.500 | - | - |" in block
    assert "| b_deeper | 0.750 | 0.750 | 0.750 | 0 / 2 (0.25) | 0 / 1 (0.5) |" in block
    assert block.rstrip().endswith("How they were trained.")
    card = f"# c\n\n## Evaluation\n{evals.DIT_SELECTION_TITLE}\n\nold\n\nReproduce the evaluation with x.\n"
    out = cards.update_card(card, tmp_path)
    assert out.index("old") < out.index(evals.VOCODER_SELECTION_TITLE) < out.index("Reproduce the evaluation")
    items[0]["caption"] = "other"
    (tmp_path / "vocoder_selection" / "b_deeper" / "vocoder_coarse.json").write_text(json.dumps({
        **json.loads((tmp_path / "vocoder_selection" / "a_shipped" / "vocoder_coarse.json").read_text()), "items": items}))
    with pytest.raises(evals.SaraError, match="other clips"):
        evals._vocoder_selection_block(tmp_path)


def test_model_card_update_moves_a_block_found_after_the_reproduce_line_into_place(tmp_path: Path) -> None:
    """Cards written by the earlier everyday-only rewrite hold that section after the reproduce line."""
    cards, evals = _module("model_cards"), _module("card_eval")
    card = ("# c\n\n## Evaluation\n### Vocoder reconstruction (test split)\n\nrecon\n\n"
            "Reproduce the evaluation with x.\n\n" + evals.EVERYDAY_TITLE + "\n\nold everyday\n\n"
            "## Limitations\nsmall\n")
    out = cards.update_card(card, tmp_path)
    assert out == ("# c\n\n## Evaluation\n### Vocoder reconstruction (test split)\n\nrecon\n\n"
                   + evals.EVERYDAY_TITLE + "\n\nold everyday\n\nReproduce the evaluation with x.\n\n"
                   "## Limitations\nsmall\n")
    assert cards.update_card(out, tmp_path) == out
