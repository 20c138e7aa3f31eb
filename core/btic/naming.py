"""``%TOKEN%`` file-name templates: validation, filling and sanitising.

Shared by every plugin that names things (file system paths, S3 keys).

* Tokens are the vendor's special replacement values (``%LSID%``...) plus
  ``%TIMESTAMP%``, ``%YEAR%``, ``%MONTH%``, ``%DAY%`` and ``%KIND%``; only
  upper-case letters and ``_`` between the ``%``, case-sensitive.
* A template is checked when the configuration loads: unknown tokens, tokens
  a data type cannot fill, and templates that cannot tell two items apart.
* Every value is sanitised before use: ``%EXTERNAL_KEY%`` is free text typed
  by a person, so separators, ``..``, control characters, characters Windows
  forbids, reserved device names, trailing dots and spaces and over-long
  names are neutralised. ``/`` in the *template* makes sub-directories.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from btic.types import DataType

if TYPE_CHECKING:
    from btic.appliance.model import Session
    from btic.types import Backup, Recording

#: The helpers plugins may use (the plugin API): names from templates, kept inside a
#: directory. The rest of this module is btic's own.
__all__ = [
    "SEALED_EXTENSION",
    "ConfigWarning",
    "backup_patterns",
    "backup_values",
    "inside",
    "recording_values",
    "render",
    "sanitize_value",
    "session_extension",
    "session_values",
    "template_for",
    "validate_general_template",
    "validate_per_type_templates",
]

TOKENS = frozenset(
    {
        "LSEQ",
        "LSID",
        "EXTERNAL_KEY",
        "SESSION_TYPE",
        "SUPPORT_SITE_HOST",
        "INSTANCE",
        "EXTENSION",
        "TIMESTAMP",
        "YEAR",
        "MONTH",
        "DAY",
        "KIND",
    }
)
_SESSION_TOKENS = TOKENS - {"INSTANCE"}
FILLABLE: dict[DataType, frozenset[str]] = {
    DataType.SESSION: _SESSION_TOKENS,
    DataType.PRESENTATION: _SESSION_TOKENS,
    DataType.RECORDING: _SESSION_TOKENS,
    DataType.PRESENTATION_RECORDING: _SESSION_TOKENS,
    DataType.COMMAND_SHELL_RECORDING: TOKENS,
    DataType.SHOW_MY_SCREEN_RECORDING: TOKENS,
    DataType.BACKUP: frozenset(
        {"SUPPORT_SITE_HOST", "EXTENSION", "TIMESTAMP", "YEAR", "MONTH", "DAY", "KIND"}
    ),
}

_SESSION_DEFAULT = "%SUPPORT_SITE_HOST%-%SESSION_TYPE%-%LSID%.%EXTENSION%"
DEFAULT_TEMPLATES: dict[DataType, str] = {
    DataType.SESSION: _SESSION_DEFAULT,
    DataType.PRESENTATION: _SESSION_DEFAULT,
    DataType.RECORDING: _SESSION_DEFAULT,
    DataType.PRESENTATION_RECORDING: _SESSION_DEFAULT,
    DataType.COMMAND_SHELL_RECORDING: (
        "%SUPPORT_SITE_HOST%-%SESSION_TYPE%-%LSID%-shell-%INSTANCE%.%EXTENSION%"
    ),
    DataType.SHOW_MY_SCREEN_RECORDING: (
        "%SUPPORT_SITE_HOST%-%SESSION_TYPE%-%LSID%-sms-%INSTANCE%.%EXTENSION%"
    ),
    DataType.BACKUP: "%SUPPORT_SITE_HOST%-backup-%TIMESTAMP%.%EXTENSION%",
}

#: Without these, two items of the data type could get the same name.
_DISTINGUISHING: dict[DataType, tuple[tuple[str, ...], ...]] = {
    DataType.SESSION: (("LSID", "LSEQ"),),
    DataType.PRESENTATION: (("LSID", "LSEQ"),),
    DataType.RECORDING: (("LSID", "LSEQ"),),
    DataType.PRESENTATION_RECORDING: (("LSID", "LSEQ"),),
    DataType.COMMAND_SHELL_RECORDING: (("LSID", "LSEQ"), ("INSTANCE",)),
    DataType.SHOW_MY_SCREEN_RECORDING: (("LSID", "LSEQ"), ("INSTANCE",)),
    DataType.BACKUP: (("TIMESTAMP",),),
}

_CANDIDATE = re.compile(r"%([^%/\\]*)%")
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
# Characters that look like or act as path separators somewhere.
_SEPARATORS = re.compile(r"[/\\\uff0f\uff3c\u2215\u2044\u29f8\u29f9\u2216\ufe68]")
_RESERVED = re.compile(
    r"^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE
)
MAX_SEGMENT_BYTES = 200


class ConfigWarning(UserWarning):
    """A configuration that works but may surprise (collected by the loader)."""


def tokens_in(template: str) -> list[str]:
    return _CANDIDATE.findall(template)


def check_template(template: str, data_type: DataType, conflict: str = "AppendNumber") -> list[str]:
    """Problems with ``template`` for ``data_type`` (empty when it is usable).

    A template that cannot tell two items apart is an error unless the
    conflict mode is ``AppendNumber`` (which never overwrites); then it draws a
    :class:`ConfigWarning`.
    """
    problems = []
    if not template.strip():
        return ["is empty"]
    if template.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", template):
        problems.append("must be relative to the destination (no leading / or drive letter)")
    for segment in re.split(r"[/\\]", template):
        if segment.strip() in ("..", "."):
            problems.append(f"may not contain a {segment.strip()!r} path segment")
    found = tokens_in(template)
    for token in found:
        if token not in TOKENS:
            hint = f"; did you mean %{token.upper()}%?" if token.upper() in TOKENS else ""
            problems.append(
                f"unknown token %{token}%{hint} (tokens are upper case: "
                f"{', '.join('%' + t + '%' for t in sorted(TOKENS))})"
            )
        elif token not in FILLABLE[data_type]:
            problems.append(f"%{token}% cannot be filled for {data_type.value}")
    if problems:
        return problems
    missing = [
        " or ".join(f"%{t}%" for t in group)
        for group in _DISTINGUISHING[data_type]
        if not any(t in found for t in group)
    ]
    if missing:
        message = f"cannot tell two {data_type.value} items apart without {', '.join(missing)}"
        if conflict == "AppendNumber":
            warnings.warn(
                ConfigWarning(message + "; AppendNumber will number the clashes"), stacklevel=2
            )
        else:
            problems.append(
                message
                + f": conflict = {conflict!r} would "
                + ("drop" if conflict == "Skip" else "overwrite")
                + " data"
            )
    return problems


def template_for(data_type: DataType, general: str | None, per_type: Mapping[DataType, str]) -> str:
    """The template a destination uses for ``data_type``."""
    if data_type in per_type:
        return per_type[data_type]
    if general is not None and all(t in FILLABLE[data_type] for t in tokens_in(general)):
        return general
    return DEFAULT_TEMPLATES[data_type]


def check_destination_templates(
    general: str | None,
    per_type: Mapping[DataType, str],
    conflict: str,
    receives: frozenset[DataType],
) -> list[tuple[str, str]]:
    """(option key, message) problems of a destination's templates.

    A general template that uses a token some data type cannot fill (e.g.
    ``%INSTANCE%``) applies only to the data types that can fill it; the
    others keep their defaults.
    """
    problems: list[tuple[str, str]] = []
    if general is not None:
        usable = [dt for dt in receives if all(t in FILLABLE[dt] for t in tokens_in(general))]
        if not usable:
            for message in check_template(general, DataType.SESSION, conflict):
                problems.append(("file_name_format", message))
        for dt in usable:
            if dt not in per_type:
                for message in check_template(general, dt, conflict):
                    problems.append(
                        (
                            "file_name_format",
                            f"for {dt.value}: {message} (or set file_name_formats.{dt.value})",
                        )
                    )
    for dt, template in per_type.items():
        for message in check_template(template, dt, conflict):
            problems.append((f"file_name_formats.{dt.value}", message))
    return _unique(problems)


def validate_per_type_templates(
    per_type: Mapping[DataType, str], conflict: str, receives: frozenset[DataType]
) -> None:
    """For a destination's options validator: the per-type templates' problems.

    :raises ValueError: naming each data type's problem.
    """
    problems = [
        f"{key.removeprefix('file_name_formats.')}: {message}"
        for key, message in check_destination_templates(None, per_type, conflict, receives)
    ]
    if problems:
        raise ValueError("; ".join(problems))


def validate_general_template(
    general: str, per_type: Mapping[DataType, str], conflict: str, receives: frozenset[DataType]
) -> None:
    """For a destination's options validator: the general template's problems.

    :raises ValueError: with every problem.
    """
    problems = [
        message
        for key, message in check_destination_templates(general, per_type, conflict, receives)
        if key == "file_name_format"
    ]
    if problems:
        raise ValueError("; ".join(problems))


def _unique(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))


# -- values --------------------------------------------------------------------


def _time_values(moment: datetime | None) -> dict[str, str]:
    moment = (moment or datetime.fromtimestamp(0, timezone.utc)).astimezone(timezone.utc)
    return {
        "TIMESTAMP": moment.strftime("%Y%m%dT%H%M%SZ"),
        "YEAR": moment.strftime("%Y"),
        "MONTH": moment.strftime("%m"),
        "DAY": moment.strftime("%d"),
    }


#: What a sealed item's name ends with (after its own extension): an age file.
SEALED_EXTENSION = "age"


def session_extension(sealed: bool = False) -> str:
    """The extension of a session report's file: ``xml``, or ``xml.age`` when the
    report is sealed to the destination's recipients (``ctx.sealed``)."""
    return f"xml.{SEALED_EXTENSION}" if sealed else "xml"


