"""E-mail over SMTP: a Japanese subject and body encoded as mail readers expect (UTF-8, the
subject as RFC 2047 words, the parts in base64 so that no 8-bit byte crosses a relay), a plain
part and an HTML one, and `List-Unsubscribe` (with the one-click header of
RFC 8058) so that mail providers show an unsubscribe button.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from tsunagu.activation.channels import Delivery, Failed, OutgoingMessage, Retryable, with_retries


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        sender: str,
        sender_name: str | None = None,
        timeout: float = 15,
    ) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls, self.timeout = starttls, timeout
        self.sender = formataddr((sender_name, sender)) if sender_name else sender
        self.domain = sender.rpartition("@")[2] or "tsunagu.local"

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or message.text.splitlines()[0][:60]
        mail["Message-ID"] = make_msgid(idstring=message.retry_key[:16], domain=self.domain)
        mail["X-Tsunagu-Send"] = message.send_key
        if message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body = message.text if not message.url else f"{message.text}\n\n{message.url}"
        mail.set_content(body, charset="utf-8", cte="base64")
        if message.html:
            mail.add_alternative(_with_pixel(message.html, message.open_url), subtype="html",
                                 charset="utf-8", cte="base64")  # fmt: skip
        return mail

    def send(self, message: OutgoingMessage) -> Delivery:
        mail = self.compose(message)

        def attempt() -> str | None:
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                    if self.starttls:
                        smtp.starttls(context=ssl.create_default_context())
                    if self.user:
                        smtp.login(self.user, self.password or "")
                    smtp.send_message(mail)
            except smtplib.SMTPRecipientsRefused as exc:
                raise Failed(f"recipient refused: {exc.recipients}") from None
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:  # temporary: greylisting, a full queue
                    raise Retryable(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
                raise Failed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
            except (smtplib.SMTPException, OSError) as exc:
                raise Retryable(f"SMTP: {exc}") from None
            return str(mail["Message-ID"])

        return with_retries(attempt)


def _with_pixel(page: str, open_url: str | None) -> str:
    """The HTML part with a 1×1 image that tells tsunagu the mail was opened (where the reader
    loads images), at the end of the body."""
    if not open_url:
        return page
    pixel = f'<img src="{html.escape(open_url)}" width="1" height="1" alt="" style="border:0">'
    at = page.lower().rfind("</body>")
    return page[:at] + pixel + page[at:] if at >= 0 else page + pixel
