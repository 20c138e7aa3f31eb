"""The hooks a destination plugin implements.

A destination plugin is a class with an ``Options`` pydantic model and methods
marked ``@btic.hookimpl``. The core makes one instance per configured
destination and calls that instance alone for each item, so a hook never sees
another destination's items. Every hook is called with keyword arguments; an
implementation may accept fewer arguments than the spec lists.

Which data types a destination can receive follows from the hooks it
implements: ``on_session_xml`` for ``session`` and ``presentation``,
``on_recording`` for the four recording types, ``on_backup`` for ``backup``.

The shape, and why. pluggy was made for pytest, where every plugin answers
every hook call. A btic destination is one configured instance, called for its
own items only. So each destination's instance sits alone in a pluggy manager
of its own (:class:`btic.plugins.PluginManager` keeps one per destination):
pluggy still checks every implementation's arguments against these specs when
the plugin loads, and a misspelled hook still fails then; but there is no
broadcast, no cache of subset callers, and one destination's failure never
hides another's. ``firstresult`` only means "this destination's answer".

``on_configure`` hands the instance its options and name once; the other hooks
take only what changes from call to call (an item and its context), never the
destination's name again. ``register_commands`` is the plugin's, not a
destination's: it is called once per installed plugin, on an instance that is
never configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import IO

    import click
    from pydantic import BaseModel

    from btic.appliance.model import Session
    from btic.integrity import Digest
    from btic.types import (
        AppContext,
        Backup,
        Delivery,
        Placement,
        Recording,
        Refusal,
        StoredItem,
        TransferContext,
        VerifyFinding,
    )

PROJECT_NAME = "btic"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def on_configure(destination: str, options: BaseModel, app: AppContext) -> None:
    """Prepare a destination before any transfer.

    Called once per configured destination, after its options were validated
    against the plugin's ``Options`` model. Open nothing expensive here that a
    ``btic check --offline`` would not want; connect lazily.

    :param destination: the destination's name (``[destinations.NAME]``).
    :param options: the validated instance of the plugin's ``Options``.
    :param app: paths and services of the running btic.
    :raises btic.ConfigError: with a message a user can act on, when the
        options are valid one by one but unusable together.
    """


@hookspec(firstresult=True)
def on_check() -> str | None:
    """Test that the destination can be reached and written, writing nothing
    that stays.

    Called by ``btic check`` (online) after ``on_configure``. A file system
    destination writes and removes a probe file; a database opens a
    connection; a bucket checks it can put objects.

    :return: one line on what was checked ("/srv/archive writable, 120 GiB
        free"), or None.
    :raises btic.DestinationError: with what failed and how to fix it.
    """


@hookspec(firstresult=True)
def on_session_xml(session: Session, xml: bytes, ctx: TransferContext) -> Delivery | None:
    """Deliver one session report (support, access or presentation).

    Called once per session and destination. Delivering the same session again
    must leave one copy (replace by key, or the configured conflict mode).

    :param session: the parsed report.
    :param xml: the standalone XML document of this one session, as the
        appliance sent it (its namespace kept).
    :param ctx: site, destination, data type and run.
    :return: where the session went, or None when the destination skipped it
        (for example ``conflict = "Skip"`` and the file exists).
    :raises btic.DestinationError: when the destination could not take it; the
        core records the failure and retries on the next run.
    """


@hookspec(firstresult=True)
def on_recording(recording: Recording, ctx: TransferContext) -> Delivery | None:
    """Deliver one downloaded recording (session, command shell, Show My
    Screen or presentation).

    The core downloaded the file once, verified its size and computed its
    sha256; read it through ``recording.open()`` in chunks, never whole.

    :param recording: the recording and its spooled file.
    :param ctx: site, destination, data type and run.
    :return: where it went, or None when skipped.
    :raises btic.DestinationError: when the destination could not take it.
    """


@hookspec(firstresult=True)
def on_backup(backup: Backup, ctx: TransferContext) -> Delivery | None:
    """Deliver one site backup (``.nsb``).

    :param backup: the backup and its spooled file.
    :param ctx: site, destination, data type and run.
    :return: where it went, or None when skipped.
    :raises btic.DestinationError: when the destination could not take it.
    """


@hookspec(firstresult=True)
def on_flush() -> Iterable[Refusal] | None:
    """Make durable every item this destination took into its batch since the
    last flush (each answered with ``Delivery(deferred=True)``).

    A destination that writes in batches (rows in one transaction) implements
    it; the core records a deferred item in the ledger only after this hook
    has returned, so a crash before then leaves the item pending and it is
    delivered again. The core calls it as the plugin's
    :class:`btic.DeliveryLimits` say (every 500 deferred items or 2 seconds by
    default, before a byte budget would be passed), and at the end of every
    transfer, never while one of this destination's hooks runs.

    :return: a :class:`btic.Refusal` for each item of the batch that could not
        be stored while the rest were (an item the destination refuses), or
        None when every item is durable.
    :raises btic.DestinationBusy: when the service asks to wait: keep the batch,
        the core calls ``on_flush`` again after the pause.
    :raises btic.DestinationError: when the batch could not be stored at all
        (the database is down): every item of it fails with this reason and
        stays pending.
    """


@hookspec(firstresult=True)
def on_close() -> None:
    """Let go of what the destination holds: connections, open files, threads.

    Called once per instance, when btic is done with it: at the end of a
    command, when ``btic run`` or ``btic worker`` stops, and when a reloaded
    configuration replaces the destination. It comes after the core's last
    ``on_flush``: an item still in a batch then was never recorded, and is offered
    again by the next run. Optional. Its errors are logged, never raised to the
    user: the work is done by then.
    """


@hookspec(firstresult=True)
def on_locate(session: Session, ctx: TransferContext) -> Placement | None:
    """Say where ``on_session_xml`` would put this session report; write nothing.

    Called by ``btic transfer --dry-run`` for each session report the run
    would deliver, so a user can check a naming template before anything is
    written. Optional; without it the dry run
    lists the lsid alone.

    :param session: the parsed report.
    :param ctx: site, destination, data type and run, as for ``on_session_xml``.
    :return: a :class:`btic.Placement`: the location the report would get (as
        ``Delivery.location`` would say it) and, when the name is another item's,
        a note saying what the delivery would do; None when the destination
        cannot tell in advance.
    :raises btic.DestinationError: when the delivery would be refused (a name
        outside the destination); the dry run shows the reason for that report.
    """


@hookspec(firstresult=True)
def on_verify(items: Iterable[StoredItem]) -> Iterator[VerifyFinding] | None:
    """Check that the destination still holds what the ledger says it delivered.

    Called by ``btic verify``. ``items`` is a stream (a million items must not
    sit in memory): read each item where its ``location`` says, compare size and
    sha256 when the ledger has them, and yield a :class:`btic.VerifyFinding` of
    kind ``missing`` or ``changed`` for each item that is not intact. Yield
    nothing for intact items.

    :param items: what the ledger says was delivered there.
    :return: an iterator of findings.
    :raises btic.DestinationError: when the destination cannot be read at all.
    """


@hookspec(firstresult=True)
def on_list() -> Iterator[str] | None:
    """Every location the destination holds, so ``btic verify`` can report what
    the ledger does not know (``unexpected``).

    Optional. Yield locations exactly as your ``Delivery.location`` reports
    them, streaming; leave out what you keep beside items on purpose.

    :return: an iterator of locations.
    :raises btic.DestinationError: when the destination cannot be read.
    """


@hookspec(firstresult=True)
def on_remove(item: StoredItem) -> None:
    """Delete one item a retention rule says is past its time (``retention = {...}``
    of the destination).

    Called after a run, for each item older than its data type's period, never for
    a session under a legal hold. Delete what ``item.location`` names: the file,
    the object, the session's rows in every table; and what you keep beside it for
    that item (a JSON copy). An item already gone is not an error: return. The core
    records the removal in the ledger once this hook has returned.

    :param item: what the ledger says was delivered there.
    :raises btic.DestinationError: when it could not be deleted (an object lock
        still holds it, the share is down); the item stays, and the next run tries
        again.
    """


@hookspec(firstresult=True)
def on_hold(item: StoredItem, held: bool) -> bool | None:
    """Place (``held`` True) or lift a legal hold on one delivered item in the
    destination's own terms, for ``btic hold add`` and ``btic hold remove``: S3's
    object legal hold, a WORM store's hold flag.

    Optional. btic's own hold (in its state database) already keeps the item from
    every retention rule; this keeps it from anyone else who can delete there.
    Placing a hold the item has already is not an error.

    :param item: what the ledger says was delivered there.
    :param held: True to place the hold, False to lift it.
    :return: True when the destination holds (or no longer holds) the item so;
        False or None when it keeps no holds of its own for it (an S3 bucket
        without object lock): btic's hold alone protects it, and the command says so.
    :raises btic.DestinationError: when it could not (the service is down, the
        credentials may not); the command names the items, and btic's hold stands.
    """


@hookspec(firstresult=True)
def on_open(item: StoredItem) -> IO[bytes] | None:
    """Open one stored item for reading, for ``btic export`` and ``btic serve``: its
    bytes as stored (the file, the object), streamed; the caller closes it.

    Return a seekable file where seeking is cheap (a file; an object read with
    ranged GETs): the viewer answers a range request (a recording played from its
    middle) by seeking; from a stream that cannot seek it reads and discards.

    Optional: the items of a destination without it are listed in an export's
    manifest with their location, not copied.

    :param item: what the ledger says was delivered there.
    :return: a binary file object read in chunks.
    :raises btic.DestinationError: when it cannot be read (gone, unreachable).
    """


@hookspec(firstresult=True)
def on_digest(digest: Digest) -> str | None:
    """Store a signed digest of what a run wrote to this destination and removed
    from it, beside the items (see docs/plugin-hooks.md, "Tamper evidence").

    Called after a run, when ``[integrity] signing_key`` is set. Keep
    ``digest.body`` as ``NAME.json`` and ``digest.signature`` beside it, durably,
    where ``on_digests`` finds them again and ``on_list`` does not list them
    (the file system and S3 keep them under ``.btic-digests/``). Never replace a
    digest of the same name with other bytes. Optional: a destination without it
    gets no digests, and ``btic verify`` says so.

    :param digest: ``name``, ``body`` (canonical JSON) and ``signature`` (Ed25519).
    :return: where it went.
    :raises btic.DestinationError: when it could not be stored.
    """


@hookspec(firstresult=True)
def on_digests() -> Iterator[Digest] | None:
    """Every digest this destination holds, in any order, for ``btic verify``.

    :return: an iterator of :class:`btic.Digest`, read back as stored.
    :raises btic.DestinationError: when they cannot be read.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add the plugin's own commands to ``btic`` (``btic sql`` of the SQL plugin).

    Called once per installed plugin, on an instance made for the purpose (never
    configured, never given items), when ``btic`` looks for a command it does not
    have itself or lists its commands (``btic --help``). Add ``click`` commands or
    groups with ``cli.add_command(...)``; import what they need inside them, so
    that listing stays fast. A command named like one of btic's own, or like
    another plugin's, is not added (the user is told). To read the configuration,
    use :data:`btic.plugin.config_option` and :class:`btic.plugin.Runtime`.

    :param cli: the group to add the commands to.
    """
