"""`python -m tsunagu` is the `tsunagu` command."""

from __future__ import annotations

from tsunagu.cli import app

app()
