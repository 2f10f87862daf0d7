"""`crm-pipelines match`: identifier rules on ad-hoc CSV files, without Dagster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from crm_pipelines.config import ConfigError, parse_config, read_yaml
from crm_pipelines.matching import near_miss
from crm_pipelines.matching.engine import AMBIGUOUS, MATCHED, CrmIndex
from crm_pipelines.matching.rules import MatchRules

PAIR_COLUMNS = ["left_id", "right_id", "outcome", "matched_by", "score"]


def _rules(path: Path) -> MatchRules:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a mapping with custom: — fix: start from the example in "
                                 "`crm-pipelines match --help`"])
    return parse_config(data, path, MatchRules)


def _read(path: Path, id_column: str | None, as_name: str, columns: set[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str)
    for column in sorted(columns | {id_column} - {None}):
        if column not in frame:
            raise ValueError(f"{path}: no column {column!r}, which the rules file names — fix: use one of "
                             f"{', '.join(frame.columns)}")
    ids = frame[id_column] if id_column else pd.Series(np.arange(1, len(frame) + 1).astype(str))
    return frame.assign(**{as_name: ids.to_numpy()})


def link(rules: MatchRules, left: pd.DataFrame, right: pd.DataFrame, near_misses: bool) -> pd.DataFrame:
    """Pairs (left row, right row) the rules match, ambiguous ones included; near misses scored."""
    # Files outside the CRM have no account ids to match through; LinkedIn is used if both have it.
    usable = [pair for pair in near_miss.FIELDS if pair[0].field in left and pair[1].field in right]
    index = CrmIndex(rules.rule(), right, also=usable if near_misses else ())
    matches = index.match(left)
    found = matches[matches["outcome"].isin([MATCHED, AMBIGUOUS])]
    right_ids = found["crm_id"].where(found["outcome"] == MATCHED, found["candidates"]).str.split(", ")
    pairs = found.assign(right_id=right_ids).explode("right_id").rename(columns={"enginy_id": "left_id"})
    pairs = pairs.assign(score=np.nan)[PAIR_COLUMNS]
    if near_misses:
        proposed = near_miss.add_near_misses(index, matches).dropna(subset=["near_miss_crm_id"])
        pairs = pd.concat([pairs, pd.DataFrame({
            "left_id": proposed["enginy_id"], "right_id": proposed["near_miss_crm_id"], "outcome": "near_miss",
            "matched_by": proposed["near_miss_detail"], "score": proposed["near_miss_score"]})], ignore_index=True)
    return pairs.reset_index(drop=True)


def dedup(rules: MatchRules, records: pd.DataFrame) -> pd.DataFrame:
    """Pairs of rows of one file that the rules say are the same: each row of a duplicate group
    with the group's first row."""
    groups = CrmIndex(rules.rule(one_file=True), records).duplicates()
    others = groups[groups["crm_id"] != groups["duplicate_group"]]
    return pd.DataFrame({"left_id": others["duplicate_group"], "right_id": others["crm_id"], "outcome": "duplicate",
                         "matched_by": others["matched_by"], "score": np.nan}, columns=PAIR_COLUMNS)


def match(
    left: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="CSV file to match (e.g. an Enginy export).")],
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="YAML rules file (see below).")],
    out: Annotated[Path, typer.Option(help="CSV file the pairs are written to.")],
    right: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help=(
        "CSV file to match against (e.g. a CRM export); without it, duplicates inside --left are found."))] = None,
    near_misses: Annotated[bool, typer.Option("--near-misses", help=(
        "Also propose likely matches the rules missed, with a score (both files need first_name, last_name "
        "and company_name columns; linkedin_url is used when present)."))] = False,
) -> None:
    """Link two CSV files, or find the duplicates inside one, with identifier rules.

    The rules are the custom mapping of the integration config, over the files' own columns:

    \b
    left_id: id                 # optional: the column naming each row (default: its row number)
    right_id: crm_id
    custom:                     # OR of AND-groups; enginy: a column of --left, crm: one of --right
      - [{enginy: linkedin_url, crm: LinkedIn, normalize: linkedin}]
      - [{enginy: first_name, crm: FirstName, normalize: person_name},
         {enginy: last_name, crm: LastName, normalize: person_name},
         {enginy: company_name, crm: Company, normalize: company_name}]

    normalize: auto, exact, text, person_name, company_name, domain, linkedin, email, phone.
    Writes one row per pair: left_id, right_id, outcome (matched, ambiguous, duplicate or
    near_miss), matched_by (the AND-group) and, for near misses, score.
    """
    try:
        rules = _rules(config)
        left_columns = {c.enginy for group in rules.custom for c in group}
        right_columns = {c.crm for group in rules.custom for c in group}
        if near_misses:
            left_columns |= {e.field for e, _ in near_miss.REQUIRED}
            right_columns |= {c.field for _, c in near_miss.REQUIRED}
        if right is None:
            if near_misses:
                raise typer.BadParameter("--near-misses needs --right: near misses are proposed between two files")
            pairs = dedup(rules, _read(left, rules.left_id, "crm_id", left_columns))
        else:
            pairs = link(rules, _read(left, rules.left_id, "id", left_columns),
                         _read(right, rules.right_id, "crm_id", right_columns), near_misses)
    except (ConfigError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(out, index=False)
    counts = pairs["outcome"].value_counts()
    typer.echo(f"{len(pairs):,} pairs → {out} (" + ", ".join(f"{k}: {v:,}" for k, v in counts.items()) + ")")
