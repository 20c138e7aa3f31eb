"""Items sealed to age recipients (a destination's ``encrypt``): the archiving host
holds only public keys; an auditor with the identity recovers every report,
recording and backup byte for byte, with Debian's ``age`` or ``btic decrypt``."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import run_btic
from transfer_helpers import write_config

from btic.sim import FrozenClock, SimulatedAppliance

DATA = ["session", "recording", "command_shell_recording", "backup"]
AGE_HEADER = b"age-encryption.org/v1\n-> X25519 "

needs_age = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("age-keygen") is None,
    reason="age is not installed (scripts/setup installs Debian's)",
)


def _identity(tmp_path: Path, name: str = "auditor") -> tuple[Path, str]:
    """An auditor's identity, made as they would make it, and its public key."""
    identity = tmp_path / f"{name}.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return identity, public


def _rows(tmp_path: Path, destination: str) -> dict[str, tuple]:
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        return {
            location: (sha256, plain_sha256)
            for location, sha256, plain_sha256 in db.execute(
                "select location, sha256, plain_sha256 from btic_deliveries "
                "where destination = ? and status = 'delivered' and location like '/%'",
                (destination,),
            )
        }


@needs_age
def test_sealed_items_are_opened_by_age_byte_for_byte_and_found_without_the_key(tmp_path):
    identity, public = _identity(tmp_path)
    recipients_file = tmp_path / "auditors.txt"
    _, second = _identity(tmp_path, "second")
    recipients_file.write_text(f"# the records office\n{second}\n")
    with SimulatedAppliance(
        "rs", sessions=6, seed=5, live_sessions=0, presentations=0, recording_size=40_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        destinations = (
            f'[destinations.plain]\nplugin = "filesystem"\ndirectory = "{tmp_path / "plain"}"\n'
            f'[destinations.vault]\nplugin = "filesystem"\ndirectory = "{tmp_path / "vault"}"\n'
            'download_format = "xml+json"\n'
            f'encrypt = {{ recipients = ["{public}", "file:{recipients_file}"] }}\n'
        )
        config = write_config(
            tmp_path, sim, data=DATA, destinations=destinations, dest_names=("plain", "vault")
        )
        synced = run_btic("sync", "--all", "--config", str(config))
        assert synced.returncode == 0, synced.output
        # Delivered again (--force): a new sealed copy shares no byte with the first,
        # and is still the same content: no numbered second copy.
        forced = run_btic(
            "transfer", "--site", "sim", "--dest", "vault", "--since", "3650d", "--force",
            "--type", "session,recording,command_shell_recording", "--config", str(config),
        )  # fmt: skip
        assert forced.returncode == 0, forced.output

    plain_files = {p.name: p for p in (tmp_path / "plain").rglob("*") if p.is_file()}
    vault_files = {p.name: p for p in (tmp_path / "vault").rglob("*") if p.is_file()}
    assert any(n.endswith(".xml") for n in plain_files)
    assert any(n.endswith(".nsb") for n in plain_files)
    # Every item sealed (no JSON copy in the clear), each the plain twin's bytes.
    assert set(vault_files) == {f"{name}.age" for name in plain_files}
    rows = _rows(tmp_path, "vault")
    for name, sealed in vault_files.items():
        data = sealed.read_bytes()
        assert data.startswith(AGE_HEADER), name
        assert not sealed.stat().st_mode & stat.S_IROTH
        opened = subprocess.run(
            ["age", "-d", "-i", str(identity), str(sealed)], check=True, capture_output=True
        ).stdout
        twin = plain_files[name.removesuffix(".age")].read_bytes()
        assert opened == twin, name
        # The ledger: the stored file's sha256, and the plaintext's beside it.
        assert rows[str(sealed)] == (
            hashlib.sha256(data).hexdigest(),
            hashlib.sha256(twin).hexdigest(),
        )
    assert all(plain is None for _, plain in _rows(tmp_path, "plain").values())
    # Either recipient opens it: the second one's key was never on this host either.
    assert run_btic("verify", "--config", str(config)).returncode == 0

    # Search metadata stays searchable without the identity, and says what is sealed.
    found = json.loads(run_btic("find", "--json", "--config", str(config)).stdout)
    assert found["count"] == 6
    for session in found["sessions"]:
        for item in session["items"]:
            if item["status"] == "delivered":
                assert item["encrypted"] is (item["destination"] == "vault")
                assert (item["plain_sha256"] is not None) is item["encrypted"]
    lsid = found["sessions"][0]["lsid"]
    table = run_btic("find", "--lsid", lsid, "--config", str(config))
    assert "(encrypted)" in table.stdout

    # An export of the vault, opened by btic decrypt and checked against the ledger.
    out = tmp_path / "case"
    made = run_btic("export", "--dest", "vault", "--out", str(out), "--config", str(config))
    assert made.returncode == 0, made.output
    manifest = json.loads((out / "manifest.json").read_bytes())["items"]
    copied = [entry for entry in manifest if entry["path"]]
    assert copied and all(e["encrypted"] and e["path"].endswith(".age") for e in copied)
    opened = run_btic("decrypt", str(out), "-i", str(identity), "--out", str(tmp_path / "open"),
                      "--json")  # fmt: skip
    assert opened.returncode == 0, opened.output
    files = json.loads(opened.stdout)["files"]
    assert len(files) == len(copied)
    assert all(f["ok"] and f["sha256"] == f["expected_sha256"] for f in files)
    for entry in copied:
        plain = tmp_path / "open" / entry["path"].removesuffix(".age")
        assert hashlib.sha256(plain.read_bytes()).hexdigest() == entry["plain_sha256"]
        assert not plain.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH)

    # A flipped byte, or someone else's identity: refused, nothing written, exit 1.
    victim = out / copied[0]["path"]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    spoiled = run_btic("decrypt", str(victim), "-i", str(identity))
    assert spoiled.returncode == 1
    assert "cannot decrypt: its content fails authentication" in spoiled.stdout
    assert not victim.with_name(victim.name.removesuffix(".age")).exists()
    stranger, _ = _identity(tmp_path, "stranger")
    other = out / copied[1]["path"]
    refused = run_btic("decrypt", str(other), "-i", str(stranger))
    assert refused.returncode == 1 and "not encrypted to this identity" in refused.stdout
    secret = stranger.read_text()
    assert "AGE-SECRET-KEY" not in refused.stdout + refused.stderr and secret not in refused.output


