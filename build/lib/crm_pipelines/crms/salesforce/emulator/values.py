"""Field values as the org keeps and answers them: system fields, timestamps, wire formats."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from crm_pipelines.crms.salesforce.emulator.schema import API_VERSION, INTEGRATION_USER_ID, Field
from crm_pipelines.sandbox.store import Record

HIDDEN_PREFIX = "_"  # store-only fields such as _seed_id, never answered over the API

_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$")


def format_datetime(value: datetime) -> str:
    """Salesforce's JSON form: 2024-01-01T00:00:00.000+0000."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def format_bulk_datetime(value: datetime) -> str:
    """Bulk API CSV form: 2024-01-01T00:00:00.000Z."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime | None:
    """Any ISO-8601 form Salesforce accepts (Z, +00:00, +0000, fractional seconds); None if not one."""
    m = _DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or ".0")[1:].ljust(6, "0")[:6])
    try:
        value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=timezone.utc)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
        value = value - timedelta(minutes=offset)
    return value


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None
    except ValueError:
        return None


def full_name(fields: dict[str, Any]) -> str | None:
    parts = [fields.get("FirstName"), fields.get("LastName")]
    name = " ".join(p for p in parts if p)
    return name or None


def raw_value(obj: str, record: Record, name: str) -> Any:
    """A field's value as Python: datetimes as aware datetimes, everything else as stored."""
    if name == "Id":
        return record.id
    if name == "IsDeleted":
        return record.is_deleted
    if name == "CreatedDate":
        return record.created_at
    if name in ("LastModifiedDate", "SystemModstamp"):
        return record.modified_at
    if name in ("CreatedById", "LastModifiedById"):
        return record.fields.get(name, INTEGRATION_USER_ID)
    if name == "Name" and obj in ("Contact", "Lead", "User"):
        return full_name(record.fields)
    if name == "IsClosed" and obj == "Task":
        return record.fields.get("Status") == "Completed"
    if name in ("IsConverted", "HasOptedOutOfEmail"):
        return bool(record.fields.get(name, False))
    return record.fields.get(name)


def python_value(f: Field, value: Any) -> Any:
    """Normalise a stored value for comparison: datetime fields become datetimes."""
    if value is None:
        return None
    if f.type == "datetime" and isinstance(value, str):
        return parse_datetime(value)
    return value


def to_json(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "datetime":
        value = python_value(f, value)
        return format_datetime(value) if isinstance(value, datetime) else None
    if f.type == "double":
        return float(value)
    if f.type == "int":
        return int(value)
    return value


def to_csv(f: Field, value: Any) -> str:
    if value is None:
        return ""
    if f.type == "datetime":
        value = python_value(f, value)
        return format_bulk_datetime(value) if isinstance(value, datetime) else ""
    if f.type == "boolean":
        return "true" if value else "false"
    return str(value)


def record_url(version: str, obj: str, record_id: str) -> str:
    return f"/services/data/v{version or API_VERSION}/sobjects/{obj}/{record_id}"


def attributes(version: str, obj: str, record_id: str) -> dict[str, str]:
    return {"type": obj, "url": record_url(version, obj, record_id)}
