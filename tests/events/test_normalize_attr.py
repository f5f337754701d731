"""normalize reads a message's fields without pydantic's slow path: the same as getattr."""

from __future__ import annotations

import pytest

from tsunagu.events.model import MODELS
from tsunagu.events.normalize import _attr

NAMES = ("properties", "event", "name", "traits", "previous_id", "category", "nothing")


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_field_reads_as_getattr_does(kind: str) -> None:
    raw = {"type": kind, "userId": "u1", "event": "E", "name": "N", "previousId": "p0",
           "traits": {"email": "a@example.jp"}, "properties": {"sku": "S"},
           "groupId": "g1", "category": "C"}  # fmt: skip
    msg = MODELS[kind].model_validate(raw)
    for name in NAMES:
        assert _attr(msg, name) == getattr(msg, name, None), (kind, name)
    bare = MODELS[kind].model_validate({"type": kind, "userId": "u1", "event": "E",
                                        "previousId": "p0", "groupId": "g1"})  # fmt: skip
    for name in NAMES:
        assert _attr(bare, name) == getattr(bare, name, None), (kind, name)
