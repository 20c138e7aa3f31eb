"""Plugin discovery, isolation and dispatch, through real entry points."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
from conftest import VALID_PLUGIN, run_btic

import btic
from btic.plugins import PluginManager, PluginWarning
from btic.types import AppContext, DataType, SiteInfo, TransferContext


def test_btic_plugins_lists_the_shipped_plugins_with_versions_and_hooks():
    result = run_btic("plugins")
    assert result.returncode == 0, result.stderr
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"filesystem", "sqlserver", "s3"} <= set(listing)
    fs = listing["filesystem"]
    assert fs["distribution"] == "btic-filesystem"
    assert fs["version"] == importlib.metadata.version("btic-filesystem")
    assert fs["hooks"] == [
        "on_backup",
        "on_check",
        "on_configure",
        "on_digest",
        "on_digests",
        "on_list",
        "on_locate",
        "on_open",
        "on_recording",
        "on_remove",
        "on_session_xml",
        "on_verify",
    ]
    assert fs["error"] is None
    assert listing["sqlserver"]["hooks"] == [
        "on_check",
        "on_configure",
        "on_digest",
        "on_digests",
        "on_flush",
        "on_list",
        "on_remove",
        "on_session_xml",
        "on_verify",
        "register_commands",
    ]
    assert listing["sqlserver"]["data_types"] == ["presentation", "session"]
    assert "backup" in listing["s3"]["data_types"]


def test_a_plugin_that_raises_on_import_is_reported_and_skipped(distributions):
    site = distributions.make(
        "btic-broken",
        "2.3.4",
        {"broken": "broken_mod:Destination"},
        {"broken_mod": "raise ImportError('needs libfoo')\n"},
    )
    result = run_btic("plugins", pythonpath=[site])
    assert result.returncode == 0, result.stderr
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["broken"]["error"] == "ImportError: needs libfoo"
    assert listing["broken"]["distribution"] == "btic-broken"
    assert listing["broken"]["version"] == "2.3.4"
    assert listing["broken"]["hooks"] == []
    assert listing["filesystem"]["error"] is None  # the others still load
    assert "broken (btic-broken 2.3.4) failed to load" in result.stderr
    assert "ImportError: needs libfoo" in result.stderr


def test_a_disabled_plugin_is_never_imported(distributions, tmp_path):
    marker = tmp_path / "imported"
    site = distributions.make(
        "btic-noisy",
        "1.0",
        {"noisy": "noisy_mod:Destination"},
        {"noisy_mod": f"open({str(marker)!r}, 'w').close()\n" + VALID_PLUGIN},
    )
    result = run_btic("plugins", pythonpath=[site], env={"BTIC_DISABLE_PLUGINS": "s3, noisy"})
    assert result.returncode == 0, result.stderr
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["noisy"]["disabled"] is True
    assert listing["s3"]["disabled"] is True
    assert listing["filesystem"]["disabled"] is False
    assert not marker.exists()
    # without the block it is imported: the marker proves the test can fail
    run_btic("plugins", pythonpath=[site])
    assert marker.exists()


def test_strict_mode_re_raises_load_errors(distributions):
    site = distributions.make(
        "btic-broken",
        "1.0",
        {"broken": "broken_mod:Destination"},
        {"broken_mod": "raise RuntimeError('boom at import')\n"},
    )
    result = run_btic("plugins", pythonpath=[site], env={"BTIC_STRICT_PLUGINS": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "RuntimeError: boom at import" in result.stderr


def test_strict_mode_in_process(distributions, monkeypatch):
    site = distributions.make(
        "btic-broken2",
        "1.0",
        {"broken2": "broken2_mod:Destination"},
        {"broken2_mod": "raise RuntimeError('strict please')\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(RuntimeError, match="strict please"):
        PluginManager(strict=True).discover()
    with pytest.warns(PluginWarning, match="strict please"):
        manager = PluginManager().discover()
    assert manager.plugins["broken2"].error == "RuntimeError: strict please"


def test_two_distributions_claiming_one_name_give_a_warning_naming_both(distributions):
    site = distributions.make(
        "btic-dup-one", "1.0", {"dup": "dup_one:Destination"}, {"dup_one": VALID_PLUGIN}
    )
    distributions.make(
        "btic-dup-two", "2.0", {"dup": "dup_two:Destination"}, {"dup_two": VALID_PLUGIN}
    )
    result = run_btic("plugins", pythonpath=[site])
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "'dup'" in line]
    assert len(warning) == 1
    assert "btic-dup-one 1.0" in warning[0] and "btic-dup-two 2.0" in warning[0]
    listing = [p for p in json.loads(result.stdout) if p["name"] == "dup"]
    assert len(listing) == 1 and listing[0]["error"] is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    @btic.hookimpl\n    def on_sesion_xml(self, session, xml, ctx):\n        pass\n",
            "unknown hook 'on_sesion_xml'",
        ),
        (
            "    @btic.hookimpl\n    def on_backup(self, backup, context):\n        pass\n",
            "'context'",
        ),
    ],
    ids=["misspelled-hook", "unknown-argument"],
)
def test_hook_implementations_that_match_no_spec_fail_loudly(distributions, body, expected):
    source = (
        "import btic\nfrom pydantic import BaseModel, ConfigDict\n"
        "class Destination:\n"
        "    class Options(BaseModel):\n        model_config = ConfigDict(extra='forbid')\n" + body
    )
    site = distributions.make(
        "btic-typo", "1.0", {"typo": "typo_mod:Destination"}, {"typo_mod": source}
    )
    result = run_btic("plugins", pythonpath=[site])
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert expected in listing["typo"]["error"]
    assert "typo (btic-typo 1.0) failed to load" in result.stderr


def test_options_that_accept_unknown_keys_are_refused(distributions):
    source = VALID_PLUGIN.replace('model_config = ConfigDict(extra="forbid")', "pass")
    site = distributions.make(
        "btic-lax", "1.0", {"lax": "lax_mod:Destination"}, {"lax_mod": source}
    )
    listing = {p["name"]: p for p in json.loads(run_btic("plugins", pythonpath=[site]).stdout)}
    assert "extra='forbid'" in listing["lax"]["error"]


def test_each_destination_is_called_alone(distributions, monkeypatch, tmp_path):
    source = """
