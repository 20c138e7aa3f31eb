"""The viewer end to end in a real browser: Debian's Chromium, driven by Selenium
through Debian's chromedriver. An auditor logs in, searches by representative,
opens the session, reads its chat, downloads a recording and compares it with the
archive; hostile session data runs no script; wrong passwords, a lockout, logout.

Screenshots of each page go to ``.artifacts/screenshots`` (or
``$BTIC_SCREENSHOTS``) for review.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_btic
from serving import serving
from test_serve import USERS, hostile_session

from btic.serve.web import inert
from btic.sim import FrozenClock, SimulatedAppliance

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("starlette")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not installed"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = Path(os.environ.get("BTIC_SCREENSHOTS", Path(__file__).resolve().parents[1] / ".artifacts" / "screenshots"))  # fmt: skip
#: The longest a page may take to show what the test waits for (not a timing
#: assertion: a slow machine only waits longer).
PATIENCE = 60


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Sessions synced from the simulated appliance (with recordings), and a hostile
    session imported beside them, in one file-system archive."""
    tmp_path = tmp_path_factory.mktemp("browser")
    with SimulatedAppliance(
        "rs", sessions=4, seed=5, live_sessions=0, presentations=0, recording_size=200_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        config = tmp_path / "btic.toml"
        config.write_text(
            sim.site_toml("sim").rstrip()
            + '\nfirst_run_since = "all"\n'
            + f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "a"}"\n'
            + '[schedules.often]\nevery = "15m"\n[[schedules.often.transfers]]\nsite = "sim"\n'
            + 'destinations = ["archive"]\ndata = ["session", "recording"]\n'
            + USERS
        )
        config.chmod(0o600)
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    hostile = tmp_path / "hostile.xml"
    from hostile import report

    hostile.write_bytes(report(hostile_session("case-1")))
    imported = run_btic("import-xml", str(hostile), "--dest", "archive", "--host",
                        "support.example.com", "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    return config


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
    ):  # fmt: skip
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=DRIVER)
    )
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _wait_for(driver, css: str):
    return WebDriverWait(driver, PATIENCE).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def _log_in(driver, url: str, name: str, password: str) -> None:
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


def _archived_sessions(config: Path) -> list[dict]:
    import json

    found = run_btic("find", "--config", str(config), "--json")
    assert found.returncode == 0, found.output
    return json.loads(found.stdout)["sessions"]


def test_an_auditor_finds_reads_and_downloads_a_session(archive, browser):
    sessions = _archived_sessions(archive)
    # a synced session with a recording, and one of its representatives
    session = next(
        s for s in sessions
        if s["lsid"] != "case-1"
        and any(i["data_type"] == "recording" and i["status"] == "delivered" for i in s["items"])
        and s["people"]
    )  # fmt: skip
    recording = next(i for i in session["items"] if i["data_type"] == "recording")
    with serving(archive) as url:
        browser.get(url)  # not logged in: the login page
        _wait_for(browser, "#login")
        _shot(browser, "01-login")
        _log_in(browser, url, "auditor", "right horse")
        _wait_for(browser, "#search")
        # "Display Name (username)": search by the username, as an auditor would
        person = session["people"][0].rsplit("(", 1)[-1].rstrip(")")
        browser.find_element(By.ID, "person").send_keys(person)
        browser.find_element(By.ID, "search").click()
        _wait_for(browser, "#results")
        _shot(browser, "02-search")
        rows = browser.find_elements(By.CSS_SELECTOR, "#results td.lsid a")
        assert session["lsid"] in [row.text for row in rows]
        next(row for row in rows if row.text == session["lsid"]).click()
        _wait_for(browser, "#timeline")
        _shot(browser, "03-session")
        assert browser.find_element(By.ID, "lsid").text == session["lsid"]
        chat = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#timeline .chat")]
        archived = _chat_of(Path(next(i for i in session["items"]
                                      if i["data_type"] == "session")["location"]))  # fmt: skip
        assert chat == archived and chat, "the transcript is the archived chat, in order"
        browser.find_element(
            By.CSS_SELECTOR, "a.download[href*='/items/archive/recording']"
        ).click()
        name = Path(recording["location"]).name
        target = browser.downloads / name
        WebDriverWait(browser, PATIENCE).until(lambda _: target.exists())
        WebDriverWait(browser, PATIENCE).until(
            lambda _: not list(browser.downloads.glob("*.crdownload"))
        )
        assert hashlib.sha256(target.read_bytes()).hexdigest() == recording["sha256"]
        browser.get(f"{url}/integrity")
        _wait_for(browser, "section.destination")
        _shot(browser, "04-integrity")
        browser.find_element(By.ID, "logout").click()
        _wait_for(browser, "#login")
        browser.get(f"{url}/sessions/{session['site']}/{session['lsid']}")
        _wait_for(browser, "#login")  # logged out: back to the login page
        assert "timeline" not in browser.page_source


def test_hostile_session_data_runs_no_script(archive, browser):
    with serving(archive) as url:
        _log_in(browser, url, "auditor", "right horse")
        _wait_for(browser, "#search")
        browser.get(f"{url}/?person=alovelace")
        _wait_for(browser, "#results")
        _shot(browser, "05-hostile-search")
        assert browser.title == "Sessions: btic"  # a script that ran would have set it
        browser.get(f"{url}/sessions/support.example.com/case-1")
        _wait_for(browser, "#timeline")
        _shot(browser, "06-hostile-session")
        assert browser.title == "Session case-1: btic"
        # nothing the appliance's users wrote became an element: no script, image or link
        assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
        assert [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")
                if (a.get_attribute("href") or "").startswith("javascript:")] == []  # fmt: skip
        chat = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#timeline .chat")]
        assert chat[0] == '<script>document.title="pwned"</script>'
        assert "\u202e" not in "".join(chat)
        # no script ran to log anything
        assert not [e for e in browser.get_log("browser") if e["source"] == "javascript"]


def test_wrong_passwords_are_refused_and_lock_the_name(archive, browser):
    with serving(archive) as url:
        _log_in(browser, url, "dpo", "guess")
        assert "Wrong name or password." in _wait_for(browser, "#problem").text
        _shot(browser, "07-refused")
        for _ in range(2):
            _log_in(browser, url, "dpo", "guess")
            _wait_for(browser, "#problem")
        _log_in(browser, url, "dpo", "battery staple")
        assert "locked" in _wait_for(browser, "#problem").text
        _shot(browser, "08-locked")
        browser.get(f"{url}/integrity")
        _wait_for(browser, "#login")


def _chat_of(report: Path) -> list[str]:
    """The chat bodies of an archived report, in order, as btic's parser reads them."""
    import io

    from btic.appliance.parse import iter_sessions

    wrapped = (
        b'<session_list xmlns="https://www.beyondtrust.com/namespaces/API/reporting">'
        + report.read_bytes().split(b"?>", 1)[-1]
        + b"</session_list>"
    )
    ((session, _),) = iter_sessions(io.BytesIO(wrapped), product="rs", report="support", host="h")
    # as shown: control characters are U+FFFD (btic.serve.web.inert)
    return [str(inert(e.body)).strip() for e in session.events if e.body is not None]
