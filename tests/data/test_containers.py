"""Container readers on small synthetic containers: Qt .rcc, OpenTTD .cat, zip/.pk3."""

from __future__ import annotations

import struct
import zipfile
import zlib

import pytest

from sara.data.containers import iter_rcc_files, iter_zip_files, parse_cat_name, read_opensfx_cat
from sara.errors import SaraError


def make_rcc(tree: dict[str, dict[str, bytes]], compress: bool, version: int = 2) -> bytes:
    """Build a Qt .rcc with one level of folders: ``{folder: {file: bytes}}`` (version 1 or 2 node size)."""
    names, data = bytearray(), bytearray()

    def add_name(name: str) -> int:
        off = len(names)
        encoded = name.encode("utf-16-be")
        names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return off

    def add_data(payload: bytes) -> int:
        off = len(data)
        if compress:
            payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
        data.extend(struct.pack(">I", len(payload)) + payload)
        return off

    node_size = 14 if version == 1 else 22
    nodes: list[bytes] = []

    def dir_node(name_off: int, count: int, first: int) -> bytes:
        return struct.pack(">IHII", name_off, 2, count, first) + (b"\0" * 8 if version > 1 else b"")

    def file_node(name_off: int, data_off: int) -> bytes:
        flags = 1 if compress else 0
        return struct.pack(">IHHHI", name_off, flags, 0, 0, data_off) + (b"\0" * 8 if version > 1 else b"")

    folders = sorted(tree)
    nodes.append(dir_node(0, len(folders), 1))  # root
    first_file = 1 + len(folders)
    for folder in folders:
        nodes.append(dir_node(add_name(folder), len(tree[folder]), first_file))
        first_file += len(tree[folder])
    for folder in folders:
        for fname, payload in sorted(tree[folder].items()):
            nodes.append(file_node(add_name(fname), add_data(payload)))
    header_len = 20
    tree_off = header_len
    data_off = tree_off + node_size * len(nodes)
    names_off = data_off + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    return header + b"".join(nodes) + bytes(data) + bytes(names)


def make_cat(entries: list[tuple[str, bytes]]) -> bytes:
    """Build an OpenTTD .cat: offset/size table (bit 31 set like OpenTTD), then name_len, name, data."""
    table_len = 8 * len(entries)
    body, table = bytearray(), bytearray()
    for name, payload in entries:
        raw = name.encode("latin-1") + b"\0"
        entry = bytes([len(raw)]) + raw + payload
        table.extend(struct.pack("<II", (table_len + len(body)) | 0x80000000, len(entry)))
        body.extend(entry)
    return bytes(table) + bytes(body)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("version", [1, 2])
def test_rcc_roundtrip(tmp_path, compress, version):
    tree = {"animals": {"cow.ogg": b"moo" * 50, "dog.ogg": b"woof"}, "instruments": {"harp.ogg": b"\x00\x01"}}
    path = tmp_path / "x.rcc"
    path.write_bytes(make_rcc(tree, compress, version))
    got = dict(iter_rcc_files(path))
    assert got == {
        "animals/cow.ogg": b"moo" * 50,
        "animals/dog.ogg": b"woof",
        "instruments/harp.ogg": b"\x00\x01",
    }


def test_rcc_rejects_other_files(tmp_path):
    path = tmp_path / "bad.rcc"
    path.write_bytes(b"not a resource file at all")
    with pytest.raises(SaraError, match="not a Qt resource"):
        list(iter_rcc_files(path))


def test_cat_reader_descriptions_and_licences(tmp_path, tone):
    wav = tone(seconds=0.1)
    path = tmp_path / "opensfx.cat"
    path.write_bytes(
        make_cat(
            [
                ('"Ship horn". Original "ship2.aif" by Leon. License: CC-BY-SA-3.0', wav),
                ('"Cow". By Someone. License: Creative Commons Zero 1.0.', wav[:100]),
            ]
        )
    )
    entries = read_opensfx_cat(path)
    assert [e.description for e in entries] == ["Ship horn", "Cow"]
    assert entries[0].license == "CC-BY-SA-3.0"
    assert entries[1].license == "Creative Commons Zero 1.0"
    assert entries[0].data == wav and entries[1].data == wav[:100]


def test_cat_reader_rejects_truncated(tmp_path):
    path = tmp_path / "bad.cat"
    path.write_bytes(struct.pack("<II", 8, 1000))
    with pytest.raises(SaraError):
        read_opensfx_cat(path)


def test_parse_cat_name_without_quotes():
    assert parse_cat_name("nothing quoted here") == ("", "")


def test_zip_reader_filters_suffixes(tmp_path):
    path = tmp_path / "0snd.pk3"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("sound/doors/door1-open.ogg", b"a")
        z.writestr("sound/readme.txt", b"b")
        z.writestr("sound/footsteps/grass1.wav", b"c")
    got = list(iter_zip_files(path, (".ogg", ".wav")))
    assert got == [("sound/doors/door1-open.ogg", b"a"), ("sound/footsteps/grass1.wav", b"c")]


def test_zip_reader_rejects_non_zip(tmp_path):
    path = tmp_path / "x.pk3"
    path.write_bytes(b"plain")
    with pytest.raises(SaraError, match="not a zip"):
        list(iter_zip_files(path, (".ogg",)))
