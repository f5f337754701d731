"""Logs carry no personal data: e-mails, phones and personal fields' values are masked in
messages and tracebacks, and each record is one JSON object."""

from __future__ import annotations

import json
import logging

import pytest

from tsunagu.logs import JsonLines, Masking, mask


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("lookup taro.yamada+shop@example.co.jp failed", "taro.yamada+shop@example.co.jp"),
        ("call 090-1234-5678 now", "090-1234-5678"),
        ("call 09012345678 now", "09012345678"),
        ("tel +81 90-1234-5678", "90-1234-5678"),
        ("tel +819012345678", "+819012345678"),
        ("電話 ０９０－１２３４－５６７８ まで", "０９０－１２３４－５６７８"),
        ("fixed line 03-1234-5678", "03-1234-5678"),
        ('{"name": "山田 太郎", "sku": "A1"}', "山田 太郎"),
        ("{'name_kana': 'ﾔﾏﾀﾞ ﾀﾛｳ'}", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("address=東京都渋谷区渋谷2-21-1, store=S001", "東京都渋谷区渋谷2-21-1"),
        ("input_value={'email': 'x@y.jp', 'birth_date': '1990-01-02'}", "1990-01-02"),
        ("member_card: 2000000012345", "2000000012345"),
    ],
)
def test_personal_data_is_masked(text: str, gone: str) -> None:
    masked = mask(text)
    assert gone not in masked
    assert "[" in masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-04T20:03:03.123Z committed 20000 rows in 0.081 s",
        "order O-20261204-0001 revenue 12800 yen store S001",
        "profile p_3f2a9c1b0d4e5f60 merged into p_0a1b2c3d4e5f6071",
        "GET /v1/analytics/kpis 200",
    ],
)
def test_what_is_not_personal_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_a_record_is_one_json_object_with_its_exception_masked() -> None:
    try:
        raise ValueError("email: 'hanako@example.jp' is not reachable (phone 080-9876-5432)")
    except ValueError:
        record = logging.getLogger("tsunagu.test").makeRecord(
            "tsunagu.test", logging.ERROR, __file__, 1, "send to %s failed", ("hanako@example.jp",),
            exc_info=__import__("sys").exc_info(), extra={"request_id": "abc", "status": 500},
        )  # fmt: skip
    assert Masking().filter(record)
    line = JsonLines().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "send to [email] failed"
    assert entry["level"] == "error" and entry["logger"] == "tsunagu.test"
    assert entry["request_id"] == "abc" and entry["status"] == 500
    assert entry["time"].endswith("Z")
    assert "ValueError" in entry["exception"]
    assert "hanako" not in line and "9876" not in line
