"""docs/session-fields.md documents every field of the Session model, kept in step."""

from __future__ import annotations

from pathlib import Path

import btic
from btic.appliance.reference import SOURCES, models, reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "session-fields.md"


def test_every_model_field_says_where_it_comes_from():
    found = models()
    assert set(SOURCES) == set(found), "a model without its place in the reference, or gone"
    for name, (_element, sources) in SOURCES.items():
        assert set(sources) == set(found[name].model_fields), name


def test_every_model_is_exported_for_plugins():
    assert set(models()) <= set(btic.__all__)


def test_the_page_is_what_the_models_generate():
    # After changing a model: .venv/bin/python -c "from btic.appliance.reference import
    # reference_markdown; open('docs/session-fields.md', 'w').write(reference_markdown())"
    assert DOC.read_text() == reference_markdown()