import btic
from pydantic import BaseModel, ConfigDict

CALLS = []

class Recorder:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        label: str

    @btic.hookimpl
    def on_configure(self, destination, options):
        self.label = options.label

    @btic.hookimpl
    def on_session_xml(self, xml, ctx):
        CALLS.append((self.label, ctx.destination, xml))
        return btic.Delivery(location=self.label)
"""
    site = distributions.make(
        "btic-recorder", "1.0", {"recorder": "recorder_mod:Recorder"}, {"recorder_mod": source}
    )
    monkeypatch.syspath_prepend(str(site))
    manager = PluginManager().discover()
    model = manager.get("recorder").options_model
    app = AppContext(config_dir=tmp_path, version=btic.__version__)
    manager.add_destination("a", "recorder", model(label="A"), app)
    manager.add_destination("b", "recorder", model(label="B"), app)
    ctx = TransferContext(
        site=SiteInfo("s", "h", "rs"),
        destination="b",
        data_type=DataType.SESSION,
        run_id="r",
        item_key=btic.ItemKey("h", DataType.SESSION, "x"),
    )
    delivery = manager.on_session_xml("b", session=None, xml=b"<x/>", ctx=ctx)
    assert delivery == btic.Delivery(location="B")
    import recorder_mod

    assert recorder_mod.CALLS == [("B", "b", b"<x/>")]
    # a destination added later is not called through an earlier cached caller
    manager.add_destination("c", "recorder", model(label="C"), app)
    manager.on_session_xml("a", session=None, xml=b"<y/>", ctx=ctx)
    assert recorder_mod.CALLS[1][0] == "A" and len(recorder_mod.CALLS) == 2
    assert manager.can_receive("a", DataType.SESSION)
    assert not manager.can_receive("a", DataType.BACKUP)


def test_on_configure_config_error_names_the_destination(distributions, monkeypatch, tmp_path):
    source = (
        VALID_PLUGIN
        + """
    @btic.hookimpl
    def on_configure(self, options):
        raise btic.ConfigError("label and endpoint disagree")
"""
    )
    site = distributions.make(
        "btic-picky", "1.0", {"picky": "picky_mod:Destination"}, {"picky_mod": source}
    )
    monkeypatch.syspath_prepend(str(site))
    manager = PluginManager().discover()
    with pytest.raises(btic.ConfigError) as info:
        manager.add_destination(
            "vault",
            "picky",
            manager.get("picky").options_model(),
            AppContext(config_dir=tmp_path, version="0"),
        )
    assert str(info.value) == "destinations.vault: label and endpoint disagree"


def test_check_offline_runs_on_configure_and_reports_its_refusal(distributions, tmp_path):
    source = (
        "import btic\nfrom pydantic import BaseModel, ConfigDict\n"
        "class Picky:\n"
        "    class Options(BaseModel):\n"
        "        model_config = ConfigDict(extra='forbid')\n"
        "        low: int = 0\n"
        "        high: int = 1\n"
        "    @btic.hookimpl\n"
        "    def on_configure(self, destination, options, app):\n"
        "        if options.low > options.high:\n"
        "            raise btic.ConfigError('low must not exceed high')\n"
        "    @btic.hookimpl\n"
        "    def on_backup(self, backup, ctx):\n"
        "        return None\n"
    )
    site = distributions.make(
        "btic-picky", "1.0", {"picky": "picky_mod:Picky"}, {"picky_mod": source}
    )
    config = tmp_path / "btic.toml"
    work = (
        '[sites.s]\nhost = "h"\nclient_id = "a"\nclient_secret = "env:HOME"\n'
        '[schedules.n]\nevery = "1d"\n[[schedules.n.transfers]]\nsite = "s"\n'
        'destinations = ["p"]\ndata = ["backup"]\n'
    )
    config.write_text('[destinations.p]\nplugin = "picky"\nlow = 5\nhigh = 2\n' + work)
    config.chmod(0o600)
    result = run_btic("check", "--offline", "--config", str(config), pythonpath=[site])
    assert result.returncode == 2, result.output
    assert "error: destinations.p: low must not exceed high" in result.stderr
    config.write_text('[destinations.p]\nplugin = "picky"\nlow = 1\nhigh = 2\n' + work)
    fixed = run_btic("check", "--offline", "--config", str(config), pythonpath=[site])
    assert fixed.returncode == 0, fixed.output


JOURNALING_PLUGIN = """
import os
import btic
from pydantic import BaseModel, ConfigDict

