"""Signed, chained digests: written into the destination after each run, checked by
``btic verify`` without trusting the ledger, and by ``btic integrity verify`` with
the public key and the archive alone."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
from pathlib import Path

from conftest import run_btic
from transfer_helpers import write_config

from btic.sim import FrozenClock, SimulatedAppliance

DATA = ["session", "recording"]


def _tampered(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("tampered")]


def test_digests_catch_what_the_ledger_cannot(tmp_path):
    keys = tmp_path / "keys"
    made = run_btic("integrity", "keygen", "--dir", str(keys))
    assert made.returncode == 0, made.output
    private = keys / "btic-signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    again = run_btic("integrity", "keygen", "--dir", str(keys))
    assert again.returncode != 0 and "never replaced" in again.stderr

    archive = tmp_path / "archive"
    with SimulatedAppliance(
        "rs", sessions=6, seed=3, live_sessions=0, presentations=0, recording_size=10_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        config = write_config(tmp_path, sim, data=DATA)
        with config.open("a") as more:
            more.write(f'[integrity]\nsigning_key = "file:{private}"\n')
        first = run_btic("sync", "--all", "--config", str(config))
        assert first.returncode == 0, first.output
        # A second run that writes: two sessions again, forced, make a second digest.
        lsids = sorted(p.stem.rsplit("-", 1)[-1] for p in archive.rglob("*.xml"))[:2]
        forced = run_btic(
            "transfer", "--site", "sim", "--dest", "archive", "--type", "session",
            *[arg for lsid in lsids for arg in ("--lsid", lsid)], "--force",
            "--config", str(config),
        )  # fmt: skip
        assert forced.returncode == 0, forced.output
    digests = sorted((archive / ".btic-digests").glob("*.json"))
    assert len(digests) == 2
    first_digest = json.loads(digests[0].read_bytes())
    assert first_digest["previous"] is None
    assert json.loads(digests[1].read_bytes())["previous"]["name"] == digests[0].stem
    assert {i["action"] for i in first_digest["items"]} == {"delivered"}

    clean = run_btic("verify", "--config", str(config))
    assert clean.returncode == 0, clean.output
    assert "2 signed digest(s) checked" in clean.stderr

    state = tmp_path / "btic-state.db"
    # 1. A file changed, and the ledger's sha256 changed to match: the ledger is
    #    satisfied, the digest is not.
    victim = next(archive.rglob("*.flv"))
    original = victim.read_bytes()
    victim.write_bytes(b"X" + original[1:])
    import hashlib

    with sqlite3.connect(state) as db:
        db.execute(
            "update btic_deliveries set sha256 = ? where location = ?",
            (hashlib.sha256(victim.read_bytes()).hexdigest(), str(victim)),
        )
    caught = run_btic("verify", "--config", str(config))
    assert caught.returncode == 1
    lines = _tampered(caught)
    assert len(lines) == 1 and str(victim) in lines[0] and "against its signed digest" in lines[0]
    victim.write_bytes(original)
    with sqlite3.connect(state) as db:
        db.execute(
            "update btic_deliveries set sha256 = ? where location = ?",
            (hashlib.sha256(original).hexdigest(), str(victim)),
        )
    assert run_btic("verify", "--config", str(config)).returncode == 0

    # 2. An item deleted, its ledger row made to say "removed": no removal in any digest.
    gone = next(archive.rglob("*.xml"))
    kept = gone.read_bytes()
    gone.unlink()
    with sqlite3.connect(state) as db:
        db.execute("update btic_deliveries set status = 'removed' where location = ?", (str(gone),))
    caught = run_btic("verify", "--config", str(config))
    lines = _tampered(caught)
    assert caught.returncode == 1 and len(lines) == 1
    assert str(gone) in lines[0] and "missing against its signed digest" in lines[0]
    gone.write_bytes(kept)
    with sqlite3.connect(state) as db:
        db.execute(
            "update btic_deliveries set status = 'delivered' where location = ?", (str(gone),)
        )

    # 3. A digest deleted: the chain says so, and so does the record of what was written.
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for path in digests[0].parent.glob(digests[0].name + "*"):
        shutil.move(path, hidden / path.name)
    caught = run_btic("verify", "--config", str(config))
    lines = _tampered(caught)
    assert caught.returncode == 1
    assert any(f"digest {digests[1].stem}" in line and "is missing" in line for line in lines)
    assert any(
        f"digest {digests[0].stem}" in line and "written and is gone" in line for line in lines
    )
    for path in hidden.iterdir():
        shutil.move(path, digests[0].parent / path.name)

    # 4. Digests reordered (their names swapped): the links no longer hold.
    a, b = digests
    for suffix in (".json", ".json.sig"):
        swap = a.with_name("swap" + suffix)
        Path(str(a)[: -len(".json")] + suffix).rename(swap)
        Path(str(b)[: -len(".json")] + suffix).rename(Path(str(a)[: -len(".json")] + suffix))
        swap.rename(Path(str(b)[: -len(".json")] + suffix))
    caught = run_btic("verify", "--config", str(config))
    assert caught.returncode == 1 and _tampered(caught)
    for suffix in (".json", ".json.sig"):
        swap = a.with_name("swap" + suffix)
        Path(str(a)[: -len(".json")] + suffix).rename(swap)
        Path(str(b)[: -len(".json")] + suffix).rename(Path(str(a)[: -len(".json")] + suffix))
        swap.rename(Path(str(b)[: -len(".json")] + suffix))
    assert run_btic("verify", "--config", str(config)).returncode == 0

    # The auditor's verifier: a copy of the archive, the public key, nothing else.
    copy = tmp_path / "export"
    shutil.copytree(archive, copy)
    public = keys / "btic-signing.pub"
    audited = run_btic(
        "integrity", "verify", str(copy), "--public-key", str(public), "--root", str(archive),
        "--json",
    )  # fmt: skip
    assert audited.returncode == 0, audited.output
    report = json.loads(audited.stdout)
    assert report["ok"] and report["digests"] == 2 and report["files"] >= 6
    one = next(copy.rglob("*.flv"))
    data = bytearray(one.read_bytes())
    data[len(data) // 2] ^= 1
    one.write_bytes(bytes(data))
    audited = run_btic(
        "integrity", "verify", str(copy), "--public-key", str(public), "--root", str(archive)
    )
    assert audited.returncode == 1
    changed = [line for line in audited.stdout.splitlines() if line.startswith("changed:")]
    assert len(changed) == 1 and str(one) in changed[0], audited.output


def test_an_export_carries_its_proof(tmp_path):
    """btic export: the matched sessions' items, a manifest whose hashes are the
    files', the digests and the public key; the auditor's verifier accepts the
    package, and rejects it once one byte changes."""
    import csv
    import io
    import zipfile

    keys = tmp_path / "keys"
    assert run_btic("integrity", "keygen", "--dir", str(keys)).returncode == 0
    with SimulatedAppliance(
        "rs", sessions=5, seed=9, live_sessions=0, presentations=0, recording_size=10_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        config = write_config(tmp_path, sim, data=DATA)
        with config.open("a") as more:
            more.write(f'[integrity]\nsigning_key = "file:{keys / "btic-signing.key"}"\n')
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    found = json.loads(run_btic("find", "--json", "--config", str(config)).stdout)
    one = found["sessions"][0]
    out = tmp_path / "case-42.zip"
    made = run_btic("export", "--lsid", one["lsid"], "--out", str(out), "--json",
                    "--config", str(config))  # fmt: skip
    assert made.returncode == 0, made.output
    summary = json.loads(made.stdout)
    assert summary["sessions"] == 1 and summary["copied"] == len(
        [i for i in one["items"] if i["status"] == "delivered"]
    )
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        assert {"manifest.json", "manifest.csv", "btic-signing.pub"} <= names
        manifest = json.loads(package.read("manifest.json"))["items"]
        for entry in manifest:
            if entry["path"]:
                data = package.read(entry["path"])
                assert hashlib.sha256(data).hexdigest() == entry["sha256"] == entry["ledger_sha256"]
        rows = list(csv.DictReader(io.StringIO(package.read("manifest.csv").decode())))
        assert [r["item_key"] for r in rows] == [e["item_key"] for e in manifest]
        unpacked = tmp_path / "unpacked"
        package.extractall(unpacked)
    public = unpacked / "btic-signing.pub"
    audited = run_btic("integrity", "verify", str(unpacked), "--public-key", str(public), "--json")
    assert audited.returncode == 0, audited.output
    assert json.loads(audited.stdout)["files"] == summary["copied"]
    item = unpacked / next(e["path"] for e in manifest if e["path"])
    data = bytearray(item.read_bytes())
    data[0] ^= 1
    item.write_bytes(bytes(data))
    audited = run_btic("integrity", "verify", str(unpacked), "--public-key", str(public))
    assert audited.returncode == 1
    assert [line for line in audited.stdout.splitlines() if line.startswith("changed:")]
    # An export never overwrites: the same --out again is refused.
    again = run_btic("export", "--lsid", one["lsid"], "--out", str(out), "--config", str(config))
    assert again.returncode == 2 and "exists" in again.stderr


def test_the_sql_destination_keeps_its_digests_in_the_storage_database(tmp_path):
    from hostile import report, session_xml

    keys = tmp_path / "keys"
    assert run_btic("integrity", "keygen", "--dir", str(keys)).returncode == 0
    config = tmp_path / "btic.toml"
    config.write_text(
        f'[destinations.sql]\nplugin = "sqlserver"\nurl = "sqlite:///{tmp_path / "reports.db"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        f'[integrity]\nsigning_key = "file:{keys / "btic-signing.key"}"\n'
    )
    config.chmod(0o600)
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(session_xml("s-1"), session_xml("s-2"), session_xml("s-3")))
    imported = run_btic("import-xml", str(saved), "--dest", "sql", "--host", "h",
                        "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    with sqlite3.connect(tmp_path / "reports.db") as db:
        assert db.execute("select count(*) from btic_digest").fetchone()[0] == 1
    clean = run_btic("verify", "--config", str(config))
    assert clean.returncode == 0, clean.output
    assert "1 signed digest(s) checked" in clean.stderr
    # a session's rows deleted, and the ledger made to say it was removed
    with sqlite3.connect(tmp_path / "reports.db") as db:
        db.execute("delete from session where lsid = 's-2'")
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("update btic_deliveries set status = 'removed' where item_key = 's-2'")
    caught = run_btic("verify", "--config", str(config))
    assert caught.returncode == 1
    lines = _tampered(caught)
    assert len(lines) == 1 and "s-2" in lines[0] and "missing against its signed digest" in lines[0]
