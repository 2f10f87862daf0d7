"""Helpers the emulators share when they load the generated CRM side
(crm_pipelines/enginy/crm_side.py) into their own objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd


def seed_time(value: Any) -> datetime | None:
    """A generated timestamp as an aware datetime (naive ones are UTC); None when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def seed_text(value: Any) -> str | None:
    """A generated value as stripped text; None when missing or blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None
