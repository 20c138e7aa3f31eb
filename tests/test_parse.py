"""The report parser: every element of the guides, any namespace, hostile XML."""

from __future__ import annotations

import base64
import io
import re
import socket
import threading
import time
from datetime import datetime, timezone

import pytest
from lxml import etree

from btic.appliance import parse
from btic.appliance.xmlnames import local
from btic.errors import ReportError

NAMESPACES = [
    "https://www.beyondtrust.com/namespaces/API/reporting",
    "http://www.bomgar.com/namespaces/API/reporting",
    "http://www.beyondtrust.com/sra/namespaces/API/reporting",
    None,
]

RS_SESSION = """
<session lsid="c69a8e10bea9428f816cfababe9815fe">
  <session_type>support</session_type>
  <lseq>42</lseq>
  <start_time timestamp="1475308800">2016-10-01T08:00:00+00:00</start_time>
  <end_time timestamp="1475310600">2016-10-01T08:30:00+00:00</end_time>
  <duration>00:30:00</duration>
  <public_site id="1">Default</public_site>
  <jumpoint id="3">London</jumpoint>
  <external_key>INC-7 &amp; co</external_key>
  <custom_attributes>
    <custom_attribute display_name="Cost Center" code_name="cost_center">CC-9</custom_attribute>
  </custom_attributes>
  <session_chat_view_url>https://s/chat?v</session_chat_view_url>
  <session_chat_download_url>https://s/chat?d</session_chat_download_url>
  <session_recording_view_url>https://s/rec?v</session_recording_view_url>
  <session_recording_download_url>https://s/rec?d</session_recording_download_url>
  <show_my_screen_recordings>
    <show_my_screen_recording instance="0"><download_url>https://s/sms0</download_url><view_url>https://s/smsv0</view_url></show_my_screen_recording>
  </show_my_screen_recordings>
  <command_shell_recordings>
    <command_shell_recording instance="1"><download_url>https://s/cs?instance=0</download_url><view_url>https://s/csv</view_url></command_shell_recording>
    <command_shell_recording instance="2"><download_url>https://s/cs?instance=1</download_url><view_url>https://s/csv1</view_url></command_shell_recording>
  </command_shell_recordings>
  <file_transfer_count>3</file_transfer_count>
  <file_move_count>1</file_move_count>
  <file_delete_count>2</file_delete_count>
  <primary_customer gsnumber="11">Peter</primary_customer>
  <primary_rep gsnumber="22" id="5">Jane Doe</primary_rep>
  <primary_team id="2">Tier 2</primary_team>
  <customer_list>
    <customer gsnumber="11">
      <username>Peter</username><public_ip>203.0.113.5</public_ip><private_ip>10.0.0.5</private_ip>
      <hostname>WS-1</hostname><os>Windows 11</os><primary_cust>1</primary_cust>
      <info><name>Peter P</name><company>Example</company><company_code>EX1</company_code><issue>4</issue><details>Printer</details></info>
    </customer>
  </customer_list>
  <rep_list>
    <representative gsnumber="22" id="5">
      <username>jdoe</username><display_name>Jane Doe</display_name><public_display_name>Jane</public_display_name>
      <private_display_name>Jane Doe</private_display_name><display_number>7</display_number>
      <public_ip>198.51.100.1</public_ip><private_ip>10.1.1.1</private_ip><hostname>REP1</hostname><os>Windows</os>
      <session_owner>1</session_owner><primary_rep>1</primary_rep><seconds_involved>1800</seconds_involved><invited>1</invited>
    </representative>
    <representative gsnumber="23" id="6">
      <username>asmith</username><display_name>Alex</display_name><session_owner>0</session_owner>
      <primary_rep>0</primary_rep><seconds_involved>60</seconds_involved>
    </representative>
  </rep_list>
  <team_list>
    <team id="1" primary_team="0">Tier 1</team>
    <team id="2" primary_team="1">Tier 2</team>
  </team_list>
  <cust_survey_list><cust_exit_survey><question_list>
    <question id="9"><name>sat</name><type>radio</type><label>Satisfied?</label><report_header>Sat</report_header>
      <answer_list><answer>5</answer></answer_list></question>
  </question_list></cust_exit_survey></cust_survey_list>
  <rep_survey_list><rep_exit_survey><question_list>
    <question id="10"><name>res</name><type>checkbox</type><label>Resolved</label><report_header>Res</report_header>
      <answer_list><answer>yes</answer><answer>later</answer></answer_list></question>
  </question_list></rep_exit_survey></rep_survey_list>
  <session_details>
    <event timestamp="1475308800" event_type="Session Start"><performed_by type="system">System</performed_by></event>
    <event timestamp="1475308860" event_type="Conference Member Added">
      <performed_by gsnumber="22" type="representative">Jane Doe</performed_by>
      <data><value name="username" value="jdoe" /><value name="user_id" value="5" /></data>
    </event>
    <event timestamp="1475308900" event_type="Chat Message">
      <performed_by gsnumber="11" type="customer">Peter</performed_by>
      <destination gsnumber="22" type="representative">Jane Doe</destination>
      <body>Hi &lt;there&gt;</body>
    </event>
    <event timestamp="1475308901" event_type="Chat Message">
      <performed_by gsnumber="11" type="customer">Peter</performed_by>
      <encoded_body>{encoded}</encoded_body>
    </event>
    <event timestamp="1475308950" event_type="File Upload">
      <performed_by gsnumber="22" type="representative">Jane Doe</performed_by>
      <filename>a.zip</filename><filesize>1234</filesize>
      <files><file size="1234">a.zip</file></files>
    </event>
    <event timestamp="1475308960" event_type="System Information Retrieved">
      <performed_by gsnumber="22" type="representative">Jane Doe</performed_by>
      <system_information>
        <category name="Drives">
          <description><field>Drive</field><field>Type</field><field>Percent Used</field></description>
          <data><row><field>C:\\</field><field>Local Disk</field><field>60%</field></row>
                <row><field>D:\\</field><field>CD</field><field>0%</field></row></data>
        </category>
      </system_information>
    </event>
  </session_details>
</session>
""".replace("{encoded}", base64.b64encode("bell \x07 and ☃".encode()).decode())


