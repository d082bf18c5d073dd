"""Model names as users type them: a local path, a Hugging Face hub id or an http(s) URL, resolved to a local path.

* **local path**: used as it is (checked first, so a local folder always wins over a hub id of the same name);
* **hub id** ``owner/name`` or ``owner/name@revision`` (a branch, tag or commit): a snapshot of the repo through
  ``huggingface_hub`` (its cache, progress bars, resumable downloads, ``HF_TOKEN`` for gated repos);
  ``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) uses the cache only;
* **URL** ``http(s)://...`` of a single checkpoint file (e.g. dasheng's Zenodo ``.pt``): downloaded once into
  ``$SARA_CACHE/urls/`` (default ``~/.cache/sara``), then reused; a ``#sha256=<hex>`` fragment, or a checksum
  in :data:`KNOWN_SHA256`, is verified before the file enters the cache.

After resolution the loaders' own layout detection decides what the directory or file is.  Every failure is one
:class:`~sara.errors.SaraError` line naming what was asked, what is missing and how to fix it; nothing
half-written stays in either cache (``huggingface_hub`` keeps incomplete blobs aside and resumes them).  No code
from a repo is ever run: ``trust_remote_code`` is never used, and pickles go through the same weights-only
readers as local files.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from sara.errors import SaraError

__all__ = ["KNOWN_SHA256", "cache_dir", "is_hub_id", "is_url", "local_path", "offline", "resolve", "resolve_url", "snapshot"]

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<rev>[\w./-]+))?$")
# weights of other frameworks, which sara never reads (FLAN-T5 and many audio repos ship them beside PyTorch's)
IGNORE_PATTERNS = ("*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "tf_model*", "flax_model*",
                   "rust_model*", "coreml/*", "onnx/*")
KNOWN_SHA256: dict[str, str] = {}  # URL (without fragment) -> sha256 hex, for files whose checksum is published
_TRUE = ("1", "true", "yes", "on")
CHUNK_BYTES = 1 << 20


def offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``SARA_OFFLINE``) is set: nothing may be downloaded."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "SARA_OFFLINE"))


def cache_dir() -> Path:
    """sara's own download cache: ``$SARA_CACHE``, else ``$XDG_CACHE_HOME/sara``, else ``~/.cache/sara``."""
    if os.environ.get("SARA_CACHE"):
        return Path(os.environ["SARA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sara"


def is_url(spec: str) -> bool:
    """``spec`` is an http(s) URL."""
    return urlsplit(str(spec)).scheme.lower() in ("http", "https")


def is_hub_id(spec: str) -> bool:
    """``spec`` has the shape of a hub repo id, ``owner/name[@revision]`` (it may still be a missing local path)."""
    return HUB_ID.match(str(spec)) is not None


def resolve(spec: str | os.PathLike[str], *, local_files_only: bool | None = None) -> Path:
    """The local path of ``spec`` (see the module docstring).

    Args:
        spec: a local path, ``owner/name[@revision]`` or an http(s) URL.
        local_files_only: only the caches (None: :func:`offline`).

    Raises:
        SaraError: one line (missing path, not cached while offline, unknown repo or revision, gated repo,
            interrupted download, checksum mismatch).
    """
    text = os.fspath(spec)
    if Path(text).expanduser().exists():
        return Path(text).expanduser()
    local_only = offline() if local_files_only is None else local_files_only
    if is_url(text):
        return resolve_url(text, local_files_only=local_only)
    match = HUB_ID.match(text)
    if match is None:
        raise SaraError(f"{text}: no such file or directory (nor a Hugging Face repo id owner/name or a URL)")
    return snapshot(match["repo"], match["rev"], local_files_only=local_only, asked=text)


def local_path(spec: str | os.PathLike[str]) -> Path:
    """``spec`` as a local path for a loader: an existing path as it is, a hub id or URL resolved (downloaded
    when allowed), anything else unchanged (the loader reports the missing path in its own words)."""
    text = os.fspath(spec)
    if Path(text).expanduser().exists() or not (is_url(text) or is_hub_id(text)):
        return Path(text)
    return resolve(text)


# ------------------------------------------------------------------------------------------- hub


def snapshot(repo_id: str, revision: str | None = None, *, local_files_only: bool = False,
             asked: str | None = None) -> Path:
    """The snapshot folder of ``repo_id`` at ``revision`` (None: ``main``), downloaded when missing (without
    :data:`IGNORE_PATTERNS`).

    Raises:
        SaraError: one line per failure kind (see :func:`_hub_error`).
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise SaraError(f"{asked or repo_id}: hub ids need the huggingface_hub package (pip install "
                        "huggingface_hub)") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=local_files_only,
                                      cache_dir=_hub_cache(), ignore_patterns=list(IGNORE_PATTERNS)))
    except Exception as exc:  # noqa: BLE001 - every hub / network failure becomes one line
        raise SaraError(_hub_error(exc, asked or repo_id, repo_id, revision, local_files_only)) from None


def _hub_error(exc: Exception, asked: str, repo_id: str, revision: str | None, local_only: bool) -> str:
    """The one line for a failed snapshot: what was asked, what is missing, how to fix it."""
    from huggingface_hub import errors as e

    rev = revision or "main"
    if isinstance(exc, e.LocalEntryNotFoundError) or (local_only and isinstance(exc, (OSError, ValueError))):
        how = "unset HF_HUB_OFFLINE to download it" if offline() else "allow downloads (local_files_only=False)"
        return (f"{asked}: no such local path, and revision {rev!r} of the Hugging Face repo {repo_id} is not in the "
                f"hub cache ({_hub_cache()}); {how}, or run `hf download {repo_id}` where there is internet")
    if isinstance(exc, e.GatedRepoError):
        return (f"{asked}: {repo_id} is a gated repo; accept its terms on huggingface.co/{repo_id} and set "
                "HF_TOKEN (or run `hf auth login`)")
    if isinstance(exc, e.RevisionNotFoundError):
        return f"{asked}: the repo {repo_id} has no revision {rev!r} (a branch, tag or commit hash)"
    if isinstance(exc, e.RepositoryNotFoundError):
        return (f"{asked}: no Hugging Face repo {repo_id} (or it is private: set HF_TOKEN), and no such local "
                "path")
    if isinstance(exc, e.HFValidationError):
        return f"{asked}: not a valid Hugging Face repo id ({exc})"
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return (f"{asked}: downloading {repo_id}@{rev} failed ({detail}); run the command again to resume "
            "(completed files are kept in the hub cache)")


def _hub_cache() -> str:
    """The hub cache folder, read at call time (``HF_HUB_CACHE``, ``HF_HOME/hub`` or the library's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    from huggingface_hub.constants import HF_HUB_CACHE

    return str(HF_HUB_CACHE)


# ------------------------------------------------------------------------------------------- URLs


def url_path(url: str) -> Path:
    """Where ``url`` is cached: ``cache_dir()/urls/<16 hex digits of its sha256>/<file name>``."""
    base = url.split("#", 1)[0]
    key = hashlib.sha256(base.encode()).hexdigest()[:16]
    name = re.sub(r"[^\w.-]", "_", Path(urlsplit(base).path).name) or "download"
    return cache_dir() / "urls" / key / name


def expected_sha256(url: str) -> str | None:
    """The checksum to verify: the URL's ``#sha256=<hex>`` fragment, else :data:`KNOWN_SHA256`."""
    base, _, fragment = url.partition("#")
    match = re.fullmatch(r"sha256=([0-9a-fA-F]{64})", fragment)
    if fragment and match is None:
        raise SaraError(f"{url}: the URL fragment must be #sha256=<64 hex digits>")
    return match[1].lower() if match else KNOWN_SHA256.get(base)


def resolve_url(url: str, *, local_files_only: bool | None = None) -> Path:
    """The cached copy of the file at ``url``, downloaded (atomically, checksum verified) when missing
    (``local_files_only`` None: :func:`offline`)."""
    target, sha = url_path(url), expected_sha256(url)
    if target.is_file():
        if sha is not None and _file_sha256(target) != sha:  # cached earlier without (or with another) checksum
            raise SaraError(f"{url}: the cached copy {target} does not match sha256 {sha}; delete it to download "
                            "again")
        return target
    if offline() if local_files_only is None else local_files_only:
        how = "unset HF_HUB_OFFLINE to download it" if offline() else "allow downloads"
        raise SaraError(f"{url}: not in sara's download cache ({target.parent}); {how}, or download the file "
                        "yourself and pass its local path")
    target.parent.mkdir(parents=True, exist_ok=True)
    _download(url.split("#", 1)[0], target, sha)
    return target


def _download(url: str, target: Path, sha256: str | None) -> None:
    """Stream ``url`` into ``target`` through a temporary file that is renamed only when complete and verified."""
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        digest, _ = _stream(url, part)
        if sha256 is not None and digest != sha256:
            raise SaraError(f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); the download was "
                            "discarded")
        os.replace(part, target)
    except SaraError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, HTTPError, IncompleteRead, timeouts
        raise SaraError(f"{url}: download failed ({_reason(exc)}); nothing was cached, run the command again") \
            from None
    finally:
        part.unlink(missing_ok=True)


def _stream(url: str, part: Path) -> tuple[str, int]:
    """Write the body of ``url`` to ``part`` with a progress bar; ``(sha256 hex, bytes)``.

    Raises:
        OSError: a network error, or fewer bytes than the announced ``Content-Length`` (interrupted).
    """
    import urllib.request

    from tqdm.auto import tqdm

    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "sara"})
    with urllib.request.urlopen(request, timeout=60) as response, open(part, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=part.name.split(".", 1)[0], leave=False) as bar:
            while chunk := response.read(CHUNK_BYTES):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
    if total is not None and size != total:
        raise OSError(f"interrupted after {size} of {total} bytes")
    return digest.hexdigest(), size


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    """``HTTP 404 Not Found``, the URLError's reason, or the exception's text."""
    code = getattr(exc, "code", None)
    reason = getattr(exc, "reason", None) or exc
    text = " ".join(str(reason).split())[:200] or type(exc).__name__
    return f"HTTP {code} {text}" if isinstance(code, int) else text
