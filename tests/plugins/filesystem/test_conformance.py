"""The file-system plugin passes btic's destination conformance suite."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from btic.testing import DestinationConformance


class TestFileSystemConformance(DestinationConformance):
    plugin = "filesystem"

    @pytest.fixture
    def destination_options(self, tmp_path):
        return {"directory": str(tmp_path / "archive")}

    @pytest.fixture
    def hostile_options(self, tmp_path):
        return {
            "directory": str(tmp_path / "archive"),
            "file_name_format": "%EXTERNAL_KEY%/%EXTERNAL_KEY%-%LSID%.%EXTENSION%",
        }

    @pytest.fixture
    def broken_options(self, tmp_path):
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("x")
        return {"directory": str(blocker / "archive")}

    @contextmanager
    def outage(self, options):
        # The share is gone and something else sits at its path: nothing can be written.
        root = Path(options["directory"])
        away = root.with_name(root.name + ".away")
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
        if not root.exists():
            return {}
        return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    def is_inside(self, location, options):
        root = Path(options["directory"]).resolve()
        return root in Path(location).resolve().parents