def document(body: str, namespace: str | None, root: str = "session_list") -> bytes:
    ns = f' xmlns="{namespace}"' if namespace else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{ns}>{body}</{root}>'.encode()


def sessions(data: bytes, product="rs", report="support") -> list:
    return list(
        parse.iter_sessions(
            io.BytesIO(data), product=product, report=report, host="support.example.com"
        )
    )


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_element_of_an_rs_support_session(namespace):
    [(s, xml)] = sessions(document(RS_SESSION, namespace))
    utc = timezone.utc
    assert (s.product, s.report, s.host, s.lsid) == (
        "rs",
        "support",
        "support.example.com",
        "c69a8e10bea9428f816cfababe9815fe",
    )
    assert s.session_type == "support" and s.lseq == 42
    assert s.start_time == datetime(2016, 10, 1, 8, 0, tzinfo=utc)
    assert s.end_time == datetime(2016, 10, 1, 8, 30, tzinfo=utc)
    assert s.duration == "00:30:00"
    assert (s.public_site.id, s.public_site.name) == (1, "Default")
    assert (s.jumpoint.id, s.jumpoint.name) == (3, "London")
    assert s.external_key == "INC-7 & co"
    assert [(a.code_name, a.display_name, a.value) for a in s.custom_attributes] == [
        ("cost_center", "Cost Center", "CC-9")
    ]
    assert (s.session_chat_view_url, s.session_chat_download_url) == (
        "https://s/chat?v",
        "https://s/chat?d",
    )
    assert (s.session_recording_view_url, s.session_recording_download_url) == (
        "https://s/rec?v",
        "https://s/rec?d",
    )
    assert s.has_recording
    assert [(r.instance, r.download_url, r.view_url) for r in s.show_my_screen_recordings] == [
        (0, "https://s/sms0", "https://s/smsv0")
    ]
    assert [r.instance for r in s.command_shell_recordings] == [1, 2]
    assert s.command_shell_recordings[1].download_url == "https://s/cs?instance=1"
    assert (s.file_transfer_count, s.file_move_count, s.file_delete_count) == (3, 1, 2)
    assert (s.primary_customer.gsnumber, s.primary_customer.name) == (11, "Peter")
    assert (s.primary_rep.gsnumber, s.primary_rep.id, s.primary_rep.name) == (22, 5, "Jane Doe")
    assert (s.primary_team.id, s.primary_team.name) == (2, "Tier 2")
    [c] = s.customers
    assert (
        c.gsnumber,
        c.username,
        c.public_ip,
        c.private_ip,
        c.hostname,
        c.os,
        c.primary_cust,
    ) == (11, "Peter", "203.0.113.5", "10.0.0.5", "WS-1", "Windows 11", True)
    assert c.info.model_dump() == {
        "name": "Peter P",
        "company": "Example",
        "company_code": "EX1",
        "issue": "4",
        "details": "Printer",
    }
    jane, alex = s.representatives
    assert (
        jane.gsnumber,
        jane.id,
        jane.username,
        jane.display_name,
        jane.public_display_name,
        jane.private_display_name,
        jane.display_number,
        jane.public_ip,
        jane.private_ip,
        jane.hostname,
        jane.os,
        jane.session_owner,
        jane.primary_rep,
        jane.seconds_involved,
        jane.invited,
    ) == (
        22,
        5,
        "jdoe",
        "Jane Doe",
        "Jane",
        "Jane Doe",
        7,
        "198.51.100.1",
        "10.1.1.1",
        "REP1",
        "Windows",
        True,
        True,
        1800,
        True,
    )
    assert alex.private_display_name == "Alex" and not alex.session_owner and not alex.invited
    assert [(t.id, t.name, t.primary_team) for t in s.teams] == [
        (1, "Tier 1", False),
        (2, "Tier 2", True),
    ]
    [survey] = s.customer_surveys
    assert survey.kind == "customer"
    assert survey.questions[0].model_dump() == {
        "id": 9,
        "name": "sat",
        "type": "radio",
        "label": "Satisfied?",
        "report_header": "Sat",
        "answers": ("5",),
    }
    assert s.rep_surveys[0].questions[0].answers == ("yes", "later")
    start, added, chat, encoded, upload, sysinfo = s.events
    assert start.event_type == "Session Start" and start.performed_by.type == "system"
    assert start.timestamp == datetime(2016, 10, 1, 8, 0, tzinfo=utc)
    assert [(v.name, v.value) for v in added.data] == [("username", "jdoe"), ("user_id", "5")]
    assert chat.body == "Hi <there>" and not chat.body_encoded
    assert (chat.destination.gsnumber, chat.destination.type, chat.destination.name) == (
        22,
        "representative",
        "Jane Doe",
    )
    assert encoded.body == "bell \x07 and ☃" and encoded.body_encoded
    assert (upload.filename, upload.filesize) == ("a.zip", 1234)
    assert [(f.name, f.size) for f in upload.files] == [("a.zip", 1234)]
    [drives] = sysinfo.system_information
    assert drives.name == "Drives" and drives.fields == ("Drive", "Type", "Percent Used")
    assert drives.rows == (("C:\\", "Local Disk", "60%"), ("D:\\", "CD", "0%"))
    # the standalone document: one <session>, its namespace kept, parseable alone
    root = etree.fromstring(xml)
    assert local(root.tag) == "session" and root.get("lsid") == s.lsid
    assert etree.QName(root).namespace == namespace


