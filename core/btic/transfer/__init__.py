"""The transfer engine: list -> diff -> fetch -> deliver -> ledger -> watermark.

For each (site, data type) of a transfer:

1. Window: from the watermark minus the overlap to the appliance's now minus
   the settle delay (first run: ``first_run_since``). The appliance's clock,
   from ``get_api_info``, is the only clock used.
2. List the closed sessions of the window (``...Listing`` by ``end_time``).
3. Drop what the ledger has settled for each destination.
4. Fetch the full reports of the rest in ``lsids`` batches, parsed as a stream.
5. Hand each session to each destination that lacks it; record at once (or, for
   a destination that writes in batches, once its batch is durable).
6. Recordings of those sessions: download once to a spool file, hand the same
   file to each destination, record at once.
7. Advance each destination's watermark only over what it has settled.

A killed process loses nothing: what it delivered is in the ledger, what it
did not is listed again (the watermark did not move past it), and delivering
an item twice leaves one copy (destinations are idempotent).

Where each part lives:

* :mod:`btic.transfer.engine` — :class:`Engine`: a transfer's leases, plan and backups;
* :mod:`btic.transfer.delivery` — :class:`Deliverer`: the one path from an item to a
  plugin, its outcome in the ledger, and the batches of destinations that defer;
* :mod:`btic.transfer.sessions` — :class:`SessionRun`: steps 1-7 for one report kind;
* :mod:`btic.transfer.recordings` — :class:`SessionRecordings`: step 6, downloads
  in slots apart from delivery;
* :mod:`btic.transfer.imports` — report files fed to a session run (``btic import-xml``);
* :mod:`btic.transfer.summary` — what a run counts and reports;
* :mod:`btic.transfer.spool` — where downloads wait for every destination.
"""

from btic.transfer.context import RunContext, TransferRequest
from btic.transfer.delivery import Deliverer, SessionDocument
from btic.transfer.engine import Engine
from btic.transfer.imports import import_reports
from btic.transfer.sessions import SessionRun
from btic.transfer.summary import Reporter, Reporters, SilentReporter, Summary, Tally

__all__ = [
    "Deliverer",
    "Engine",
    "Reporter",
    "Reporters",
    "RunContext",
    "SessionDocument",
    "SessionRun",
    "SilentReporter",
    "Summary",
    "Tally",
    "TransferRequest",
    "import_reports",
]
