"""``btic serve``, the auditor's viewer, over real sockets: nothing without a login,
a lockout, hostile text inert, sessions read from the archive as the guides shape
them, items streamed with ranges, integrity, and the JSON API over each shipped
destination."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from conftest import run_btic
from hostile import report, session_xml
from serving import audit_events, logged_in, serving
from test_parse import RS_SESSION

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from btic.serve.auth import hash_password
from btic.serve.web import POLICY
from btic.sim import FrozenClock, SimulatedAppliance

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins" / "s3"))
from s3_server import moto_server

SCRIPT = '<script>document.title="pwned"</script>'
HOSTILE = SCRIPT + "\u202eevil"
#: The S3 destination's secret key: in no page and no answer.
SECRET = "s3cr3t-in-no-page"
#: Every route of the viewer, with parameters that name nothing.
ROUTES = [
    "/",
    "/api/sessions",
    "/sessions/s/l",
    "/api/sessions/s/l",
    "/sessions/s/l/items/archive/session",
    "/integrity",
    "/api/integrity",
]
USERS = (
    "[serve]\nlockout_failures = 3\n"
    f'[serve.users]\nauditor = "{hash_password("right horse")}"\n'
    f'dpo = "{hash_password("battery staple")}"\n'
)


def hostile_session(lsid: str) -> str:
    """A session of the RS guide's shape whose people, chat, file names and custom
    fields are hostile: markup, a javascript: link, a right-to-left override, a
    10,000-character name."""
    long_name = "A" * 10_000
    chat = [
        SCRIPT,
        "<a href=\"javascript:document.title='pwned'\">click</a>",
        "\u202etxt.exe",
        "<img src=x onerror=\"document.title='pwned'\">",
    ]
    events = "".join(
        f'<event timestamp="{1_699_999_500 + n}" event_type="Chat Message">'
        f'<performed_by gsnumber="7" type="representative">{escape(HOSTILE)}</performed_by>'
        f"<body>{escape(text)}</body></event>"
        for n, text in enumerate(chat)
    )
    events += (
        '<event timestamp="1699999600" event_type="File Upload">'
        f'<performed_by gsnumber="7" type="representative">{long_name}</performed_by>'
        f"<filename>{escape(SCRIPT)}.exe</filename><filesize>10</filesize>"
        f'<files><file size="10">{escape(SCRIPT)}.exe</file></files></event>'
    )
    extra = (
        "<custom_attributes><custom_attribute display_name="
        f'{quoteattr(SCRIPT)} code_name="x">{escape(HOSTILE)}</custom_attribute>'
        "</custom_attributes>"
        '<primary_rep gsnumber="7" id="12">Ada</primary_rep>'
        '<rep_list><representative gsnumber="7" id="12"><username>alovelace</username>'
        f"<display_name>{escape(HOSTILE)}</display_name>"
        "<session_owner>1</session_owner><primary_rep>1</primary_rep></representative></rep_list>"
        f"<session_details>{events}</session_details>"
    )
    return session_xml(lsid, extra=extra)


def guide_archive(tmp_path: Path) -> Path:
    """A file-system archive of the RS guide's example session, a hostile session and a
    plain one, imported as an administrator would; its configuration with users."""
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(RS_SESSION, hostile_session("case-1"), session_xml("other-2")))
    config = tmp_path / "btic.toml"
    config.write_text(
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n{USERS}'
    )
    config.chmod(0o600)
    imported = run_btic("import-xml", str(saved), "--dest", "archive", "--host",
                        "support.example.com", "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    return config


@pytest.fixture
def viewer(tmp_path: Path):
    with serving(guide_archive(tmp_path)) as url:
        yield url


def test_nothing_is_shown_without_a_login(viewer):
    with httpx.Client(base_url=viewer) as anonymous:
        for route in ROUTES:
            answer = anonymous.get(route, follow_redirects=False)
            if route.startswith("/api/") or "/items/" in route:
                assert answer.status_code == 401, route
            else:
                assert answer.status_code == 303 and answer.headers["location"] == "/login", route
            assert "case-1" not in answer.text
        for path in ("/../../etc/passwd", "/api/../../btic.toml", "/%2e%2e/state.db"):
            assert anonymous.get(path).status_code == 404, path
        # no route takes a method that writes (login and logout touch only the cookie)
        for route in ROUTES:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert anonymous.request(method, route).status_code == 405, (method, route)
        login = anonymous.get("/login")
        assert login.headers["content-security-policy"] == POLICY


def test_a_login_finds_sessions_and_hostile_names_stay_text(viewer):
    with httpx.Client(base_url=viewer) as client:
        wrong = client.post("/login", data={"name": "auditor", "password": "wrong"})
        assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
        done = client.post("/login", data={"name": "auditor", "password": "right horse"},
                           follow_redirects=False)  # fmt: skip
        assert done.status_code == 303
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        api = client.get("/api/sessions", params={"person": "alovelace"}).json()
        assert api["ok"] and [s["lsid"] for s in api["sessions"]] == ["case-1"]
        assert api["sessions"][0]["url"] == "/sessions/support.example.com/case-1"
        page = client.get("/", params={"person": "alovelace"})
        assert page.status_code == 200 and "case-1" in page.text
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert "\u202e" not in page.text and "\ufffd" in page.text  # no right-to-left trick
        assert page.headers["content-security-policy"] == POLICY
        bad = client.get("/api/sessions", params={"since": "last tuesday"})
        assert bad.status_code == 400 and "since" in bad.json()["problem"]
        client.post("/logout")
        assert client.get("/api/sessions").status_code == 401


def test_the_session_page_reads_the_guides_example_from_the_archive(viewer):
    lsid = "c69a8e10bea9428f816cfababe9815fe"
    with logged_in(viewer) as client:
        api = client.get(f"/api/sessions/support.example.com/{lsid}").json()
        assert api["report"]["read_from"] == "archive" and api["report"]["intact"] is True
        session = api["report"]["session"]
        assert [e["event_type"] for e in session["events"]] == [
            "Session Start", "Conference Member Added", "Chat Message", "Chat Message",
            "File Upload", "System Information Retrieved",
        ]  # fmt: skip
        assert session["events"][2]["body"] == "Hi <there>"
        page = client.get(f"/sessions/support.example.com/{lsid}")
        assert page.status_code == 200
        text = page.text
        # the transcript, the file moved, the participants, the custom field
        assert "Hi &lt;there&gt;" in text and "a.zip" in text and "1.2 KiB" in text
        assert "jdoe" in text and "Peter P" in text and "Cost Center" in text and "CC-9" in text
        assert "<details><summary>System information</summary>" in text and "Local Disk" in text
        assert "Its sha256 matches the ledger" in text
        # the raw XML, as archived, shown as text
        (report_item,) = [i for i in api["items"] if i["data_type"] == "session"]
        raw = client.get(report_item["url"])
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
        assert hashlib.sha256(raw.content).hexdigest() == report_item["sha256"]
        # the archived report changed behind the ledger's back: the page says so
        Path(report_item["location"]).write_bytes(raw.content.replace(b"Hi &lt;", b"Ho &lt;"))
        changed = client.get(f"/sessions/support.example.com/{lsid}")
        assert "does not match the ledger" in changed.text and "Ho &lt;there&gt;" in changed.text


def test_hostile_chat_file_names_and_custom_fields_stay_text(viewer):
    with logged_in(viewer) as client:
        page = client.get("/sessions/support.example.com/case-1")
    assert page.status_code == 200
    text = page.text
    assert "<script>" not in text and "<img" not in text and '<a href="javascript:' not in text
    assert text.count("&lt;script&gt;") >= 4 and "javascript:" in text  # shown, as text
    assert "\u202e" not in text
    assert "A" * 10_000 in text


def test_urls_that_name_nothing_in_the_archive_are_404(viewer):
    # encoded: a client removes literal dot segments before it sends a URL
    traversals = ["%2E%2E", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e", "..%5C..%5Cboot.ini",
                  "~root", "%00", "%2Fetc%2Fpasswd"]  # fmt: skip
    with logged_in(viewer) as client:
        for bad in traversals:
            for route in (
                f"/sessions/{bad}/case-1",
                f"/sessions/support.example.com/{bad}",
                f"/api/sessions/{bad}/case-1",
                f"/sessions/support.example.com/case-1/items/{bad}/session",
                f"/sessions/support.example.com/case-1/items/archive/{bad}",
                f"/sessions/support.example.com/case-1/items/archive/session?instance={bad}",
                f"/sessions/support.example.com/case-1/items/archive/session?instance=../{bad}",
            ):
                answer = client.get(route)
                assert answer.status_code == 404, route
                assert answer.url.raw_path.decode().split("?")[0] == route.split("?")[0], route
                assert "root:" not in answer.text and "sqlite" not in answer.text.lower(), route


def test_repeated_failures_lock_a_name_even_against_the_right_password(viewer):
    with httpx.Client(base_url=viewer) as client:
        for _ in range(3):
            client.post("/login", data={"name": "dpo", "password": "guess"})
        locked = client.post("/login", data={"name": "dpo", "password": "battery staple"})
        assert locked.status_code == 401 and "locked" in locked.text
        # another name is not locked by it
        other = client.post("/login", data={"name": "auditor", "password": "right horse"},
                            follow_redirects=False)  # fmt: skip
        assert other.status_code == 303


def test_the_login_cookie_is_secure_when_served_over_tls(tmp_path):
    with serving(guide_archive(tmp_path), https=True) as url, httpx.Client(base_url=url) as client:
        done = client.post("/login", data={"name": "auditor", "password": "right horse"},
                           follow_redirects=False)  # fmt: skip
    assert "secure" in done.headers["set-cookie"].lower()


def test_a_trusted_proxy_names_the_user_and_nobody_else_can(tmp_path):
    config = guide_archive(tmp_path)
    text = config.read_text().replace(
        "[serve]\n", '[serve]\ntrusted_proxies = ["127.0.0.1/32"]\nuser_header = "X-Auth-User"\n'
    )
    config.write_text(text)
    with serving(config) as url, httpx.Client(base_url=url) as client:
        named = client.get("/api/sessions", params={"lsid": "case-1"},
                           headers={"X-Auth-User": "oidc:erin"})  # fmt: skip
        assert named.status_code == 200 and named.json()["count"] == 1
        assert client.get("/api/sessions").status_code == 401  # no header: no user
    untrusted = text.replace('"127.0.0.1/32"', '"192.0.2.0/24"')
    config.write_text(untrusted)
    with serving(config) as url, httpx.Client(base_url=url) as client:
        ignored = client.get("/api/sessions", headers={"X-Auth-User": "oidc:erin"})
        assert ignored.status_code == 401


# -- an archive synced from the simulated appliance into all three shipped destinations --


@pytest.fixture(scope="module")
def three_archives(tmp_path_factory):
    """One sync into a directory, an S3 bucket and a SQL database, sharing a state
    database; a configuration naming each alone (the viewer reads only that one)."""
    tmp_path = tmp_path_factory.mktemp("three")
    with moto_server() as s3, SimulatedAppliance(
        "rs", sessions=6, seed=21, live_sessions=0, presentations=0, recording_size=300_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        bucket = s3.bucket("viewer")
        options = s3.options(bucket, secret_access_key=SECRET)
        site = sim.site_toml("sim").rstrip() + '\nfirst_run_since = "all"\n'
        destinations = {
            "archive": f'plugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n',
            "bucket": 'plugin = "s3"\n'
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items()),
            "sql": f'plugin = "sqlserver"\nurl = "sqlite:///{tmp_path / "reports.db"}"\n',
        }
        everything = tmp_path / "btic.toml"
        everything.write_text(
            site
            + "".join(f"[destinations.{name}]\n{body}" for name, body in destinations.items())
            + '[schedules.often]\nevery = "15m"\n'
            '[[schedules.often.transfers]]\nsite = "sim"\ndestinations = ["archive", "bucket"]\n'
            'data = ["session", "recording", "command_shell_recording"]\n'
            '[[schedules.often.transfers]]\nsite = "sim"\ndestinations = ["sql"]\n'
            'data = ["session"]\n' + USERS
        )
        everything.chmod(0o600)
        synced = run_btic("sync", "--all", "--config", str(everything))
        assert synced.returncode == 0, synced.output
        alone = {}
        for name, body in destinations.items():
            path = tmp_path / f"{name}.toml"
            path.write_text(f"{site}[destinations.{name}]\n{body}{USERS}")
            path.chmod(0o600)
            alone[name] = path
        yield alone


@pytest.mark.parametrize("destination", ["archive", "bucket", "sql"])
def test_the_json_api_over_each_shipped_destination(three_archives, destination):
    with serving(three_archives[destination]) as url, logged_in(url) as client:
        seen = []
        found = client.get("/api/sessions").json()
        assert found["ok"] and found["count"] == 6
        with_recording = [
            s for s in found["sessions"]
            if any(i["data_type"] == "recording" and i["status"] == "delivered" for i in s["items"])
        ]  # fmt: skip
        assert with_recording
        one = client.get(with_recording[0]["api"]).json()
        assert one["ok"] and one["lsid"] == with_recording[0]["lsid"]
        seen += [json.dumps(found), json.dumps(one), client.get(with_recording[0]["url"]).text,
                 client.get("/integrity").text, client.get("/api/integrity").text]  # fmt: skip
        assert not [text for text in seen if SECRET in text]  # no secret of the configuration
        mine = [i for i in one["items"] if i["destination"] == destination]
        others = [i for i in one["items"] if i["destination"] != destination]
        assert mine and all(i["url"] is None for i in others)  # not in this configuration
        report = one["report"]
        if destination == "sql":
            # the SQL tables are not read back into a report: the summary stands alone
            assert report["session"] is None and "sql" in report["unavailable"]
            assert all(i["url"] is None for i in mine)
            return
        assert report["read_from"] == destination and report["intact"] is True
        assert report["session"]["lsid"] == one["lsid"] and report["session"]["events"]
        (recording,) = [i for i in mine if i["data_type"] == "recording"]
        with audit_events() as logged:
            whole = client.get(recording["url"])
        # the audit of the audit: who took what
        assert {
            "event": "download", "user": "auditor", "destination": destination,
            "item_key": recording["item_key"], "lsid": one["lsid"],
        }.items() <= next(e for e in logged if e["event"] == "download").items()  # fmt: skip
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        assert hashlib.sha256(whole.content).hexdigest() == recording["sha256"]
        assert len(whole.content) == recording["size"]
        size = recording["size"]
        for asked, start, end in (
            ("bytes=100-199", 100, 199),
            (f"bytes={size - 10}-", size - 10, size - 1),
            ("bytes=-500", size - 500, size - 1),
            (f"bytes=200000-{size * 2}", 200_000, size - 1),
        ):
            part = client.get(recording["url"], headers={"Range": asked})
            assert part.status_code == 206, asked
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}", asked
            assert part.content == whole.content[start : end + 1], asked
        beyond = client.get(recording["url"], headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        download = client.get(recording["url"], params={"download": "1"})
        assert download.headers["content-disposition"].startswith("attachment")


def test_the_integrity_page_shows_the_last_verify_and_its_findings(tmp_path):
    config = guide_archive(tmp_path)
    with serving(config) as url, logged_in(url) as client:
        never = client.get("/api/integrity").json()["destinations"]
        assert [d["destination"] for d in never] == ["archive"] and never[0]["last_verify"] is None
        assert never[0]["delivered"] == 3 and never[0]["verified"] == 0
        assert "Never verified" in client.get("/integrity").text
    assert run_btic("verify", "--config", str(config)).returncode == 0
    with serving(config) as url, logged_in(url) as client:
        (clean,) = client.get("/api/integrity").json()["destinations"]
        assert clean["verified"] == 3 and clean["last_verify"]["checked"] == 3
        assert not any(clean["last_verify"]["findings"].values())
    changed = next((tmp_path / "archive").rglob("*case-1*.xml"))
    changed.write_bytes(changed.read_bytes() + b"\n")
    assert run_btic("verify", "--config", str(config)).returncode == 1
    with serving(config) as url, logged_in(url) as client:
        (found,) = client.get("/api/integrity").json()["destinations"]
        assert found["last_verify"]["findings"]["changed"] == 1
        (example,) = found["last_verify"]["examples"]
        assert example["kind"] == "changed" and example["location"] == str(changed)
        page = client.get("/integrity").text
        assert "1 changed" in page and str(changed) in page


def test_a_sealed_report_is_listed_downloadable_and_never_decrypted(tmp_path):
    x25519 = pytest.importorskip("pyrage").x25519
    identity = x25519.Identity.generate()
    config = guide_archive(tmp_path)
    sealed = tmp_path / "sealed"
    config.write_text(
        config.read_text()
        + f'[destinations.vault]\nplugin = "filesystem"\ndirectory = "{sealed}"\n'
        f'encrypt = {{ recipients = ["{identity.to_public()}"] }}\n'
    )
    saved = tmp_path / "secret.xml"
    saved.write_bytes(
        report(session_xml("sealed-1", extra="<external_key>TOP-SECRET</external_key>"))
    )
    imported = run_btic("import-xml", str(saved), "--dest", "vault", "--host",
                        "support.example.com", "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    with serving(config) as url, logged_in(url) as client:
        one = client.get("/api/sessions/support.example.com/sealed-1").json()
        assert one["report"]["session"] is None and "encrypted" in one["report"]["unavailable"]
        (item,) = one["items"]
        assert item["encrypted"] and item["location"].endswith(".xml.age")
        page = client.get("/sessions/support.example.com/sealed-1").text
        assert "encrypted" in page and "Raw XML" not in page
        download = client.get(item["url"])
        # the stored age file as it is: the server holds no identity
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"].startswith("attachment")
        assert download.content == Path(item["location"]).read_bytes()
        assert download.content.startswith(b"age-encryption.org/v1")
        assert b"TOP-SECRET" not in download.content
