"""The S3 plugin against a real S3 endpoint on localhost (moto's server mode, a separate
process, reached over HTTP by boto3)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

import btic
from btic.testing.helpers import ConfiguredDestination, make_recording, sample_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_btic
from s3_server import moto_server
from transfer_helpers import ALL_TYPES, expected_files


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


_made = iter(range(10**6))


@pytest.fixture
def bucket(s3):
    return s3.bucket(f"btic-test-{next(_made)}")


def s3_config(tmp_path: Path, sim, s3, bucket: str, *, data=ALL_TYPES, extra: str = "") -> Path:
    from transfer_helpers import write_config

    options = "".join(f'{key} = "{value}"\n' for key, value in s3.options(bucket).items())
    return write_config(
        tmp_path,
        sim,
        data=list(data),
        destinations=f'[destinations.archive]\nplugin = "s3"\n{options}{extra}',
    )


def test_every_kind_lands_with_its_key_bytes_metadata_and_checksum(tmp_path, rs_sim, s3, bucket):
    config = s3_config(tmp_path, rs_sim, s3, bucket, data=[*ALL_TYPES, "backup"])
    synced = run_btic("sync", "--all", "--config", str(config))
    assert synced.returncode == 0, synced.output
    stored = s3.objects(bucket)
    expected = expected_files(rs_sim)
    backups = [key for key in stored if key.endswith(".nsb")]
    assert len(backups) == 1
    assert set(stored) - set(backups) == set(expected)
    for key, sha in expected.items():
        if sha:  # recordings: the appliance's bytes exactly
            assert hashlib.sha256(stored[key]).hexdigest() == sha, key
        else:
            assert stored[key].startswith(b"<?xml"), key
    client = s3.client()
    some_recording = next(key for key, sha in expected.items() if sha)
    head = client.head_object(Bucket=bucket, Key=some_recording, ChecksumMode="ENABLED")
    digest = hashlib.sha256(stored[some_recording]).digest()
    assert head["Metadata"]["sha256"] == digest.hex()
    assert head["Metadata"]["size"] == str(len(stored[some_recording]))
    assert head["Metadata"]["data-type"] == "recording"
    assert head["Metadata"]["site-host"].replace("%3A", ":") == rs_sim.host
    assert head["Metadata"]["lsid"] in some_recording
    assert head["ChecksumSHA256"] == base64.b64encode(digest).decode()
    verified = run_btic("verify", "--config", str(config))
    assert verified.returncode == 0, verified.output


@pytest.mark.parametrize("conflict", ["AppendNumber", "Overwrite", "Skip"])
def test_forced_redelivery_under_each_conflict_mode(conflict, tmp_path, rs_sim, s3, bucket):
    config = s3_config(
        tmp_path,
        rs_sim,
        s3,
        bucket,
        data=["session", "recording"],
        extra=f'conflict = "{conflict}"\n',
    )
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    before = s3.objects(bucket)
    forced = run_btic(
        "transfer", "--config", str(config), "--site", "sim", "--dest", "archive",
        "--type", "session,recording", "--since", "30d", "--force",
    )  # fmt: skip
    assert forced.returncode == 0, forced.output
    assert s3.objects(bucket) == before  # identical content: no second copy, under any mode


def test_a_large_recording_goes_up_in_parts_with_bounded_memory(tmp_path, s3, bucket):
    options = s3.options(bucket, part_size_mb=8, max_concurrency=2)
    destination = ConfiguredDestination("s3", options, tmp_path)
    recording = make_recording(tmp_path / "large.flv", 200 * 1024 * 1024, sample_session())
    tracemalloc.start()
    try:
        delivery = destination.recording(recording)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert delivery is not None
    # Parts in flight (2 x 8 MiB) and one being read: never the file.
    assert peak < 40 * 1024 * 1024, peak
    key = delivery.location.removeprefix(f"s3://{bucket}/")
    head = s3.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == recording.size
    # S3's composite checksum of 25 parts of 8 MiB: the SHA-256 of their SHA-256s.
    part = 8 * 1024 * 1024
    with recording.open() as source:
        digests = b"".join(
            hashlib.sha256(source.read(part)).digest() for _ in range(recording.size // part)
        )
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode()
    assert head["ChecksumSHA256"] in (composite, f"{composite}-25")
    assert head["Metadata"]["sha256"] == recording.sha256
    assert s3.unfinished_uploads(bucket) == []
    assert [k for k in s3.objects(bucket) if ".btic-uploads/" in k] == []


def test_object_lock_encryption_tags_and_storage_class_are_on_every_object(tmp_path, s3):
    locked = s3.bucket(f"btic-locked-{next(_made)}", lock=True)
    options = s3.options(
        locked,
        object_lock_mode="GOVERNANCE",
        object_lock_retain_days=3,
        legal_hold=True,
        server_side_encryption="AES256",
        storage_class="STANDARD_IA",
        tags={"case": "audit 2026"},
    )
    destination = ConfiguredDestination("s3", options, tmp_path)
    assert "object lock GOVERNANCE enabled" in destination.check()
    delivery = destination.session(sample_session())
    key = delivery.location.removeprefix(f"s3://{locked}/")
    client = s3.client()
    head = client.head_object(Bucket=locked, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"].timestamp()
    assert 2.9 * 86400 < until - time.time() < 3.1 * 86400
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    tags = client.get_object_tagging(Bucket=locked, Key=key)["TagSet"]
    assert tags == [{"Key": "case", "Value": "audit 2026"}]


def test_retention_prunes_old_backups_and_counts_them(tmp_path, pa_sim, s3, bucket):
    config = s3_config(tmp_path, pa_sim, s3, bucket, data=["backup"], extra="retention_count = 2\n")
    removed = []
    for _ in range(4):
        synced = run_btic("sync", "--all", "--json", "--config", str(config))
        assert synced.returncode == 0, synced.output
        removed.append(json.loads(synced.stdout)["tallies"][0]["removed"])
        pa_sim.clock.advance(1)  # backups are named by the appliance's second
    assert removed == [0, 0, 1, 1]
    assert len([k for k in s3.objects(bucket) if k.endswith(".nsb")]) == 2


def test_retention_is_refused_with_object_lock(tmp_path, rs_sim, s3, bucket):
    config = s3_config(
        tmp_path,
        rs_sim,
        s3,
        bucket,
        data=["backup"],
        extra='retention_count = 2\nobject_lock_mode = "COMPLIANCE"\nobject_lock_retain_days = 7\n',
    )
    checked = run_btic("check", "--offline", "--config", str(config))
    assert checked.returncode == 2
    assert "retention_count deletes old backups, which object lock" in checked.stderr


def test_an_object_lock_longer_than_a_retention_rule_is_said_once(tmp_path, rs_sim, s3, bucket):
    config = s3_config(
        tmp_path, rs_sim, s3, bucket, data=["session", "recording"],
        extra='object_lock_mode = "GOVERNANCE"\nobject_lock_retain_days = 30\n'
        'retention = { session = "7d", recording = "400d" }\n',
    )  # fmt: skip
    checked = run_btic("check", "--offline", "--config", str(config))
    assert checked.returncode == 0, checked.output
    said = [line for line in checked.output.splitlines() if "outlasts the retention" in line]
    assert len(said) == 1, checked.output
    assert "destinations.archive" in said[0] and "rule of session:" in said[0]


def test_a_wrong_checksum_is_refused_and_nothing_is_stored(tmp_path, s3, bucket):
    destination = ConfiguredDestination("s3", s3.options(bucket, part_size_mb=5), tmp_path)
    for size in (1000, 12 * 1024 * 1024):  # whole, and in parts
        good = make_recording(tmp_path / f"r{size}.flv", size, sample_session(f"lsid{size}"))
        bad = type(good)(**{**good.__dict__, "sha256": "0" * 64})
        with pytest.raises(btic.DestinationError, match="changed since it was checked"):
            destination.recording(bad)
    assert s3.objects(bucket) == {}
    assert s3.unfinished_uploads(bucket) == []


def test_check_names_a_missing_bucket_and_a_bucket_without_lock(tmp_path, rs_sim, s3, bucket):
    def check(name: str, bucket_name: str, extra: str = "") -> str:
        (tmp_path / name).mkdir()
        config = s3_config(tmp_path / name, rs_sim, s3, bucket_name, data=["session"], extra=extra)
        result = run_btic("check", "--config", str(config), "--dest", "archive")
        assert result.returncode == 1, result.output
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        return line

    missing = check("missing", "no-such-bucket-here")
    assert "s3://no-such-bucket-here: the bucket does not exist" in missing
    lock = 'object_lock_mode = "COMPLIANCE"\nobject_lock_retain_days = 7\n'
    unlocked = check("unlocked", bucket, lock)
    assert f"s3://{bucket}: object lock is not enabled on the bucket" in unlocked


def test_check_names_wrong_credentials(tmp_path, rs_sim):
    with moto_server(authenticate=True) as strict:
        config = s3_config(tmp_path, rs_sim, strict, "btic-any", data=["session"])
        result = run_btic("check", "--config", str(config), "--dest", "archive")
    assert result.returncode == 1, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "s3://btic-any: the access key id is not known to the service (access_key_id)" in line
    assert "testing" not in line  # the secret is never shown


def test_an_unreachable_service_fails_once_and_the_items_stay_pending(tmp_path, rs_sim, s3, bucket):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = s3_config(tmp_path, rs_sim, s3, bucket, data=["session"])
    config.write_text(config.read_text().replace(s3.url, f"http://127.0.0.1:{closed}"))
    failed = run_btic("sync", "--all", "--config", str(config))
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert any(f"cannot reach the service at http://127.0.0.1:{closed}" in line for line in errors)
    assert len(errors) <= 5, errors
    config.write_text(config.read_text().replace(f"http://127.0.0.1:{closed}", s3.url))
    finished = run_btic("sync", "--all", "--config", str(config))
    assert finished.returncode == 0, finished.output
    assert len(s3.objects(bucket)) == len(expected_files(rs_sim, data=["session"]))


def test_digests_are_kept_beside_the_objects_and_never_replaced(s3, bucket, tmp_path):
    destination = ConfiguredDestination("s3", s3.options(bucket, prefix="archive/"), tmp_path)
    first = btic.Digest("20261207T000000000000Z-run1", b'{"format":"btic-digest/1"}', b"sig1")
    location = destination.plugins.on_digest(destination.name, digest=first)
    assert location == f"s3://{bucket}/archive/.btic-digests/{first.name}.json"
    # the same digest again (a retried run) is fine; other bytes under its name are not
    assert destination.plugins.on_digest(destination.name, digest=first) == location
    forged = btic.Digest(first.name, b'{"format":"btic-digest/1","x":1}', b"sig1")
    with pytest.raises(btic.DestinationError):
        destination.plugins.on_digest(destination.name, digest=forged)
    assert list(destination.plugins.on_digests(destination.name)) == [first]
    destination.session(sample_session("digest-neighbour"))
    listed = list(destination.plugins.on_list(destination.name) or ())
    assert listed and not any(".btic-digests" in location for location in listed)


def test_sealed_objects_open_with_the_identity_to_the_appliance_bytes(tmp_path, rs_sim, s3, bucket):
    """encrypt on S3: every object an age file named .age, its checksum and metadata
    those of what was stored, and the identity gives back the appliance's bytes."""
    import pyrage
    from pyrage import x25519

    identity = x25519.Identity.generate()
    extra = f'encrypt = {{ recipients = ["{identity.to_public()}"] }}\n'
    config = s3_config(tmp_path, rs_sim, s3, bucket, data=ALL_TYPES, extra=extra)
    synced = run_btic("sync", "--all", "--config", str(config))
    assert synced.returncode == 0, synced.output
    # Again, forced: the same content sealed anew is recognised, never numbered.
    forced = run_btic("transfer", "--site", "sim", "--dest", "archive", "--since", "3650d",
                      "--force", "--type", ",".join(ALL_TYPES), "--config", str(config))  # fmt: skip
    assert forced.returncode == 0, forced.output
    stored = s3.objects(bucket)
    items = {key: body for key, body in stored.items() if not key.startswith(".btic")}
    expected = expected_files(rs_sim)
    assert set(items) == {f"{key}.age" for key in expected}
    client = s3.client()
    for key, body in items.items():
        plain = pyrage.decrypt(body, [identity])
        sha = expected[key.removesuffix(".age")]
        if sha:
            assert hashlib.sha256(plain).hexdigest() == sha, key
        else:
            assert plain.startswith(b"<?xml") and b"<lsid>" not in body, key
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentType"] == "application/octet-stream"
        assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert run_btic("verify", "--config", str(config)).returncode == 0


