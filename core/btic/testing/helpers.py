"""Building blocks of the btic pytest plugin and conformance suite."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import btic
from btic.appliance.model import Session
from btic.config import Config, build_config
from btic.naming import ConfigWarning
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.statuses import RunStatus
from btic.transfer import Engine, SessionDocument, Summary, TransferRequest
from btic.transfer.items import Item, item_key
from btic.types import (
    AppContext,
    Backup,
    DataType,
    Delivery,
    ItemKey,
    MemoryState,
    Recording,
    RecordingKind,
    SiteInfo,
    TransferContext,
)

SITE = SiteInfo(name="sim", host="support.example.com", product="rs")


def sample_session(
    lsid: str = "c69a8e10bea9428f816cfababe9815fe",
    *,
    external_key: str | None = "INC-1",
    host: str = "support.example.com",
    end: datetime | None = None,
) -> Session:
    """A small closed support session, for calling hooks directly."""
    end = end or datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    return Session(
        product="rs",
        report="support",
        host=host,
        lsid=lsid,
        lseq=7,
        session_type="support",
        start_time=end - timedelta(minutes=30),
        end_time=end,
        duration="00:30:00",
        external_key=external_key,
    )


def session_xml(session: Session) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<session xmlns="https://www.beyondtrust.com/namespaces/API/'
        f'reporting" lsid="{session.lsid}"><session_type>support</session_type></session>'
    ).encode()


class ConfiguredDestination:
    """One destination of a plugin, configured alone, whose hooks can be called."""

    def __init__(
        self, plugin: str, options: dict[str, Any], config_dir: Path, name: str = "under-test"
    ):
        self.name = name
        self.plugins = PluginManager().discover()
        info = self.plugins.get(plugin)
        with warnings.catch_warnings():
            # Tests choose odd templates on purpose; the loader is where users see these.
            warnings.simplefilter("ignore", ConfigWarning)
            self.options = info.options_model.model_validate(
                options, context={"base_dir": config_dir}
            )
        self.plugins.add_destination(
            name, plugin, self.options, AppContext(config_dir=config_dir, version=btic.__version__)
        )
        #: the destination's own values (``ctx.state``), kept in memory
        self.state = MemoryState()
        #: the sha256 each delivery returned, by item key: the ledger's part
        self.recorded: dict[ItemKey, str] = {}

    def ctx(
        self, data_type: DataType, item: Item | Session, *, force: bool = False
    ) -> TransferContext:
        """The context the core would pass with ``item``: its ``item_key``, this
        destination's :attr:`state`, and as ``last_sha256`` what an earlier delivery of
        it through this object returned. A ``Session`` stands for its report."""
        if isinstance(item, Session):
            item = SessionDocument(item, session_xml(item))
        site = item_site(item)
        key = item_key(site, data_type, item)
        return TransferContext(
            site=site,
            destination=self.name,
            data_type=data_type,
            run_id="test",
            item_key=key,
            force=force,
            state=self.state,
            recorded_sha256=lambda: self.recorded.get(key),
        )

    def check(self) -> str | None:
        """The destination's ``on_check`` line (None when it has none)."""
        return self.plugins.on_check(self.name)

    def session(
        self,
        session: Session,
        xml: bytes | None = None,
        data_type: DataType = DataType.SESSION,
        *,
        force: bool = False,
    ) -> Delivery | None:
        document = SessionDocument(session, xml or session_xml(session))
        ctx = self.ctx(data_type, document, force=force)
        delivery = self.plugins.on_session_xml(
            self.name, session=session, xml=document.xml, ctx=ctx
        )
        return self._flushed(delivery, ctx)

    def _flushed(self, delivery: Delivery | None, ctx: TransferContext) -> Delivery | None:
        """A deferred delivery made durable, as the core does at the end of a transfer;
        the destination's refusal of this item raised as its error."""
        if delivery is not None and delivery.deferred:
            for refusal in self.plugins.on_flush(self.name):
                if refusal.item_key == ctx.item_key:
                    raise refusal.error
        self._record(ctx.item_key, delivery)
        return delivery

    def _record(self, key: ItemKey, delivery: Delivery | None) -> None:
        if delivery is not None and delivery.sha256 is not None:
            self.recorded[key] = delivery.sha256

    def batch(self, sessions: Iterable[Session], *, force: bool = False) -> BatchOutcome:
        """Hand several session reports over as the core does, then flush once: what a
        batching destination (one that returns ``deferred`` deliveries and implements
        ``on_flush``) made durable, and what it refused, item by item. A destination
        that does not batch stores each at once, and nothing is refused at the flush."""
        outcome = BatchOutcome()
        keys: dict[ItemKey, str] = {}
        for session in sessions:
            document = SessionDocument(session, session_xml(session))
            ctx = self.ctx(DataType.SESSION, document, force=force)
            try:
                delivery = self.plugins.on_session_xml(
                    self.name, session=session, xml=document.xml, ctx=ctx
                )
            except btic.DestinationError as exc:
                outcome.refused[session.lsid] = exc
                continue
            if delivery is not None:
                outcome.delivered[session.lsid] = delivery
                keys[ctx.item_key] = session.lsid
        for refusal in self.plugins.on_flush(self.name):
            lsid = keys.pop(refusal.item_key, None)
            if lsid is None:
                raise AssertionError(f"on_flush refused {refusal.item_key}, not in its batch")
            outcome.refused[lsid] = refusal.error
            del outcome.delivered[lsid]
        for key, lsid in keys.items():
            self._record(key, outcome.delivered[lsid])
        return outcome

    def recording(self, recording: Recording, *, force: bool = False) -> Delivery | None:
        ctx = self.ctx(recording.data_type, recording, force=force)
        delivery = self.plugins.on_recording(self.name, recording=recording, ctx=ctx)
        return self._flushed(delivery, ctx)

    def backup(self, backup: Backup, *, force: bool = False) -> Delivery | None:
        ctx = self.ctx(DataType.BACKUP, backup, force=force)
        return self._flushed(self.plugins.on_backup(self.name, backup=backup, ctx=ctx), ctx)