def session_values(
    session: Session, *, extension: str = "xml", kind: str | None = None
) -> dict[str, str]:
    return {
        "LSEQ": "" if session.lseq is None else str(session.lseq),
        "LSID": session.lsid,
        "EXTERNAL_KEY": session.external_key or "",
        "SESSION_TYPE": session.session_type,
        "SUPPORT_SITE_HOST": session.host,
        "EXTENSION": extension,
        "KIND": kind or ("presentation" if session.report == "presentation" else "session"),
        **_time_values(session.end_time or session.start_time),
    }


def recording_values(recording: Recording) -> dict[str, str]:
    values = session_values(
        recording.session,
        extension=recording.extension,
        kind="recording" if recording.kind == "session" else recording.kind,
    )
    values["SUPPORT_SITE_HOST"] = recording.site.host
    if recording.instance is not None:
        values["INSTANCE"] = str(recording.instance)
    return values


def backup_values(backup: Backup) -> dict[str, str]:
    return {
        "SUPPORT_SITE_HOST": backup.site.host,
        "EXTENSION": backup.extension,
        "KIND": "backup",
        **_time_values(backup.time),
    }


_BACKUP_WILDCARDS = {
    "TIMESTAMP": r"\d{8}T\d{6}Z",
    "YEAR": r"\d{4}",
    "MONTH": r"\d{2}",
    "DAY": r"\d{2}",
}


