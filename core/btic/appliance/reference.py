"""The field reference of :class:`~btic.appliance.model.Session` and the models in it:
each field, its type, and where in the session report it comes from.

``docs/session-fields.md`` is :func:`reference_markdown`'s output; a test keeps the
two, and :data:`SOURCES` and the models, in step.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel

from btic.appliance import model

#: Each model, the element it is read from, and where each of its fields comes
#: from, relative to that element (``@name`` an attribute, ``<name>`` a child).
SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "Session": (
        "/session_list/session",
        {
            "product": "the site's product (`rs` or `pa`), not the report",
            "report": "the report asked for: `support`, `access` or `presentation`",
            "host": "the site's host name, not the report",
            "lsid": "@lsid (required: a session without it is refused)",
            "session_type": "<session_type>; `support`, or `presentation` for presentations",
            "lseq": "<lseq>",
            "start_time": "<start_time> (@timestamp, else its ISO text)",
            "end_time": "<end_time> (@timestamp, else its ISO text); None while in progress",
            "duration": "<duration> (`HH:MM:SS`)",
            "public_site": "<public_site id=> (RS)",
            "jumpoint": "<jumpoint id=>",
            "jump_group": "<jump_group id= type=> (PA)",
            "external_key": "<external_key>",
            "custom_attributes": "<custom_attributes><custom_attribute>",
            "session_chat_view_url": "<session_chat_view_url>",
            "session_chat_download_url": "<session_chat_download_url>",
            "session_recording_view_url": "<session_recording_view_url>",
            "session_recording_download_url": "<session_recording_download_url>",
            "show_my_screen_recordings": "<show_my_screen_recordings><show_my_screen_recording>",
            "command_shell_recordings": "<command_shell_recordings><command_shell_recording>",
            "file_transfer_count": "<file_transfer_count>",
            "file_move_count": "<file_move_count>",
            "file_delete_count": "<file_delete_count>",
            "primary_customer": "<primary_customer gsnumber=>",
            "primary_rep": "<primary_rep gsnumber= id=>",
            "primary_team": "<primary_team id=> (RS)",
            "customers": "<customer_list><customer> (RS customers, PA endpoints), or "
            "<attendee_list><attendee> (presentations)",
            "representatives": "<rep_list><representative> (RS representatives, PA users, "
            "presenters)",
            "teams": "<team_list><team> (RS)",
            "customer_surveys": "<cust_survey_list><cust_exit_survey>",
            "rep_surveys": "<rep_survey_list><rep_exit_survey>",
            "events": "<session_details><event>",
            "unconverted": "btic's own: each value it could not convert, as "
            "`<element attribute>='text'` (the field is None; the XML keeps the text)",
        },
    ),
    "Event": (
        "<session_details><event>",
        {
            "timestamp": "@timestamp (required)",
            "event_type": "@event_type",
            "performed_by": "<performed_by>",
            "destination": "<destination>",
            "body": "<body>, or <encoded_body> decoded (base64)",
            "body_encoded": "btic's own: True when `body` came from <encoded_body>",
            "filename": "<filename>",
            "filesize": "<filesize>",
            "files": "<files><file>",
            "data": "<data><value>",
            "system_information": "<system_information><category>",
        },
    ),
    "Entity": (
        "<performed_by> / <destination>",
        {
            "gsnumber": "@gsnumber",
            "type": "@type: `system`, `customer`, `representative`, `attendee` (RS); "
            "`endpoint`, `user` (PA)",
            "name": "the element's text",
        },
    ),
    "EventValue": ("<data><value>", {"name": "@name", "value": "@value"}),
    "TransferredFile": ("<files><file>", {"name": "the element's text", "size": "@size"}),
    "SystemInfoCategory": (
        "<system_information><category>",
        {
            "name": "@name",
            "fields": "<description><field>",
            "rows": "<data><row><field>",
        },
    ),
    "Customer": (
        "<customer_list><customer> / <attendee_list><attendee>",
        {
            "gsnumber": "@gsnumber",
            "username": "<username>",
            "public_ip": "<public_ip>",
            "private_ip": "<private_ip>",
            "hostname": "<hostname>",
            "os": "<os>",
            "primary_cust": "<primary_cust> (1 or 0)",
            "rpat_support": "<rpat_support> (1 or 0)",
            "info": "<info>",
        },
    ),
    "CustomerInfo": (
        "<customer><info>",
        {
            "name": "<name>",
            "company": "<company>",
            "company_code": "<company_code>",
            "issue": "<issue>",
            "details": "<details>",
        },
    ),
    "Representative": (
        "<rep_list><representative>",
        {
            "gsnumber": "@gsnumber",
            "id": "@id",
            "username": "<username>",
            "display_name": "<display_name> (deprecated), else <private_display_name>",
            "public_display_name": "<public_display_name>",
            "private_display_name": "<private_display_name>, else <display_name>",
            "display_number": "<display_number>",
            "public_ip": "<public_ip>",
            "private_ip": "<private_ip>",
            "hostname": "<hostname>",
            "os": "<os>",
            "session_owner": "<session_owner> (1 or 0); without it, a presentation's "
            "presenter or the session's primary representative",
            "primary_rep": "<primary_rep> (1 or 0); without it (PA, presentations), "
            "whether the session's <primary_rep> names this one (gsnumber, id)",
            "seconds_involved": "<seconds_involved>",
            "invited": "<invited> (1)",
        },
    ),
    "Team": (
        "<team_list><team>",
        {"id": "@id", "name": "the element's text", "primary_team": "@primary_team (1 or 0)"},
    ),
    "CustomAttribute": (
        "<custom_attributes><custom_attribute>",
        {"code_name": "@code_name", "display_name": "@display_name", "value": "its text"},
    ),
    "RecordingLink": (
        "<command_shell_recording> / <show_my_screen_recording>",
        {
            "instance": "@instance, as the report numbers it",
            "download_url": "<download_url>",
            "view_url": "<view_url>",
        },
    ),
    "NamedRef": (
        "<public_site> / <jumpoint> / <primary_team>",
        {"id": "@id", "name": "the element's text"},
    ),
    "JumpGroup": (
        "<jump_group>",
        {"id": "@id", "type": "@type (`shared`, `personal`)", "name": "the element's text"},
    ),
    "PrimaryParty": (
        "<primary_customer> / <primary_rep>",
        {"gsnumber": "@gsnumber", "id": "@id", "name": "the element's text"},
    ),
    "ExitSurvey": (
        "<cust_exit_survey> / <rep_exit_survey>",
        {
            "kind": "`customer` or `representative`, from the list it is in",
            "questions": "<question_list><question>",
        },
    ),
    "SurveyQuestion": (
        "<question_list><question>",
        {
            "id": "@id",
            "name": "<name>",
            "type": "<type>",
            "label": "<label>",
            "report_header": "<report_header>",
            "answers": "<answer_list><answer>",
        },
    ),
}


def models() -> dict[str, type[BaseModel]]:
    """Every model of :mod:`btic.appliance.model`, by name."""
    return {
        name: value
        for name, value in vars(model).items()
        if inspect.isclass(value)
        and issubclass(value, BaseModel)
        and value.__module__ == model.__name__
        and not name.startswith("_")
    }


def _type(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = re.sub(r"\b(?:btic\.appliance\.model|datetime|typing)\.", "", text)
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """Elements and attributes as code, so Markdown does not take them for HTML."""
    return re.sub(r"((?:<[a-z_ =]+>)+|@\w+)", r"`\1`", text)


def reference_markdown() -> str:
    """The field reference, as ``docs/session-fields.md`` holds it."""
    found = models()
    lines = [
        "# The `Session` model, field by field",
        "",
        "What `on_session_xml` receives as `session`: every field of `btic.Session` and",
        "of the models in it (all exported from `btic`), its type, and where in the",
        "session report it comes from. Elements the appliance leaves out are `None`",
        "(or empty), never guessed. Generated from `core/btic/appliance/reference.py`;",
        "a test keeps it in step with the models.",
        "",
    ]
    for name, (element, sources) in SOURCES.items():
        fields = found[name].model_fields
        summary = (inspect.getdoc(found[name]) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"## `{name}`", "", f"From {_code(element)}. {summary}".rstrip(), ""]
        lines += ["| field | type | from |", "|---|---|---|"]
        for field, info in fields.items():
            source = _code(sources[field])
            lines.append(f"| `{field}` | `{_type(info.annotation)}` | {source} |")
        lines.append("")
    return "\n".join(lines)
