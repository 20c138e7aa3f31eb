"""Session events as the guides list them: every type, each with plausible content.

The RS Integration Client guide's ``session_event`` table lists the types an
RS appliance reports (the RS API guide's ``event_type`` list is a subset, but
names the foreground-window event ``Session Foreground Window Changed``); the
PA API guide lists its own. A default ``btic sim`` run produces every one of
them: each session carries the common events (start, members, chat, files,
recordings, end) plus a rotating share of the rest.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

from btic.sim.data import SimDataset, SimSession

#: The RS IC guide's session_event types, and the API guide's name for one of them.
RS_EVENT_TYPES = (
    "Callback Button Deployed",
    "Callback Button Removed",
    "Chat Message",
    "Command Shell Session Started",
    "Conference Member Added",
    "Conference Member Departed",
    "Conference Member State Changed",
    "Conference Owner Changed",
    "Customer Exit Survey",
    "Directory Created",
    "External Key",
    "File Deleted",
    "File Download",
    "File Download Failed",
    "File Moved",
    "File Upload",
    "File Upload Failed",
    "Files Shared",
    "Foreground Window Changed",
    "Legal Agreement Response",
    "Registry Exported",
    "Registry Imported",
    "Registry Key Added",
    "Registry Key Deleted",
    "Registry Key Renamed",
    "Registry Value Added",
    "Registry Value Deleted",
    "Registry Value Modified",
    "Registry Value Renamed",
    "Remote Shell Session Started",
    "Representative Exit Survey",
    "Service Access Allowed",
    "Session Assigned",
    "Session Assignment Response",
    "Session End",
    "Session Foreground Window Changed",
    "Session Note Added",
    "Session Start",
    "Show My Screen Recording",
    "System Information Retrieved",
)

#: The PA API guide's event types.
PA_EVENT_TYPES = (
    "Chat Message",
    "Command Shell Session Started",
    "Conference Member Added",
    "Conference Member Departed",
    "Conference Member State Changed",
    "Conference Owner Changed",
    "Credential Injection Attempt",
    "Credential Injection Attempt Failed",
    "Directory Created",
    "File Deleted",
    "File Download",
    "File Download Failed",
    "File Moved",
    "File Upload",
    "File Upload Failed",
    "Registry Exported",
    "Registry Imported",
    "Registry Key Added",
    "Registry Key Deleted",
    "Registry Key Renamed",
    "Registry Value Added",
    "Registry Value Deleted",
    "Registry Value Modified",
    "Registry Value Renamed",
    "Screen Recording",
    "Screenshot Captured",
    "Service Access Allowed",
    "Session End",
    "Session Foreground Window Changed",
    "Session Start",
    "System Information Retrieved",
)

#: Produced for the sessions that call for them, not from the rotating share.
_COMMON = frozenset(
    {
        "Session Start",
        "Session End",
        "Conference Member Added",
        "System Information Retrieved",
        "Chat Message",
        "File Upload",
        "Command Shell Session Started",
        "Show My Screen Recording",
        "Registry Key Added",
        "Session Note Added",
        "Customer Exit Survey",
    }
)
#: Each session carries one in this many of the other types, in rotation.
_SHARE = 4


def text(name: str, value: object, **attrs: object) -> str:
    attributes = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)
    return f"<{name}{attributes}>{escape(str(value))}</{name}>"


def _party(tag: str, kind: str, gsnumber: int | None, name: str) -> str:
    return text(tag, name, gsnumber=gsnumber, type=kind)


def session_events(
    dataset: SimDataset,
    s: SimSession,
    rng: random.Random,
    reps: list[tuple[int, str, str, str, int]],
    rep_gs: dict[int, int],
    customer: str,
    customer_gs: int,
    hostname: str,
    os_name: str,
    closed: bool,
    now: float,
) -> Iterator[str]:
    pa = dataset.product == "pa"
    presentation = s.report == "presentation"
    cust_kind = "attendee" if presentation else ("endpoint" if pa else "customer")
    rep_kind = "user" if pa else "representative"
    owner = reps[-1]
    last = s.end if closed else int(now)
    span = max(1, last - s.start)
    moments = sorted(s.start + rng.randrange(span) for _ in range(8))

    def event(ts: int, kind: str, body: str) -> str:
        return f'<event timestamp="{ts}" event_type={quoteattr(kind)}>{body}</event>'

    system = _party("performed_by", "system", None, "System")
    yield event(s.start, "Session Start", system)
    for rid, username, private, _public, _number in reps:
        yield event(
            moments[0],
            "Conference Member Added",
            _party("performed_by", rep_kind, rep_gs[rid], private)
            + "<data>"
            + "".join(
                f"<value name={quoteattr(k)} value={quoteattr(str(v))} />"
                for k, v in (
                    ("name", private),
                    ("username", username),
                    ("private_ip", f"10.10.0.{rid + 10}"),
                    ("public_ip", f"198.51.100.{rid + 10}"),
                    ("hostname", f"REP-{username.upper()}"),
                    ("os", "Windows 11 Enterprise (x64)"),
                    ("support_teams", "Tier 1 Support"),
                    ("user_id", rid),
                )
            )
            + "</data>",
        )
    if not presentation:
        yield event(
            moments[1],
            "System Information Retrieved",
            _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
            + _party("destination", cust_kind, customer_gs, hostname if pa else customer)
            + "<system_information>"
            + '<category name="General"><description>'
            + text("field", "Computer Name")
            + text("field", "OS")
            + text("field", "Uptime")
            + "</description><data><row>"
            + text("field", hostname)
            + text("field", os_name)
            + text("field", f"{s.index % 30} days")
            + "</row></data></category>"
            + '<category name="Drives"><description>'
            + text("field", "Drive")
            + text("field", "Type")
            + text("field", "Percent Used")
            + "</description><data>"
            + "<row>"
            + text("field", "C:\\")
            + text("field", "Local Disk")
            + text("field", f"{s.index % 90 + 5}%")
            + "</row>"
            + "<row>"
            + text("field", "D:\\")
            + text("field", "Network Drive")
            + text("field", "12%")
            + "</row>"
            + "</data></category>"
            + "</system_information>",
        )
    yield event(
        moments[2],
        "Chat Message",
        _party("performed_by", cust_kind, customer_gs, customer)
        + _party("destination", rep_kind, rep_gs[owner[0]], owner[2])
        + text("body", f"Hello, I need help with ticket #{s.index} & it's <urgent>"),
    )
    if s.index % 4 == 2:
        raw = f"binary paste \x00\x07 from {customer}".encode()
        yield event(
            moments[3],
            "Chat Message",
            _party("performed_by", cust_kind, customer_gs, customer)
            + text("encoded_body", base64.b64encode(raw).decode()),
        )
    if not presentation and s.index % 3 != 2:
        name = f"diag-{s.index}.zip"
        size = 1000 + s.index * 13
        yield event(
            moments[4],
            "File Upload",
            _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
            + _party("destination", cust_kind, customer_gs, hostname if pa else customer)
            + text("filename", name)
            + text("filesize", size)
            + "<files>"
            + text("file", name, size=size)
            + "</files>",
        )
    for instance in range(s.shell_instances):
        yield event(
            moments[5],
            "Command Shell Session Started",
            _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
            + f'<data><value name="instance" value="{instance + dataset.shell_report_from}" />'
            + "</data>",
        )
    for instance in range(s.sms_instances):
        yield event(
            moments[5],
            "Show My Screen Recording",
            _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
            + f'<data><value name="instance" value="{instance}" /></data>',
        )
    if not presentation:
        yield event(
            moments[6],
            "Registry Key Added",
            _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
            + '<data><value name="key" value="HKLM\\Software\\Example" /></data>',
        )
        if not pa:
            yield event(
                moments[6],
                "Session Note Added",
                _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
                + text("body", "Customer confirmed the fix."),
            )
        rep = _party("performed_by", rep_kind, rep_gs[owner[0]], owner[2])
        to_customer = _party("destination", cust_kind, customer_gs, hostname if pa else customer)
        by_customer = _party("performed_by", cust_kind, customer_gs, customer)
        for kind in _catalogue_share(dataset.product, s.index):
            yield event(moments[7], kind, _payload(kind, s.index, rep, by_customer, to_customer))
    if closed:
        if not pa and not presentation and s.index % 3 == 2:
            yield event(
                s.end,
                "Customer Exit Survey",
                _party("performed_by", cust_kind, customer_gs, customer),
            )
        yield event(s.end, "Session End", system)


def _catalogue_share(product: str, index: int) -> list[str]:
    catalogue = PA_EVENT_TYPES if product == "pa" else RS_EVENT_TYPES
    rest = [kind for kind in catalogue if kind not in _COMMON]
    return [kind for position, kind in enumerate(rest) if position % _SHARE == index % _SHARE]


def _values(*pairs: tuple[str, object]) -> str:
    return (
        "<data>"
        + "".join(f"<value name={quoteattr(k)} value={quoteattr(str(v))} />" for k, v in pairs)
        + "</data>"
    )


def _payload(kind: str, index: int, rep: str, by_customer: str, to_customer: str) -> str:
    """performed_by, destination and details of one event of ``kind``."""
    path = f"C:\\Users\\support\\case-{index}"
    key = f"HKLM\\Software\\Example\\Case{index}"
    name = f"report-{index}.txt"
    if kind in ("Callback Button Deployed", "Callback Button Removed"):
        return rep + to_customer + _values(("name", "Support Button"), ("location", "desktop"))
    if kind == "Conference Member Departed":
        return rep + _values(("reason", "left"))
    if kind == "Conference Member State Changed":
        return rep + _values(("state", "view_only"))
    if kind == "Conference Owner Changed":
        return rep + _values(("new_owner", "admin"))
    if kind == "Directory Created":
        return rep + to_customer + text("filename", path)
    if kind == "External Key":
        return rep + _values(("external_key", f"INC{index:06d}"))
    if kind == "File Deleted":
        return rep + to_customer + text("filename", f"{path}\\{name}")
    if kind == "File Download":
        size = 2048 + index
        files = "<files>" + text("file", name, size=size) + "</files>"
        return rep + to_customer + text("filename", name) + text("filesize", size) + files
    if kind in ("File Download Failed", "File Upload Failed"):
        return rep + to_customer + text("filename", name) + _values(("reason", "Access denied"))
    if kind == "File Moved":
        return rep + to_customer + _values(("source", name), ("destination", f"{path}\\{name}"))
    if kind == "Files Shared":
        files = "".join(
            text("file", f"share-{index}-{n}.pdf", size=100 * (n + 1)) for n in range(2)
        )
        return rep + to_customer + f"<files>{files}</files>"
    if kind in ("Foreground Window Changed", "Session Foreground Window Changed"):
        return by_customer + _values(("title", f"Untitled - Notepad ({index})"))
    if kind == "Legal Agreement Response":
        return by_customer + _values(("response", "accepted"))
    if kind in ("Registry Exported", "Registry Imported"):
        return rep + to_customer + _values(("key", key), ("file", f"case-{index}.reg"))
    if kind in ("Registry Key Deleted", "Registry Key Renamed"):
        return rep + to_customer + _values(("key", key), ("new_name", f"Case{index}-old"))
    if kind.startswith("Registry Value"):
        return rep + to_customer + _values(("key", key), ("value", "Enabled"), ("data", index % 2))
    if kind == "Remote Shell Session Started":
        return rep + to_customer + _values(("shell", "ssh"), ("instance", 0))
    if kind == "Representative Exit Survey":
        return rep
    if kind == "Service Access Allowed":
        return by_customer + _values(("service", "Windows Update"))
    if kind == "Session Assigned":
        return _party("performed_by", "system", None, "System") + rep.replace(
            "<performed_by", "<destination"
        ).replace("</performed_by>", "</destination>")
    if kind == "Session Assignment Response":
        return rep + _values(("response", "accepted"))
    if kind in ("Credential Injection Attempt", "Credential Injection Attempt Failed"):
        values = [("credential", f"CORP\\svc-{index}")]
        if kind.endswith("Failed"):
            values.append(("reason", "The credential was rejected"))
        return rep + to_customer + _values(*values)
    if kind == "Screen Recording":
        return rep + _values(("instance", 0))
    if kind == "Screenshot Captured":
        return rep + to_customer + text("filename", f"screenshot-{index}.png")
    # A type with no details of its own: who did it is all the guide describes.
    return rep + text("body", kind)