PA_SESSION = """
<session lsid="a5eaaa58591047b88556f944804227b0">
  <session_type>support</session_type><lseq>7</lseq>
  <start_time timestamp="1467360000">2016-07-01T08:00:00+00:00</start_time>
  <end_time></end_time><duration>00:10:00</duration>
  <jumpoint id="1">Frankfurt</jumpoint>
  <jump_group type="shared" id="1">Production</jump_group>
  <command_shell_recordings><command_shell_recording instance="0"><download_url>u</download_url><view_url>v</view_url></command_shell_recording></command_shell_recordings>
  <primary_customer gsnumber="3">srv-01</primary_customer>
  <primary_rep gsnumber="4" id="2">Kai</primary_rep>
  <customer_list><customer gsnumber="3"><username>srv-01</username><public_ip>1.2.3.4</public_ip>
    <private_ip>10.0.0.1</private_ip><hostname>srv-01</hostname><os>Linux</os></customer></customer_list>
  <rep_list><representative gsnumber="4" id="2"><username>kchen</username><display_name>Kai Chen</display_name>
    <session_owner>1</session_owner><seconds_involved>600</seconds_involved></representative>
    <representative gsnumber="5" id="3"><username>lee</username><display_name>Lee</display_name>
    <session_owner>0</session_owner><seconds_involved>60</seconds_involved></representative></rep_list>
  <session_details><event timestamp="1467360000" event_type="Credential Injection Attempt">
    <performed_by gsnumber="4" type="user">Kai Chen</performed_by></event></session_details>
</session>
"""


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_pa_access_session(namespace):
    [(s, _)] = sessions(document(PA_SESSION, namespace), product="pa", report="access")
    assert s.product == "pa" and s.report == "access" and s.session_type == "support"
    assert s.end_time is None and not s.is_closed
    assert (s.jump_group.id, s.jump_group.type, s.jump_group.name) == (1, "shared", "Production")
    assert s.customers[0].hostname == "srv-01" and s.customers[0].info is None
    rep, member = s.representatives
    assert rep.display_name == rep.private_display_name == "Kai Chen" and rep.session_owner
    # The PA guide's <representative> has no <primary_rep> child: the session's
    # <primary_rep gsnumber="4" id="2"> names the final owner.
    assert rep.primary_rep and not member.primary_rep and not member.session_owner
    assert s.events[0].performed_by.type == "user"
    assert s.command_shell_recordings[0].instance == 0


