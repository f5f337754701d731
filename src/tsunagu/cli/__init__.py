"""`tsunagu ...`: a thin shell over the domains (see DESIGN.md for the command contract).

While `tsunagu serve` runs it owns the store (DuckDB has one writer process); commands that need
the store then go through the server's HTTP API on the same machine (see remote.py).
"""

from __future__ import annotations

from tsunagu.cli import activation, analytics, data, identity, keys, operations, recommend, users  # noqa: F401 - the commands register themselves
from tsunagu.cli.common import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
