"""btic destination plugin: a local directory or a network share (UNC path).

Settings follow the vendor's File System plugin: destination directory, file
name format, file name conflict handling, retention count and download format.

Every file is written to a temporary name beside its final name, flushed and
fsynced, then moved into place without ever replacing a file the conflict
mode protects, so a reader (or a crash) never sees a partial file under a
final name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

import btic
from btic import naming
from btic.processes import process_alive
from btic.types import DataType

__version__ = "0.1.0"

_CHUNK = 1024 * 1024
_TEMP = re.compile(r"^\.(?P<name>.+)\.btic-(?P<pid>\d+)-[0-9a-f]+\.tmp$")
RECEIVES = frozenset(DataType)


class FileSystemOptions(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "filesystem"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path = Field(
        description="destination directory; created when missing; UNC paths on Windows"
    )
    conflict: Literal["AppendNumber", "Overwrite", "Skip"] = Field(
        default="AppendNumber", description="what to do when the file name already exists"
    )
    # Before file_name_format: its check needs to know which types override it.
    file_name_formats: dict[DataType, str] = Field(
        default_factory=dict, description="per-data-type templates overriding file_name_format"
    )
    file_name_format: str | None = Field(
        default=None,
        description="%TOKEN% template for every data type; default: one per type (see docs)",
    )
    retention_count: int | None = Field(
        default=None, ge=1, description="newest backups kept per site; empty keeps all"
    )
    download_format: Literal["xml", "xml+json"] = Field(
        default="xml",
        description='"xml": session reports as received; "xml+json": also the session as JSON',
    )

    @field_validator("file_name_formats")
    @classmethod
    def _per_type_templates(
        cls, value: dict[DataType, str], info: ValidationInfo
    ) -> dict[DataType, str]:
        conflict = info.data.get("conflict", "AppendNumber")
        problems = [
            f"{key.removeprefix('file_name_formats.')}: {message}"
            for key, message in naming.check_destination_templates(None, value, conflict, RECEIVES)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("file_name_format")
    @classmethod
    def _general_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            conflict = info.data.get("conflict", "AppendNumber")
            per_type = info.data.get("file_name_formats") or {}
            problems = [
                message
                for key, message in naming.check_destination_templates(
                    value, per_type, conflict, RECEIVES
                )
                if key == "file_name_format"
            ]
            if problems:
                raise ValueError("; ".join(problems))
        return value


class FileSystemDestination:
    """Writes sessions, recordings and backups as files under one directory."""

    Options = FileSystemOptions

    @btic.hookimpl
    def on_configure(self, options: FileSystemOptions, app: btic.AppContext) -> None:
        self.options = options
        directory = options.directory.expanduser()
        self.root = directory if directory.is_absolute() else app.config_dir / directory

    @btic.hookimpl
    def on_check(self) -> str:
        root = self._root()
        probe = root / f".btic-probe-{secrets.token_hex(4)}"
        try:
            with probe.open("wb") as handle:
                handle.write(b"btic probe\n")
                handle.flush()
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            raise btic.DestinationError(f"{root}: cannot write: {_cause(exc)}") from None
        free = shutil.disk_usage(root).free
        return f"{root} writable, {free / 1024**3:.1f} GiB free"

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        values = naming.session_values(session, extension="xml")
        relative = self._name(ctx.data_type, values)
        delivery = self._write(relative, lambda out: out.write(xml), _sha256_bytes(xml), len(xml))
        if self.options.download_format == "xml+json":
            document = session.model_dump_json(indent=2).encode("utf-8")
            json_name = naming.render(
                naming.template_for(
                    ctx.data_type, self.options.file_name_format, self.options.file_name_formats
                ),
                {**values, "EXTENSION": "json"},
            )
            self._write(
                json_name, lambda out: out.write(document), _sha256_bytes(document), len(document)
            )
        return delivery

    @btic.hookimpl
    def on_recording(
        self, recording: btic.Recording, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        relative = self._name(recording.data_type, naming.recording_values(recording))
        return self._write(
            relative,
            _copier(recording.open),
            recording.sha256,
            recording.size,
            source=recording.path,
        )

    @btic.hookimpl
    def on_backup(self, backup: btic.Backup, ctx: btic.TransferContext) -> btic.Delivery | None:
        relative = self._name(DataType.BACKUP, naming.backup_values(backup))
        delivery = self._write(
            relative, _copier(backup.open), backup.sha256, backup.size, source=backup.path
        )
        if self.options.retention_count:
            self._apply_retention(backup)
        return delivery

    # -- naming ------------------------------------------------------------------

    def _root(self) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise btic.DestinationError(
                f"{self.root}: cannot create the destination directory: {_cause(exc)}"
            ) from None
        if not self.root.is_dir():
            raise btic.DestinationError(f"{self.root}: not a directory")
        return self.root

    def _name(self, data_type: DataType, values: dict[str, str]) -> str:
        template = naming.template_for(
            data_type, self.options.file_name_format, self.options.file_name_formats
        )
        return naming.render(template, values)

    # -- writing -----------------------------------------------------------------

    def _write(
        self,
        relative: str,
        produce: Callable[[IO[bytes]], object],
        sha256: str,
        size: int,
        source: Path | None = None,
    ) -> btic.Delivery | None:
        """Write one file under ``relative``; ``source``, when given, is a
        finished spool file that may be hard-linked instead of copied."""
        root = self._root()
        try:
            final = naming.inside(root, relative)
        except ValueError as exc:
            raise btic.DestinationError(
                f"{root}: refused a file name outside the destination: {exc}", permanent=True
            ) from None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temps(final)
            conflict = self.options.conflict
            if conflict == "Skip" and final.exists():
                return None
            if conflict == "AppendNumber":
                existing = _same_content(final, sha256, size)
                if existing is not None:
                    return btic.Delivery(location=str(existing), size=size, sha256=sha256)
            temp = final.with_name(f".{final.name}.btic-{os.getpid()}-{secrets.token_hex(4)}.tmp")
            try:
                if not (source is not None and _link_spool(source, temp)):
                    with temp.open("xb") as out:
                        produce(out)
                        out.flush()
                        os.fsync(out.fileno())
                placed = _place(temp, final, conflict)
            finally:
                temp.unlink(missing_ok=True)
            if placed is None:
                return None
            _fsync_directory(placed.parent)
        except btic.DestinationError:
            raise
        except OSError as exc:
            raise btic.DestinationError(f"{exc.filename or final}: {_cause(exc)}") from None
        return btic.Delivery(location=str(placed), size=size, sha256=sha256)

    # -- retention ------------------------------------------------------------------

    def _apply_retention(self, backup: btic.Backup) -> None:
        """Keep the newest ``retention_count`` backups of this site."""
        template = naming.template_for(
            DataType.BACKUP, self.options.file_name_format, self.options.file_name_formats
        )
        pattern = _backup_pattern(template, backup)
        root = self._root()
        found = []
        for path in root.rglob("*"):
            relative = path.relative_to(root).as_posix()
            match = pattern.fullmatch(relative)
            if match and path.is_file():
                found.append((match.groupdict().get("ts") or "", path.stat().st_mtime, path))
        found.sort(reverse=True)
        for _, _, path in found[self.options.retention_count :]:
            try:
                path.unlink()
            except OSError as exc:
                raise btic.DestinationError(
                    f"{path}: cannot remove an old backup: {_cause(exc)}"
                ) from None


def _backup_pattern(template: str, backup: btic.Backup) -> re.Pattern[str]:
    """A regex matching this site's backups as ``template`` names them."""
    values = naming.backup_values(backup)
    wildcard = {"TIMESTAMP": r"\d{8}T\d{6}Z", "YEAR": r"\d{4}", "MONTH": r"\d{2}", "DAY": r"\d{2}"}
    extension = re.escape("." + values["EXTENSION"])
    has_timestamp = False
    parts = []
    for raw in re.split(r"[/\\]", template):
        if not raw:
            continue
        regex = ""
        for piece in re.split(r"(%[A-Z_]+%)", raw):
            token = piece[1:-1] if len(piece) > 2 and piece[0] == piece[-1] == "%" else None
            if token == "TIMESTAMP" and not has_timestamp:
                regex += r"(?P<ts>\d{8}T\d{6}Z)"
                has_timestamp = True
            elif token in wildcard:
                regex += wildcard[token]
            elif token is not None:
                regex += re.escape(naming.sanitize_value(values.get(token, "")))
            else:
                regex += re.escape(piece)
        if regex.endswith(extension):
            # AppendNumber may have put ".N" before the last period.
            regex = regex[: -len(extension)] + r"(?:\.\d+)?" + extension
        parts.append(regex)
    return re.compile("/".join(parts))