PRESENTATION = """
<session lsid="p1"><session_type>presentation</session_type><lseq>3</lseq>
  <start_time timestamp="1475308800">x</start_time><end_time timestamp="1475309800">y</end_time>
  <duration>00:16:40</duration>
  <session_recording_download_url>https://s/p</session_recording_download_url>
  <attendee_list><attendee gsnumber="8"><username>Ann</username><public_ip>1.1.1.1</public_ip>
    <private_ip>10.0.0.2</private_ip><hostname>L1</hostname><os>macOS</os></attendee>
    <attendee gsnumber="9"><username>Bob</username></attendee></attendee_list>
  <rep_list><representative gsnumber="1" id="1"><username>admin</username><public_display_name>A</public_display_name>
    <private_display_name>Admin</private_display_name><seconds_involved>1000</seconds_involved></representative></rep_list>
  <session_details><event timestamp="1475308801" event_type="Chat Message">
    <performed_by gsnumber="8" type="attendee">Ann</performed_by><body>hi</body></event></session_details>
</session>
"""


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_presentation(namespace):
    [(s, _)] = sessions(document(PRESENTATION, namespace), report="presentation")
    assert s.report == "presentation" and s.session_type == "presentation"
    assert [c.username for c in s.customers] == ["Ann", "Bob"]
    assert s.representatives[0].display_name == "Admin"
    # The presenter's element has neither flag: a lone presenter owns the presentation.
    assert s.representatives[0].session_owner and s.representatives[0].primary_rep
    assert s.events[0].performed_by.type == "attendee"


def test_listing():
    body = (
        '<session_summary lsid="a" has_recording="1" external_key="K"><lseq>5</lseq></session_summary>'
        '<session_summary lsid="b" has_recording="0"><lseq>6</lseq></session_summary>'
    )
    for namespace in NAMESPACES:
        entries = list(
            parse.iter_listing(io.BytesIO(document(body, namespace, "session_summary_list")))
        )
        assert [(e.lsid, e.lseq, e.has_recording, e.external_key) for e in entries] == [
            ("a", 5, True, "K"),
            ("b", 6, False, None),
        ]


