"""The file-system plugin: the guide's conflict modes, retention, errors, names."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import btic
from btic.testing.helpers import ConfiguredDestination, make_recording, sample_session
from btic.types import Backup

LSID = "1234"


def destination(tmp_path: Path, **options) -> ConfiguredDestination:
    options.setdefault("directory", str(tmp_path / "archive"))
    return ConfiguredDestination("filesystem", options, tmp_path)


def recording(tmp_path: Path, name: str, size: int = 1000):
    session = sample_session(LSID, host="support.example.com")
    return make_recording(tmp_path / name, size, session)


def test_append_number_as_the_guide_describes(tmp_path):
    # "if support.example.com-support-1234.flv already exists, then support.example.com-support-1234.1.flv
    #  will be created. Likewise ... support.example.com-support-1234.2.flv"
    # Three different items whose names collide (the template leaves the lsid out).
    dest = destination(
        tmp_path, file_name_format="%SUPPORT_SITE_HOST%-%SESSION_TYPE%-1234.%EXTENSION%"
    )
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "support.example.com-support-1234.flv").write_bytes(b"an older recording")

    def item(name: str, lsid: str, size: int):
        return make_recording(tmp_path / name, size, sample_session(lsid))

    first = dest.recording(item("a", "one", 1000))
    assert Path(first.location).name == "support.example.com-support-1234.1.flv"
    second = dest.recording(item("b", "two", 2000))
    assert Path(second.location).name == "support.example.com-support-1234.2.flv"
    assert (archive / "support.example.com-support-1234.flv").read_bytes() == b"an older recording"
    # the same item again (a redelivery) adds nothing
    again = dest.recording(item("c", "one", 1000))
    assert again.location == first.location
    assert len(list(archive.iterdir())) == 3


def test_overwrite_replaces_the_contents(tmp_path):
    dest = destination(tmp_path, conflict="Overwrite")
    first = dest.recording(recording(tmp_path, "a", 1000))
    second = dest.recording(recording(tmp_path, "b", 2000))
    assert first.location == second.location
    assert Path(second.location).stat().st_size == 2000
    assert len(list((tmp_path / "archive").iterdir())) == 1


def test_skip_keeps_the_existing_file_and_creates_none(tmp_path):
    dest = destination(tmp_path, conflict="Skip")
    assert dest.recording(recording(tmp_path, "a", 1000)) is not None
    assert dest.recording(recording(tmp_path, "b", 2000)) is None
    [only] = (tmp_path / "archive").iterdir()
    assert only.stat().st_size == 1000


def backup(tmp_path: Path, when: datetime, host: str = "support.example.com") -> Backup:
    path = tmp_path / f"spool-{when:%H%M%S}-{host}.nsb"
    path.write_bytes(f"backup {host} {when}".encode())
    import hashlib

    return Backup(
        site=btic.SiteInfo("s", host, "rs"),
        time=when,
        extension="nsb",
        size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        path=path,
    )


@pytest.mark.parametrize(
    "template", [None, "backups/%YEAR%/%SUPPORT_SITE_HOST%-%TIMESTAMP%.%EXTENSION%"]
)
def test_retention_keeps_the_newest_backups_per_site(tmp_path, template):
    options = {"retention_count": 3}
    if template:
        options["file_name_formats"] = {"backup": template}
    dest = destination(tmp_path, **options)
    start = datetime(2024, 12, 30, 2, 0, tzinfo=timezone.utc)
    other = dest.backup(backup(tmp_path, start, host="other.example.com"))
    locations = [
        dest.backup(backup(tmp_path, start + timedelta(days=i))).location for i in range(6)
    ]
    kept = sorted(p for p in (tmp_path / "archive").rglob("*.nsb") if "other" not in p.name)
    assert [str(p) for p in kept] == sorted(locations[-3:])
    assert Path(other.location).exists()  # another site's backups are not counted


def test_retention_empty_keeps_all(tmp_path):
    dest = destination(tmp_path)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(4):
        dest.backup(backup(tmp_path, start + timedelta(hours=i)))
    assert len(list((tmp_path / "archive").glob("*.nsb"))) == 4


def test_templates_make_directories_from_the_end_time(tmp_path):
    dest = destination(
        tmp_path,
        file_name_format="%SUPPORT_SITE_HOST%/%YEAR%/%MONTH%/%DAY%/%LSID%-%LSEQ%-%KIND%.%EXTENSION%",
    )
    delivery = dest.session(sample_session("abc"))
    assert (
        Path(delivery.location)
        == tmp_path / "archive/support.example.com/2024/05/01/abc-7-session.xml"
    )


def test_a_missing_share_is_a_destination_error_naming_the_path(tmp_path):
    dest = destination(tmp_path, directory="/proc/btic-no-such-share/archive")
    with pytest.raises(btic.DestinationError) as info:
        dest.session(sample_session())
    assert str(info.value).startswith(
        "/proc/btic-no-such-share/archive: cannot create the destination directory"
    )


def test_a_symlink_pointing_out_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "INC-1").symlink_to(outside)
    dest = destination(tmp_path, file_name_format="%EXTERNAL_KEY%/%LSID%.%EXTENSION%")
    with pytest.raises(btic.DestinationError, match="refused a file name outside the destination"):
        dest.session(sample_session(external_key="INC-1"))
    assert list(outside.iterdir()) == []


def test_a_full_disk_is_a_destination_error_and_leaves_nothing(tmp_path):
    from conftest import small_tmpfs

    with small_tmpfs(tmp_path / "tiny", "256k") as mount:
        dest = destination(tmp_path, directory=str(mount))
        with pytest.raises(btic.DestinationError) as info:
            dest.recording(recording(tmp_path, "big", 1024 * 1024))
        assert str(info.value).endswith("No space left on device")
        assert str(mount) in str(info.value)
        assert list(mount.iterdir()) == []


def test_stale_temporary_files_of_a_dead_process_are_removed(tmp_path):
    dest = destination(tmp_path)
    archive = tmp_path / "archive"
    archive.mkdir()
    name = "support.example.com-support-1234.flv"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = archive / f".{name}.btic-{dead.pid}-abcd1234.tmp"
    stale.write_bytes(b"half a file")
    alive = archive / f".{name}.btic-{os.getpid()}-ffff0000.tmp"
    alive.write_bytes(b"another writer at work")
    dest.recording(recording(tmp_path, "a"))
    assert not stale.exists()
    assert alive.exists()


def test_bad_templates_are_reported_at_load_with_their_path(tmp_path):
    from conftest import run_btic

    config = tmp_path / "btic.toml"
    config.write_text(f"""
