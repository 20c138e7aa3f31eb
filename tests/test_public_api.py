"""The plugin API: what plugins may import, and the version they may ask for."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import VALID_PLUGIN, run_btic

import btic
import btic.naming
import btic.plugin

ROOT = Path(__file__).parents[1]
#: Modules a plugin may import from, and the names each offers.
PUBLIC = {
    "btic": set(btic.__all__) | {"naming", "plugin", "testing"},
    "btic.naming": set(btic.naming.__all__),
    "btic.plugin": set(btic.plugin.__all__),
}


def _private_uses(path: Path) -> list[str]:
    """Each use of a name outside the plugin API in one module, as ``line: what``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    modules = {}  # local name -> public module it stands for ("naming" -> btic.naming)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "btic":
            offered = PUBLIC.get(node.module or "")
            for alias in node.names:
                if offered is None or alias.name not in offered:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                elif node.module == "btic" and alias.name in ("naming", "plugin"):
                    modules[alias.asname or alias.name] = f"btic.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("btic.") and alias.name not in PUBLIC:
                    found.append(f"{node.lineno}: import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = {"btic": "btic", **modules}.get(node.value.id)
            if module is not None and node.attr not in PUBLIC[module]:
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("plugin", ["filesystem", "sqlserver", "s3"])
def test_the_shipped_plugins_use_only_the_plugin_api(plugin):
    package = next((ROOT / "plugins" / plugin).glob("btic_*"))
    found = {
        str(path.relative_to(ROOT)): uses
        for path in sorted(package.glob("*.py"))
        if (uses := _private_uses(path))
    }
    assert found == {}, "btic internals used by a shipped plugin (export them, or do without)"


def test_the_check_sees_a_private_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import btic\nfrom btic import naming\nfrom btic.state import StateStore\n"
        "x = btic.errors\ny = naming.sanitize_segment\nz = btic.DestinationError\n"
    )
    assert _private_uses(module) == [
        "3: from btic.state import StateStore",
        "4: btic.errors",
        "5: naming.sanitize_segment",
    ]


@pytest.mark.parametrize(
    ("declared", "loads"),
    [((1, 0), True), ((0, 9), True), ((1, 99), False), ((2, 0), False)],
)
def test_a_plugin_written_for_a_later_api_is_refused_in_one_line(distributions, declared, loads):
    code = VALID_PLUGIN.replace(
        "class Destination:\n", f"class Destination:\n    api_version = {declared!r}\n"
    )
    site = distributions.make("btic-later", "3.0", {"later": "later_mod:Destination"},
                              {"later_mod": code})  # fmt: skip
    result = run_btic("plugins", pythonpath=[site])
    assert result.returncode == 0, result.stderr
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    if loads:
        assert listing["later"]["error"] is None
        return
    said = (
        f"written for btic's plugin API {declared[0]}.{declared[1]}; this btic "
        f"{btic.__version__} has 1.0: upgrade btic"
    )
    assert listing["later"]["error"] == f"PluginLoadError: {said}"
    [line] = [line for line in result.stderr.splitlines() if "later" in line]
    assert line.startswith("warning: plugin later (btic-later 3.0) failed to load and is skipped")
    assert f"written for btic's plugin API {declared[0]}.{declared[1]}" in line
    strict = run_btic("plugins", pythonpath=[site], env={"BTIC_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0


def test_the_api_version_is_what_the_shipped_plugins_declare():
    from btic_filesystem import FileSystemDestination
    from btic_s3 import S3Destination
    from btic_sqlserver import SqlServerDestination

    assert btic.PLUGIN_API_VERSION == (1, 0)
    for plugin in (FileSystemDestination, SqlServerDestination, S3Destination):
        assert plugin.api_version == btic.PLUGIN_API_VERSION
