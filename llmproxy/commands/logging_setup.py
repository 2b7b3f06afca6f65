"""Process-wide logging setup, shared by `llmproxy serve` and its worker processes."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    """Timestamped lines on stderr at the given level."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx (the admin client; the upstream client is aiohttp, which does not) logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
