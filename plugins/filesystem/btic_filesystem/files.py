"""Files that appear whole or not at all.

Every file is written to a temporary name beside its final name, flushed and
fsynced, then moved into place without ever replacing a file the conflict
mode protects, so a reader (or a crash) never sees a partial file under a
final name. Temporary files of a writer that died are removed on the next
write beside them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import btic
from btic.plugin import process_alive

_CHUNK = 1024 * 1024
#: The extended attribute naming the item a file holds (its item key).
ITEM_ATTRIBUTE = "user.btic.item"
#: The extended attribute with a sealed file's plaintext sha256.
PLAIN_ATTRIBUTE = "user.btic.plain_sha256"
_TEMP = re.compile(r"^\.(?P<name>.+)\.btic-(?P<pid>\d+)-[0-9a-f]+\.tmp$")


def temp_name(final: Path, token: str) -> Path:
    """The temporary name a file is written under before it becomes ``final``."""
    return final.with_name(f".{final.name}.btic-{os.getpid()}-{token}.tmp")


def copier(opener: Callable[[], IO[bytes]]) -> Callable[[IO[bytes]], None]:
    def copy(out: IO[bytes]) -> None:
        with opener() as source:
            shutil.copyfileobj(source, out, _CHUNK)

    return copy


def place(temp: Path, final: Path, conflict: str) -> Path | None:
    """Move ``temp`` to ``final`` as the conflict mode says; the path used, or None (skipped)."""
    if conflict == "Overwrite":
        os.replace(temp, final)
        return final
    candidate = final
    number = 0
    while True:
        try:
            # link() never replaces an existing file: the no-clobber move.
            os.link(temp, candidate)
            return candidate
        except FileExistsError:
            if conflict == "Skip":
                return None
            number += 1
            candidate = _numbered(final, number)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # Filesystems without hard links: rename refuses to replace on Windows;
            # elsewhere check first (the window is small and only for such shares).
            if candidate.exists():
                if conflict == "Skip":
                    return None
                number += 1
                candidate = _numbered(final, number)
                continue
            os.rename(temp, candidate)
            return candidate


def group_id(group: str) -> int:
    """The id of a group given by name or number.

    :raises ConfigError: for a group this machine does not know, or where groups
        cannot be set (Windows: its ACLs are the share's).
    """
    if group.isdigit():
        return int(group)
    try:
        import grp
    except ImportError:
        raise btic.ConfigError(
            "group: Windows sets access by the directory's ACLs; remove group"
        ) from None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise btic.ConfigError(f"group: no group {group!r} on this machine") from None


def restrict(path: Path, mode: int, group: int | None) -> None:
    """Give ``path`` its mode and, when configured, its group."""
    if group is not None:
        os.chown(path, -1, group)
    os.chmod(path, mode)


def link_spool(source: Path, temp: Path) -> bool:
    """Hard-link a finished spool file as ``temp`` (same filesystem only) and
    flush it to disk: the bytes are written once instead of twice. The core
    only ever deletes its spool name, so the link keeps the data.

    Only the first destination may link it: two archives sharing one inode are
    not two copies (changing one would change the other), so a spool file
    that has a link already is copied instead."""
    try:
        if os.stat(source).st_nlink > 1:
            return False
        os.link(source, temp)
    except OSError:
        return False
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _numbered(final: Path, number: int) -> Path:
    """``name.N.ext``: the number inserted before the last period, as the guide says."""
    stem, dot, extension = final.name.rpartition(".")
    if not dot:
        return final.with_name(f"{final.name}.{number}")
    return final.with_name(f"{stem}.{number}.{extension}")


def same_content(final: Path, sha256: str, size: int, item: str | None) -> Path | None:
    """The existing file (``final`` or a numbered sibling) holding exactly these bytes,
    and not tagged as another item's.

    Redelivery (after a crash between writing and recording) must not add a
    numbered copy of the same item.
    """
    return _held_copy(final, item, lambda c: c.stat().st_size == size and sha256_file(c) == sha256)


def same_plain_content(final: Path, plain_sha256: str, item: str | None) -> Path | None:
    """The existing sealed file (``final`` or a numbered sibling) of this very
    content: tagged with its plaintext's sha256, and not another item's. Two sealed
    copies of one item share no byte, so only the tag tells them apart."""
    return _held_copy(final, item, lambda c: _attribute(c, PLAIN_ATTRIBUTE) == plain_sha256)


def _held_copy(final: Path, item: str | None, same: Callable[[Path], bool]) -> Path | None:
    """The first of ``final`` and its numbered siblings, not tagged as another item's,
    that ``same`` says holds this content."""
    for candidate in _name_and_siblings(final):
        owner = item_of(candidate)
        if owner is not None and owner != item:
            continue
        if same(candidate):
            return candidate
    return None


def own_file(final: Path, item: str | None) -> Path | None:
    """The file (``final`` or a numbered sibling) tagged as ``item``'s, if any: an
    earlier delivery of this very item, perhaps of bytes that have changed since."""
    if item is None:
        return None
    return next((c for c in _name_and_siblings(final) if item_of(c) == item), None)


def _name_and_siblings(final: Path) -> Iterator[Path]:
    candidate = final
    number = 0
    while candidate.exists():
        yield candidate
        number += 1
        candidate = _numbered(final, number)


def tag(path: Path, item: str | None, plain_sha256: str | None = None) -> None:
    """Mark ``path`` as holding ``item`` (an extended attribute), and a sealed file
    with its plaintext's sha256, where the file system keeps them; without, names
    are told apart by content alone (and a forced redelivery of a sealed item is
    numbered: its bytes differ each time)."""
    with contextlib.suppress(OSError, AttributeError):  # no xattrs here (or on this OS)
        if item is not None:
            os.setxattr(path, ITEM_ATTRIBUTE, item.encode("utf-8", "surrogatepass"))
        if plain_sha256 is not None:
            os.setxattr(path, PLAIN_ATTRIBUTE, plain_sha256.encode("ascii"))


def item_of(path: Path) -> str | None:
    """The item ``path`` was written for, when it was tagged."""
    return _attribute(path, ITEM_ATTRIBUTE)


def _attribute(path: Path, name: str) -> str | None:
    try:
        return os.getxattr(path, name).decode("utf-8", "surrogatepass")
    except (OSError, AttributeError):
        return None


def remove_stale_temps(directory: Path) -> None:
    """Remove every temporary file a crashed btic left in ``directory``, whatever
    name it was meant to take (the next backup, say, has another timestamp)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _TEMP.match(entry.name)
        if match and not process_alive(int(match.group("pid"))):
            Path(entry.path).unlink(missing_ok=True)


#: Whether a directory can be opened to fsync it (POSIX); on Windows NTFS makes
#: a rename durable itself and a directory cannot be opened as a file.
DIRECTORY_FSYNC = os.name == "posix"


def fsync_directory(directory: Path) -> None:
    if not DIRECTORY_FSYNC:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cause(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "No space left on device"
    return exc.strerror or str(exc)


def write_new(path: Path, data: bytes, mode: int, group: int | None) -> None:
    """Write a file that must not exist yet (or exist with exactly ``data``): a
    temporary file, fsynced, then linked into place, which never replaces."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    restrict(temp, mode, group)
    try:
        os.link(temp, path)
    except FileExistsError:
        if path.read_bytes() != data:
            raise
    finally:
        temp.unlink(missing_ok=True)