def test_a_hold_is_passed_on_as_the_objects_legal_hold(tmp_path, rs_sim, s3, bucket):
    """btic hold add/remove set and lift S3's legal hold on every object of the
    session; a bucket without object lock is said to keep no holds of its own."""
    locked = s3.bucket(f"btic-held-{next(_made)}", lock=True)
    options = "".join(f'{key} = "{value}"\n' for key, value in s3.options(locked).items())
    plain = "".join(f'{key} = "{value}"\n' for key, value in s3.options(bucket).items())
    from transfer_helpers import write_config

    config = write_config(
        tmp_path, rs_sim, data=["session", "recording"], dest_names=("locked", "plain"),
        destinations=f'[destinations.locked]\nplugin = "s3"\n{options}'
        f'[destinations.plain]\nplugin = "s3"\n{plain}',
    )  # fmt: skip
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    found = json.loads(run_btic("find", "--json", "--config", str(config)).stdout)
    session = next(s for s in found["sessions"] if len(s["items"]) >= 4)
    mine = {
        i["location"].removeprefix(f"s3://{locked}/")
        for i in session["items"]
        if i["destination"] == "locked" and i["status"] == "delivered"
    }
    client = s3.client()

    def holds() -> dict[str, str]:
        status = {}
        for key in s3.objects(locked):
            if key.startswith(".btic"):
                continue
            try:
                answer = client.get_object_legal_hold(Bucket=locked, Key=key)
                status[key] = answer["LegalHold"].get("Status", "OFF")
            except client.exceptions.ClientError:
                status[key] = "OFF"
        return status

    held = run_btic("hold", "add", "--site", "sim", "--lsid", session["lsid"], "--reason",
                    "case 9", "--config", str(config))  # fmt: skip
    assert held.returncode == 0, held.output
    assert f"locked: {len(mine)} item(s) under the destination's legal hold" in held.stdout
    assert "plain: " in held.stdout and "keeps no holds of its own" in held.stdout
    assert {key for key, status in holds().items() if status == "ON"} == mine
    lifted = run_btic("hold", "remove", "--site", "sim", "--lsid", session["lsid"],
                      "--config", str(config))  # fmt: skip
    assert lifted.returncode == 0, lifted.output
    assert f"locked: {len(mine)} item(s) released by the destination" in lifted.stdout
    assert set(holds().values()) == {"OFF"}


