"""Writing SQL text safely where a value cannot be a parameter (DDL, COPY, macro bodies)."""

from __future__ import annotations


def literal(value: str) -> str:
    """A SQL string literal: `'it''s'`."""
    return "'" + value.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier, inner double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'
