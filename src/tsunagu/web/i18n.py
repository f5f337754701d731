"""Japanese first, English on request (`?lang=en`)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")

LANGS = ("ja", "en")

TEXT: dict[str, dict[str, str]] = {
    "title": {"ja": "つなぐ ダッシュボード", "en": "tsunagu dashboard"},
    "tagline": {
        "ja": "オンラインと店舗をひとりのお客さまでつなぐ",
        "en": "One customer across online and stores",
    },
    "members": {"ja": "会員数", "en": "Members"},
    "stores": {"ja": "店舗数", "en": "Stores"},
    "products": {"ja": "商品数", "en": "Products"},
    "events": {"ja": "イベント数", "en": "Events"},
    "by_channel": {"ja": "チャネル別イベント", "en": "Events by channel"},
    "channel": {"ja": "チャネル", "en": "Channel"},
    "count": {"ja": "件数", "en": "Count"},
    "last_event": {"ja": "最新イベント", "en": "Latest event"},
    "none": {"ja": "まだデータがありません", "en": "No data yet"},
    "switch": {"ja": "English", "en": "日本語"},
    "api": {"ja": "API ドキュメント", "en": "API docs"},
    "web": {"ja": "EC サイト", "en": "Web"},
    "app": {"ja": "アプリ", "en": "App"},
    "line": {"ja": "LINE", "en": "LINE"},
    "store": {"ja": "店舗", "en": "Store"},
    "call_center": {"ja": "コールセンター", "en": "Call centre"},
    "catalog": {"ja": "カタログ", "en": "Catalogue"},
    "email": {"ja": "メール", "en": "Email"},
}


def lang_of(value: str | None) -> str:
    return value if value in LANGS else "ja"


def translator(lang: str):  # type: ignore[no-untyped-def]
    def t(key: str) -> str:
        entry = TEXT.get(key)
        return entry[lang] if entry else key

    return t