[destinations.archive]
plugin = "filesystem"
directory = "{tmp_path}"
conflict = "Skip"
file_name_format = "%SUPPORT_SITE_HOST%-%lsid%.%EXTENSION%"
[destinations.archive.file_name_formats]
backup = "%SUPPORT_SITE_HOST%-backup.%EXTENSION%"
command_shell_recording = "%LSID%-%INSTANCE%.%EXTENSION%"
session = "%LSID%-%INSTANCE%.%EXTENSION%"
""")
    result = run_btic("check", "--offline", "--config", str(config))
    assert result.returncode == 2
    assert (
        "error: destinations.archive.file_name_format: unknown token %lsid%; did you mean %LSID%?"
        in result.stderr
    )
    assert (
        "backup: cannot tell two backup items apart without %TIMESTAMP%: conflict = 'Skip' would drop data"
        in result.stderr
    )
    assert "session: %INSTANCE% cannot be filled for session" in result.stderr
    assert "command_shell_recording:" not in result.stderr  # that one is valid


def test_a_template_without_uniqueness_only_warns_with_append_number(tmp_path):
    from conftest import run_btic

    config = tmp_path / "btic.toml"
    config.write_text(f"""
[destinations.archive]
plugin = "filesystem"
directory = "{tmp_path}"
file_name_format = "%SUPPORT_SITE_HOST%.%EXTENSION%"
[sites.s]
host = "h"
client_id = "a"
client_secret = "env:HOME"
[schedules.n]
every = "1d"
[[schedules.n.transfers]]
site = "s"
destinations = ["archive"]
data = ["session"]
""")
    config.chmod(0o600)
    result = run_btic("check", "--offline", "--config", str(config))
    assert result.returncode == 0, result.output
    assert (
        "warning: destinations.archive: cannot tell two session items apart without %LSID% or %LSEQ%; "
        "AppendNumber will number the clashes"
    ) in result.stderr


def test_a_temporary_file_for_another_name_is_removed_too(tmp_path):
    # A backup killed mid-placement: the next backup has another timestamp, so
    # clean-up must go by pattern, not by the name being written.
    dest = destination(tmp_path)
    archive = tmp_path / "archive"
    archive.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = (
        archive / f".support.example.com-backup-20240101T000000Z.nsb.btic-{dead.pid}-0a0b0c0d.tmp"
    )
    stale.write_bytes(b"\0" * 4096)
    unrelated = archive / ".hidden-by-the-user"
    unrelated.write_bytes(b"mine")
    dest.recording(recording(tmp_path, "a"))
    assert not stale.exists()
    assert unrelated.exists()


def test_two_destinations_never_share_one_inode(tmp_path):
    first = ConfiguredDestination(
        "filesystem", {"directory": str(tmp_path / "one")}, tmp_path, "one"
    )
    second = ConfiguredDestination(
        "filesystem", {"directory": str(tmp_path / "two")}, tmp_path, "two"
    )
    item = recording(tmp_path, "spooled.flv", 5000)
    original = item.path.read_bytes()
    a = first.recording(item)
    b = second.recording(item)
    assert a is not None and b is not None
    assert os.stat(a.location).st_ino != os.stat(b.location).st_ino
    Path(a.location).write_bytes(b"changed in one archive")
    assert Path(b.location).read_bytes() == original


def test_a_refetched_item_with_other_bytes_replaces_its_own_unrecorded_file(tmp_path):
    # Killed between placing and recording; the appliance's bytes changed on the refetch.
    dest = destination(tmp_path)
    session = sample_session(LSID)
    first = dest.session(session, xml=b"<session>v1</session>")
    again = dest.session(session, xml=b"<session>v2, as the appliance sends it now</session>")
    assert first is not None and again is not None
    assert again.location == first.location
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [Path(first.location).name]
    assert (
        Path(first.location).read_bytes() == b"<session>v2, as the appliance sends it now</session>"
    )


def test_append_number_still_numbers_a_different_item(tmp_path):
    dest = destination(tmp_path, file_name_format="%SUPPORT_SITE_HOST%-%SESSION_TYPE%.%EXTENSION%")
    one = dest.session(sample_session("one"))
    two = dest.session(sample_session("two"))
    assert one is not None and two is not None
    assert Path(two.location).name == "support.example.com-support.1.xml"


@pytest.mark.parametrize(("first", "second"), [("a/b", "a_b"), ("caf\u00e9", "cafe\u0301")])
def test_skip_never_drops_a_different_item_whose_name_collides(tmp_path, first, second):
    dest = destination(tmp_path, conflict="Skip")
    a = dest.session(sample_session(first))
    b = dest.session(sample_session(second))
    assert a is not None
    assert b is not None, "a different item was skipped and would be settled unstored"
    assert a.location != b.location
    # delivered again, it is found under its own numbered name: nothing is added
    assert dest.session(sample_session(second)).location == b.location
    assert len(list((tmp_path / "archive").iterdir())) == 2


def test_every_archived_file_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        dest = destination(tmp_path)
        xml = dest.session(sample_session(LSID))
        flv = dest.recording(recording(tmp_path, "spooled.flv"))  # linked from a 0600 spool file
    finally:
        os.umask(old)
    assert {oct(os.stat(d.location).st_mode & 0o777) for d in (xml, flv)} == {oct(0o640)}


def test_a_full_directory_is_scanned_once_not_per_file(tmp_path, monkeypatch):
    """Removing a dead writer's temporary files scans the directory the first time the
    destination writes there, not for every file (which made a delivery into a large
    directory slow down in proportion to its size)."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for number in range(2000):
        (archive / f"older-{number}.xml").write_bytes(b"<session/>")
    stale = archive / ".older-1.xml.btic-999999999-abcd1234.tmp"
    stale.write_bytes(b"half a file")
    scans: list[str] = []
    real_scandir = os.scandir

    def counting(path=".", *args):
        if Path(path) == archive:
            scans.append(str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", counting)
    dest = destination(tmp_path, file_name_format="%LSID%.%EXTENSION%")
    for number in range(300):
        session = sample_session(f"lsid{number:04d}", host="support.example.com")
        assert dest.session(session) is not None
    assert len(scans) == 1
    assert not stale.exists()  # the one scan removed what the dead writer left
    assert len(list(archive.glob("lsid*.xml"))) == 300
