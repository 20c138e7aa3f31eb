"""The configuration file: valid sections, every class of error, secrets."""

from __future__ import annotations

import json
import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest
from conftest import run_btic

from btic.config import load_config
from btic.errors import ConfigError
from btic.plugins import PluginManager

SECRET = "s3cr3t-Value-that-must-never-show"


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    return PluginManager().discover()


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


FULL = """
[state]
url = "sqlite:///state.db"

[sites.support]
host = "support.example.com"
client_id = "abc123"
client_secret = "env:BTIC_TEST_SECRET"
product = "rs"
keep_alive = true
first_run_since = "all"

[sites.access]
host = "access.example.com:8443"
client_id = "def456"
client_secret = "file:secret.txt"
product = "pa"
overlap = "15m"

[destinations.archive]
plugin = "filesystem"
directory = "/srv/beyondtrust"
file_name_format = "%SUPPORT_SITE_HOST%/%LSID%.%EXTENSION%"
conflict = "Skip"
retention_count = 14
download_format = "xml+json"
[destinations.archive.file_name_formats]
backup = "backups/%SUPPORT_SITE_HOST%-%TIMESTAMP%.%EXTENSION%"
command_shell_recording = "shell/%LSID%-%INSTANCE%.%EXTENSION%"
show_my_screen_recording = "sms/%LSID%-%INSTANCE%.%EXTENSION%"

[destinations.reports]
plugin = "sqlserver"
url = "env:BTIC_TEST_SQL_URL"
should_store_system_information = false

[destinations.bucket]
plugin = "s3"
bucket = "evidence-archive"
prefix = "bt/"
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:9000"
access_key_id = "env:BTIC_TEST_KEY_ID"
secret_access_key = "env:BTIC_TEST_SECRET"
storage_class = "STANDARD_IA"
server_side_encryption = "aws:kms"
sse_kms_key_id = "alias/btic"
object_lock_mode = "COMPLIANCE"
object_lock_retain_days = 2555

[schedules.every-15-minutes]
every = "15m"
[[schedules.every-15-minutes.transfers]]
site = "support"
destinations = ["archive", "reports", "bucket"]
data = ["session", "presentation"]
[[schedules.every-15-minutes.transfers]]
site = "access"
destinations = ["archive"]
data = ["session", "command_shell_recording"]

[schedules.nightly]
every = "1d"
at = "02:30"
[[schedules.nightly.transfers]]
site = "support"
destinations = ["archive", "bucket"]
data = ["recording", "show_my_screen_recording", "backup"]

[logging]
directory = "logs"
level = "debug"
log_retention_days = 90

[notifications.email]
smtp_host = "smtp.example.com"
smtp_port = 465
security = "tls"
username = "btic"
password = "env:BTIC_TEST_SECRET"
from_address = "btic@example.com"
to = ["compliance@example.com"]
"""

ENV = {
    "BTIC_TEST_SECRET": SECRET,
    "BTIC_TEST_SQL_URL": f"postgresql+psycopg://btic:{SECRET}@db/btic",
    "BTIC_TEST_KEY_ID": "AKIAEXAMPLE",
}


def test_a_valid_example_of_every_section_loads(tmp_path, plugins):
    (tmp_path / "secret.txt").write_text("from-a-file\n")
    path = write(tmp_path / "btic.toml", FULL)
    config = load_config(path, plugins, environ=ENV)
    assert config.warnings == []
    assert config.state_url == "sqlite:///state.db"
    support = config.sites["support"]
    assert support.client_secret.get_secret_value() == SECRET
    assert support.base_url == "https://support.example.com"
    assert config.sites["access"].client_secret.get_secret_value() == "from-a-file"
    assert config.sites["access"].overlap == timedelta(minutes=15)
    archive = config.destinations["archive"]
    assert archive.plugin == "filesystem" and archive.options.conflict == "Skip"
    assert archive.options.directory == Path("/srv/beyondtrust")
    reports = config.destinations["reports"].options
    assert reports.url.get_secret_value().endswith("@db/btic")
    assert reports.should_store_system_information is False
    assert config.destinations["bucket"].options.object_lock_retain_days == 2555
    nightly = config.schedules["nightly"]
    assert nightly.every == timedelta(days=1) and nightly.at == time(2, 30)
    assert [t.site for t in config.schedules["every-15-minutes"].transfers] == ["support", "access"]
    assert config.logging.log_retention_days == 90
    assert config.log_directory == tmp_path / "logs"
    assert config.notifications.email.password.get_secret_value() == SECRET