def test_the_auditors_verifier_reads_a_bucket_with_the_public_key_alone(
    tmp_path, rs_sim, s3, bucket
):
    """btic integrity verify s3://: no state database, no configuration; a changed
    object and a deleted one are each named, and the chain of the bucket holds."""
    keys = tmp_path / "keys"
    assert run_btic("integrity", "keygen", "--dir", str(keys)).returncode == 0
    extra = f'prefix = "archive/"\n[integrity]\nsigning_key = "file:{keys / "btic-signing.key"}"\n'
    config = s3_config(tmp_path, rs_sim, s3, bucket, data=["session", "recording"], extra=extra)
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    (tmp_path / "btic-state.db").unlink()  # the auditor has none of it
    config.unlink()
    from s3_server import KEYS

    def audit(*more: str):
        return run_btic(
            "integrity", "verify", f"s3://{bucket}/archive/", "--public-key",
            str(keys / "btic-signing.pub"), "--endpoint-url", s3.url, "--region", "us-east-1",
            *more, env=KEYS,
        )  # fmt: skip

    clean = audit("--json")
    assert clean.returncode == 0, clean.output
    report = json.loads(clean.stdout)
    stored = {k: v for k, v in s3.objects(bucket).items() if ".btic" not in k}
    assert report["digests"] == 1 and report["files"] == len(stored) > 0
    changed, deleted = sorted(stored)[:2]
    client = s3.client()
    client.put_object(Bucket=bucket, Key=changed, Body=stored[changed] + b" ")
    client.delete_object(Bucket=bucket, Key=deleted)
    found = audit()
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert f"changed: s3://{bucket}/{changed}" in "\n".join(lines)
    assert any(line.startswith(f"missing: s3://{bucket}/{deleted}") for line in lines)
    assert len(lines) == 2
