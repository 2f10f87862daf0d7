"""The gates an export batch must pass before anything is pushed: its shape (pandera), its
values (a great-expectations suite built from the CRM's described fields), the share of rows
rejected, and the field mapping's review. Each gate answers passed + a description a person can
act on; the batch assets run them as blocking asset checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crm_pipelines.export.values import FieldSpec, kind
from crm_pipelines.frames import JsonFields, json_keys

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL_REGEX = r"^(https?://)?[^\s/$.?#][^\s]*\.[^\s]+$"
# The batch columns the gates read: not the diff, a batch's largest column, which no gate checks.
GATE_COLUMNS = ("enginy_id", "action", "crm_id", "fields", "reason", "match_key", "outcome")


class ExportBatch(pa.DataFrameModel):
    enginy_id: pa.typing.Series[str] = pa.Field(unique=True, coerce=True)
    action: pa.typing.Series[str] = pa.Field(isin=["create", "update", "skip", "reject"], coerce=True)
    crm_id: pa.typing.Series[str] = pa.Field(nullable=True, coerce=True)
    fields: pa.typing.Series[object]
    reason: pa.typing.Series[str] = pa.Field(nullable=True, coerce=True)

    @pa.dataframe_check
    def updates_name_their_record(cls, frame: pd.DataFrame) -> pd.Series:
        return ~frame["action"].eq("update") | frame["crm_id"].notna()

    @pa.dataframe_check
    def skips_and_rejections_say_why(cls, frame: pd.DataFrame) -> pd.Series:
        return ~frame["action"].isin(["skip", "reject"]) | frame["reason"].notna()


@dataclass
class Gate:
    name: str
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)


def schema_gate(batch: pd.DataFrame) -> Gate:
    try:
        ExportBatch.validate(batch, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases[["check", "column", "failure_case"]].astype(str).head(20)
        checks = sorted(set(errors.failure_cases["check"].astype(str)))
        return Gate("batch_schema", False, f"the batch fails {', '.join(checks)}",
                    {"failures": failures.to_dict("records")})
    return Gate("batch_schema", True, "the batch has the export batch's shape")


def rejected_rows(batch: pd.DataFrame, first: int = 20) -> list[dict[str, str]]:
    """The first rejected rows, each its Enginy id and the reason (which names the CRM field and
    the value refused): what a person fixes before launching again."""
    rows = batch[batch["action"].eq("reject")].head(first)
    return [{"enginy_id": str(e), "reason": str(r)} for e, r in zip(rows["enginy_id"], rows["reason"])]


def rejection_gate(batch: pd.DataFrame, max_share: float) -> Gate:
    rejected = int(batch["action"].eq("reject").sum())
    share = rejected / len(batch) if len(batch) else 0.0
    rows = rejected_rows(batch)
    text = f"{rejected} of {len(batch)} rows rejected ({share:.1%}; the limit is {max_share:.0%})"
    if share > max_share:
        text += ", e.g. " + "; ".join(f"{r['enginy_id']}: {r['reason']}" for r in rows[:5])
    return Gate("rejected_share", share <= max_share, text,
                {"rejected": rejected, "share": round(share, 4), "rows": rows})


def values_frame(batch: pd.DataFrame) -> pd.DataFrame:
    """The rows that will be written, one column per CRM field written, for the suite; ``fields``
    as the warehouse keeps them (JSON text: read by DuckDB, a column at a time) or parsed."""
    writing = batch[batch["action"].isin(["create", "update"])]
    fields = writing["fields"]
    if any(isinstance(v, str) for v in fields.head(100)):
        names = json_keys(fields)
        parsed, rows = JsonFields(fields, names), np.arange(len(fields))
        values = pd.DataFrame({name: parsed.on(name, rows) for name in names}, index=writing.index)
    else:
        values = pd.DataFrame(list(fields), index=writing.index)
    values.insert(0, "action", writing["action"])
    values.insert(0, "enginy_id", writing["enginy_id"])
    values["match_key"] = writing.get("match_key")
    values["outcome"] = writing.get("outcome")
    return values.reset_index(drop=True)


def expectation_suite_gates(batch: pd.DataFrame, schema: dict[str, FieldSpec], required: list[str],
                            previous_rows: int | None, growth: float = 3.0) -> list[Gate]:
    """great-expectations over what will be written: required fields on creates, email and URL
    formats, picklist values within the described options, one create per match key, no
    ambiguous record written, and a row count within bounds of the previous batch."""
    import great_expectations as gx  # a 4-second import: only where the suite runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = values_frame(batch)
    creates = frame[frame["action"].eq("create")].reset_index(drop=True)
    required = required if len(creates) else []
    creates = creates.assign(**{name: None for name in required if name not in creates.columns})
    frames = {"creates": creates, "writes": frame.assign(ambiguous=frame["outcome"].eq("ambiguous")), "batch": batch}
    planned: list[tuple[str, str, Any, str]] = []  # (frame, gate name, expectation, what it checks)
    for name in required:
        planned.append(("creates", f"required_{name}", gx.expectations.ExpectColumnValuesToNotBeNull(column=name),
                        f"every create sets the required field {name}"))
    for name in frame.columns:
        spec = schema.get(name)
        if spec is None:
            continue
        k = kind(spec.type)
        if k == "email":
            planned.append(("writes", f"email_format_{name}", gx.expectations.ExpectColumnValuesToMatchRegex(
                column=name, regex=EMAIL_REGEX), f"{name} holds email addresses"))
        elif k == "url":
            planned.append(("writes", f"url_format_{name}", gx.expectations.ExpectColumnValuesToMatchRegex(
                column=name, regex=URL_REGEX), f"{name} holds URLs"))
        elif k == "picklist" and spec.options:
            planned.append(("writes", f"picklist_{name}", gx.expectations.ExpectColumnValuesToBeInSet(
                column=name, value_set=list(spec.options)), f"{name} holds only its described options"))
    if creates["match_key"].notna().any():
        planned.append(("creates", "one_create_per_match_key",
                        gx.expectations.ExpectColumnValuesToBeUnique(column="match_key"),
                        "no two creates for the same identifier key"))
    planned.append(("writes", "no_ambiguous_written",
                    gx.expectations.ExpectColumnValuesToBeInSet(column="ambiguous", value_set=[False]),
                    "no record with an ambiguous match is written"))
    if previous_rows:
        low, high = int(previous_rows / growth), int(previous_rows * growth) + 100
        planned.append(("batch", "row_count_in_bounds", gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=low, max_value=high), f"the batch has between {low} and {high} rows (last run: {previous_rows})"))

    # One suite per frame, validated in one pass: great-expectations hashes a frame each time it
    # makes a batch of it, which cost more than the checks themselves when each gate had its own.
    context = gx.get_context(mode="ephemeral")
    # Its tqdm bars would land between the run's log lines on every terminal running a push.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("export")
    results: dict[str, Any] = {}
    for frame_name, data in frames.items():
        mine = [(name, expectation) for f, name, expectation, _ in planned if f == frame_name]
        if not mine:
            continue
        for name, expectation in mine:
            expectation.meta = {"gate": name}
        # Only the columns the suite reads: great-expectations fingerprints the frame it is given,
        # and a frame with dict columns (fields, diff) it pickles whole — seconds and gigabytes at
        # a million rows for a fingerprint no gate uses.
        columns = list(dict.fromkeys(getattr(e, "column", None) or data.columns[0] for _, e in mine))
        batch_of_frame = source.add_dataframe_asset(frame_name).add_batch_definition_whole_dataframe("all") \
            .get_batch(batch_parameters={"dataframe": data[columns]})
        suite = gx.ExpectationSuite(name=frame_name, expectations=[expectation for _, expectation in mine])
        for result in batch_of_frame.validate(suite).results:
            results[result.expectation_config.meta["gate"]] = result

    gates: list[Gate] = []
    for _, name, _, describe in planned:
        result = results[name]
        unexpected = result.result.get("partial_unexpected_list") or []
        gates.append(Gate(name, bool(result.success), describe if result.success else
                          f"{describe}: failed ({result.result.get('unexpected_count', '?')} rows, e.g. "
                          f"{[str(u) for u in unexpected[:5]]})", {"observed": _plain(result.result)}))
    return gates


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in result.items()
            if k in ("element_count", "unexpected_count", "unexpected_percent", "observed_value")}
