"""Models bundled with the package (small demo models trained on the open corpus; see their model cards)."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = BUNDLED_DIR / "sara-demo"
BUNDLED_NAMES: tuple[str, ...] = ("sara-demo", "ldm-demo", "audiogen-demo", "dcldm-demo")  # one per system

__all__ = ["BUNDLED_DIR", "BUNDLED_NAMES", "DEFAULT_MODEL", "bundled_models"]


def bundled_models() -> list[Path]:
    """The bundled demo model directories that exist in this installation, in :data:`BUNDLED_NAMES` order."""
    return [BUNDLED_DIR / name for name in BUNDLED_NAMES if (BUNDLED_DIR / name / "config.json").is_file()]