def test_state_defaults_beside_the_config_file(tmp_path, plugins):
    path = write(tmp_path / "btic.toml", "")
    config = load_config(path, plugins)
    assert config.state_url == f"sqlite:///{tmp_path / 'btic-state.db'}"


def problems_of(tmp_path: Path, plugins, text: str, environ=None) -> dict[str, str]:
    """Every problem of a configuration: those loading it raises, or else those of the
    secrets it holds (read when a command needs them, and reported then)."""
    path = write(tmp_path / "btic.toml", text)
    try:
        config = load_config(path, plugins, environ=environ or ENV)
    except ConfigError as exc:
        return {p.path: p.message for p in exc.problems}
    problems = config.secret_problems()
    assert problems, "the configuration loaded without a problem"
    return {p.path: p.message for p in problems}


SITE = """
[sites.support]
host = "support.example.com"
client_id = "abc"
client_secret = "env:BTIC_TEST_SECRET"
product = "rs"

[sites.access]
host = "access.example.com"
client_id = "abc"
client_secret = "env:BTIC_TEST_SECRET"
product = "pa"

[destinations.archive]
plugin = "filesystem"
directory = "/tmp/a"

[destinations.reports]
plugin = "sqlserver"
url = "sqlite:///r.db"
"""


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        (
            'every = "1h"\n[[schedules.s.transfers]]\nsite = "nowhere"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.transfers[0].site",
            "no site named 'nowhere'; defined: access, support",
        ),
        (
            'every = "1h"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive", "nope"]\ndata = ["session"]',
            "schedules.s.transfers[0].destinations[1]",
            "no destination named 'nope'; defined: archive, reports",
        ),
        (
            'every = "1h"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["reports"]\ndata = ["recording"]',
            "schedules.s.transfers[0].data",
            "destination 'reports' (plugin sqlserver) cannot receive 'recording'; it receives: presentation, session",
        ),
        (
            'every = "1h"\n[[schedules.s.transfers]]\nsite = "access"\ndestinations = ["archive"]\ndata = ["show_my_screen_recording"]',
            "schedules.s.transfers[0].data",
            "site 'access' is a PA appliance, which has no 'show_my_screen_recording'",
        ),
        (
            'every = "30s"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.every",
            "30s is outside the allowed 1m .. 7d",
        ),
        (
            'every = "8d"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.every",
            "8d is outside the allowed 1m .. 7d",
        ),
        (
            'every = "soon"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.every",
            "must be a period such as 30s, 15m, 2h, 1d, 1w or 7y",
        ),
        (
            'every = "6h"\nat = "02:00"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.at",
            "only periods of whole days may set a time of day",
        ),
        (
            'every = "1d"\nat = "24:10"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.at",
            'must be a time of day as "HH:MM"',
        ),
        (
            'every = "1h"\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["sessions"]',
            "schedules.s.transfers[0].data[0]",
            "must be one of session, recording, command_shell_recording",
        ),
        (
            'every = "1h"\nevry = 2\n[[schedules.s.transfers]]\nsite = "support"\ndestinations = ["archive"]\ndata = ["session"]',
            "schedules.s.evry",
            "unknown setting; allowed: at, enabled, every, time_zone, transfers",
        ),
        ('every = "1h"\ntransfers = []', "schedules.s.transfers", "must list at least one"),
    ],
    ids=[
        "missing-site",
        "missing-destination",
        "cannot-receive",
        "product-lacks-type",
        "period-too-short",
        "period-too-long",
        "period-unreadable",
        "at-on-hourly",
        "bad-time",
        "bad-data-type",
        "unknown-key",
        "no-transfers",
    ],
)
def test_each_class_of_schedule_error_has_its_path_and_message(
    tmp_path, plugins, schedule, path, message
):
    problems = problems_of(tmp_path, plugins, SITE + "\n[schedules.s]\n" + schedule + "\n")
    assert path in problems, problems
    assert problems[path].startswith(message), problems[path]


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        (
            '[destinations.d]\nplugin = "filesystem"\ndirectory = "/x"\nconflict = "Rename"',
            "destinations.d.conflict",
            "must be one of AppendNumber, Overwrite or Skip",
        ),
        (
            '[destinations.d]\nplugin = "filesystem"\ndirectory = "/x"\nretention_count = 0',
            "destinations.d.retention_count",
            "Input should be greater than or equal to 1",
        ),
        ('[destinations.d]\nplugin = "filesystem"', "destinations.d.directory", "is required"),
        (
            '[destinations.d]\nplugin = "filesystem"\ndirectory = "/x"\ndirectroy = "/y"',
            "destinations.d.directroy",
            "unknown setting; allowed: conflict, directory, directory_mode, download_format",
        ),
        (
            '[destinations.d]\nplugin = "nosuch"',
            "destinations.d.plugin",
            "no installed plugin 'nosuch'; installed: filesystem, s3, sqlserver",
        ),
        (
            '[destinations.d]\ndirectory = "/x"',
            "destinations.d.plugin",
            "is required; one of: filesystem, s3, sqlserver",
        ),
        (
            '[destinations.d]\nplugin = "s3"\nbucket = "Bad_Bucket"',
            "destinations.d.bucket",
            "must be an S3 bucket name",
        ),
        (
            '[destinations.d]\nplugin = "sqlserver"',
            "destinations.d",
            "give exactly one of url or connection_string",
        ),
        (
            '[sites.x]\nhost = "https://support.example.com"\nclient_id = "a"\nclient_secret = "b"',
            "sites.x.host",
            'give the host name only, without "https://"',
        ),
        (
            '[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "b"\nproduct = "rsx"',
            "sites.x.product",
            "must be one of rs, pa or auto",
        ),
        (
            '[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "env:BTIC_NOT_SET_ANYWHERE"',
            "sites.x.client_secret",
            "environment variable BTIC_NOT_SET_ANYWHERE is not set",
        ),
        (
            '[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "file:missing.txt"',
            "sites.x.client_secret",
            "cannot read secret file",
        ),
        (
            '[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "b"\nca_bundle = "nope.pem"',
            "sites.x.ca_bundle",
            "is not a file",
        ),
        (
            '[sites."bad name"]\nhost = "h"\nclient_id = "a"\nclient_secret = "b"',
            "sites.bad name",
            "name must start with a letter or digit",
        ),
        (
            '[sitez.x]\nhost = "h"',
            "sitez",
            "unknown setting; allowed: destinations, executor, integrity, logging, notifications",
        ),
        (
            '[logging]\nlevel = "loud"',
            "logging.level",
            "must be one of debug, info, warning or error",
        ),
        (
            '[notifications.email]\nsmtp_host = "h"\nfrom_address = "a@b"\nto = []',
            "notifications.email.to",
            "must list at least one",
        ),
    ],
)
def test_each_class_of_section_error_has_its_path_and_message(
    tmp_path, plugins, section, path, message
):
    problems = problems_of(tmp_path, plugins, section + "\n")
    assert path in problems, problems
    assert message in problems[path], problems[path]


