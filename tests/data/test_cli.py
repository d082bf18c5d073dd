"""``sara data build-corpus`` / ``describe`` through the CLI on a fake source tree (no network, no apt)."""

from __future__ import annotations

import json

import soundfile as sf

from sara.cli.__main__ import main
from tests.data.fake_sources import make_fake_sources

CONTRACT = (
    "path",
    "captions",
    "caption",
    "class",
    "group",
    "source",
    "license",
    "duration",
    "split",
    "sample_rate",
)


def _build(out, roots, extra=()):
    argv = [
        "data",
        "build-corpus",
        str(out),
        "--preset",
        "tiny",
        "--no-synth",
        "--mixtures",
        "3",
        "--sources",
        ",".join(roots),
    ]
    for name, path in roots.items():
        argv += ["--source-dir", f"{name}={path}"]
    return main([*argv, *extra])


def test_build_corpus_end_to_end(tmp_path, capsys):
    roots = make_fake_sources(tmp_path / "src")
    out = tmp_path / "corpus"
    assert _build(out, roots, ["--describe", str(tmp_path / "CORPUS.md")]) == 0
    first = (out / "manifest.jsonl").read_bytes()
    records = [json.loads(line) for line in first.decode().splitlines()]
    by_source = {r["source"] for r in records}
    assert {
        "tuxpaint-stamps-default",
        "openttd-opensfx",
        "scratch",
        "ufoai-sound",
        "gcompris-qt-data",
        "hydrogen-drumkits",
    } <= by_source
    for r in records:
        assert all(k in r for k in CONTRACT)
        assert r["caption"] == r["captions"][0] and r["sample_rate"] == 24000
        info = sf.info(str(out / r["path"]))
        assert info.samplerate == 24000 and info.channels == 1 and info.duration <= 10.0
    classes = json.loads((out / "classes.json").read_text())
    assert {"dog", "ship horn", "harp", "kick drum", "footsteps", "person speaking"} <= set(
        classes["classes"]
    )
    speech = [r for r in records if r["class"] == "person speaking"]
    assert {r["transcript"] for r in speech} == {"A dog.", "Un chien."}
    # takes of one sound share a split; the three scratch dogs are one key
    assert len({r["split"] for r in records if r["source"] == "scratch"}) == 1
    skipped = json.loads((out / "skipped.json").read_text())
    reasons = {(s["source"], s["reason"]) for s in skipped}
    assert ("scratch", "no label mapping") in reasons
    assert ("openttd-opensfx", "label dropped (fictional, cryptic or unusable)") in reasons
    assert "# The sara open corpus" in (tmp_path / "CORPUS.md").read_text()
    # idempotent and deterministic: a second run reproduces the same bytes
    capsys.readouterr()
    assert _build(out, roots) == 0
    assert (out / "manifest.jsonl").read_bytes() == first
    assert "manifest sha256" in capsys.readouterr().out


def test_fresh_build_reproduces_hash(tmp_path):
    roots = make_fake_sources(tmp_path / "src")
    assert _build(tmp_path / "a", roots) == 0
    assert _build(tmp_path / "b", roots) == 0
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()


def test_bad_source_dir_is_one_line_error(tmp_path, capsys):
    code = main(
        [
            "data",
            "build-corpus",
            str(tmp_path / "c"),
            "--no-synth",
            "--sources",
            "scratch",
            "--source-dir",
            "scratch=/nonexistent/dir",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("sara data: error:")]
    assert len(errors) == 1 and "does not exist" in errors[0] and "Traceback" not in err


def test_describe_command(tmp_path, capsys):
    roots = make_fake_sources(tmp_path / "src")
    _build(tmp_path / "c", roots)
    assert main(["data", "describe", str(tmp_path / "c/manifest.jsonl"), "-o", str(tmp_path / "D.md")]) == 0
    text = (tmp_path / "D.md").read_text()
    assert "## Groups" in text and "animals" in text and "manifest sha256" in text


def test_unknown_source_is_rejected(tmp_path, capsys):
    assert main(["data", "build-corpus", str(tmp_path), "--sources", "some-reserved-pack"]) == 2
    assert "unknown source" in capsys.readouterr().err