def backup_patterns(template: str, backup: Backup) -> list[re.Pattern[str]]:
    """One regex per path segment of ``template``, matching the names it gives the
    backups of ``backup``'s site (the timestamp captured as group ``ts``, an
    AppendNumber ``.N`` allowed before the extension): retention finds a site's
    backups by them, in a directory tree or under a key prefix."""
    values = backup_values(backup)
    extension = re.escape("." + values["EXTENSION"])
    has_timestamp = False
    patterns = []
    for raw in re.split(r"[/\\]", template):
        if not raw:
            continue
        regex = ""
        for piece in re.split(r"(%[A-Z_]+%)", raw):
            token = piece[1:-1] if len(piece) > 2 and piece[0] == piece[-1] == "%" else None
            if token == "TIMESTAMP" and not has_timestamp:
                regex += r"(?P<ts>\d{8}T\d{6}Z)"
                has_timestamp = True
            elif token in _BACKUP_WILDCARDS:
                regex += _BACKUP_WILDCARDS[token]
            elif token is not None:
                regex += re.escape(sanitize_value(values.get(token, "")))
            else:
                regex += re.escape(piece)
        if regex.endswith(extension):
            # AppendNumber may have put ".N" before the last period.
            regex = regex[: -len(extension)] + r"(?:\.\d+)?" + extension
        patterns.append(re.compile(regex))
    return patterns


# -- filling and sanitising --------------------------------------------------------


def sanitize_value(value: str) -> str:
    """A token's value made safe to sit inside one path segment."""
    value = unicodedata.normalize("NFC", value)
    value = _SEPARATORS.sub("_", value)
    value = _WINDOWS_FORBIDDEN.sub("_", value)
    value = "".join(
        "_" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value
    )
    return value.replace("..", "__")


def sanitize_segment(segment: str) -> str:
    """One path segment (file or directory name) made valid everywhere."""
    segment = segment.strip(" .")
    if not segment:
        return "_"
    if _RESERVED.match(segment):
        segment = "_" + segment
    encoded = segment.encode("utf-8")
    if len(encoded) > MAX_SEGMENT_BYTES:
        stem, dot, extension = segment.rpartition(".")
        if not dot or len(extension) > 10:
            stem, extension = segment, ""
        suffix = (
            "~" + hashlib.sha256(encoded).hexdigest()[:10] + (f".{extension}" if extension else "")
        )
        room = MAX_SEGMENT_BYTES - len(suffix.encode("utf-8"))
        stem_bytes = stem.encode("utf-8")[:room]
        segment = stem_bytes.decode("utf-8", "ignore").rstrip(" .") + suffix
    return segment


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template`` and return a safe relative path with ``/`` separators."""
    segments = []
    for raw in re.split(r"[/\\]", template):
        if not raw:
            continue
        filled = _CANDIDATE.sub(lambda m: sanitize_value(values.get(m.group(1), "")), raw)
        segments.append(sanitize_segment(filled))
    if not segments:
        segments = ["_"]
    return "/".join(segments)


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, guaranteed to resolve inside ``root``.

    :raises ValueError: when it would not (a symlink pointing out, say).
    """
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{relative!r} resolves to {target}, outside {base}")
    return target
