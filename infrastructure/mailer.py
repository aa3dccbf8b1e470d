"""Sending e-mail over SMTP (plain, STARTTLS or implicit TLS), reporting the server's answer."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from application.mail import MailError, SmtpServer
from domain.mail import SmtpSecurity

TIMEOUT_SECONDS = 20


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


class SmtpMailSender:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls or ssl.create_default_context()

    def send(self, server: SmtpServer, to: str, subject: str, body: str) -> str:
        message = EmailMessage()
        try:
            message["From"] = server.sender
            message["To"] = to
            message["Subject"] = " ".join(subject.split())
        except ValueError as error:  # a header the e-mail library refuses: not worth retrying
            raise MailError(f"the message could not be built: {error}") from None
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=server.sender.rsplit("@", 1)[-1])
        message.set_content(body)
        try:
            with self._connect(server) as smtp:
                if server.username:
                    smtp.login(server.username, server.password or "")
                # Step by step rather than sendmail(), to report the server's own answer.
                smtp.ehlo_or_helo_if_needed()
                for step, (code, text), ok in (
                    ("sender refused", smtp.mail(server.sender), (250,)),
                    ("recipient refused", smtp.rcpt(to), (250, 251)),
                ):
                    if code not in ok:
                        raise MailError(f"{step}: {_answer(code, text)}")
                code, text = smtp.data(message.as_bytes())
                if code != 250:
                    raise MailError(f"message refused: {_answer(code, text)}")
                return _answer(code, text)
        except smtplib.SMTPResponseException as error:
            raise MailError(_answer(error.smtp_code, error.smtp_error)) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            where = f"{server.host}:{server.port}"
            raise MailError(f"cannot talk to {where}: {error or type(error).__name__}") from None

    def _connect(self, server: SmtpServer) -> smtplib.SMTP:
        if server.security == SmtpSecurity.TLS:
            return smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT_SECONDS, context=self._tls
            )
        smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
        if server.security == SmtpSecurity.STARTTLS:
            try:
                smtp.starttls(context=self._tls)
            except BaseException:
                smtp.close()
                raise
        return smtp