def test_an_encrypt_rule_is_checked_at_load(tmp_path):
    """A rule that cannot work is refused with the key named, never half applied."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    secret = str(identity)
    with SimulatedAppliance(
        "rs", sessions=1, live_sessions=0, presentations=0, clock=FrozenClock(),
        state_dir=tmp_path,
    ) as sim:  # fmt: skip
        destinations = (
            f'[destinations.vault]\nplugin = "filesystem"\ndirectory = "{tmp_path / "v"}"\n'
            f'encrypt = {{ recipients = ["age1notakey", "{secret}"], data_types = ["movie"] }}\n'
            f'[destinations.sql]\nplugin = "sqlserver"\nurl = "sqlite:///{tmp_path / "r.db"}"\n'
            f'encrypt = {{ recipients = ["{identity.to_public()}"] }}\n'
        )
        config = write_config(
            tmp_path, sim, data=["session"], destinations=destinations, dest_names=("vault", "sql")
        )
        checked = run_btic("check", "--config", str(config))
    assert checked.returncode == 2
    errors = checked.stderr
    assert "destinations.vault.encrypt.recipients[0]: 'age1notakey' is not an age recipient" in (
        errors
    )
    # A secret key pasted where a public key belongs is named, never printed.
    assert "destinations.vault.encrypt.recipients[1]: an age identity (a secret key)" in errors
    assert secret not in checked.output
    assert "destinations.vault.encrypt.data_types[0]: is not a data type" in errors
    assert "destinations.sql.encrypt: plugin sqlserver does not store encrypted items" in errors
    assert not (tmp_path / "v").exists()
