"""E-mail notifications (the guide's Notification Settings).

One message per schedule run that had errors, listing them (site,
destination, item, cause) up to a cap; one message when a schedule whose
previous run failed runs cleanly again (its sites and destinations are back);
and the test message of ``btic notify test`` (the guide's "Send Test").
Every message is scrubbed of the configuration's secrets. A message that
cannot be sent is logged and never stops a run.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from btic.config import Config, EmailConfig
from btic.errors import NotificationError
from btic.logs import config_secrets, scrub_text, secret_values
from btic.scheduler import ScheduleOutcome
from btic.statuses import RunStatus


class Notifier:
    """Sends the e-mail of ``[notifications.email]``.

    :param secrets: values never to appear in a message.
    :param base_dir: where a relative ``ca_bundle`` is found.
    """

    def __init__(
        self,
        settings: EmailConfig,
        *,
        secrets: list[str],
        base_dir: Path,
        log: FilteringBoundLogger,
    ):
        self.settings = settings
        self.secrets = secret_values(secrets)
        self.base_dir = base_dir
        self.log = log

    # -- what is said ------------------------------------------------------------------

    def schedule_ran(self, outcome: ScheduleOutcome) -> None:
        """Mail the errors of a run, or the recovery of a schedule that had failed."""
        problems = list(dict.fromkeys(outcome.summary.problems + outcome.summary.given_up))
        if problems:
            subject = f"schedule {outcome.name}: {len(problems)} error(s)"
            body = self._errors_body(outcome, problems)
        elif outcome.status == RunStatus.OK and outcome.previous_status == RunStatus.FAILED:
            subject = f"schedule {outcome.name}: recovered"
            body = (
                f"Schedule {outcome.name} ran without errors at "
                f"{outcome.finished_at:%Y-%m-%d %H:%M:%S %Z} (run {outcome.run_id}); its "
                "previous run had failed.\n\n"
                f"Sites: {', '.join(outcome.sites)}\n"
                f"Destinations: {', '.join(outcome.destinations)}\n"
            )
        else:
            return
        try:
            self.send(subject, body)
        except NotificationError as exc:
            self.log.error(str(exc), schedule=outcome.name, run_id=outcome.run_id)

    def _errors_body(self, outcome: ScheduleOutcome, problems: list[str]) -> str:
        cap = self.settings.max_errors_listed
        lines = [
            (
                f"Schedule {outcome.name} ran at {outcome.started_at:%Y-%m-%d %H:%M:%S %Z} "
                f"(run {outcome.run_id}) and logged {len(problems)} error(s):"
            ),
            "",
            *(f"- {problem}" for problem in problems[:cap]),
        ]
        if len(problems) > cap:
            lines.append(f"- ... and {len(problems) - cap} more (see the log files)")
        lines += [
            "",
            f"Sites: {', '.join(outcome.sites)}",
            f"Destinations: {', '.join(outcome.destinations)}",
            "",
            (
                "Items that failed stay pending and are tried again by the next run; "
                "btic status lists them."
            ),
        ]
        return "\n".join(lines) + "\n"

    # -- sending -----------------------------------------------------------------------

    def send(self, subject: str, body: str) -> str:
        """Send one message to every recipient; return the SMTP server's answer to it.

        :raises NotificationError: with the server's words and what to check.
        """
        settings = self.settings
        message = EmailMessage(policy=SMTP_POLICY)
        subject = f"{settings.subject_prefix} {subject}".strip()
        message["Subject"] = scrub_text(subject, self.secrets)
        message["From"] = settings.from_address
        message["To"] = ", ".join(settings.to)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=socket.getfqdn() or "btic")
        message.set_content(scrub_text(body, self.secrets))
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        try:
            with self._connect() as smtp:
                return self._deliver(smtp, message)
        except NotificationError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise NotificationError(
                f"e-mail: {where} refused the login of {settings.username!r}: "
                f"{_words(exc.smtp_code, exc.smtp_error)}; check notifications.email.username "
                "and password"
            ) from None
        except ssl.SSLError as exc:
            raise NotificationError(
                f"e-mail: TLS with {where} failed ({exc.reason or exc}); check "
                "notifications.email.security (none, starttls, tls) and ca_bundle"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"e-mail: could not send through {where}: {exc}; check "
                "notifications.email.smtp_host, smtp_port and security"
            ) from None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context(cafile=self._ca_bundle())
        if settings.security == "tls":
            return smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout, context=context
            )
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
        try:
            if settings.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise NotificationError(
                        f"e-mail: {settings.smtp_host}:{settings.smtp_port} does not offer "
                        'STARTTLS; set notifications.email.security = "tls" (port 465) or '
                        '"none" for a server on a trusted network'
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage) -> str:
        settings = self.settings
        smtp.ehlo_or_helo_if_needed()
        if settings.username:
            self._login(smtp)
        code, answer = smtp.mail(settings.from_address)
        if code != 250:
            raise NotificationError(
                f"e-mail: {settings.smtp_host} refused the sender {settings.from_address}: "
                f"{_words(code, answer)}; check notifications.email.from_address"
            )
        refused = []
        for recipient in settings.to:
            code, answer = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused.append(f"{recipient} ({_words(code, answer)})")
        if len(refused) == len(settings.to):
            smtp.rset()
            raise NotificationError(
                f"e-mail: {settings.smtp_host} refused every recipient: {'; '.join(refused)}; "
                "check notifications.email.to"
            )
        code, answer = smtp.data(message.as_bytes())
        if code != 250:
            raise NotificationError(
                f"e-mail: {settings.smtp_host} refused the message: {_words(code, answer)}"
            )
        said = _words(code, answer)
        if refused:
            said += f"; refused: {'; '.join(refused)}"
        return said

    def _login(self, smtp: smtplib.SMTP) -> None:
        """Log in with the best mechanism the server offers, once: ``SMTP.login``
        would try the same wrong password with every mechanism in turn."""
        settings = self.settings
        offered = (smtp.esmtp_features.get("auth") or "").upper().split()
        for mechanism in ("CRAM-MD5", "PLAIN", "LOGIN"):
            if mechanism in offered:
                break
        else:
            raise NotificationError(
                f"e-mail: {settings.smtp_host}:{settings.smtp_port} offers no login this side "
                f"can use ({' '.join(offered) or 'none'}); remove notifications.email.username "
                "or use a server that offers PLAIN or LOGIN"
            )
        # SMTP.auth's mechanisms read the credentials from these attributes.
        smtp.user = settings.username or ""
        smtp.password = settings.password.get_secret_value() if settings.password else ""
        if mechanism == "CRAM-MD5":
            smtp.auth(mechanism, smtp.auth_cram_md5)
        elif mechanism == "PLAIN":
            smtp.auth(mechanism, smtp.auth_plain)
        else:
            smtp.auth(mechanism, smtp.auth_login)

    def _ca_bundle(self) -> str | None:
        bundle = self.settings.ca_bundle
        if bundle is None:
            return None
        return str(bundle if bundle.is_absolute() else self.base_dir / bundle)


def _words(code: int, answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    return f"{code} {' '.join(text.split())}"


def notifier_for(config: Config, log: FilteringBoundLogger) -> Notifier | None:
    """The notifier ``config`` asks for, if any."""
    settings = config.notifications.email
    if settings is None:
        return None
    return Notifier(settings, secrets=config_secrets(config), base_dir=config.base_dir, log=log)


def notifiers(config: Config, log: FilteringBoundLogger) -> list[Notifier]:
    """The notifier of ``config`` as a list of schedule observers (empty: none)."""
    notifier = notifier_for(config, log)
    return [] if notifier is None else [notifier]
