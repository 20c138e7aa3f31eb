"""``btic serve``, the auditor's viewer, over real sockets: nothing without a login,
a lockout, hostile names rendered inert, the search page and its JSON API."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import run_btic
from hostile import report, session_xml

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from btic.config import load_config  # noqa: E402
from btic.plugins import PluginManager  # noqa: E402
from btic.serve.app import POLICY, make_app  # noqa: E402
from btic.serve.auth import hash_password  # noqa: E402
from btic.testing.servers import free_port  # noqa: E402

HOSTILE = '<script>document.title="pwned"</script>\u202eevil'


def _archive(tmp_path: Path) -> Path:
    """An archive of two imported sessions, one with a hostile representative."""
    rep = (
        '<primary_rep gsnumber="7" id="12">Ada</primary_rep>'
        '<rep_list><representative gsnumber="7" id="12"><username>alovelace</username>'
        f"<display_name>{HOSTILE.replace('<', '&lt;')}</display_name>"
        "<session_owner>1</session_owner><primary_rep>1</primary_rep></representative></rep_list>"
    )
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(session_xml("case-1", extra=rep), session_xml("other-2")))
    config = tmp_path / "btic.toml"
    config.write_text(
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        "[serve]\nlockout_failures = 3\n"
        f'[serve.users]\nauditor = "{hash_password("right horse")}"\n'
        f'dpo = "{hash_password("battery staple")}"\n'
    )
    config.chmod(0o600)
    imported = run_btic("import-xml", str(saved), "--dest", "archive", "--host",
                        "support.example.com", "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    return config


@contextlib.contextmanager
def _serving(app) -> Iterator[str]:
    """``app`` under uvicorn on a loopback port; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[str]:
    config = load_config(_archive(tmp_path), PluginManager().discover())
    with _serving(make_app(config, PluginManager().discover(), https=False)) as url:
        yield url


def test_nothing_is_shown_without_a_login(viewer):
    with httpx.Client(base_url=viewer) as anonymous:
        page = anonymous.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        api = anonymous.get("/api/sessions", params={"lsid": "case-1"})
        assert api.status_code == 401 and "case-1" not in api.text
        for path in ("/../../etc/passwd", "/api/../../btic.toml", "/%2e%2e/state.db"):
            assert anonymous.get(path).status_code == 404, path
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert anonymous.request(method, "/api/sessions").status_code == 405, method
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
        page = client.get("/", params={"person": "alovelace"})
        assert page.status_code == 200 and "case-1" in page.text
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert "\u202e" not in page.text and "\ufffd" in page.text  # no right-to-left trick
        assert page.headers["content-security-policy"] == POLICY
        client.post("/logout")
        assert client.get("/api/sessions").status_code == 401


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
    config = load_config(_archive(tmp_path), PluginManager().discover())
    with (
        _serving(make_app(config, PluginManager().discover(), https=True)) as url,
        httpx.Client(base_url=url) as client,
    ):
        done = client.post("/login", data={"name": "auditor", "password": "right horse"},
                           follow_redirects=False)  # fmt: skip
    assert "secure" in done.headers["set-cookie"].lower()
