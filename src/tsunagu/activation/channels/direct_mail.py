"""Direct mail: a row per customer in the print house's CSV, with the Japanese address fields
a label needs (〒 postcode, prefecture, city, two address lines, the name with 様), one file per
campaign under the data dir's `direct-mail/`, UTF-8 with a byte-order mark so that Excel opens
it as such.
"""

from __future__ import annotations

import csv
import re
import threading
import unicodedata
from pathlib import Path

from tsunagu.activation.channels import Delivery, Failed, OutgoingMessage, with_retries

COLUMNS = ("郵便番号", "都道府県", "市区町村", "住所1", "住所2", "宛名", "キャンペーン", "送付キー")
_lock = threading.Lock()
_BUILDING = re.compile(r"^(.*?\d+(?:[-－ー]\d+)*)\s*(\S.*)?$")
_CITY = re.compile(r"^(.+?郡.+?[町村]|.+?市.+?区|.+?[市区町村])(.*)$")


def label(extra: dict[str, str]) -> tuple[str, str, str, str, str, str]:
    """(〒postcode, prefecture, city, line 1, line 2, name 様) of a member's address."""
    postcode = re.sub(r"\D", "", unicodedata.normalize("NFKC", extra.get("postcode") or ""))
    if len(postcode) != 7:
        raise Failed("postcode: not a seven-digit postcode")
    address = unicodedata.normalize("NFKC", extra.get("address") or "").strip()
    if not address:
        raise Failed("address: none")
    city = extra.get("city") or ""
    if not city and (in_address := _CITY.match(address)):
        city, address = in_address.group(1), in_address.group(2).strip()
    found = _BUILDING.match(address)
    line1, line2 = (found.group(1), found.group(2) or "") if found else (address, "")
    name = (extra.get("name") or "").strip()
    if not name:
        raise Failed("name: none")
    return (
        f"〒{postcode[:3]}-{postcode[3:]}",
        extra.get("prefecture") or "",
        city,
        line1,
        line2,
        f"{name} 様",
    )


class DirectMail:
    name = "dm"

    def __init__(self, *, directory: Path) -> None:
        self.directory = directory

    def path(self, campaign_id: str | None) -> Path:
        return self.directory / f"{campaign_id or 'journeys'}.csv"

    def send(self, message: OutgoingMessage) -> Delivery:
        def attempt() -> str | None:
            row = label(message.extra)
            target = self.path(message.campaign_id)
            with _lock:
                target.parent.mkdir(parents=True, exist_ok=True)
                new = not target.exists()
                with target.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as fh:
                    writer = csv.writer(fh)
                    if new:
                        writer.writerow(COLUMNS)
                    writer.writerow([*row, message.campaign_id or "", message.send_key])
            return str(target)

        return with_retries(attempt)
