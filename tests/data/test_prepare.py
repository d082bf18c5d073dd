"""``sara data prepare``: caption files in the real layouts of AudioCaps, Clotho, WavCaps, SemanticVocoder and
a folder list, tiny sine files under the names the common download tools give them, plus missing and corrupt
audio -- all through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sara.cli.__main__ import main
from sara.data.manifest import load_manifest

SR = 16000


def _tone(path: Path, seconds: float = 0.5, sr: int = SR) -> Path:
    """A sine of ``seconds`` at ``sr`` in the format of ``path``'s extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return path


def _junk(path: Path) -> Path:
    """A file with an audio name that is not audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio at all" * 10)
    return path


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _prepare(fmt: str, flag: str, captions: Path, audio: Path, out: Path, *extra: str) -> int:
    return main(["data", "prepare", fmt, flag, str(captions), "--audio-dir", str(audio), "-o", str(out), *extra])


def _rows(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in load_manifest(out)}


def _check_paths(out: Path, rows: dict[str, dict]) -> None:
    """Every path is relative to the manifest and names an existing file."""
    for r in rows.values():
        assert not Path(r["path"]).is_absolute() and (out.parent / r["path"]).is_file(), r["path"]


# ---------------------------------------------------------------------------------------------- AudioCaps


def _audiocaps(tmp_path: Path) -> tuple[Path, Path]:
    audio = tmp_path / "audiocaps" / "val"
    _tone(audio / "Yabc-_12_30.000_40.000.wav")  # DCASE / AudioSet style
    _tone(audio / "-dEf_0.flac", 1.0)  # aac-datasets: {youtube_id}_{start_time}.flac
    _tone(audio / "sub" / "Yghi.wav")  # audioset_tagging_cnn: Y<id>, in a sub-directory
    _tone(audio / "jkl_20.0-30.0.ogg")  # audioset-download: {ytid}_{start}-{end}.{ext}
    _tone(audio / "6.mp3")  # audiocaps-download: {audiocap_id}.{ext}
    _junk(audio / "bad1_0.wav")
    rows = [
        [1, "abc-_12", 30, "a man speaks"], [2, "abc-_12", 30, "someone is talking"],
        [3, "-dEf", 0, "a dog barks"], [4, "ghi", 10, "rain falls"], [5, "jkl", 20, "a car passes"],
        [6, "mno", 0, "birds chirp"], [7, "missing1", 0, "a bell rings"], [8, "bad1", 0, "wind blows"],
        [9, "xyz", "later", "a cat meows"],
    ]
    return _csv(tmp_path / "val.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows), audio


def test_audiocaps_naming_variants_merge_and_skips(tmp_path, capsys):
    captions, audio = _audiocaps(tmp_path)
    out = tmp_path / "out" / "manifest.jsonl"
    assert _prepare("audiocaps", "--csv", captions, audio, out) == 0
    rows = _rows(out)
    assert set(rows) == {"audiocaps/abc-_12_30", "audiocaps/-dEf_0", "audiocaps/ghi_10", "audiocaps/jkl_20",
                         "audiocaps/mno_0"}
    merged = rows["audiocaps/abc-_12_30"]
    assert merged["captions"] == ["a man speaks", "someone is talking"] and merged["caption"] == "a man speaks"
    assert merged["audiocap_ids"] == [1, 2] and merged["youtube_id"] == "abc-_12"
    assert merged["start_time"] == 30
    assert merged["path"] == "../audiocaps/val/Yabc-_12_30.000_40.000.wav"
    assert rows["audiocaps/ghi_10"]["path"].endswith("sub/Yghi.wav")
    assert rows["audiocaps/mno_0"]["path"].endswith("/6.mp3")
    assert {r["split"] for r in rows.values()} == {"valid"}  # from the file name val.csv
    assert rows["audiocaps/-dEf_0"]["duration"] == pytest.approx(1.0, abs=1e-3)
    assert rows["audiocaps/-dEf_0"]["sample_rate"] == SR
    assert {r["source"] for r in rows.values()} == {"audiocaps"}
    _check_paths(out, rows)
    cap = capsys.readouterr()
    err = [line for line in cap.err.splitlines() if line.strip()]
    assert len(err) == 1 and "skipped 3 of 8 clips" in err[0]
    assert "1 missing audio" in err[0] and "missing1" in err[0]
    assert "1 unreadable audio" in err[0] and "bad1_0.wav" in err[0]
    assert "1 bad row" in err[0] and "val.csv:10" in err[0]
    assert "5 of 8 clips (5 valid)" in cap.out


def test_audiocaps_split_flag_and_append(tmp_path, capsys):
    captions, audio = _audiocaps(tmp_path)
    out = tmp_path / "manifest.jsonl"
    train_audio = tmp_path / "train"
    _tone(train_audio / "Yzz_0.000_10.000.wav")
    train = _csv(tmp_path / "train.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
                 [[100, "zz", 0, "an engine idles"]])
    assert _prepare("audiocaps", "--csv", train, train_audio, out) == 0
    assert _prepare("audiocaps", "--csv", captions, audio, out, "--append", "--split", "test") == 0
    rows = _rows(out)
    assert rows["audiocaps/zz_0"]["split"] == "train" and len(rows) == 6
    assert {r["split"] for k, r in rows.items() if k != "audiocaps/zz_0"} == {"test"}
    assert "6 rows in all" in capsys.readouterr().out
    assert _prepare("audiocaps", "--csv", captions, audio, out, "--append") == 0  # same ids: replaced
    rows = _rows(out)
    assert len(rows) == 6 and rows["audiocaps/ghi_10"]["split"] == "valid"


def test_audiocaps_bad_header_is_one_line(tmp_path, capsys):
    bad = _csv(tmp_path / "train.csv", ["file_name", "caption_1"], [["a.wav", "x"]])
    (tmp_path / "audio").mkdir()
    assert _prepare("audiocaps", "--csv", bad, tmp_path / "audio", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an AudioCaps CSV" in err[0] and "youtube_id" in err[0]
    assert not (tmp_path / "m.jsonl").exists()


def test_candidate_stems_cover_the_tools():
    from sara.data.prepare.audiocaps import candidate_stems

    stems = candidate_stems("--4gqARaEJE", 0)
    for name in ("Y--4gqARaEJE_0.000_10.000", "--4gqARaEJE_0", "--4gqARaEJE_0.0-10.0", "Y--4gqARaEJE",
                 "--4gqARaEJE", "--4gqARaEJE_0_10"):
        assert name in stems
    assert candidate_stems("a", 30.5)[0] == "a_30.5_40.5"


# ------------------------------------------------------------------------------------------------- Clotho


def test_clotho_five_captions_subdirs_and_skips(tmp_path, capsys):
    audio = tmp_path / "clotho"
    _tone(audio / "evaluation" / "Birds singing.wav")
    _tone(audio / "evaluation" / "Rain.on.roof.wav", 0.25)
    _tone(audio / "evaluation" / "Wind.flac")  # converted: the CSV still says Wind.wav
    _junk(audio / "evaluation" / "Broken.wav")
    caps = [f"caption {i}" for i in range(1, 6)]
    names = ["Birds singing.wav", "Rain.on.roof.wav", "Wind.wav", "Broken.wav", "Gone.wav"]
    captions = _csv(tmp_path / "clotho_captions_evaluation.csv", ["file_name", *[f"caption_{i}" for i in range(1, 6)]],
                    [[n, *caps] for n in names])
    out = tmp_path / "m.jsonl"
    assert _prepare("clotho", "--csv", captions, audio, out) == 0
    rows = _rows(out)
    assert set(rows) == {"clotho/Birds singing", "clotho/Rain.on.roof", "clotho/Wind"}
    assert rows["clotho/Birds singing"]["captions"] == caps
    assert rows["clotho/Rain.on.roof"]["duration"] == pytest.approx(0.25, abs=1e-3)
    assert rows["clotho/Wind"]["path"] == "clotho/evaluation/Wind.flac"
    assert {r["split"] for r in rows.values()} == {"test"}  # evaluation -> test
    _check_paths(out, rows)
    err = capsys.readouterr().err
    assert "skipped 2 of 5 clips" in err and "Gone" in err and "Broken.wav" in err


def test_clotho_ambiguous_name_is_skipped(tmp_path, capsys):
    audio = tmp_path / "clotho"
    _tone(audio / "development" / "Same.wav")
    _tone(audio / "validation" / "Same.wav")
    _tone(audio / "development" / "Other.wav")
    captions = _csv(tmp_path / "clotho_captions_development.csv", ["file_name", "caption_1"],
                    [["Same.wav", "a"], ["Other.wav", "b"]])
    out = tmp_path / "m.jsonl"
    assert _prepare("clotho", "--csv", captions, audio, out) == 0
    assert set(_rows(out)) == {"clotho/Other"} and _rows(out)["clotho/Other"]["split"] == "train"
    assert "1 ambiguous audio" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ WavCaps


def _wavcaps_json(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps({"num_captions_per_audio": 1, "data": items}), encoding="utf-8")
    return path


def _freesound(wid: str, caption: str) -> dict:
    return {"id": wid, "file_name": "UK Mello.wav", "href": f"/people/u/sounds/{wid}/", "tags": ["bell"],
            "description": "a raw description", "author": "u", "duration": 3.2,
            "download_link": f"https://freesound.org/people/u/sounds/{wid}/download/{wid}__u__uk-mello.wav",
            "caption": caption, "audio": "wav_path"}


def test_wavcaps_freesound_release_layout(tmp_path, capsys):
    audio = tmp_path / "FreeSound_flac"
    _tone(audio / "180913.flac")  # the release's zips: <id>.flac
    _tone(audio / "555__u__uk-mello.wav")  # downloaded from the link
    _junk(audio / "777.flac")
    items = [_freesound("180913", "A ringtone is playing."), _freesound("555", "A bell rings."),
             _freesound("777", "Corrupt."), _freesound("999", "Missing."), {"caption": "no id"}]
    out = tmp_path / "m.jsonl"
    assert _prepare("wavcaps", "--json", _wavcaps_json(tmp_path / "fsd_final.json", items), audio, out) == 0
    rows = _rows(out)
    assert set(rows) == {"wavcaps/FreeSound/180913", "wavcaps/FreeSound/555"}
    r = rows["wavcaps/FreeSound/180913"]
    assert r["captions"] == ["A ringtone is playing."] and r["subset"] == "FreeSound" and r["wavcaps_id"] == "180913"
    assert r["split"] == "train" and r["duration"] == pytest.approx(0.5, abs=1e-3)
    _check_paths(out, rows)
    err = capsys.readouterr().err
    assert "skipped 3 of 5 clips" in err and "999" in err and "777.flac" in err and "bad row" in err


def test_wavcaps_audioset_ids_and_real_audio_paths(tmp_path):
    audio = tmp_path / "AudioSet_SL_flac"
    _tone(audio / "Yb0RFKhbpFJA.flac")
    _tone(audio / "elsewhere" / "clip.wav")
    items = [{"id": "Yb0RFKhbpFJA.wav", "caption": "Wind and a man speaking.", "audio": "wav_path", "duration": 10.0},
             {"id": "Yq1.wav", "caption": "A path given.", "audio": "elsewhere/clip.wav", "duration": 10.0}]
    out = tmp_path / "m.jsonl"
    assert _prepare("wavcaps", "--json", _wavcaps_json(tmp_path / "as_final.json", items), audio, out) == 0
    rows = _rows(out)
    assert rows["wavcaps/AudioSet_SL/Yb0RFKhbpFJA"]["path"] == "AudioSet_SL_flac/Yb0RFKhbpFJA.flac"
    assert rows["wavcaps/AudioSet_SL/Yq1"]["path"] == "AudioSet_SL_flac/elsewhere/clip.wav"


def test_wavcaps_json_without_ids_is_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    bad = _wavcaps_json(tmp_path / "x.json", [{"name": "a", "caption": "b"}])
    assert _prepare("wavcaps", "--json", bad, tmp_path / "a", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a WavCaps JSON" in err[0]


# --------------------------------------------------------------------------------- SemanticVocoder, folder


def test_semanticvocoder_jsonl(tmp_path, capsys):
    audio = tmp_path / "audio"
    _tone(audio / "a.wav")
    absolute = _tone(tmp_path / "other" / "b.wav")
    _junk(audio / "c.wav")
    lines = [{"audio_id": "a.wav", "caption": "first"}, {"audio_id": "a.wav", "caption": "second"},
             {"audio_id": str(absolute), "caption": "absolute"}, {"audio_id": "c.wav", "caption": "corrupt"},
             {"audio_id": "d.wav", "caption": "missing"}]
    captions = tmp_path / "caption.jsonl"
    captions.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "m.jsonl"
    assert _prepare("semanticvocoder", "--json", captions, audio, out, "--split", "test") == 0
    rows = _rows(out)
    assert rows["semanticvocoder/a"]["captions"] == ["first", "second"]
    assert rows["semanticvocoder/a"]["audio_id"] == "a.wav"
    assert any(r["path"] == "other/b.wav" for r in rows.values())
    assert {r["split"] for r in rows.values()} == {"test"} and len(rows) == 2
    _check_paths(out, rows)
    assert "skipped 2 of 4 clips" in capsys.readouterr().err


def test_folder_csv_and_jsonl(tmp_path, capsys):
    audio = tmp_path / "my_clips"
    _tone(audio / "x.wav")
    _tone(audio / "sub" / "y.flac")
    _junk(audio / "z.m4a")
    table = _csv(tmp_path / "list.csv", ["path", "caption", "split"],
                 [["x.wav", "a hum", "train"], ["x.wav", "a low hum", "train"], ["sub/y.flac", "a click", "valid"],
                  ["z.m4a", "aac audio", ""], ["", "no path", ""]])
    out = tmp_path / "m.jsonl"
    assert _prepare("folder", "--csv", table, audio, out) == 0
    rows = _rows(out)
    assert rows["my_clips/x"]["captions"] == ["a hum", "a low hum"] and rows["my_clips/x"]["source"] == "my_clips"
    assert rows["my_clips/sub/y"]["split"] == "valid"
    err = capsys.readouterr().err
    assert "skipped 2 of 4 clips" in err and "m4a/AAC is not readable" in err
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text(json.dumps({"path": "sub/y.flac", "captions": ["one", "two"]}) + "\n", encoding="utf-8")
    assert _prepare("folder", "--json", jsonl, audio, out) == 0
    assert _rows(out)["my_clips/sub/y"]["captions"] == ["one", "two"]


def test_folder_header_without_caption_column(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    table = _csv(tmp_path / "list.csv", ["path", "label"], [["x.wav", "dog"]])
    assert _prepare("folder", "--csv", table, tmp_path / "a", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "caption column" in err[0]


# ------------------------------------------------------------------------------------ arguments and output


def test_argument_errors_are_one_line(tmp_path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    cases = [
        (["audiocaps", "--csv", str(tmp_path / "nope.csv")], "no such file"),
        (["audiocaps", "--json", str(tmp_path / "x.json")], "--csv"),
        (["audiocaps"], "--csv"),
        (["mp4caps", "--csv", "x.csv"], "invalid choice"),
    ]
    for argv, needle in cases:
        (tmp_path / "x.json").write_text("[]")
        code = main(["data", "prepare", *argv, "--audio-dir", str(audio), "-o", str(tmp_path / "m.jsonl")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0], (argv, err)
    table = _csv(tmp_path / "list.csv", ["path", "caption"], [["x.wav", "a"]])
    assert _prepare("folder", "--csv", table, tmp_path / "no_dir", tmp_path / "m.jsonl") == 2
    assert "--audio-dir" in capsys.readouterr().err


def test_nothing_usable_leaves_the_manifest_alone(tmp_path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    out = tmp_path / "m.jsonl"
    out.write_text('{"id": "old/x", "path": "x.wav"}\n')
    table = _csv(tmp_path / "list.csv", ["path", "caption"], [["gone.wav", "a"]])
    assert _prepare("folder", "--csv", table, audio, out) == 1
    assert "no usable clip" in capsys.readouterr().err
    assert out.read_text() == '{"id": "old/x", "path": "x.wav"}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_prepared_manifest_reads_like_a_corpus_manifest(tmp_path):
    from sara.data.describe import describe_corpus
    from sara.eval.manifest import read_manifest

    captions, audio = _audiocaps(tmp_path)
    out = tmp_path / "m.jsonl"
    assert _prepare("audiocaps", "--csv", captions, audio, out) == 0
    assert all(c.path.is_file() and c.caption for c in read_manifest(out))
    assert "audiocaps" in describe_corpus(out)


def test_cli_format_list_matches_the_readers():
    from sara.cli.data import PREPARE_FORMATS
    from sara.data.prepare import FORMATS

    assert tuple(FORMATS) == PREPARE_FORMATS
