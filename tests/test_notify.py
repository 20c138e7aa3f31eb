"""E-mail notifications against a real SMTP server (aiosmtpd) with STARTTLS and a login:
`btic notify test`, one message per failed schedule run, one on recovery, no secret."""

from __future__ import annotations

import ssl
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import run_btic
from transfer_helpers import write_config

from btic.sim import SimulatedAppliance
from btic.testing.servers import free_port

SMTP_PASSWORD = "smtp-pass-7f3a9c2e"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK stored"


def _login(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"btic"
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tmp_path):
    """A local SMTP server that requires STARTTLS and a login; yields (port, inbox)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "smtp-ca.pem"))
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_login,
        auth_required=True,
    )
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _email_section(port: int, password: str = "env:SMTP_PASSWORD") -> str:
    return f"""
[notifications.email]
smtp_host = "127.0.0.1"
smtp_port = {port}
security = "starttls"
username = "btic"
password = "{password}"
from_address = "btic@example.com"
to = ["ops@example.com"]
ca_bundle = "smtp-ca.pem"
"""


def _subject(message: bytes) -> str:
    return str(message_from_bytes(message, policy=default)["Subject"])


def _body(message: bytes) -> str:
    return message_from_bytes(message, policy=default).get_content()


def test_notify_test_arrives_and_prints_the_servers_answer(tmp_path, smtp):
    port, inbox = smtp
    with SimulatedAppliance("rs", sessions=1, seed=3, live_sessions=0, tls=False) as sim:
        config = write_config(tmp_path, sim, data=["session"])
    config.write_text(config.read_text() + _email_section(port))
    sent = run_btic("notify", "test", "--config", str(config), env={"SMTP_PASSWORD": SMTP_PASSWORD})
    assert sent.returncode == 0, sent.output
    assert "sent to ops@example.com; the server answered: 250 OK stored" in sent.stdout
    assert [_subject(m) for m in inbox.messages] == ["[btic] test message"]
    refused = run_btic("notify", "test", "--config", str(config), env={"SMTP_PASSWORD": "wrong"})
    assert refused.returncode == 1
    assert "refused the login of 'btic': 535" in refused.stderr
    assert "check notifications.email.username and password" in refused.stderr
    assert len(inbox.messages) == 1


def test_a_failed_run_mails_once_and_the_recovery_mails_once_without_secrets(tmp_path, smtp):
    port, inbox = smtp
    with SimulatedAppliance("rs", sessions=3, seed=5, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        good = config.read_text().replace('every = "15m"', 'every = "1d"\nat = "00:00"')
        good += _email_section(port)
        closed = free_port()
        config.write_text(good.replace(sim.host, f"127.0.0.1:{closed}"))
        env = {"SMTP_PASSWORD": SMTP_PASSWORD}
        failed = run_btic("sync", "--config", str(config), env=env)
        assert failed.returncode == 1, failed.output
        assert len(inbox.messages) == 1
        first = _body(inbox.messages[0])
        assert _subject(inbox.messages[0]) == "[btic] schedule often: 1 error(s)"
        assert "site sim: token failed after 6 tries: ConnectError" in first, first
        assert f"127.0.0.1:{closed}" in first and "Sites: sim" in first
        config.write_text(good)
        recovered = run_btic("sync", "--all", "--config", str(config), env=env)
        assert recovered.returncode == 0, recovered.output
        again = run_btic("sync", "--all", "--config", str(config), env=env)
        assert again.returncode == 0, again.output
        secret = sim.client_secret
    assert [_subject(m) for m in inbox.messages] == [
        "[btic] schedule often: 1 error(s)",
        "[btic] schedule often: recovered",
    ]
    for message in inbox.messages:
        text = _body(message)
        assert secret not in text and SMTP_PASSWORD not in text
        assert secret.encode() not in message and SMTP_PASSWORD.encode() not in message


def test_a_missing_email_section_is_a_usage_error(tmp_path):
    with SimulatedAppliance("rs", sessions=1, seed=3, live_sessions=0, tls=False) as sim:
        config = write_config(tmp_path, sim, data=["session"])
    result = run_btic("notify", "test", "--config", str(config))
    assert result.returncode == 2
    assert "no [notifications.email] in the configuration" in result.stderr


def test_bad_addresses_are_configuration_errors(tmp_path: Path):
    with SimulatedAppliance("rs", sessions=1, seed=3, live_sessions=0, tls=False) as sim:
        config = write_config(tmp_path, sim, data=["session"])
    config.write_text(
        config.read_text()
        + _email_section(25).replace('to = ["ops@example.com"]', 'to = ["ops at example"]')
    )
    result = run_btic("notify", "test", "--config", str(config))
    assert result.returncode == 2
    assert "notifications.email.to" in result.stderr and "is not an e-mail address" in result.stderr
