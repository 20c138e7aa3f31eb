"""The file-system destination: sessions, recordings and backups as files."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import btic
from btic import DataType, naming
from btic_filesystem import files, verification
from btic_filesystem.options import FileSystemOptions
from btic_filesystem.retention import apply_retention


class FileSystemDestination:
    """Writes sessions, recordings and backups as files under one directory."""

    #: the plugin API this plugin is written for (btic refuses a later one it lacks)
    api_version = (1, 0)
    #: items sealed to age recipients (``encrypt``) are files like any other
    accepts_sealed = True

    Options = FileSystemOptions

    def __init__(self) -> None:
        # Both set by on_configure, which the core calls before any other hook.
        self._options: FileSystemOptions | None = None
        self._directory: Path | None = None
        self._collision_warned = False
        self._group: int | None = None
        # Directories already rid of a dead writer's temporary files: once each is
        # enough (a scan per file would cost time in proportion to the directory).
        self._swept: set[Path] = set()
        self._swept_lock = threading.Lock()

    @btic.hookimpl
    def on_configure(self, options: FileSystemOptions, app: btic.AppContext) -> None:
        self._options = options
        self._group = None if options.group is None else files.group_id(options.group)
        directory = options.directory.expanduser()
        self._directory = directory if directory.is_absolute() else app.config_dir / directory

    @property
    def options(self) -> FileSystemOptions:
        if self._options is None:
            raise btic.DestinationError("the file-system destination was not configured")
        return self._options

    @property
    def root(self) -> Path:
        """The destination directory, as configured (it may not exist yet)."""
        if self._directory is None:
            raise btic.DestinationError("the file-system destination was not configured")
        return self._directory

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
            raise btic.DestinationError(f"{root}: cannot write: {files.cause(exc)}") from None
        free = shutil.disk_usage(root).free
        return f"{root} writable, {free / 1024**3:.1f} GiB free"

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        values = naming.session_values(session, extension=naming.session_extension(ctx.sealed))
        relative = self._name(ctx.data_type, values)
        delivery = self._write(
            relative, lambda out: out.write(xml), files.sha256_bytes(xml), len(xml), ctx=ctx
        )
        # A sealed report gets no JSON copy: it would be the report in the clear.
        if self.options.download_format == "xml+json" and not ctx.sealed:
            document = session.model_dump_json(indent=2).encode("utf-8")
            json_name = naming.render(
                naming.template_for(
                    ctx.data_type, self.options.file_name_format, self.options.file_name_formats
                ),
                {**values, "EXTENSION": "json"},
            )
            self._write(
                json_name,
                lambda out: out.write(document),
                files.sha256_bytes(document),
                len(document),
                ctx=ctx,
                item_suffix="json",
            )
        return delivery

    @btic.hookimpl
    def on_locate(self, session: btic.Session, ctx: btic.TransferContext) -> btic.Placement:
        values = naming.session_values(session, extension=naming.session_extension(ctx.sealed))
        relative = self._name(ctx.data_type, values)
        try:
            where = naming.inside(self.root, relative)
        except ValueError as exc:
            raise btic.DestinationError(
                f"{self.root}: refused a file name outside the destination: {exc}",
                permanent=True,
            ) from None
        # AppendNumber numbers a name another item holds; a dry run only says so.
        if where.exists() and files.item_of(where) != str(ctx.item_key):
            return btic.Placement(str(where), note=f"taken: {self.options.conflict}")
        return btic.Placement(str(where))

    @btic.hookimpl
    def on_recording(
        self, recording: btic.Recording, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        relative = self._name(recording.data_type, naming.recording_values(recording))
        return self._write(
            relative,
            files.copier(recording.open),
            recording.sha256,
            recording.size,
            source=recording.path,
            ctx=ctx,
        )

    @btic.hookimpl
    def on_backup(self, backup: btic.Backup, ctx: btic.TransferContext) -> btic.Delivery | None:
        relative = self._name(DataType.BACKUP, naming.backup_values(backup))
        delivery = self._write(
            relative,
            files.copier(backup.open),
            backup.sha256,
            backup.size,
            source=backup.path,
            ctx=ctx,
        )
        if not self.options.retention_count:
            return delivery
        template = naming.template_for(
            DataType.BACKUP, self.options.file_name_format, self.options.file_name_formats
        )
        removed = apply_retention(self._root(), template, backup, self.options.retention_count)
        for path in removed:
            ctx.log.info(
                "removed an old backup (retention_count)",
                destination=ctx.destination,
                path=str(path),
                kept=self.options.retention_count,
            )
        if delivery is None or not removed:
            return delivery
        return dataclasses.replace(delivery, removed=tuple(str(path) for path in removed))

    # -- naming ------------------------------------------------------------------

    def _root(self) -> Path:
        try:
            if not self.root.is_dir():
                self.root.parent.mkdir(parents=True, exist_ok=True)
                self._make_directories(self.root, self.root.parent)
        except OSError as exc:
            raise btic.DestinationError(
                f"{self.root}: cannot create the destination directory: {files.cause(exc)}"
            ) from None
        if not self.root.is_dir():
            raise btic.DestinationError(f"{self.root}: not a directory")
        return self.root

    def _make_directories(self, directory: Path, root: Path) -> None:
        """Create ``directory`` and those between it and ``root`` with the configured
        mode and group (``mkdir``'s own mode is cut by the umask)."""
        missing = []
        while directory != root and not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for made in reversed(missing):
            try:
                made.mkdir()
            except FileExistsError:
                if made.is_dir():
                    continue  # another writer made it: its mode is the same rule's
                raise
            files.restrict(made, self.options.directory_permissions, self._group)

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
        *,
        ctx: btic.TransferContext,
        item_suffix: str = "",
    ) -> btic.Delivery | None:
        """Write one file under ``relative``; ``source``, when given, is a
        finished spool file that may be hard-linked instead of copied.

        Each file is tagged with its item key, so a name another item holds is
        never taken for this one's (``Skip``), and this item's own unrecorded
        earlier file is replaced rather than numbered (``AppendNumber``) when its
        bytes changed; a forced redelivery never replaces anything.
        """
        item = "/".join((*ctx.item_key.parts, item_suffix)) if item_suffix else str(ctx.item_key)
        root = self._root()
        try:
            final = naming.inside(root, relative)
        except ValueError as exc:
            raise btic.DestinationError(
                f"{root}: refused a file name outside the destination: {exc}", permanent=True
            ) from None
        try:
            self._make_directories(final.parent, root)
            self._sweep(final.parent)
            conflict = self.options.conflict
            if conflict == "Skip" and final.exists():
                owner = files.item_of(final)
                if owner is None or owner == item:
                    return None
                # Another item holds the name (two values sanitised alike): skipping
                # would settle this one unstored. Number it instead, and say so once.
                conflict = "AppendNumber"
                self._warn_collision(ctx, final, owner, item)
            own = None
            if conflict == "AppendNumber":
                if ctx.plain_sha256 is not None:
                    held = files.same_plain_content(final, ctx.plain_sha256, item)
                    if held is not None:  # this content, sealed before: the copy held
                        return btic.Delivery(
                            location=str(held),
                            size=held.stat().st_size,
                            sha256=files.sha256_file(held),
                        )
                existing = files.same_content(final, sha256, size, item)
                if existing is not None:
                    return btic.Delivery(location=str(existing), size=size, sha256=sha256)
                # Unforced, this item is not in the ledger as delivered, so a file tagged
                # as its own is an unrecorded write (a crash before the ledger write).
                # Forced, the ledger had it: the file stands, and a new copy is numbered.
                own = None if ctx.force else files.own_file(final, item)
            temp = files.temp_name(final, secrets.token_hex(4))
            try:
                if not (source is not None and files.link_spool(source, temp)):
                    with temp.open("xb") as out:
                        produce(out)
                        out.flush()
                        os.fsync(out.fileno())
                # One rule for every file, written or linked from the spool.
                files.restrict(temp, self.options.file_permissions, self._group)
                files.tag(temp, item, ctx.plain_sha256)
                if own is not None:
                    # This item's own file, written before its delivery was recorded
                    # (a crash) and fetched again with other bytes: replace, not number.
                    os.replace(temp, own)
                    placed: Path | None = own
                else:
                    placed = files.place(temp, final, conflict)
            finally:
                temp.unlink(missing_ok=True)
            if placed is None:
                return None
            files.fsync_directory(placed.parent)
        except btic.DestinationError:
            raise
        except OSError as exc:
            raise btic.DestinationError(f"{exc.filename or final}: {files.cause(exc)}") from None
        return btic.Delivery(location=str(placed), size=size, sha256=sha256)

    def _sweep(self, directory: Path) -> None:
        """Remove the temporary files a crashed btic left in ``directory``, the first
        time this destination writes there."""
        with self._swept_lock:
            if directory in self._swept:
                return
            self._swept.add(directory)
        files.remove_stale_temps(directory)

    @btic.hookimpl
    def on_verify(self, items: Iterable[btic.StoredItem]) -> Iterator[btic.VerifyFinding]:
        root = self._root()
        return verification.findings(
            items,
            backup_template=naming.template_for(
                DataType.BACKUP, self.options.file_name_format, self.options.file_name_formats
            ),
            root=root,
            retention_count=self.options.retention_count,
        )

    @btic.hookimpl
    def on_remove(self, item: btic.StoredItem) -> None:
        root = self.root
        try:
            target = naming.inside(root, Path(item.location).relative_to(root).as_posix())
        except ValueError:
            # Never delete outside the destination, whatever the ledger says.
            raise btic.DestinationError(
                f"{item.location}: not inside {root}; not removed", permanent=True
            ) from None
        copies = [target]
        if item.data_type in (DataType.SESSION, DataType.PRESENTATION):
            copies.append(target.with_suffix(".json"))  # the xml+json copy, if any
        for path in copies:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise btic.DestinationError(f"{path}: cannot remove: {files.cause(exc)}") from None

    @btic.hookimpl
    def on_open(self, item: btic.StoredItem) -> IO[bytes]:
        try:
            path = naming.inside(self.root, Path(item.location).relative_to(self.root).as_posix())
        except ValueError:
            raise btic.DestinationError(f"{item.location}: not inside {self.root}") from None
        try:
            return path.open("rb")
        except OSError as exc:
            raise btic.DestinationError(f"{path}: {files.cause(exc)}") from None

    @btic.hookimpl
    def on_digest(self, digest: btic.Digest) -> str:
        directory = self._root() / btic.DIGEST_DIRECTORY
        try:
            if not directory.is_dir():
                self._make_directories(directory, directory.parent)
            target = directory / f"{digest.name}.json"
            for path, data in (
                (directory / f"{digest.name}.json.sig", digest.signature_file()),
                (target, digest.body),
            ):
                files.write_new(path, data, self.options.file_permissions, self._group)
            files.fsync_directory(directory)
        except OSError as exc:
            raise btic.DestinationError(f"{directory}: {files.cause(exc)}") from None
        return str(target)

    @btic.hookimpl
    def on_digests(self) -> Iterator[btic.Digest]:
        directory = self.root / btic.DIGEST_DIRECTORY
        if not directory.is_dir():
            return iter(())
        return btic.read_digests(directory)

    @btic.hookimpl
    def on_list(self) -> Iterator[str]:
        return verification.locations(
            self._root(), json_beside_xml=self.options.download_format == "xml+json"
        )

    def _warn_collision(
        self, ctx: btic.TransferContext, final: Path, owner: str, item: str | None
    ) -> None:
        if self._collision_warned:
            return
        self._collision_warned = True
        ctx.log.warning(
            "two items share one file name; the second is numbered, not skipped: make the "
            "template tell them apart (add %LSID%)",
            destination=ctx.destination,
            path=str(final),
            holder=owner,
            item=item,
        )
