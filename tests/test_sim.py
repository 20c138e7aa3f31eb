"""The simulated appliance itself, spoken to over raw HTTP as a real client would."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest
from lxml import etree

from btic.sim import FaultPlan, SimulatedAppliance


def client(sim: SimulatedAppliance) -> httpx.Client:
    return httpx.Client(
        base_url=sim.url, verify=ssl.create_default_context(cafile=str(sim.ca_path)), timeout=10
    )


def token(http: httpx.Client, sim: SimulatedAppliance) -> str:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(sim.client_id, sim.client_secret),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")  # as real appliances label it
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == int(sim.tokens.ttl)
    return body["access_token"]


def test_the_31st_token_evicts_the_oldest(rs_sim):
    with client(rs_sim) as http:
        tokens = [token(http, rs_sim) for _ in range(31)]
        first = http.get(
            "/api/command",
            params={"action": "get_api_info"},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        assert first.status_code == 401
        assert first.json() == {
            "error": "access_denied",
            "message": "The resource owner or authorization server denied the request.",
        }
        second = http.get(
            "/api/command",
            params={"action": "get_api_info"},
            headers={"Authorization": f"Bearer {tokens[1]}"},
        )
        assert second.status_code == 200


def test_expired_and_unknown_tokens_are_refused():
    with SimulatedAppliance("rs", sessions=1, token_ttl=0.3) as sim, client(sim) as http:
        live = token(http, sim)
        assert (
            http.get(
                "/api/command",
                params={"action": "check_health"},
                headers={"Authorization": f"Bearer {live}"},
            ).status_code
            == 200
        )
        time.sleep(0.4)
        assert (
            http.get(
                "/api/command",
                params={"action": "check_health"},
                headers={"Authorization": f"Bearer {live}"},
            ).status_code
            == 401
        )
        assert (
            http.get(
                "/api/reporting",
                params={"generate_report": "SupportSession", "lsid": "x"},
                headers={"Authorization": "Bearer made-up"},
            ).status_code
            == 401
        )
        wrong = http.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(sim.client_id, "nope")
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_command_api_and_plain_health_check(rs_sim):
    with client(rs_sim) as http:
        headers = {"Authorization": f"Bearer {token(http, rs_sim)}"}
        health = etree.fromstring(
            http.get("/api/command", params={"action": "check_health"}, headers=headers).content
        )
        assert etree.QName(health).localname == "health_check"
        assert (
            health.findtext("{*}success") == "1" and health.findtext("{*}failover_role") == "none"
        )
        info = etree.fromstring(
            http.post("/api/command", data={"action": "get_api_info"}, headers=headers).content
        )
        assert etree.QName(info).namespace == "https://www.beyondtrust.com/namespaces/API/command"
        assert abs(int(info.findtext("{*}timestamp")) - time.time()) < 5
        names = [p.get("name") for p in info.find("{*}permissions")]
        assert "perm_reporting_support" in names and "perm_backup" in names
        assert http.get("/check_health").status_code == 200  # no token needed


def test_reports_answer_get_and_post_alike_and_honour_limit(rs_sim):
    with client(rs_sim) as http:
        headers = {"Authorization": f"Bearer {token(http, rs_sim)}"}
        params = {
            "generate_report": "SupportSessionListing",
            "end_time": str(int(time.time()) - 5 * 86400),
            "duration": "0",
        }
        by_get = http.get("/api/reporting", params=params, headers=headers).content
        by_post = http.post("/api/reporting", data=params, headers=headers).content
        assert by_get == by_post and b"<session_summary " in by_get
        rep = {**params, "limit": "rep:2"}
        limited = etree.fromstring(http.get("/api/reporting", params=rep, headers=headers).content)
        expected = {
            s.lsid
            for s in rs_sim.dataset.all()
            if s.report == "support" and 2 in s.rep_ids and s.closed_at(rs_sim.now())
        }
        assert {e.get("lsid") for e in limited} == expected
        bad = http.get("/api/reporting", params={**params, "limit": "nobody"}, headers=headers)
        assert (
            bad.status_code == 200 and b"<error" in bad.content and b"Invalid limit" in bad.content
        )
        wrong_product = http.get(
            "/api/reporting", params={**params, "generate_report": "AccessSession"}, headers=headers
        )
        assert b"Invalid report type" in wrong_product.content


def test_fault_specs_parse_and_refuse_nonsense():
    plan = FaultPlan.parse(
        "latency=0.2,clock=-3600,retry_after=3,500:2,429@SupportSession,reset:1@recording"
    )
    assert (plan.latency, plan.clock_offset, plan.retry_after) == (0.2, -3600, 3)
    assert (
        plan.take("token") == "500" and plan.take("backup") == "500" and plan.take("token") is None
    )
    assert plan.take("SupportSession") == "429"
    assert plan.take("CommandShellRecording") == "reset"
    for spec in ("boom", "500:x", "latency=slow", "speed=3"):
        with pytest.raises(ValueError, match=spec.split("=")[0].split(":")[0]):
            FaultPlan.parse(spec)


def test_a_bandwidth_cap_is_one_link_that_every_answer_shares():
    """bandwidth=N: the WAN of the throughput benchmark. Two 400 KB recordings
    fetched at once over a 1 MB/s link cannot both arrive in under 0.8 s."""
    from concurrent.futures import ThreadPoolExecutor

    assert FaultPlan.parse("bandwidth=1000000").bandwidth == 1_000_000
    with pytest.raises(ValueError, match="bandwidth"):
        FaultPlan.parse("bandwidth=0")
    with SimulatedAppliance(
        "rs", sessions=6, live_sessions=0, recording_size=400_000, faults="bandwidth=1000000"
    ) as sim:
        lsids = [s.lsid for s in sim.dataset.all() if s.has_recording][:2]
        with client(sim) as http:
            headers = {"Authorization": f"Bearer {token(http, sim)}"}

            def fetch(lsid: str) -> int:
                params = {"generate_report": "SupportSessionRecording", "lsid": lsid}
                answer = http.get("/api/reporting", headers=headers, params=params)
                return len(answer.content)

            started = time.monotonic()
            with ThreadPoolExecutor(2) as pool:
                sizes = list(pool.map(fetch, lsids))
            elapsed = time.monotonic() - started
    assert sizes == [400_000, 400_000]
    assert elapsed >= 0.8


def test_recordings_stream_without_being_held_in_memory():
    import tracemalloc

    with SimulatedAppliance(
        "rs", sessions=2, live_sessions=0, recording_size=64 * 1024 * 1024
    ) as sim:
        lsid = next(s.lsid for s in sim.dataset.all() if s.has_recording)
        with client(sim) as http:
            headers = {"Authorization": f"Bearer {token(http, sim)}"}
            tracemalloc.start()
            size = 0
            with http.stream(
                "GET",
                "/api/reporting",
                headers=headers,
                params={"generate_report": "SupportSessionRecording", "lsid": lsid},
            ) as response:
                for chunk in response.iter_raw(1024 * 1024):
                    size += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert size == 64 * 1024 * 1024
    assert peak < 16 * 1024 * 1024  # server and client together, in this process


# Copied from the guides, not from the simulator: the RS Integration Client guide's
# session_event table (39 types) and the RS API guide's event_type list (which
# names the foreground-window event "Session Foreground Window Changed").
RS_GUIDE_EVENT_TYPES = {
    "Callback Button Deployed", "Registry Exported", "Callback Button Removed",
    "Registry Imported", "Chat Message", "Registry Key Added",
    "Command Shell Session Started", "Registry Key Deleted", "Conference Member Added",
    "Registry Key Renamed", "Conference Member Departed", "Registry Value Added",
    "Conference Member State Changed", "Registry Value Deleted", "Conference Owner Changed",
    "Registry Value Modified", "Customer Exit Survey", "Registry Value Renamed",
    "Directory Created", "Remote Shell Session Started", "External Key",
    "Representative Exit Survey", "File Deleted", "Service Access Allowed", "File Download",
    "Session Assigned", "File Download Failed", "Session Assignment Response", "File Moved",
    "Session End", "File Upload", "Session Note Added", "File Upload Failed", "Session Start",
    "Files Shared", "Show My Screen Recording", "Foreground Window Changed",
    "System Information Retrieved", "Legal Agreement Response",
    "Session Foreground Window Changed",
}  # fmt: skip
# The PA API guide's event_type list (31 types).
PA_GUIDE_EVENT_TYPES = {
    "Chat Message", "Registry Imported", "Command Shell Session Started", "Registry Key Added",
    "Conference Member Added", "Registry Key Deleted", "Conference Member Departed",
    "Registry Key Renamed", "Conference Member State Changed", "Registry Value Added",
    "Conference Owner Changed", "Registry Value Deleted", "Credential Injection Attempt",
    "Registry Value Modified", "Credential Injection Attempt Failed", "Registry Value Renamed",
    "Directory Created", "Screen Recording", "File Deleted", "Screenshot Captured",
    "File Download", "Service Access Allowed", "File Download Failed", "Session End",
    "File Moved", "Session Foreground Window Changed", "File Upload", "Session Start",
    "File Upload Failed", "System Information Retrieved", "Registry Exported",
}  # fmt: skip


@pytest.mark.parametrize(
    ("product", "listed"), [("rs", RS_GUIDE_EVENT_TYPES), ("pa", PA_GUIDE_EVENT_TYPES)]
)
def test_a_default_run_produces_every_event_type_its_guide_lists(product, listed):
    from btic.sim.render import sessions_document

    assert len(listed) == (40 if product == "rs" else 31)
    sim = SimulatedAppliance(product)  # the default --sessions
    closed = [s for s in sim.dataset.all() if s.closed_at(sim.now())]
    document = b"".join(sessions_document(sim.dataset, closed, sim.now(), "https://sim"))
    root = etree.fromstring(document)
    produced = {e.get("event_type") for e in root.iter("{*}event")}
    assert listed - produced == set(), "the simulator never produces these"
    assert produced - listed == set(), "the simulator produces types its guide does not list"
    # every event says who did it
    assert all(e.find("{*}performed_by") is not None for e in root.iter("{*}event"))