def test_every_problem_is_reported_together(tmp_path, plugins):
    text = (
        SITE.replace('product = "rs"', 'product = "rsx"')
        + """
[destinations.bad]
plugin = "filesystem"
directory = "/x"
conflict = "Rename"

[schedules.fast]
every = "30s"
at = "01:00"
[[schedules.fast.transfers]]
site = "nowhere"
destinations = ["reports", "missing"]
data = ["recording", "sessions"]
"""
    )
    problems = problems_of(tmp_path, plugins, text)
    assert set(problems) == {
        "sites.support.product",
        "destinations.bad.conflict",
        "schedules.fast.every",
        "schedules.fast.at",
        "schedules.fast.transfers[0].data[1]",
        "schedules.fast.transfers[0].site",
        "schedules.fast.transfers[0].destinations[1]",
        "schedules.fast.transfers[0].data",
    }


def test_check_offline_lists_every_problem_and_exits_2(tmp_path):
    path = write(
        tmp_path / "bad.toml",
        SITE + '\n[schedules.s]\nevery = "30s"\nat = "01:00"\n'
        '[[schedules.s.transfers]]\nsite = "nowhere"\ndestinations = ["reports"]\ndata = ["backup"]\n',
    )
    result = run_btic("check", "--offline", "--config", str(path), env=ENV)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "error: schedules.s.every: 30s is outside the allowed 1m .. 7d" in lines
    assert any(
        entry.startswith("error: schedules.s.at: only periods of whole days") for entry in lines
    )
    assert (
        "error: schedules.s.transfers[0].site: no site named 'nowhere'; defined: access, support"
        in lines
    )
    assert any(
        entry.startswith("error: schedules.s.transfers[0].data: destination 'reports'")
        for entry in lines
    )
    assert lines[-1] == f"{path}: 4 problems"


