"""XML the simulated appliance answers with, element by element as the API
guides describe ``/session_list/session``, ``/session_summary_list``,
``/api_information`` and ``/health_check``.

Built as strings (escaped) rather than trees: reports of 100,000 sessions are
rendered as a stream and never held whole.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from xml.sax.saxutils import escape, quoteattr

from btic.sim.data import (
    COMPANIES,
    CUSTOM_ATTRIBUTES,
    CUSTOMERS,
    JUMP_GROUPS,
    JUMPOINTS,
    OPERATING_SYSTEMS,
    PUBLIC_SITES,
    REPRESENTATIVES,
    TEAMS,
    SimDataset,
    SimSession,
)
from btic.sim.events import session_events, text

REPORTING_NS = {
    "rs": "https://www.beyondtrust.com/namespaces/API/reporting",
    "pa": "https://www.bomgar.com/namespaces/API/reporting",
}
COMMAND_NS = {
    "rs": "https://www.beyondtrust.com/namespaces/API/command",
    "pa": "https://www.bomgar.com/namespaces/API/command",
}

NO_DATA_MESSAGES = {
    "en": "No {what} report information matching your chosen criteria is available.",
    "de": "Es sind keine {what}-Berichtsinformationen verfügbar, die Ihren Kriterien entsprechen.",
    "fr": "Aucune information de rapport {what} correspondant à vos critères n'est disponible.",
    "es": "No hay información de informes de {what} que coincida con los criterios elegidos.",
    "ja": "選択した条件に一致する{what}レポート情報はありません。",
}
EXPIRED_MESSAGE = "This recording has expired and can no longer be viewed or downloaded."


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def error_document(product: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<error xmlns="{REPORTING_NS[product]}">'
        f"{escape(message)}</error>\n"
    ).encode()


def no_data_document(product: str, report: str, language: str) -> bytes:
    what = {"support": "Support", "access": "Access Session", "presentation": "Presentation"}[
        report
    ]
    template = NO_DATA_MESSAGES.get(language, NO_DATA_MESSAGES["en"])
    return error_document(product, template.format(what=what))


def listing_document(product: str, report: str, sessions: Iterable[SimSession]) -> Iterator[bytes]:
    """A ``...Listing`` answer: ``session_summary_list`` for support and access
    sessions; ``presentation_summary_list`` of attribute-only elements for
    presentations (the RS guide's PresentationSessionListing section)."""
    element = "presentation_summary" if report == "presentation" else "session_summary"
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{element}_list xmlns="{REPORTING_NS[product]}">\n'
    ).encode()
    for s in sessions:
        attributes = f'lsid="{s.lsid}" has_recording="{int(s.has_recording)}"'
        if element == "presentation_summary":
            yield f"<{element} {attributes} />\n".encode()
            continue
        key = f" external_key={quoteattr(s.external_key)}" if s.external_key else ""
        yield f"<{element} {attributes}{key}><lseq>{s.lseq}</lseq></{element}>\n".encode()
    yield f"</{element}_list>\n".encode()


def sessions_document(
    dataset: SimDataset, sessions: Iterable[SimSession], now: float, base_url: str
) -> Iterator[bytes]:
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n<session_list '
        f'xmlns="{REPORTING_NS[dataset.product]}">\n'
    ).encode()
    for s in sessions:
        yield render_session(dataset, s, now, base_url).encode()
    yield b"</session_list>\n"


