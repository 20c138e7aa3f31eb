"""btic on Windows, checked where no Windows runs: every module of btic and its
plugins imports, and ``btic demo`` archives, with the POSIX-only modules
refused to btic's own code and the signals Windows lacks removed; and the
``os.name == "nt"`` paths of the helpers that differ there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: The standard library's modules that exist only on POSIX systems.
POSIX_ONLY = ("fcntl", "resource", "pwd", "grp", "termios", "tty", "pty", "syslog", "posix",
              "crypt", "spwd", "nis")  # fmt: skip
#: Signals the signal module has on Linux and not on Windows.
NOT_ON_WINDOWS = ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGQUIT", "SIGPIPE", "SIGCHLD")

PROGRAM = r"""
import builtins, importlib, pkgutil, signal, sys

POSIX_ONLY = set(sys.argv[1].split(","))
OURS = ("btic", "btic_filesystem", "btic_s3", "btic_sqlserver")
real_import = builtins.__import__


def ours(name):
    return name.split(".")[0] in OURS


def refusing_import(name, globals=None, locals=None, fromlist=(), level=0):
    # An import statement in btic's or a shipped plugin's code that names a
    # POSIX-only module fails as it would on Windows (whether or not a library
    # imported it before: sys.modules is not asked first here); a library's own
    # platform checks are not ours to test.
    importer = (globals or {}).get("__name__", "")
    if level == 0 and name.split(".")[0] in POSIX_ONLY and ours(importer):
        raise ModuleNotFoundError(f"No module named {name!r} (refused to {importer}: Windows)")
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = refusing_import
for name in sys.argv[2].split(","):
    if hasattr(signal, name):
        delattr(signal, name)

failed = []
for top in OURS:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc.__class__.__name__}: {exc}")
if failed:
    print("\n".join(failed))
    sys.exit(3)

from btic.cli import main

main(["demo", "--directory", sys.argv[3], "--sessions", "6", "--recording-size", "2048"])
"""


def test_every_module_imports_and_the_demo_runs_without_posix_only_modules(tmp_path):
    # The POSIX-only modules btic itself would import, seen to be importable here:
    # the test refuses them, so a regression cannot pass unseen.
    assert any(name in sys.modules or _importable(name) for name in ("fcntl", "grp"))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROGRAM,
            ",".join(POSIX_ONLY),
            ",".join(NOT_ON_WINDOWS),
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    archive = tmp_path / "demo" / "archive"
    assert any(archive.rglob("*.xml")), done.stdout
    assert any(p.suffix != ".xml" for p in archive.rglob("*") if p.is_file()), done.stdout


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_process_liveness_is_not_asked_of_windows(monkeypatch):
    """``os.kill(pid, 0)`` ends the process on Windows: there, every other PID
    counts as alive, so nothing another writer may still own is removed."""
    from btic import processes
    from btic.processes import process_alive

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(gone.stdout)
    assert process_alive(pid) is False
    monkeypatch.setattr(processes, "CAN_SIGNAL_ZERO", False)
    monkeypatch.setattr(os, "kill", _must_not_be_called)
    assert process_alive(pid) is True


def _must_not_be_called(*_args: object) -> None:
    raise AssertionError("os.kill called where os.name is 'nt'")


def test_directory_fsync_is_skipped_on_windows(monkeypatch, tmp_path):
    """Windows cannot open a directory to fsync it (NTFS makes a rename durable)."""
    from btic_filesystem import files

    monkeypatch.setattr(files, "DIRECTORY_FSYNC", False)
    monkeypatch.setattr(os, "open", _must_not_be_called)
    files.fsync_directory(tmp_path)


def test_a_spool_without_advisory_locks_is_made_and_never_swept_while_its_pid_may_live(
    monkeypatch, tmp_path
):
    from btic import processes
    from btic.transfer import spool

    monkeypatch.setattr(spool, "_FLOCK", False)
    monkeypatch.setattr(processes, "CAN_SIGNAL_ZERO", False)  # as on Windows
    first = spool.RunSpool(tmp_path)
    (first.path / "body").write_bytes(b"x")
    second = spool.RunSpool(tmp_path)
    assert (first.path / "body").read_bytes() == b"x"
    second.close()
    first.close()
    assert not first.path.exists() and not second.path.exists()


@pytest.mark.skipif(os.name != "posix", reason="the XDG layout is Linux's")
def test_the_cache_directory_follows_the_platform(monkeypatch, tmp_path):
    from btic.locations import cache_directory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_directory() == Path(tmp_path) / "btic"