@dataclass
class BatchOutcome:
    """What :meth:`ConfiguredDestination.batch` came to, by lsid: the deliveries made
    durable, and the items refused (at hand-over or at the flush) with the error."""

    delivered: dict[str, Delivery] = field(default_factory=dict)
    refused: dict[str, btic.DestinationError] = field(default_factory=dict)


def item_site(item: Item) -> SiteInfo:
    """The site an item came from, as its own data says."""
    if isinstance(item, SessionDocument):
        return SiteInfo(SITE.name, item.session.host, item.session.product)
    return item.site


def spool_file(path: Path, size: int, seed: bytes = b"btic") -> tuple[Path, str]:
    """Write ``size`` deterministic bytes to ``path``; return it and its sha256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(seed).digest() * 32768  # 1 MiB
    with path.open("wb") as out:
        left = size
        while left:
            chunk = block[: min(left, len(block))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def make_recording(
    path: Path,
    size: int,
    session: Session | None = None,
    *,
    kind: RecordingKind = "session",
    instance: int | None = None,
) -> Recording:
    session = session or sample_session()
    path, sha256 = spool_file(path, size, seed=f"{session.lsid}{kind}{instance}".encode())
    return Recording(
        site=SITE,
        lsid=session.lsid,
        kind=kind,
        instance=instance,
        extension="flv",
        size=size,
        sha256=sha256,
        path=path,
        session=session,
    )


@dataclass
class TransferResult:
    summary: Summary
    state: StateStore
    config: Config


def run_transfer(
    sim: Any,
    *,
    tmp_path: Path,
    plugin: str,
    options: dict[str, Any],
    data: Iterable[str] = ("session", "recording", "command_shell_recording"),
    force: bool = False,
    state_url: str | None = None,
    environ: dict[str, str] | None = None,
    concurrency: int | None = None,
) -> TransferResult:
    """Transfer everything ``sim`` has (closed) into one destination, in-process."""
    data_types = tuple(DataType(d) for d in data)
    raw = {
        "state": {"url": state_url or f"sqlite:///{tmp_path / 'btic-state.db'}"},
        "sites": {
            "sim": {
                "host": sim.host,
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "product": sim.product,
                "scheme": sim.scheme,
                "first_run_since": "all",
                **({"ca_bundle": str(sim.ca_path)} if sim.ca_path else {}),
            }
        },
        "destinations": {"under-test": {"plugin": plugin, **options}},
        "schedules": {
            "all": {
                "every": "15m",
                "transfers": [
                    {
                        "site": "sim",
                        "destinations": ["under-test"],
                        "data": [d.value for d in data_types],
                    }
                ],
            }
        },
    }
    plugins = PluginManager().discover()
    config = build_config(
        raw, plugins, base_dir=tmp_path, environ=environ if environ is not None else os.environ
    )
    state = StateStore(config.state_url)
    run_id = state.start_run("test")
    engine = Engine(config, plugins, state, run_id=run_id, concurrency=concurrency)
    try:
        summary = engine.run(
            TransferRequest(
                site="sim",
                destinations=("under-test",),
                data_types=data_types,
                incremental=True,
                force=force,
            )
        )
    finally:
        engine.close()
        plugins.close()
    state.finish_run(run_id, RunStatus.FAILED if summary.failed else RunStatus.OK)
    return TransferResult(summary, state, config)