def test_check_offline_never_shows_a_secret(tmp_path):
    (tmp_path / "secret.txt").write_text(SECRET + "-file\n")
    text = FULL.replace('client_secret = "file:secret.txt"', f'client_secret = "{SECRET}-literal"')
    path = write(tmp_path / "btic.toml", text)
    for args in (("check", "--offline"), ("check", "--offline", "--json")):
        result = run_btic(*args, "--config", str(path), env=ENV)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.output
        assert "env:BTIC_TEST_SECRET" in result.stdout
        assert "********" in result.stdout  # the literal one, masked
    assert (
        "postgresql+psycopg" not in result.stdout
    )  # the URL came from env: and shows as its reference
    # nor in the errors of an invalid file
    bad = write(tmp_path / "bad.toml", text.replace('product = "pa"', "product = 7"))
    result = run_btic("check", "--offline", "--config", str(bad), env=ENV)
    assert result.returncode == 2
    assert "sites.access.product" in result.stderr
    assert SECRET not in result.output


MINIMAL_WORK = """
[sites.s]
host = "h"
client_id = "a"
client_secret = "env:BTIC_TEST_SECRET"
[destinations.d]
plugin = "filesystem"
directory = "archive"
[schedules.every]
every = "1h"
[[schedules.every.transfers]]
site = "s"
destinations = ["d"]
data = ["session"]
"""


def test_a_literal_database_url_shows_without_its_password(tmp_path):
    path = write(
        tmp_path / "btic.toml",
        f'[state]\nurl = "postgresql://btic:{SECRET}@db/btic"\n' + MINIMAL_WORK,
    )
    result = run_btic("check", "--offline", "--config", str(path), env=ENV)
    assert result.returncode == 0, result.stderr
    assert "postgresql://btic:***@db/btic" in result.stdout
    assert SECRET not in result.output


def test_literal_secrets_in_a_readable_file_draw_a_warning(tmp_path, plugins):
    text = f'[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "{SECRET}"\n'
    readable = write(tmp_path / "readable.toml", text, mode=0o644)
    config = load_config(readable, plugins)
    assert len(config.warnings) == 1
    assert "sites.x.client_secret" in config.warnings[0]
    assert f"chmod 600 {readable}" in config.warnings[0]
    assert SECRET not in config.warnings[0]
    assert load_config(write(tmp_path / "private.toml", text, mode=0o600), plugins).warnings == []
    referenced = write(
        tmp_path / "ref.toml", text.replace(SECRET, "env:BTIC_TEST_SECRET"), mode=0o644
    )
    assert load_config(referenced, plugins, environ=ENV).warnings == []
    working = write(tmp_path / "working.toml", text + MINIMAL_WORK, mode=0o644)
    result = run_btic("check", "--offline", "--config", str(working), env=ENV)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "sites.x.client_secret" in result.stderr


def test_file_references_are_relative_to_the_config_file(tmp_path, plugins):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "key").write_text("k3y\n")
    path = write(
        tmp_path / "conf" / "btic.toml",
        '[sites.x]\nhost = "h"\nclient_id = "a"\nclient_secret = "file:key"\n',
    )
    config = load_config(path, plugins)
    assert config.sites["x"].client_secret.get_secret_value() == "k3y"
    assert repr(config.sites["x"].client_secret) == "Secret('file:key')"


def test_broken_toml_and_missing_file_are_one_clear_line(tmp_path):
    path = write(tmp_path / "broken.toml", "[sites.x\nhost = 1\n")
    result = run_btic("check", "--offline", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}: not valid TOML" in result.stderr and "line 1" in result.stderr
    missing = tmp_path / "nope.toml"
    result = run_btic("check", "--offline", "--config", str(missing))
    assert result.returncode == 2
    assert f"no such configuration file; create one with `btic init {missing}`" in result.stderr


