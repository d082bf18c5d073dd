"""Model names as users type them (sara.hub): hub ids resolve offline to snapshots of a Hugging Face cache laid
out as ``huggingface_hub`` lays it out (populated here, no network), ``@revision`` picks the snapshot, uncached
ids and URLs give one line; a URL served on loopback is downloaded once, verified and reused."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from sara.cli.__main__ import main
from sara.errors import SaraError
from sara.hub import local_path, resolve, resolve_url, url_path
from tests.pipeline.tango_layout import write_flan_t5_dir, write_tango_dir
from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def cache_repo(cache: Path, repo_id: str, source: Path, commit: str = COMMIT_A, refs: tuple[str, ...] = ("main",)) -> Path:
    """Put ``source``'s files into ``cache`` as the snapshot ``commit`` of ``repo_id`` (hub cache layout: blobs,
    ``snapshots/<commit>/`` links to them, ``refs/<name>`` holding the commit)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        link = snap / f.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    for ref in refs:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snap


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache in ``HF_HUB_CACHE``, offline."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SARA_CACHE", str(tmp_path / "sara-cache"))
    return cache


@pytest.fixture(scope="module")
def ldm_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_minilm_pipeline().save_pretrained(tmp_path_factory.mktemp("ldm") / "release")


@pytest.fixture(scope="module")
def tango(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tango")
    return write_tango_dir(root / "tango", write_flan_t5_dir(root / "flan-t5"))


def test_a_hub_id_generates_offline_from_the_cached_snapshot(hub: Path, ldm_release: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    snap = cache_repo(hub, "someone/tiny-ldm", ldm_release)
    assert resolve("someone/tiny-ldm") == snap
    out = tmp_path / "bell.wav"
    code = main(["generate", "a bell rings", "--model", "someone/tiny-ldm", "-o", str(out), "--steps", "2",
                 "--duration", "0.32"])
    assert code == 0, capsys.readouterr().err
    assert sf.info(out).samplerate == 16000


@pytest.mark.parametrize("kind", ["tango", "sara-ldm"])
def test_each_layout_is_detected_behind_a_hub_id(hub: Path, ldm_release: Path, tango: Path, kind: str) -> None:
    from sara.pipelines.detect import detect_model_kind, load_pipeline

    cache_repo(hub, "declare-lab/tango", tango)
    cache_repo(hub, "someone/ldm", ldm_release)
    repo = {"tango": "declare-lab/tango", "sara-ldm": "someone/ldm"}[kind]
    assert detect_model_kind(repo) == kind
    assert load_pipeline(repo).sample_rate == 16000


def test_revision_picks_the_snapshot(hub: Path, tmp_path: Path) -> None:
    for commit, text, refs in ((COMMIT_A, "one", ("main",)), (COMMIT_B, "two", ("v2",))):
        src = tmp_path / text
        src.mkdir()
        (src / "weights.txt").write_text(text)
        cache_repo(hub, "someone/model", src, commit, refs)
    assert (resolve("someone/model") / "weights.txt").read_text() == "one"
    assert (resolve("someone/model@v2") / "weights.txt").read_text() == "two"
    assert (resolve(f"someone/model@{COMMIT_B}") / "weights.txt").read_text() == "two"
    with pytest.raises(SaraError, match=r"^someone/model@v3: .*revision 'v3' of the Hugging Face repo "
                                        r"someone/model is not in the hub cache .*unset HF_HUB_OFFLINE"):
        resolve("someone/model@v3")


def test_an_uncached_id_is_one_line_exit_1(hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "x", "--model", "facebook/audiogen-medium", "-o", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and not (tmp_path / "x.wav").exists()
    assert "facebook/audiogen-medium: no such local path" in err and "hf download facebook/audiogen-medium" in err


def test_local_paths_win_and_other_names_pass_through(hub: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "someone" / "model").mkdir(parents=True)
    assert local_path("someone/model") == Path("someone/model")  # a local folder shadows the hub id
    assert local_path("sara-demo") == Path("sara-demo") and local_path("/no/such/dir") == Path("/no/such/dir")
    with pytest.raises(SaraError, match="no such file or directory"):
        resolve("not a name")


def test_hub_errors_are_one_line_each() -> None:
    import httpx
    from huggingface_hub import errors as e

    from sara.hub import _hub_error

    r = httpx.Response(404, request=httpx.Request("GET", "https://huggingface.co/o/m"))
    cases = {e.GatedRepoError("gated", response=r): "is a gated repo; accept its terms on huggingface.co/o/m and "
                                                    "set HF_TOKEN",
             e.RevisionNotFoundError("rev", response=r): "the repo o/m has no revision 'dev'",
             e.RepositoryNotFoundError("no", response=r): "no Hugging Face repo o/m (or it is private: set HF_TOKEN)",
             ConnectionError("reset by peer"): "downloading o/m@dev failed (reset by peer); run the command again"}
    for exc, text in cases.items():
        line = _hub_error(exc, "o/m@dev", "o/m", "dev", local_only=False)
        assert text in line and "\n" not in line


# ------------------------------------------------------------------------------------------- URLs


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Files.hits.append(self.path)
        body = self.files.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path.split("?")[0] in self.truncate else body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Files.files, _Files.truncate, _Files.hits = {}, set(), []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_url_is_downloaded_once_verified_and_reused(hub: Path, server: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sara.encoder import EncoderConfig, SemanticEncoder
    from tests.encoder._reference import official_config, save_official

    source = SemanticEncoder(EncoderConfig.tiny()).eval()
    pt = save_official(hub.parent / "dasheng_base.pt", source, official_config(**_tiny_official(source)))
    data = pt.read_bytes()
    _Files.files["/records/1/files/dasheng_base.pt"] = data
    url = f"{server}/records/1/files/dasheng_base.pt?download=1#sha256={hashlib.sha256(data).hexdigest()}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    enc = SemanticEncoder.from_pretrained(url)
    assert url_path(url).name == "dasheng_base.pt" and url_path(url).read_bytes() == data
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached: no request now
    again = SemanticEncoder.from_pretrained(url)
    assert len(_Files.hits) == 1 and enc.config == again.config
    with pytest.raises(SaraError, match="the cached copy .* does not match sha256"):
        resolve_url(url.split("#")[0] + "#sha256=" + "0" * 64)
    assert not list(url_path(url).parent.glob("*.part"))


def _tiny_official(enc) -> dict:
    c = enc.config
    return {"embed_dim": c.embed_dim, "depth": c.depth, "num_heads": c.num_heads, "target_length": c.target_length}


def test_bad_downloads_leave_nothing_in_the_cache(hub: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _Files.files.update({"/a.pt": b"x" * 1000, "/b.pt": b"y" * 1000})
    _Files.truncate.add("/b.pt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(SaraError, match=r"checksum mismatch .*discarded"):
        resolve_url(f"{server}/a.pt#sha256={'0' * 64}")
    with pytest.raises(SaraError, match=r"download failed \(.*\); nothing was cached"):
        resolve_url(f"{server}/b.pt")
    with pytest.raises(SaraError, match=r"download failed \(.*404"):
        resolve_url(f"{server}/missing.pt")
    urls = hub.parent / "sara-cache" / "urls"
    assert not [p for p in urls.rglob("*") if p.is_file()]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SaraError, match=r"not in sara's download cache .*unset HF_HUB_OFFLINE"):
        resolve_url(f"{server}/a.pt")
    with pytest.raises(SaraError, match=r"fragment must be #sha256="):
        resolve_url(f"{server}/a.pt#md5=1")


def test_dasheng_hub_id_and_zenodo_url_give_the_same_latents(hub: Path, server: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from sara.encoder import SemanticEncoder
    from tests.encoder._reference import official_config, save_official
    from tests.encoder.test_hf_layout import TINY, TINY_KWARGS, hf_config, hf_state_dict, write_hf_dir

    torch.manual_seed(0)
    source = SemanticEncoder(TINY).eval()
    hf = write_hf_dir(hub.parent / "dasheng-hf", hf_state_dict(source), hf_config(**TINY_KWARGS))
    cache_repo(hub, "mispeech/dasheng-base", hf)
    pt = save_official(hub.parent / "dasheng_base.pt", source, official_config(embed_dim=32, depth=2, num_heads=2,
                                                                               target_length=400))
    _Files.files["/records/11511780/files/dasheng_base.pt"] = pt.read_bytes()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    from_url = SemanticEncoder.from_pretrained(f"{server}/records/11511780/files/dasheng_base.pt?download=1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    wav = torch.randn(1, 32000, generator=torch.Generator().manual_seed(2)) * 0.1
    from_hub = SemanticEncoder.from_pretrained("mispeech/dasheng-base")
    assert torch.equal(from_hub.encode(wav, 16000), from_url.encode(wav, 16000))
