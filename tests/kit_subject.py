"""A small file destination, correct, and copies of it each broken in one way that
btic's conformance kit promises to catch.

``plugin_source(flaw)`` is the module of the plugin (entry point ``tiny``);
``CONFORMANCE_TESTS`` is a test module that runs the kit against it.
"""

from __future__ import annotations

FLAWS = ("none", "never_deduplicates", "succeeds_in_an_outage", "writes_in_place", "escapes")

_SOURCE = """
import hashlib
import os
from pathlib import Path

import btic
from btic import naming
from pydantic import BaseModel, ConfigDict

FLAW = {flaw!r}


class Tiny:
    api_version = (1, 0)

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        directory: str

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        self.root = Path(options.directory)

    def _name(self, ctx, extension, external_key):
        if FLAW == "escapes":
            # Values joined as they came (only a leading slash dropped, so that the
            # escape stays inside the test's own directories).
            name = f"{{external_key or ''}}{{ctx.item_key.id}}.{{extension}}".lstrip("/\\\\")
            return self.root / name
        parts = [naming.sanitize_value(part) for part in ctx.item_key.parts]
        if any(len(part.encode()) > 200 for part in parts):
            raise btic.DestinationError(f"{{ctx.item_key}}: a name too long", permanent=True)
        return naming.inside(self.root, "/".join(parts) + "." + extension)

    def _store(self, ctx, target, chunks):
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            if FLAW == "never_deduplicates":
                number = 0
                while target.exists():
                    number += 1
                    target = target.with_name(f"{{target.stem}}.{{number}}{{target.suffix}}")
            temporary = target if FLAW == "writes_in_place" else target.with_name(".tmp-" + target.name)
            digest = hashlib.sha256()
            size = 0
            with open(temporary, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            if FLAW == "succeeds_in_an_outage":
                return btic.Delivery(str(target))
            raise btic.DestinationError(f"{{target}}: {{exc.strerror}}") from None
        return btic.Delivery(str(target), size=size, sha256=digest.hexdigest())

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        return self._store(ctx, self._name(ctx, "xml", session.external_key), [xml])

    @btic.hookimpl
    def on_recording(self, recording, ctx):
        def chunks():
            with recording.open() as source:
                while chunk := source.read(1 << 20):
                    yield chunk

        target = self._name(ctx, recording.extension, recording.session.external_key)
        return self._store(ctx, target, chunks())
"""


def plugin_source(flaw: str) -> str:
    assert flaw in FLAWS
    return _SOURCE.format(flaw=flaw)


CONFORMANCE_TESTS = """
from contextlib import contextmanager
from pathlib import Path

import pytest

from btic.testing import DestinationConformance


class TestTiny(DestinationConformance):
    plugin = "tiny"

    @pytest.fixture
    def destination_options(self, tmp_path):
        return {"directory": str(tmp_path / "archive")}

    @pytest.fixture
    def broken_options(self, tmp_path):
        (tmp_path / "a-file").write_text("x")
        return {"directory": str(tmp_path / "a-file" / "archive")}

    @contextmanager
    def outage(self, options):
        root = Path(options["directory"])
        away = root.with_name("away")
        if root.exists():
            root.rename(away)
        root.write_text("not the archive")
        try:
            yield
        finally:
            root.unlink()
            if away.exists():
                away.rename(root)

    def stored_items(self, options):
        root = Path(options["directory"])
        if not root.is_dir():
            return {}
        return {
            str(path): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        }

    def is_inside(self, location, options):
        return Path(options["directory"]).resolve() in Path(location).resolve().parents
"""
