"""Models bundled with the package (small demo models trained on the open corpus; see their model cards)."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = BUNDLED_DIR / "sara-demo"

__all__ = ["BUNDLED_DIR", "DEFAULT_MODEL"]
