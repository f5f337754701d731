"""The server's logs: one JSON object a line, with personal data masked.

Every record, the libraries' too (uvicorn's errors with their tracebacks), goes through
`Masking`: e-mail addresses and phone numbers anywhere in the text become `[email]` and
`[phone]`, and the values of fields that hold personal data (`name`, `email`, `address`, ...)
written as `key=value`, `"key": "value"` or `'key': 'value'` become `[masked]`. Request lines
(`tsunagu.access`) carry the route's template, not the path, and no query string: a look-up by
e-mail leaves no e-mail in the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

PERSONAL_KEYS = (
    "name", "name_kana", "first_name", "last_name", "email", "phone", "address", "postcode",
    "birth_date", "birthday", "line_user_id", "member_card", "device_id", "password",
)  # fmt: skip
"""Fields whose values are personal data wherever they appear in a message."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[-\s]?\d{1,4}|0\d{1,4})[-\s]?\d{1,4}[-\s]?\d{3,4}(?!\w)"
    r"|[＋+]?[０-９][０-９－ー\-]{8,14}[０-９]"
)
_KEYS = "|".join(PERSONAL_KEYS)
_KEYED = re.compile(
    rf"""(?P<key>["']?(?:{_KEYS})["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,}}\]]+)""",
    re.IGNORECASE,
)
_CONTEXT = ("request_id", "method", "route", "status", "seconds", "client")


def mask(text: str) -> str:
    """`text` with e-mails, phones and the values of personal fields replaced."""
    text = _KEYED.sub(lambda m: m.group("key") + "[masked]", text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub("[phone]", text)


class Masking(logging.Filter):
    """Masks a record's message and its exception in place (before any handler formats it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        for key in _CONTEXT:
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure(*, level: str = "info", json_lines: bool = True) -> None:
    """Send every logger's records to stderr through the mask, as JSON lines (or plain text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Masking())
    handler.setFormatter(
        JsonLines()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