# The RS API guide's PresentationSessionListing example, as printed (the namespace
# included), with its typo "presentation_summary_lsid=" read as the attribute it is.
GUIDE_PRESENTATION_LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<presentation_summary_list xmlns="http://support.example.com/namespaces/API/command">
  <presentation_summary lsid="6d547436638c41ad8f945388d2d465d2" has_recording="1" />
  <presentation_summary lsid="abc12345678901adff9d5388d2123456" has_recording="0" />
</presentation_summary_list>
"""


def test_the_guides_presentation_listing_example():
    entries = list(parse.iter_listing(io.BytesIO(GUIDE_PRESENTATION_LISTING)))
    assert [(e.lsid, e.has_recording) for e in entries] == [
        ("6d547436638c41ad8f945388d2d465d2", True),
        ("abc12345678901adff9d5388d2123456", False),
    ]


def test_the_guides_presentation_listing_example_through_the_client(tmp_path):
    """What the client makes of the guide's document, served over a real socket."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from btic.appliance.client import ApplianceClient, SiteConnection
    from btic.appliance.reports import Window, utc
    from btic.secrets import Secret

    class Appliance(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            if self.path.startswith("/oauth2/token"):
                body = b'{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}'
            else:
                body = GUIDE_PRESENTATION_LISTING
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Appliance)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = SiteConnection(
        host=f"127.0.0.1:{server.server_port}",
        client_id="id",
        client_secret=Secret("secret"),
        scheme="http",
        product="rs",
    )
    try:
        with ApplianceClient("guide", site, sleep=lambda _s: None) as client:
            entries = client.list_sessions("presentation", Window("end", utc(0)))
    finally:
        server.shutdown()
    assert [e.lsid for e in entries if e.has_recording] == ["6d547436638c41ad8f945388d2d465d2"]
    assert len(entries) == 2


@pytest.mark.parametrize(
    "message",
    [
        "No Support report information matching your chosen criteria is available.",
        "No Access Session report information matching your chosen criteria is available.",
        "Es sind keine Support-Berichtsinformationen verfügbar, die Ihren Kriterien entsprechen.",
        "Aucune information de rapport Support correspondant à vos critères n'est disponible.",
        "No hay información de informes de Support que coincida con los criterios elegidos.",
        "選択した条件に一致するSupportレポート情報はありません。",
    ],
)
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_no_matching_data_is_an_empty_result(message, namespace):
    ns = f' xmlns="{namespace}"' if namespace else ""
    data = f"<error{ns}>{message}</error>".encode()
    assert sessions(data) == []
    assert list(parse.iter_listing(io.BytesIO(data))) == []
    nested = document(f"<error>{message}</error>", namespace)
    assert sessions(nested) == []


@pytest.mark.parametrize(
    "message",
    [
        "Invalid duration: must be a non-negative integer.",
        "You do not have permission to access this report.",
        "This recording has expired and can no longer be viewed or downloaded.",
    ],
)
def test_other_errors_raise_with_the_appliance_text(message):
    with pytest.raises(ReportError, match=f"the appliance answered: {message}"):
        sessions(f'<error xmlns="{NAMESPACES[0]}">{message}</error>'.encode())


def test_a_site_can_teach_btic_its_no_data_phrase():
    data = b"<error>Geen gegevens gevonden voor deze periode.</error>"
    with pytest.raises(ReportError):
        sessions(data)
    classifier = parse.ErrorClassifier([r"geen gegevens gevonden"])
    assert (
        list(
            parse.iter_sessions(
                io.BytesIO(data), product="rs", report="support", host="h", classifier=classifier
            )
        )
        == []
    )


def test_an_external_entity_is_refused_without_reading_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE session_list [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        f'<session_list><session lsid="x"><external_key>&xxe;</external_key></session></session_list>'
    ).encode()
    with pytest.raises(ReportError, match="refused XML that declares a DTD") as info:
        sessions(data)
    assert "TOP-SECRET" not in str(info.value)
    path = tmp_path / "report.xml"
    path.write_bytes(data)
    with pytest.raises(ReportError, match="refused XML that declares a DTD"):
        list(parse.iter_sessions(path, product="rs", report="support", host="h"))
    with pytest.raises(ReportError, match="refused XML that declares a DTD"):
        parse.parse_document(data)


