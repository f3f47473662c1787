"""EmailNotificationJob against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.config import Settings
from jobs.base import JobError
from jobs.email import EmailNotificationJob
from stores.memory import MemoryStore
from tests.jobs_support import START, free_port, make_context, run_job


class Inbox:
    """aiosmtpd handler keeping every accepted mail."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def text(mail: EmailMessage) -> str:
    """The body with the wire's CRLF line ends made plain."""
    return str(mail.get_content()).replace("\r\n", "\n")


def start(inbox: Inbox, **smtp_options: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    return controller


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    controller = start(box)
    yield box, controller.port
    controller.stop()


def smtp_settings(port: int, **changes: Any) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="cron@example.org",
        extra={"smtp_timeout": 3, **changes.pop("extra", {})},
        **changes,
    )


def test_mail_reaches_the_server(
    inbox: tuple[Inbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    box, port = inbox
    result = run_job(
        EmailNotificationJob,
        make_context(MemoryStore(), smtp_settings(port)),
        "ops@example.com",
        subject="Nightly backup done",
        message="All 4 collections saved.\nBye.",
    )
    [(recipients, mail)] = box.mails
    assert recipients == ["ops@example.com"]
    assert mail["To"] == "ops@example.com" and mail["From"] == "cron@example.org"
    assert mail["Subject"] == "Nightly backup done"
    assert text(mail) == "All 4 collections saved.\nBye.\n"
    assert mail["Date"].datetime == START  # from the lent clock
    assert result == {
        "recipient": "ops@example.com",
        "subject": "Nightly backup done",
        "message_id": mail["Message-ID"],
        "smtp_server": f"127.0.0.1:{port}",
    }
    assert f"Email sent to ops@example.com via 127.0.0.1:{port}" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_is_used_when_configured() -> None:
    seen: list[tuple[str, str]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> AuthResult:
        assert isinstance(auth, LoginPassword)
        seen.append((auth.login.decode(), auth.password.decode()))
        # handled=False: the server itself answers 535 to a refused login
        return AuthResult(success=auth.password == b"s3cret", handled=False)

    box = Inbox()
    controller = start(box, authenticator=authenticator, auth_require_tls=False, auth_required=True)
    try:
        good = smtp_settings(controller.port, smtp_user="cron", smtp_password="s3cret")
        run_job(EmailNotificationJob, make_context(MemoryStore(), good), "a@example.com")
        assert seen == [("cron", "s3cret")] and len(box.mails) == 1
        assert box.mails[0][1]["Subject"] == "Notification from cronwell"
        bad = smtp_settings(controller.port, smtp_user="cron", smtp_password="wrong")
        with pytest.raises(
            JobError, match=f"Sending mail through 127.0.0.1:{controller.port} failed"
        ):
            run_job(EmailNotificationJob, make_context(MemoryStore(), bad), "a@example.com")
        assert len(box.mails) == 1
    finally:
        controller.stop()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cronwell test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_verifies_the_relay(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    box = Inbox()
    controller = start(box, tls_context=tls, require_starttls=True)
    try:
        trusted = smtp_settings(
            controller.port, smtp_starttls=True, extra={"smtp_cafile": str(cert)}
        )
        run_job(
            EmailNotificationJob,
            make_context(MemoryStore(), trusted),
            "a@example.com",
            message="over TLS",
        )
        assert text(box.mails[0][1]) == "over TLS\n"
        untrusted = smtp_settings(controller.port, smtp_starttls=True)
        with pytest.raises(JobError, match="CERTIFICATE_VERIFY_FAILED"):
            run_job(EmailNotificationJob, make_context(MemoryStore(), untrusted), "a@example.com")
        plain = smtp_settings(controller.port)  # the relay insists on STARTTLS
        with pytest.raises(JobError, match="failed"):
            run_job(EmailNotificationJob, make_context(MemoryStore(), plain), "a@example.com")
        assert len(box.mails) == 1
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, r"EmailNotificationJob needs pub_args\[0\]: recipient \(missing\)"),
        (("",), {}, "recipient must be a non-empty string"),
        (("not-an-address",), {}, "recipient is not a valid email address: 'not-an-address'"),
        (("a@b@c.com",), {}, "not a valid email address"),
        (("Ann <ann@example.com>",), {}, "not a valid email address"),
        (("a@example..com",), {}, "not a valid email address"),
        (("a@example.com, b@example.com",), {}, "not a valid email address"),
        (
            ("a@example.com",),
            {"subject": "x\r\nBcc: victim@example.com"},
            "subject must be one line",
        ),
        (("a@example.com",), {"subject": 5}, "subject must be a string"),
        (("a@example.com",), {"message": ["x"]}, "message must be a string"),
        (("a@example.com",), {"body": "x"}, "unknown pub_kwargs body; it takes: message, subject"),
    ],
)
def test_bad_arguments_fail_before_any_connection(
    inbox: tuple[Inbox, int], args: tuple[str, ...], kwargs: dict[str, Any], message: str
) -> None:
    box, port = inbox
    with pytest.raises(JobError, match=message):
        run_job(
            EmailNotificationJob, make_context(MemoryStore(), smtp_settings(port)), *args, **kwargs
        )
    assert box.mails == []


def test_unreachable_server_fails_clearly() -> None:
    port = free_port()
    with pytest.raises(JobError, match=f"Sending mail through 127.0.0.1:{port} failed: .*refused"):
        run_job(
            EmailNotificationJob, make_context(MemoryStore(), smtp_settings(port)), "a@example.com"
        )
