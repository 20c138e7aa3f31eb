"""File-name templates: tokens, defaults and the neutralising of hostile values."""

from __future__ import annotations

import pytest

from btic import naming
from btic.testing.helpers import sample_session
from btic.types import DataType


@pytest.mark.parametrize(
    ("external_key", "expected"),
    [
        ("../../etc/x", "______etc_x"),
        ("/etc/passwd", "_etc_passwd"),
        ("C:\\Windows\\system32", "C__Windows_system32"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("a\uff0fb\u2215c", "a_b_c"),
        ("ctrl\x00\x07\x1b\x7fend", "ctrl____end"),
        ("trailing dots...", "trailing dots__"),
        ("  spaced  ", "spaced"),
        ("日本語 ключ", "日本語 ключ"),
        ("<tag>|pipe?*", "_tag__pipe__"),
    ],
)
def test_hostile_external_keys_become_one_readable_segment(external_key, expected):
    assert naming.render("%EXTERNAL_KEY%", {"EXTERNAL_KEY": external_key}) == expected


def test_over_long_names_are_shortened_keeping_the_extension_and_uniqueness():
    one = naming.render(
        "%EXTERNAL_KEY%.%EXTENSION%", {"EXTERNAL_KEY": "x" * 300, "EXTENSION": "xml"}
    )
    two = naming.render(
        "%EXTERNAL_KEY%.%EXTENSION%", {"EXTERNAL_KEY": "x" * 299 + "y", "EXTENSION": "xml"}
    )
    assert len(one.encode()) <= naming.MAX_SEGMENT_BYTES and one.endswith(".xml")
    assert one != two


def test_every_hostile_name_stays_inside(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    for key in ("../../etc/x", "..", "/abs", "\uff0f..\uff0f..", "a/../../b"):
        relative = naming.render(
            "%EXTERNAL_KEY%/%EXTERNAL_KEY%-%LSID%.xml", {"EXTERNAL_KEY": key, "LSID": "1"}
        )
        target = naming.inside(root, relative)
        assert root.resolve() in target.parents


def test_defaults_per_data_type():
    session = sample_session("abc")
    values = naming.session_values(session)
    assert (
        naming.render(naming.DEFAULT_TEMPLATES[DataType.SESSION], values)
        == "support.example.com-support-abc.xml"
    )
    assert (
        naming.render(
            naming.DEFAULT_TEMPLATES[DataType.COMMAND_SHELL_RECORDING],
            {**values, "INSTANCE": "2", "EXTENSION": "flv"},
        )
        == "support.example.com-support-abc-shell-2.flv"
    )
    assert values["TIMESTAMP"] == "20240501T123000Z" and values["KIND"] == "session"


@pytest.mark.parametrize(
    ("template", "data_type", "conflict", "problem"),
    [
        ("%LSID%.%EXTENSION%", DataType.SESSION, "Skip", None),
        ("%lsid%.xml", DataType.SESSION, "Skip", "unknown token %lsid%; did you mean %LSID%?"),
        ("%FOO%-%LSID%", DataType.SESSION, "Skip", "unknown token %FOO%"),
        ("%LSID%-%INSTANCE%", DataType.SESSION, "Skip", "%INSTANCE% cannot be filled for session"),
        ("%LSID%", DataType.BACKUP, "Skip", "%LSID% cannot be filled for backup"),
        (
            "backup.%EXTENSION%",
            DataType.BACKUP,
            "Overwrite",
            "cannot tell two backup items apart without %TIMESTAMP%",
        ),
        ("%LSID%.flv", DataType.COMMAND_SHELL_RECORDING, "Skip", "without %INSTANCE%"),
        ("/abs/%LSID%", DataType.SESSION, "Skip", "must be relative to the destination"),
        ("a/../%LSID%", DataType.SESSION, "Skip", "may not contain a '..' path segment"),
        ("", DataType.SESSION, "Skip", "is empty"),
    ],
)
def test_template_checks(template, data_type, conflict, problem):
    problems = naming.check_template(template, data_type, conflict)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_append_number_turns_the_uniqueness_error_into_a_warning():
    with pytest.warns(naming.ConfigWarning, match="AppendNumber will number the clashes"):
        assert (
            naming.check_template("%SUPPORT_SITE_HOST%.xml", DataType.SESSION, "AppendNumber") == []
        )