def test_an_external_dtd_is_never_fetched():
    hits = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]

    def accept():
        try:
            connection, _ = server.accept()
            hits.append(connection)
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    data = (
        f'<?xml version="1.0"?><!DOCTYPE session_list SYSTEM "http://127.0.0.1:{port}/evil.dtd">'
        f'<session_list><session lsid="x"/></session_list>'
    ).encode()
    with pytest.raises(ReportError):
        sessions(data)
    thread.join()
    server.close()
    assert hits == []


def test_a_billion_laughs_is_refused_quickly():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE session_list [{entities}]>'
        f'<session_list><session lsid="x"><external_key>&lol9;</external_key></session></session_list>'
    ).encode()
    started = time.perf_counter()
    with pytest.raises(ReportError):
        sessions(data)
    with pytest.raises(ReportError):
        parse.parse_document(data)
    assert time.perf_counter() - started < 5


def test_malformed_xml_is_a_report_error():
    with pytest.raises(ReportError, match="malformed XML"):
        sessions(document(RS_SESSION, None)[:-200])


def test_huge_text_and_absurd_depth_are_refused():
    huge = (
        b"<session_list><session lsid='x'><external_key>"
        + b"A" * (20 * 1024 * 1024)
        + b"</external_key></session></session_list>"
    )
    with pytest.raises(ReportError, match="Text node too long"):
        sessions(huge)
    deep = (
        b"<session_list><session lsid='x'>"
        + b"<a>" * 300
        + b"</a>" * 300
        + b"</session></session_list>"
    )
    with pytest.raises(ReportError, match="Excessive depth"):
        sessions(deep)


def test_a_doctype_pushed_past_the_head_by_a_long_comment_is_refused():
    padding = b"<!--" + b"x" * (70 * 1024) + b"-->\n"
    hostile = (
        b'<?xml version="1.0"?>\n'
        + padding
        + b'<!DOCTYPE session_list [<!ENTITY xxe "expanded">]>\n'
        + b'<session_list><session lsid="a"><external_key>&xxe;</external_key>'
        + b'<end_time timestamp="1700000000"/></session></session_list>'
    )
    with pytest.raises(ReportError, match="declares a DTD"):
        list(parse.iter_sessions(io.BytesIO(hostile), product="rs", report="support", host="h"))


def test_every_field_of_every_simulated_session_is_as_recorded():
    """The parser is tuned for speed; what it builds must not move by one field."""
    import gzip
    import json

    from parsed_golden import GOLDEN, parsed

    recorded = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    today = json.loads(json.dumps(parsed()))
    assert sorted(today) == sorted(recorded) == ["pa-access", "rs-presentation", "rs-support"]
    for report, sessions_recorded in recorded.items():
        assert len(today[report]) == len(sessions_recorded), report
        for now, then in zip(today[report], sessions_recorded, strict=True):
            assert now == then, (report, then["session"]["lsid"])


def _unreadable(data: bytes, product="rs", report="support") -> list[tuple[str, str]]:
    """(lsid, reason) of each session the parser refused, the others parsed on."""
    refused: list[tuple[str, str]] = []
    list(
        parse.iter_sessions(
            io.BytesIO(data),
            product=product,
            report=report,
            host="support.example.com",
            on_unreadable=lambda lsid, reason: refused.append((lsid, reason)),
        )
    )
    return refused


@pytest.mark.parametrize("lsid_attribute", ['lsid=""', 'lsid="  "', ""])
def test_a_session_without_an_lsid_is_refused(lsid_attribute):
    body = RS_SESSION.replace('lsid="c69a8e10bea9428f816cfababe9815fe"', lsid_attribute)
    assert _unreadable(document(body, NAMESPACES[0])) == [
        ("", "session (no lsid) cannot be read: the <session> has no lsid attribute")
    ]


