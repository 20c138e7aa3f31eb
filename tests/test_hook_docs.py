"""docs/plugin-hooks.md documents every hook spec, with its exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy

from btic import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin-hooks.md"


def spec_signatures() -> dict[str, list[str]]:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    specs = {}
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if manager.parse_hookspec_opts(hookspecs, name) is not None:
            specs[name] = list(inspect.signature(function).parameters)
    return specs


def documented_signatures() -> dict[str, list[str]]:
    headings = re.findall(r"^### `(\w+)\(([^)]*)\)`\s*$", DOC.read_text(), flags=re.M)
    return {name: [a.strip() for a in args.split(",") if a.strip()] for name, args in headings}


def test_every_hook_spec_is_documented_with_its_signature():
    specs = spec_signatures()
    assert specs, "no hook specs found"
    assert documented_signatures() == specs


def test_every_hook_spec_has_a_docstring_with_param_fields():
    for name, params in spec_signatures().items():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        for param in params:
            assert f":param {param}:" in doc, f"{name} does not document {param}"