def test_config_is_found_through_btic_config(tmp_path):
    path = write(tmp_path / "elsewhere.toml", '[logging]\nlevel = "warning"\n' + MINIMAL_WORK)
    result = run_btic("check", "--offline", env={"BTIC_CONFIG": str(path), **ENV}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"config: {path}" in result.stdout


def test_init_writes_a_starter_configuration_that_checks(tmp_path):
    path = tmp_path / "conf" / "btic.toml"
    result = run_btic("init", str(path))
    assert result.returncode == 0, result.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text().startswith("# btic configuration")
    ok = run_btic("check", "--offline", "--config", str(path), env={"BTIC_SUPPORT_SECRET": "x"})
    assert ok.returncode == 0, ok.stderr
    assert "nightly: every 1d at 02:00" in ok.stdout
    unset = run_btic("check", "--offline", "--config", str(path))
    assert unset.returncode == 2
    assert (
        "sites.support.client_secret: environment variable BTIC_SUPPORT_SECRET is not set"
        in unset.stderr
    )
    again = run_btic("init", str(path))
    assert again.returncode == 2 and "exists; use --force" in again.stderr


def test_version():
    import importlib.metadata

    result = run_btic("--version")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"btic {importlib.metadata.version('btic')}"


def test_check_offline_json_is_pure_json_and_an_unknown_site_is_refused(tmp_path):
    path = write(tmp_path / "btic.toml", MINIMAL_WORK)
    result = run_btic("check", "--offline", "--json", "--config", str(path), env=ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sites"]["s"]["host"] == "h"
    assert "configuration is valid" in result.stderr
    nope = run_btic("check", "--offline", "--site", "nope", "--config", str(path), env=ENV)
    assert nope.returncode == 2 and "no site named 'nope'" in nope.stderr


def test_an_empty_configuration_is_nothing_to_do(tmp_path):
    path = write(tmp_path / "btic.toml", "# nothing yet\n")
    for command in (["check", "--offline"], ["sync"]):
        result = run_btic(*command, "--config", str(path))
        assert result.returncode == 2, command
        assert (
            "nothing to do: no [sites.NAME] section and no [schedules.NAME] section"
            in result.stderr
        )


def test_init_to_stdout_and_into_an_unwritable_directory(tmp_path):
    printed = run_btic("init", "-")
    assert printed.returncode == 0 and printed.stdout.startswith("# btic configuration")
    assert not (Path.cwd() / "-").exists()
    # Root writes anywhere, so the unwritable place is a path under a plain file.
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = run_btic("init", str(blocker / "btic.toml"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot write {blocker / 'btic.toml'}")
    assert "Traceback" not in result.output


def test_a_ca_bundle_that_is_not_pem_is_a_config_error(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("this is not a certificate\n")
    text = MINIMAL_WORK.replace('client_id = "a"', f'client_id = "a"\nca_bundle = "{bundle}"')
    result = run_btic(
        "check", "--offline", "--config", str(write(tmp_path / "b.toml", text)), env=ENV
    )
    assert result.returncode == 2
    assert "error: sites.s.ca_bundle: " in result.stderr and "PEM expected" in result.stderr
    assert "Traceback" not in result.output


def test_a_schedule_time_zone_must_be_a_zone_name(tmp_path):
    from btic.config import build_config

    raw = {
        "sites": {"s": {"host": "a.example.com", "client_id": "i", "client_secret": "x"}},
        "destinations": {"d": {"plugin": "filesystem", "directory": str(tmp_path)}},
        "schedules": {
            "n": {
                "every": "1d",
                "at": "02:00",
                "time_zone": "Mars/Olympus",
                "transfers": [{"site": "s", "destinations": ["d"], "data": ["session"]}],
            }
        },
    }
    with pytest.raises(ConfigError) as error:
        build_config(raw, PluginManager().discover(), base_dir=tmp_path, environ={})
    assert "schedules.n.time_zone" in str(error.value)
    assert "'Mars/Olympus' is not a time zone name" in str(error.value)
