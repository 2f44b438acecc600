"""The BagIt parts of an archive (RFC 8493): tag files, manifests, hashed writes.

Nothing here knows what a Sourcebook archive holds (``service.ops.archive`` does); these
are the format's rules: which characters a manifest path encodes, what bag-info.txt
says, and writing files so that their sha256 is known and they are on disk.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path
from typing import IO

from service.filemodes import open_private, private_dir
from service.storage import sha256_file

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt")


def write_tags(bag: Path, manifest: dict[str, str], revision: str) -> None:
    oxum_bytes = sum((bag / rel).stat().st_size for rel in manifest)
    info = (f"Bag-Software-Agent: sourcebook export-archive\n"
            f"Bagging-Date: {date.today().isoformat()}\n"
            f"Payload-Oxum: {oxum_bytes}.{len(manifest)}\n"
            f"External-Description: Sourcebook interview archive: every table's rows "
            f"(data/tables) and every stored file (data/recordings)\n"
            f"Sourcebook-Schema-Revision: {revision}\n")
    tags = {
        "bagit.txt": write_text(bag / "bagit.txt", BAGIT_TXT),
        "bag-info.txt": write_text(bag / "bag-info.txt", info),
        "manifest-sha256.txt": write_text(bag / "manifest-sha256.txt", manifest_text(manifest)),
    }
    write_text(bag / "tagmanifest-sha256.txt", manifest_text(tags))


def manifest_text(entries: dict[str, str]) -> str:
    return "".join(f"{digest}  {encode_path(rel)}\n" for rel, digest in sorted(entries.items()))


def encode_path(rel: str) -> str:
    # RFC 8493 section 2.1.3: only these three characters are percent-encoded.
    return rel.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def decode_path(text: str) -> str:
    return text.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r") \
        .replace("%0d", "\r").replace("%25", "%")


def read_manifest(bag: Path, name: str, problems: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for n, line in enumerate((bag / name).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.strip().partition(" ")
        rel = decode_path(rel.lstrip())
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts or len(digest) != 64:
            problems.append(f"{name} line {n}: not a valid entry: {line[:200]!r}")
            continue
        if name.startswith("manifest") and parts[0] != "data":
            problems.append(f"{name} line {n}: payload path outside data/: {rel!r}")
            continue
        entries[rel] = digest.lower()
    return entries


def check_files(bag: Path, entries: dict[str, str]) -> list[str]:
    problems = []
    for rel, expected in sorted(entries.items()):
        path = bag / rel
        if not path.is_file():
            problems.append(f"{rel}: listed in the manifest but missing")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"{rel}: sha256 {actual} differs from the manifest's {expected} "
                            "(the file was altered or damaged)")
    return problems


def bag_info(bag: Path) -> dict[str, str]:
    path = bag / "bag-info.txt"
    if not path.is_file():
        return {}
    info = {}
    for line in path.read_text("utf-8").splitlines():
        key, sep, value = line.partition(":")
        if sep and not line[:1].isspace():
            info[key.strip()] = value.strip()
    return info


class HashingWriter:
    """A text file that hashes what it writes and is fsynced on close."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent, tighten_existing=False)
        self._f: IO[bytes] = os.fdopen(open_private(path), "wb")
        self._h = hashlib.sha256()

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self._h.update(data)
        self._f.write(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def write_text(path: Path, text: str) -> str:
    with HashingWriter(path) as out:
        out.write(text)
    return out.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
