"""Product search as Japanese shoppers and staff type: width, kana and kanji do not matter.

A name and a query are compared twice: folded (NFKC, so ﾊﾟﾝﾌﾟｽ and ＰＡＮＰＳ are パンプス and
PANPS; lower-case; katakana as hiragana; no spaces), and as readings in hiragana (pykakasi
reads kanji: 靴 is くつ), so くつ finds 痛くない靴, ぱんぷす finds パンプス and ﾎﾞﾙﾄﾞｰ finds
ボルドー. A product matches when every word of the query is in its folded name or its reading.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_KATAKANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}


@lru_cache(maxsize=1)
def _kakasi():  # type: ignore[no-untyped-def]
    import pykakasi

    return pykakasi.kakasi()


def fold(text: str) -> str:
    """NFKC, lower-case, katakana as hiragana, without spaces."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text).lower().translate(_KATAKANA))


def reading(text: str) -> str:
    """The hiragana reading (kanji read, kana as hiragana), folded."""
    normal = unicodedata.normalize("NFKC", text)
    return fold("".join(part["hira"] for part in _kakasi().convert(normal)))


def keys(text: str) -> tuple[str, str]:
    """(folded, reading) of a product name, as `product_search` keeps them."""
    return fold(text), reading(text)


def query_words(query: str) -> list[tuple[str, str]]:
    """Each word of a search, folded and read."""
    words = [w for w in _SPACE.split(unicodedata.normalize("NFKC", query).strip()) if w]
    return [keys(w) for w in words]