def render_session(dataset: SimDataset, s: SimSession, now: float, base_url: str) -> str:
    """One ``<session>`` element; deterministic for (seed, index, closed-or-not)."""
    rng = random.Random(f"{dataset.seed}:{s.index}:report")
    closed = s.closed_at(now)
    presentation = s.report == "presentation"
    pa = dataset.product == "pa"
    out: list[str] = [f'<session lsid="{s.lsid}">']
    out.append(text("session_type", "presentation" if presentation else "support"))
    out.append(text("lseq", s.lseq))
    out.append(text("start_time", iso(s.start), timestamp=s.start))
    if closed:
        out.append(text("end_time", iso(s.end), timestamp=s.end))
        out.append(text("duration", hms(s.end - s.start)))
    else:
        out.append("<end_time></end_time>")
        out.append(text("duration", hms(int(now) - s.start)))
    if not presentation:
        if not pa:
            site_id, site_name = PUBLIC_SITES[s.site_id - 1]
            out.append(text("public_site", site_name, id=site_id))
        if pa or s.index % 2 == 0:
            jid, jname = JUMPOINTS[s.index % len(JUMPOINTS)]
            out.append(text("jumpoint", jname, id=jid))
        if pa:
            gid, gtype, gname = JUMP_GROUPS[s.index % len(JUMP_GROUPS)]
            out.append(text("jump_group", gname, type=gtype, id=gid))
        if s.external_key:
            out.append(text("external_key", s.external_key))
        out.append("<custom_attributes>")
        for code, display in CUSTOM_ATTRIBUTES:
            value = (
                f"CC-{s.index % 17}"
                if code == "cost_center"
                else rng.choice(["ServiceNow", "Jira", ""])
            )
            out.append(text("custom_attribute", value, display_name=display, code_name=code))
        out.append("</custom_attributes>")
    recordings_visible = closed
    query = f"{base_url}/api/reporting?generate_report="
    if closed:
        out.append(
            text("session_chat_view_url", f"{base_url}/session_download.ns?lsid={s.lsid}&view=1")
        )
        out.append(
            text(
                "session_chat_download_url",
                f"{base_url}/session_download.ns?lsid={s.lsid}&dl_action=chat",
            )
        )
    if recordings_visible and s.has_recording:
        report = (
            "PresentationSessionRecording"
            if presentation
            else ("AccessSessionRecording" if pa else "SupportSessionRecording")
        )
        out.append(
            text(
                "session_recording_view_url",
                f"{base_url}/session_download.ns?lsid={s.lsid}&view=1&dl_action=video",
            )
        )
        out.append(text("session_recording_download_url", f"{query}{report}&lsid={s.lsid}"))
    if recordings_visible:
        out.extend(
            _recording_links(
                "show_my_screen_recording",
                "ShowMyScreenRecording",
                "sms",
                s.lsid,
                s.sms_instances,
                0,
                query,
                base_url,
                dataset.instance_in_urls,
            )
        )
        out.extend(
            _recording_links(
                "command_shell_recording",
                "CommandShellRecording",
                "shell",
                s.lsid,
                s.shell_instances,
                dataset.shell_report_from,
                query,
                base_url,
                dataset.instance_in_urls,
            )
        )

    reps = [r for r in REPRESENTATIVES if r[0] in s.rep_ids]
    customer_gs = 100 + s.index % 50
    rep_gs = {r[0]: 200 + r[0] for r in reps}
    customer = CUSTOMERS[s.index % len(CUSTOMERS)]
    hostname = f"WS-{s.index:05d}" if not pa else f"srv-{s.index % 40:02d}.corp.example"
    os_name = OPERATING_SYSTEMS[s.index % len(OPERATING_SYSTEMS)]
    if not presentation:
        out.append(text("file_transfer_count", s.index % 3))
        out.append(text("file_move_count", s.index % 2))
        out.append(text("file_delete_count", int(s.index % 4 == 0)))
        out.append(text("primary_customer", hostname if pa else customer, gsnumber=customer_gs))
        owner = reps[-1]
        out.append(text("primary_rep", owner[2], gsnumber=rep_gs[owner[0]], id=owner[0]))
        if s.team_ids and not pa:
            tid, tname = TEAMS[s.team_ids[-1] - 1]
            out.append(text("primary_team", tname, id=tid))
        out.append("<customer_list>")
        out.append(f'<customer gsnumber="{customer_gs}">')
        out.append(text("username", hostname if pa else customer))
        out.append(text("public_ip", f"203.0.113.{s.index % 250 + 1}"))
        out.append(text("private_ip", f"10.0.{s.index % 250}.{s.index % 200 + 10}"))
        out.append(text("hostname", hostname))
        out.append(text("os", os_name))
        if not pa:
            out.append(text("primary_cust", 1))
            out.append("<info>")
            out.append(text("name", customer))
            out.append(text("company", COMPANIES[s.index % len(COMPANIES)]))
            out.append(text("company_code", f"C{s.index % 90 + 10}"))
            out.append(text("issue", 1 + s.index % 4))
            out.append(
                text(
                    "details",
                    rng.choice(
                        [
                            "Printer offline",
                            "VPN drops every hour",
                            "Needs Office 365 activation",
                            "Disk full <C:>",
                        ]
                    ),
                )
            )
            out.append("</info>")
        out.append("</customer>")
        out.append("</customer_list>")
    else:
        # The RS guide's /attendee_list/attendee: gsnumber, username and public_ip only.
        out.append("<attendee_list>")
        for a in range(2):
            out.append(f'<attendee gsnumber="{customer_gs + a}">')
            out.append(text("username", CUSTOMERS[(s.index + a) % len(CUSTOMERS)]))
            out.append(text("public_ip", f"198.51.100.{a + 1}"))
            out.append("</attendee>")
        out.append("</attendee_list>")
    out.append("<rep_list>")
    for position, (rid, username, private, public, number) in enumerate(reps):
        out.append(f'<representative gsnumber="{rep_gs[rid]}" id="{rid}">')
        out.append(text("username", username))
        if not presentation:  # a presenter has only the two display names
            out.append(text("display_name", private))
        if not pa:
            out.append(text("public_display_name", public))
            out.append(text("private_display_name", private))
            if not presentation:
                out.append(text("display_number", number))
        out.append(text("public_ip", f"198.51.100.{rid + 10}"))
        out.append(text("private_ip", f"10.10.0.{rid + 10}"))
        out.append(text("hostname", f"REP-{username.upper()}"))
        out.append(text("os", "Windows 11 Enterprise (x64)"))
        if not presentation:
            out.append(text("session_owner", int(position == len(reps) - 1)))
            if not pa:
                out.append(text("primary_rep", int(position == len(reps) - 1)))
        out.append(text("seconds_involved", max(1, (s.end - s.start) // (position + 1))))
        if position == 1 and s.index % 8 == 0 and not presentation:
            out.append(text("invited", 1))
        out.append("</representative>")
    out.append("</rep_list>")
    if not presentation and not pa:
        out.append("<team_list>")
        for tid in s.team_ids:
            tname = TEAMS[tid - 1][1]
            out.append(text("team", tname, id=tid, primary_team=int(tid == s.team_ids[-1])))
        out.append("</team_list>")
        if closed and s.index % 3 == 2:
            out.append("<cust_survey_list><cust_exit_survey>")
            out.append(
                '<question_list><question id="1">'
                + text("name", "satisfaction")
                + text("type", "radio")
                + text("label", "How satisfied were you?")
                + text("report_header", "Satisfaction")
                + "<answer_list>"
                + text("answer", rng.choice(["5", "4", "3"]))
                + "</answer_list></question>"
                + '<question id="2">'
                + text("name", "comments")
                + text("type", "textarea")
                + text("label", "Comments")
                + text("report_header", "Comments")
                + "<answer_list>"
                + text("answer", "Quick & helpful")
                + "</answer_list></question></question_list>"
            )
            out.append("</cust_exit_survey></cust_survey_list>")
        if closed and s.index % 4 == 1:
            out.append("<rep_survey_list><rep_exit_survey>")
            out.append(
                '<question_list><question id="3">'
                + text("name", "resolved")
                + text("type", "checkbox")
                + text("label", "Resolved?")
                + text("report_header", "Resolved")
                + "<answer_list>"
                + text("answer", "yes")
                + text("answer", "follow-up")
                + "</answer_list></question></question_list>"
            )
            out.append("</rep_exit_survey></rep_survey_list>")
    out.append("<session_details>")
    out.extend(
        session_events(
            dataset, s, rng, reps, rep_gs, customer, customer_gs, hostname, os_name, closed, now
        )
    )
    out.append("</session_details>")
    out.append("</session>\n")
    return "".join(out)


def _recording_links(
    element: str,
    report: str,
    view: str,
    lsid: str,
    count: int,
    first_number: int,
    query: str,
    base_url: str,
    instance_in_url: bool,
) -> list[str]:
    """``<{element}s>`` with one ``<{element} instance=...>`` per recording,
    numbered from ``first_number``; the API numbers them from 0."""
    if not count:
        return []
    links = [f"<{element}s>"]
    for i in range(count):
        links.append(
            f'<{element} instance="{i + first_number}">'
            + text(
                "download_url",
                f"{query}{report}&lsid={lsid}" + (f"&instance={i}" if instance_in_url else ""),
            )
            + text("view_url", f"{base_url}/session_download.ns?lsid={lsid}&{view}={i}")
            + f"</{element}>"
        )
    links.append(f"</{element}s>")
    return links


def api_info_document(product: str, timestamp: int, permissions: dict[str, str]) -> bytes:
    perms = "".join(
        f'<permission name="{k}">{escape(v)}</permission>' for k, v in sorted(permissions.items())
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<api_information xmlns="{COMMAND_NS[product]}">'
        f"<api_version>{'1.21.0' if product == 'rs' else '1.16.0'}</api_version>"
        # The PA guide's get_api_info has no company_name.
        + ("<company_name>simulated</company_name>" if product == "rs" else "")
        + f"<timestamp>{timestamp}</timestamp>"
        f"<permissions>{perms}</permissions></api_information>\n"
    ).encode()


def health_document(product: str, host: str, timestamp: int) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<health_check xmlns="{COMMAND_NS[product]}">'
        f'<appliance id="00000000-0000-4000-8000-000000000001">{escape(host)}</appliance>'
        "<version>24.1.2 "
        "(simulated)</version><success>1</success><failover_role>none</failover_role>"
        f'<last_data_sync_time ts="{timestamp}">{iso(timestamp)}</last_data_sync_time>'
        f"<last_data_sync_status>none</last_data_sync_status></health_check>\n"
    ).encode()
