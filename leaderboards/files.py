"""The timestamps the ledger's files carry (they are written whole by `envs.json_files`)."""

from __future__ import annotations

import datetime as dt


def utc_now() -> str:
    """UTC now, ISO 8601 to the second with a Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
