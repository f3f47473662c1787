"""EmailNotificationJob: one plain-text mail over SMTP to pub_args[0].

The server and login come from configuration (CRONWELL_SMTP_HOST, _PORT, _FROM, _USER,
_PASSWORD, _STARTTLS); the connection times out after `JobSettings.extra["smtp_timeout"]`
(10 s). With STARTTLS the server's certificate is verified against the system CAs, or
against the CA file named by `JobSettings.extra["smtp_cafile"]` for a relay with a private CA.
A recipient that is missing or not an address fails the execution before any
connection; an SMTP error (refused, rejected recipient, bad login) fails it with the
server's answer.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from jobs.base import Argument, BaseJob, JobError
from jobs.params import check_signature, required_text, setting_seconds
from jobs.settings import JobSettings

#: local@domain with no spaces, angle brackets or commas: one plain address, no display name
ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
DEFAULT_SUBJECT = "Notification from cronwell"


def check_address(value: str) -> str:
    if not ADDRESS.match(value) or ".." in value.rpartition("@")[2]:
        raise JobError(f"recipient is not a valid email address: {value!r}")
    return value


def header_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise JobError(f"{name} must be a string, not {value!r}")
    if "\r" in value or "\n" in value:
        raise JobError(f"{name} must be one line (no line breaks)")
    return value


def deliver(settings: JobSettings, message: EmailMessage, timeout: float) -> None:
    """Send through the configured server (one recipient: refused means failed)."""
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                cafile = settings.extra.get("smtp_cafile")
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise JobError(f"SMTP server refused the recipient: {exc.recipients}") from None
    except (smtplib.SMTPException, OSError) as exc:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise JobError(f"Sending mail through {where} failed: {exc}") from None


class EmailNotificationJob(BaseJob):
    description: ClassVar[str] = "Job to send email notifications"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument(
            "recipient", "string", "Email address to send to", required=True, source="pub_args"
        ),
        Argument("subject", "string", "Subject line", default=DEFAULT_SUBJECT),
        Argument("message", "string", "Plain-text body", default=""),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        recipient = check_address(required_text(args, 0, "recipient", type(self).__name__))
        subject = header_text(kwargs.get("subject", DEFAULT_SUBJECT), "subject")
        body = kwargs.get("message", "")
        if not isinstance(body, str):
            raise JobError(f"message must be a string, not {body!r}")
        settings = self.context.settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(self.context.now().timestamp(), usegmt=True)
        message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
        message.set_content(body)
        deliver(settings, message, setting_seconds(settings.extra, "smtp_timeout", 10.0))
        server = f"{settings.smtp_host}:{settings.smtp_port}"
        print(f"Email sent to {recipient} via {server}")
        print(f"Subject: {subject}")
        return {
            "recipient": recipient,
            "subject": subject,
            "message_id": message["Message-ID"],
            "smtp_server": server,
        }
