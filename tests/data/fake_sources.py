"""A tiny fake tree of allowed packages, laid out like the extracted .deb/.whl files."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.data.conftest import tone_bytes
from tests.data.test_containers import make_cat, make_rcc


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def make_fake_sources(root: Path) -> dict[str, Path]:
    """Create fake package roots; returns ``{source name: root}`` for ``--source-dir``."""
    roots = {
        name: root / name
        for name in (
            "tuxpaint-stamps-default",
            "openttd-opensfx",
            "scratch",
            "ufoai-sound",
            "gcompris-qt-data",
            "hydrogen-drumkits",
        )
    }
    stamps = roots["tuxpaint-stamps-default"] / "usr/share/tuxpaint/stamps/animals"
    _write(stamps / "dog.txt", "A dog.\nfr.utf8=Un chien.\n")
    _write(stamps / "dog.ogg", tone_bytes(300, 0.8, fmt="OGG"))
    _write(stamps / "dog_desc.ogg", tone_bytes(200, 0.7, fmt="OGG"))
    _write(stamps / "dog_desc_fr.ogg", tone_bytes(210, 0.7, fmt="OGG"))
    _write(stamps / "ghost.txt", "A ghost.\n")  # dropped label
    _write(stamps / "ghost.ogg", tone_bytes(500, 0.5, fmt="OGG"))
    cat = make_cat(
        [
            ('"Ship horn". Original by Leon. License: CC-BY-SA-3.0', tone_bytes(150, 1.2)),
            ('"Good Year". By Janis. License: CC-BY-3.0', tone_bytes(600, 0.5)),
        ]
    )
    _write(roots["openttd-opensfx"] / "usr/share/games/openttd/baseset/opensfx/opensfx.cat", cat)
    sounds = roots["scratch"] / "usr/share/scratch/Media/Sounds"
    for take in (1, 2, 3):
        _write(sounds / f"Animal/Dog{take}.wav", tone_bytes(400 + take, 0.6))
    _write(sounds / "Effects/Mystery.wav", tone_bytes(700, 0.5))  # no label mapping
    pk3 = roots["ufoai-sound"] / "usr/share/games/ufoai/base/0snd.pk3"
    pk3.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(pk3, "w") as z:
        z.writestr("sound/ambience/water.ogg", tone_bytes(90, 4.0, fmt="OGG"))
        z.writestr("sound/footsteps/grass1.ogg", tone_bytes(800, 0.4, fmt="OGG"))
        z.writestr("sound/footsteps/grass2.ogg", tone_bytes(820, 0.4, fmt="OGG"))
    rcc = make_rcc({"instruments": {"harp.ogg": tone_bytes(440, 1.0, fmt="OGG")}}, compress=True)
    _write(roots["gcompris-qt-data"] / "usr/share/gcompris-qt/rcc/instruments.rcc", rcc)
    kit = roots["hydrogen-drumkits"] / "usr/share/hydrogen/data/drumkits/TestKit"
    _write(kit / "kick_soft.wav", tone_bytes(60, 0.5))
    _write(kit / "kick_hard.wav", tone_bytes(62, 0.5))
    _write(
        kit / "drumkit.xml",
        """<drumkit_info><name>TestKit</name><license>GPL-2+</license><instrumentList>
<instrument><name>Kick</name>
<layer><filename>kick_soft.wav</filename><min>0</min><max>0.5</max></layer>
<layer><filename>kick_hard.wav</filename><min>0.5</min><max>1</max></layer></instrument>
</instrumentList></drumkit_info>""",
    )
    return roots