def note(what):
    with open(os.environ["JOURNAL"], "a") as journal:
        journal.write(what + "\\n")

class Batching:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        note("configure")

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        note("session " + session.lsid)
        return btic.Delivery(location=session.lsid, deferred=True)

    @btic.hookimpl
    def on_flush(self):
        note("flush")
        return []

    @btic.hookimpl
    def on_close(self):
        note("close")
        raise RuntimeError("a plugin's bug at the end is only a warning")
"""


def test_on_close_comes_once_after_the_last_flush(distributions, tmp_path):
    from hostile import report, session_xml

    site = distributions.make(
        "btic-batching", "1.0", {"batching": "batching_mod:Batching"},
        {"batching_mod": JOURNALING_PLUGIN},
    )  # fmt: skip
    config = tmp_path / "btic.toml"
    config.write_text(
        '[destinations.b]\nplugin = "batching"\n'
        '[sites.s]\nhost = "h"\nclient_id = "a"\nclient_secret = "x"\n'
        '[schedules.n]\nevery = "1d"\n[[schedules.n.transfers]]\nsite = "s"\n'
        'destinations = ["b"]\ndata = ["session"]\n'
    )
    config.chmod(0o600)
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(session_xml("a"), session_xml("b")))
    journal = tmp_path / "journal"
    result = run_btic(
        "import-xml", str(saved), "--dest", "b", "--host", "h2", "--config", str(config),
        pythonpath=[site], env={"JOURNAL": str(journal)},
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert journal.read_text().splitlines() == [
        "configure", "session a", "session b", "flush", "close",
    ]  # fmt: skip
    assert (
        "warning: destination b: on_close failed: RuntimeError: a plugin's bug at the end is "
        "only a warning" in result.stderr.splitlines()
    )
    assert "Traceback" not in result.output


COMMANDS_PLUGIN = """
import click
import btic
from pydantic import BaseModel, ConfigDict

class Greeter:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        return None

    @btic.hookimpl
    def register_commands(self, cli):
        @cli.command("hello")
        def hello():
            '''Say hello.'''
            click.echo("hello from a plugin")

        @cli.command("sync")
        def sync():
            click.echo("a plugin's sync")
"""

BROKEN_COMMANDS_PLUGIN = """
import btic
from pydantic import BaseModel, ConfigDict

class Broken:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        return None

    @btic.hookimpl
    def register_commands(self, cli):
        raise RuntimeError("no commands today")
"""


def test_plugin_commands_come_through_the_register_commands_hook(distributions):
    site = distributions.make(
        "btic-greeter", "1.0", {"greeter": "greeter_mod:Greeter"}, {"greeter_mod": COMMANDS_PLUGIN}
    )
    distributions.make(
        "btic-broken-commands", "1.0", {"brokencmd": "brokencmd_mod:Broken"},
        {"brokencmd_mod": BROKEN_COMMANDS_PLUGIN},
    )  # fmt: skip
    hello = run_btic("hello", pythonpath=[site])
    assert hello.returncode == 0, hello.output
    assert hello.stdout == "hello from a plugin\n"
    assert (
        "warning: plugin greeter (btic-greeter 1.0): command 'sync' is btic's already; not added"
        in hello.stderr.splitlines()
    )
    assert any(
        line.startswith("warning: plugin brokencmd (btic-broken-commands 1.0): register_commands "
                        "failed, its commands are left out: RuntimeError: no commands today")
        for line in hello.stderr.splitlines()
    ), hello.stderr  # fmt: skip
    listing = run_btic("--help", pythonpath=[site])
    assert "  hello " in listing.stdout
    # btic's own sync stays btic's
    own = run_btic("sync", "--help", pythonpath=[site])
    assert "Run the schedules that are due" in own.stdout
    # a disabled plugin's commands are not there; a strict run shows the broken hook's error
    disabled = run_btic("hello", pythonpath=[site], env={"BTIC_DISABLE_PLUGINS": "greeter"})
    assert disabled.returncode == 2
    assert "No such command 'hello'" in disabled.stderr
    strict = run_btic("hello", pythonpath=[site], env={"BTIC_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0
    assert "RuntimeError: no commands today" in strict.stderr
