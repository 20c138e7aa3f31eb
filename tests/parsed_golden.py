"""The simulator's reports of every kind and what the parser made of them.

``tests/data/parsed_sessions.json.gz`` holds every field of every session the
parser built from these reports; test_parse compares today's parser with it.
Regenerate only when the simulator's reports change on purpose, with the parser
trusted at that commit:

    .venv/bin/python tests/parsed_golden.py
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from btic.appliance.model import Product, ReportKind
from btic.appliance.parse import iter_sessions
from btic.sim.data import SimDataset
from btic.sim.render import sessions_document

GOLDEN = Path(__file__).parent / "data" / "parsed_sessions.json.gz"
ANCHOR = 1_790_000_000
NOW = ANCHOR + 3600.0


def reports() -> Iterator[tuple[Product, ReportKind, str, bytes]]:
    """(product, report kind, name, document) for RS support, RS presentations, PA access."""
    rs = SimDataset(product="rs", seed=11, anchor=ANCHOR, sessions=70, presentations=12)
    pa = SimDataset(product="pa", seed=12, anchor=ANCHOR, sessions=50)
    datasets: tuple[tuple[Product, SimDataset], ...] = (("rs", rs), ("pa", pa))
    kinds: tuple[ReportKind, ...] = ("support", "presentation", "access")
    for product, dataset in datasets:
        for kind in kinds:
            chosen = [s for s in dataset.all() if s.report == kind]
            if chosen:
                data = b"".join(sessions_document(dataset, chosen, NOW, "https://sim.example"))
                yield product, kind, f"{product}-{kind}", data


def parsed() -> dict[str, list[dict[str, object]]]:
    """Each report's sessions as JSON-ready dicts, with a digest of each standalone XML."""
    result: dict[str, list[dict[str, object]]] = {}
    for product, kind, name, data in reports():
        result[name] = [
            {
                "session": session.model_dump(mode="json"),
                "xml_sha256": hashlib.sha256(xml).hexdigest(),
            }
            for session, xml in iter_sessions(
                io.BytesIO(data), product=product, report=kind, host="sim.example"
            )
        ]
    return result


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_bytes(gzip.compress(json.dumps(parsed(), sort_keys=True).encode(), mtime=0))
    sys.stdout.write(f"{GOLDEN}: {GOLDEN.stat().st_size} bytes\n")