def _copier(opener: Callable[[], IO[bytes]]) -> Callable[[IO[bytes]], None]:
    def copy(out: IO[bytes]) -> None:
        with opener() as source:
            shutil.copyfileobj(source, out, _CHUNK)

    return copy


def _place(temp: Path, final: Path, conflict: str) -> Path | None:
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


def _link_spool(source: Path, temp: Path) -> bool:
    """Hard-link a finished spool file as ``temp`` (same filesystem only) and
    flush it to disk: the bytes are written once instead of twice. The core
    only ever deletes its spool name, so the link keeps the data."""
    try:
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


def _same_content(final: Path, sha256: str, size: int) -> Path | None:
    """The existing file (``final`` or a numbered sibling) holding exactly these bytes.

    Redelivery (after a crash between writing and recording) must not add a
    numbered copy of the same item.
    """
    candidate = final
    number = 0
    while candidate.exists():
        if candidate.stat().st_size == size and _sha256_file(candidate) == sha256:
            return candidate
        number += 1
        candidate = _numbered(final, number)
    return None


def _remove_stale_temps(final: Path) -> None:
    """Remove temporary files a crashed btic left for this name."""
    prefix = f".{final.name}.btic-"
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _TEMP.match(entry.name)
        if match and not process_alive(int(match.group("pid"))):
            Path(entry.path).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cause(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "No space left on device"
    return exc.strerror or str(exc)