@pytest.mark.parametrize(
    ("event_time", "named"),
    [
        ('timestamp="soon"', "<event> holds no readable time: 'soon'"),
        ('timestamp=""', "an <event event_type='Chat Message'> has no time"),
        ("", "an <event event_type='Chat Message'> has no time"),
    ],
)
def test_an_event_time_that_does_not_parse_fails_whoever_reads_the_events(event_time, named):
    """Never 1970-01-01: a made-up time would misplace the event in every archive.
    Events are built when first read: the session and its XML are whole (a file
    keeps the appliance's bytes), and a destination that reads the events (SQL)
    fails the item, naming the event."""
    body = PRESENTATION.replace('<event timestamp="1475308801"', f"<event {event_time}")
    ((session, xml),) = parse.iter_sessions(
        io.BytesIO(document(body, None)), product="rs", report="presentation", host="h"
    )
    assert session.lsid == "p1" and f"<event {event_time}".encode() in xml
    with pytest.raises(ValueError, match=re.escape(named)):
        list(session.events)


@pytest.mark.parametrize("element", ["start_time", "end_time"])
def test_a_session_time_whose_timestamp_does_not_parse_fails_the_session(element):
    body = (
        PRESENTATION.replace(f'<{element} timestamp="', f'<{element} timestamp="x')
        .replace(">x</start_time>", "></start_time>")
        .replace(">y</end_time>", "></end_time>")
    )
    [(lsid, reason)] = _unreadable(document(body, None), report="presentation")
    assert lsid == "p1" and f"<{element}> holds no readable time" in reason


def test_an_empty_end_time_is_a_session_in_progress_not_a_failure():
    # The guides: "This element will be empty for sessions which are still in progress".
    body = PRESENTATION.replace('<end_time timestamp="1475309800">y</end_time>', "<end_time/>")
    [(s, _)] = sessions(document(body, None), report="presentation")
    assert s.end_time is None


def test_a_value_that_cannot_be_converted_is_reported_and_kept_in_the_xml():
    body = (
        PA_SESSION.replace('<primary_rep gsnumber="4"', '<primary_rep gsnumber="four"')
        .replace('<representative gsnumber="5"', '<representative gsnumber="5x"')
        .replace(
            "<seconds_involved>600</seconds_involved>", "<seconds_involved>10m</seconds_involved>"
        )
    )
    [(s, xml)] = sessions(document(body, None), product="pa", report="access")
    assert s.primary_rep.gsnumber is None and s.representatives[0].seconds_involved is None
    assert s.unconverted == (
        "<primary_rep gsnumber>='four'",
        "<seconds_involved>='10m'",
        "<representative gsnumber>='5x'",
    )
    # matched by id, the identifier both still give
    assert [r.primary_rep for r in s.representatives] == [True, False]
    assert b'gsnumber="four"' in xml and b"<seconds_involved>10m</seconds_involved>" in xml


def test_an_unreadable_event_fails_only_the_destination_that_reads_events(tmp_path):
    """The file system keeps the appliance's bytes (its XML is whole); the SQL
    destination, which writes each event as a row, fails the item and says why."""
    import json
    from pathlib import Path

    from conftest import run_btic

    body = RS_SESSION.replace('<event timestamp="1475308900"', '<event timestamp="soon"')
    saved = tmp_path / "saved.xml"
    saved.write_bytes(document(body, NAMESPACES[0]))
    config = tmp_path / "btic.toml"
    config.write_text(
        f'[destinations.files]\nplugin = "filesystem"\ndirectory = "{tmp_path / "files"}"\n'
        f'[destinations.sql]\nplugin = "sqlserver"\nurl = "sqlite:///{tmp_path / "r.db"}"\n'
    )
    config.chmod(0o600)
    done = run_btic("import-xml", str(saved), "--dest", "files", "--dest", "sql", "--host",
                    "support.example.com", "--config", str(config), "--json")  # fmt: skip
    assert done.returncode == 1 and "no readable time: 'soon'" in done.output, done.output
    found = json.loads(run_btic("find", "--config", str(config), "--json").stdout)
    items = {i["destination"]: i for s in found["sessions"] for i in s["items"]}
    assert items["files"]["status"] == "delivered"
    assert b'timestamp="soon"' in Path(items["files"]["location"]).read_bytes()
    assert items["sql"]["status"] == "failed"
