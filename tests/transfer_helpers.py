"""Helpers for the transfer tests: a config around a simulator, expected files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from btic import naming
from btic.sim import SimulatedAppliance

ALL_TYPES = [
    "session",
    "recording",
    "command_shell_recording",
    "show_my_screen_recording",
    "presentation",
    "presentation_recording",
]


def write_config(
    tmp_path: Path,
    sim: SimulatedAppliance,
    *,
    data=ALL_TYPES,
    extra_site: str = "",
    destinations: str | None = None,
    dest_names=("archive",),
    name: str = "btic.toml",
) -> Path:
    site = sim.site_toml("sim").rstrip() + '\nfirst_run_since = "all"\n' + extra_site
    if destinations is None:
        destinations = (
            f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        )
    data_list = ", ".join(f'"{d}"' for d in data)
    dest_list = ", ".join(f'"{d}"' for d in dest_names)
    path = tmp_path / name
    path.write_text(f"""{site}
{destinations}
[schedules.often]
every = "15m"
[[schedules.often.transfers]]
site = "sim"
destinations = [{dest_list}]
data = [{data_list}]
""")
    path.chmod(0o600)
    return path


def host_part(sim: SimulatedAppliance) -> str:
    return naming.sanitize_value(sim.host)


def expected_files(
    sim: SimulatedAppliance, *, settle: int = 120, data=ALL_TYPES, until: float | None = None
) -> dict[str, str]:
    """name -> sha256 of every file a full sync into a default directory must produce."""
    horizon = (until if until is not None else sim.now()) - settle
    host = host_part(sim)
    files: dict[str, str] = {}
    for s in sim.dataset.all():
        if s.end > horizon:
            continue
        session_type = "presentation" if s.report == "presentation" else "support"
        if ("presentation" if s.report == "presentation" else "session") in data:
            files[f"{host}-{session_type}-{s.lsid}.xml"] = ""  # report bytes: checked separately
        for rec_kind, instance in s.recordings():
            dt = {
                "session": "recording",
                "presentation": "presentation_recording",
                "command_shell": "command_shell_recording",
                "show_my_screen": "show_my_screen_recording",
            }[rec_kind]
            if dt not in data or s.recording_expired:
                continue
            sha = sim.recording_sha256(s.lsid, rec_kind, instance)
            if rec_kind == "command_shell":
                files[
                    f"{host}-{session_type}-{s.lsid}-shell-{instance + sim.dataset.shell_report_from}.flv"
                ] = sha
            elif rec_kind == "show_my_screen":
                files[f"{host}-{session_type}-{s.lsid}-sms-{instance}.flv"] = sha
            else:
                files[f"{host}-{session_type}-{s.lsid}.flv"] = sha
    return files


def actual_files(directory: Path) -> dict[str, str]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def check_archive(directory: Path, expected: dict[str, str]) -> None:
    actual = actual_files(directory)
    assert sorted(actual) == sorted(expected), (
        f"missing: {sorted(set(expected) - set(actual))[:5]} extra: {sorted(set(actual) - set(expected))[:5]}"
    )
    for name, sha in expected.items():
        if sha:
            assert actual[name] == sha, f"{name} differs from what the appliance served"


def wait_for(predicate, timeout: float, what: str, processes=()) -> None:
    """Poll ``predicate`` until it holds; fail when ``timeout`` passes or one of the
    ``processes`` (btic run, btic worker) exits first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for process in processes:
            assert process.poll() is None, (
                f"{' '.join(map(str, process.args[1:3]))} exited ({process.returncode}) "
                f"waiting for {what}"
            )
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
