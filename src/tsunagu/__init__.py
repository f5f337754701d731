"""tsunagu (つなぐ): one customer across online and offline channels."""

from __future__ import annotations

__version__ = "0.1.0"
