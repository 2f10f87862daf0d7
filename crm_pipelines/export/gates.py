"""The gates an export batch must pass before anything is pushed: its shape (pandera), what holds
of it as a whole (a great-expectations suite), the share of rows rejected, and the field mapping's
review. Each gate answers passed + a description a person can act on; the batch assets run them as
blocking asset checks. What is wrong with one record (a value the CRM would refuse, a required
field it lacks) rejects that record when the batch is built, never the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

# The batch columns the gates read: not the diff, a batch's largest column, which no gate checks
# (the fields' values were checked row by row when the batch was built; the schema gate wants the column).
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


def expectation_suite_gates(batch: pd.DataFrame, previous_rows: int | None, growth: float = 3.0) -> list[Gate]:
    """great-expectations over the batch as a whole: one create per match key, no ambiguous record
    written, and a row count within bounds of the previous batch. A value the CRM would refuse, or
    a create without a required field, is no gate's business: that row alone is rejected, with its
    reason (build_batch), and only their share can stop the push (rejection_gate). A failing gate
    names the records (their Enginy ids) that fail it."""
    import great_expectations as gx  # a 4-second import: only where the suite runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    def column(name: str) -> pd.Series:
        return batch[name] if name in batch else pd.Series(None, index=batch.index, dtype=object)

    writing = batch["action"].isin(["create", "update"])
    creates = pd.DataFrame({"enginy_id": batch["enginy_id"], "match_key": column("match_key")})[
        batch["action"].eq("create")].reset_index(drop=True)
    writes = pd.DataFrame({"enginy_id": batch["enginy_id"], "ambiguous": column("outcome").eq("ambiguous")})[
        writing].reset_index(drop=True)
    frames = {"creates": creates, "writes": writes, "batch": batch}
    # (frame, gate name, expectation, what it checks, the Enginy ids of the records failing it)
    planned: list[tuple[str, str, Any, str, pd.Series]] = []
    if creates["match_key"].notna().any():
        twins = creates["match_key"].notna() & creates["match_key"].duplicated(keep=False)
        planned.append(("creates", "one_create_per_match_key",
                        gx.expectations.ExpectColumnValuesToBeUnique(column="match_key"),
                        "no two creates for the same identifier key", creates.loc[twins, "enginy_id"]))
    planned.append(("writes", "no_ambiguous_written",
                    gx.expectations.ExpectColumnValuesToBeInSet(column="ambiguous", value_set=[False]),
                    "no record with an ambiguous match is written", writes.loc[writes["ambiguous"], "enginy_id"]))
    if previous_rows:
        low, high = int(previous_rows / growth), int(previous_rows * growth) + 100
        planned.append(("batch", "row_count_in_bounds", gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=low, max_value=high), f"the batch has between {low} and {high} rows (last run: {previous_rows})",
            pd.Series([], dtype=object)))

    # One suite per frame, validated in one pass: great-expectations hashes a frame each time it
    # makes a batch of it, which cost more than the checks themselves when each gate had its own.
    context = gx.get_context(mode="ephemeral")
    # Its tqdm bars would land between the run's log lines on every terminal running a push.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("export")
    results: dict[str, Any] = {}
    for frame_name, data in frames.items():
        mine = [(name, expectation) for f, name, expectation, _, _ in planned if f == frame_name]
        if not mine:
            continue
        for name, expectation in mine:
            expectation.meta = {"gate": name}
        # Only the columns the suite reads: great-expectations fingerprints the frame it is given,
        # and a frame with JSON columns (fields, diff) it hashes whole — seconds at a million rows
        # for a fingerprint no gate uses.
        columns = list(dict.fromkeys(getattr(e, "column", None) or data.columns[0] for _, e in mine))
        batch_of_frame = source.add_dataframe_asset(frame_name).add_batch_definition_whole_dataframe("all") \
            .get_batch(batch_parameters={"dataframe": data[columns]})
        suite = gx.ExpectationSuite(name=frame_name, expectations=[expectation for _, expectation in mine])
        for result in batch_of_frame.validate(suite).results:
            results[result.expectation_config.meta["gate"]] = result

    gates: list[Gate] = []
    for _, name, _, describe, offenders in planned:
        result = results[name]
        named = ", ".join(map(str, offenders.head(5))) + (" …" if len(offenders) > 5 else "")
        gates.append(Gate(name, bool(result.success), describe if result.success else
                          f"{describe}: failed ({result.result.get('unexpected_count', '?')} rows"
                          + (f": Enginy ids {named})" if named else ")"),
                          {"observed": _plain(result.result), "enginy_ids": offenders.head(20).astype(str).tolist()}))
    return gates


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in result.items()
            if k in ("element_count", "unexpected_count", "unexpected_percent", "observed_value")}
