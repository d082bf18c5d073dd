"""Readers for the archive formats that some allowed packages ship their audio in.

* OpenTTD ``opensfx.cat``: a table of ``(offset, size)`` little-endian uint32 pairs (the first offset also
  gives the table length, ``n = offset0 / 8``; OpenTTD sets bit 31 of offsets as a flag, masked off here).
  Each entry is ``uint8 name_len``, ``name_len`` bytes of NUL-terminated name, then a RIFF/WAV file. The
  name carries a quoted description and a licence string, e.g. ``"Ship horn". Original ... CC-BY-SA-3.0``.
* Qt ``.rcc`` resource bundles (GCompris): header ``qres``, version, tree/data/names offsets (big-endian).
  The tree is an array of fixed-size nodes (14 bytes, 22 from version 2 on) forming a directory tree; file
  payloads are ``uint32 size`` + bytes, zlib-compressed (``qCompress``: 4-byte length + zlib stream) when
  flag 1 is set.
* ``.pk3`` (UFO:AI) are plain zip files.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sara.errors import SaraError

__all__ = ["CatEntry", "iter_rcc_files", "iter_zip_files", "parse_cat_name", "read_opensfx_cat"]

_OFFSET_MASK = 0x7FFFFFFF
_RCC_COMPRESSED = 0x01
_RCC_DIRECTORY = 0x02
_RCC_COMPRESSED_ZSTD = 0x04


@dataclass(frozen=True)
class CatEntry:
    """One sound of an OpenTTD ``.cat`` container.

    Attributes:
        index: position in the container (0-based).
        name: the raw name field.
        description: the quoted description ("" if none).
        license: the licence text found in the name ("" if none).
        data: the embedded RIFF/WAV file.
    """

    index: int
    name: str
    description: str
    license: str
    data: bytes


def parse_cat_name(name: str) -> tuple[str, str]:
    """Split an OpenSFX name field into ``(description, license)``.

    ``'"Ship horn". Original "x.aif" by Leon. License: CC-BY-SA-3.0'`` -> ``("Ship horn", "CC-BY-SA-3.0")``.
    """
    desc_match = re.match(r'\s*"([^"]*)"', name)
    description = desc_match.group(1).strip() if desc_match else ""
    lic_match = re.search(r"[Ll]icen[cs]e[d]?:?\s*(.+?)\.?\s*$", name)
    license_ = lic_match.group(1).strip() if lic_match else ""
    if not license_:
        cc = re.search(r"\b(CC0|CC[- ]BY(?:[- ]SA)?[- ]?[0-9.]*|Public Domain)\b", name, re.IGNORECASE)
        license_ = cc.group(1) if cc else ""
    return description, license_


def read_opensfx_cat(path: str | Path) -> list[CatEntry]:
    """Read every entry of an OpenTTD sound ``.cat`` file.

    Raises:
        SaraError: the file is truncated or not a ``.cat`` container.
    """
    blob = Path(path).read_bytes()
    if len(blob) < 8:
        raise SaraError(f"{path}: too short for an OpenTTD .cat file")
    first = struct.unpack_from("<I", blob, 0)[0] & _OFFSET_MASK
    if first % 8 or first > len(blob):
        raise SaraError(f"{path}: not an OpenTTD .cat file (bad table offset {first})")
    entries = []
    for i in range(first // 8):
        offset, size = struct.unpack_from("<II", blob, 8 * i)
        offset &= _OFFSET_MASK
        if offset + size > len(blob) or size < 1:
            raise SaraError(f"{path}: entry {i} runs past the end of the file")
        name_len = blob[offset]
        name = blob[offset + 1 : offset + 1 + name_len].split(b"\0", 1)[0].decode("latin-1")
        data = blob[offset + 1 + name_len : offset + size]
        description, license_ = parse_cat_name(name)
        entries.append(CatEntry(i, name, description, license_, data))
    return entries


def _rcc_header(blob: bytes, path: str | Path) -> tuple[int, int, int, int]:
    """Return ``(version, tree_offset, data_offset, names_offset)`` of an rcc file."""
    if blob[:4] != b"qres" or len(blob) < 20:
        raise SaraError(f"{path}: not a Qt resource (.rcc) file")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise SaraError(f"{path}: unsupported .rcc version {version}")
    return version, tree, data, names


def _rcc_name(blob: bytes, names: int, offset: int) -> str:
    """Decode a UTF-16BE node name (``uint16 length, uint32 hash, chars``)."""
    (length,) = struct.unpack_from(">H", blob, names + offset)
    start = names + offset + 6
    return blob[start : start + 2 * length].decode("utf-16-be")


def _rcc_payload(blob: bytes, data: int, offset: int, flags: int) -> bytes:
    """Return the (decompressed) payload of a file node."""
    (size,) = struct.unpack_from(">I", blob, data + offset)
    payload = blob[data + offset + 4 : data + offset + 4 + size]
    if flags & _RCC_COMPRESSED:
        return zlib.decompress(payload[4:])  # qCompress prefixes the uncompressed length
    if flags & _RCC_COMPRESSED_ZSTD:
        raise SaraError("zstd-compressed .rcc payloads are not supported")
    return payload


def iter_rcc_files(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(relative path, bytes)`` for every file in a Qt ``.rcc`` bundle, depth first.

    Raises:
        SaraError: the file is not a supported ``.rcc``.
    """
    blob = Path(path).read_bytes()
    version, tree, data, names = _rcc_header(blob, path)
    node_size = 14 if version == 1 else 22

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, base)
        name = _rcc_name(blob, names, name_offset) if index else ""
        rel = f"{prefix}/{name}" if prefix else name
        if flags & _RCC_DIRECTORY:
            count, first_child = struct.unpack_from(">II", blob, base + 6)
            for child in range(first_child, first_child + count):
                yield from walk(child, rel)
        else:
            (data_offset,) = struct.unpack_from(">I", blob, base + 10)
            yield rel, _rcc_payload(blob, data, data_offset, flags)

    yield from walk(0, "")


def iter_zip_files(path: str | Path, suffixes: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` for zip (``.pk3``, ``.whl``) members ending in one of ``suffixes``.

    Raises:
        SaraError: the file is not a zip archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and info.filename.lower().endswith(suffixes):
                    yield info.filename, archive.read(info)
    except zipfile.BadZipFile:
        raise SaraError(f"{path}: not a zip archive") from None
