"""The match-quality report analysts read: outcome rates per object and per rule group,
identifier fill rates, matched and ambiguous records, duplicates already inside the CRM and near
misses, under a header saying when, for which CRM, under which rules and in which run.

Every figure is computed here from the match tables, once, and both renderings (markdown for
the Dagster UI, a self-contained HTML page with inline SVG charts) print those same tables.
Records are shown with their name and domain or email beside their id; only the shown records
are looked up and formatted, however large the tables.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import numpy as np
import pandas as pd

from crm_pipelines.frames import is_in
from crm_pipelines.matching.engine import AMBIGUOUS, MATCH_COLUMNS, MATCHED, NEW, OUTCOMES
from crm_pipelines.matching.near_miss import NEAR_MISS_COLUMNS
from crm_pipelines.matching.rules import Rule

SAMPLES = 10
# An ambiguous record can have hundreds of candidates; the ids are all listed, names for the first few.
NAMED_CANDIDATES = 5
SCORE_BINS = np.round(np.linspace(0.9, 1.0, 11), 2)
COLOURS = {MATCHED: "#2e7d32", NEW: "#1565c0", AMBIGUOUS: "#ef6c00"}
# Leads are matched together with contacts (crm_people), and their duplicates found among both,
# so the report counts a lead as a contact.
REPORTED_AS = {"leads": "contacts"}


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


@dataclass(frozen=True)
class ReportHeader:
    """What the report is of: when it was made, the CRM, the rules and where they come from, the run."""

    generated_at: datetime
    crm: str
    rules: dict[str, Rule]  # object → its identifier rule
    config_path: str
    run_id: str

    def lines(self) -> list[tuple[str, str]]:
        rules = "; ".join(f"{obj}: {rule.name} ({' or '.join(g.label for g in rule.groups)})"
                          for obj, rule in self.rules.items())
        return [("Generated", self.generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
                ("CRM", self.crm), ("Rule set", f"{rules} — from {self.config_path}"), ("Run", self.run_id)]


@dataclass(frozen=True)
class Records:
    """The records behind the ids, to name them: Enginy's per object (by ``id``) and the CRM's per
    CRM object — companies, contacts, leads — (by ``crm_id``). Only the ids shown are read."""

    enginy: dict[str, pd.DataFrame]
    crm: dict[str, pd.DataFrame]

    def enginy_names(self, obj: str, ids: Iterable[str]) -> dict[str, str]:
        return _names(self.enginy.get(obj), "id", ids)

    def crm_names(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(CRM object, crm_id) → the record's name and domain or email."""
        by_object = defaultdict(set)
        for obj, crm_id in pairs:
            by_object[obj].add(crm_id)
        return {(obj, crm_id): name for obj, ids in by_object.items()
                for crm_id, name in _names(self.crm.get(obj), "crm_id", ids).items()}


def _present(value: object) -> bool:
    return value is not None and value == value and str(value).strip() != ""


def _name(record: dict) -> str:
    """A person by name and email, a company by name and domain (an Enginy company's website
    when it has no domain, as matching reads it)."""
    text = {field: str(value).strip() for field, value in record.items() if _present(value)}
    if "first_name" in record or "last_name" in record:
        name = " ".join(text[f] for f in ("first_name", "last_name") if f in text)
        detail = text.get("email")
    else:
        name, detail = text.get("name", ""), text.get("domain", text.get("website"))
    if not detail:
        return name
    return f"{name} ({detail})" if name else detail


def _names(records: pd.DataFrame | None, id_column: str, ids: Iterable[str]) -> dict[str, str]:
    ids = list(dict.fromkeys(ids))
    if records is None or not ids:
        return {}
    columns = [c for c in (id_column, "name", "domain", "website", "first_name", "last_name", "email") if c in records]
    shown = records.loc[is_in(records[id_column], ids), columns]
    return {str(row[id_column]): _name(row) for row in shown.to_dict("records")}


@dataclass
class QualityReport:
    header: ReportHeader
    outcomes: pd.DataFrame  # object, records, matched, new, ambiguous
    groups: pd.DataFrame  # object, group, matched, ambiguous
    found_by_several: dict[str, int]  # object → records found by more than one rule group
    fill_rates: pd.DataFrame  # object, side, identifier, records, filled
    matched: pd.DataFrame  # object, enginy_id, enginy_record, crm_object, crm_id, crm_record, matched_by (a sample)
    ambiguous: pd.DataFrame  # object, enginy_id, enginy_record, candidates, candidate_records, matched_by (a sample)
    duplicates: pd.DataFrame  # object, crm_objects, groups, records
    duplicate_samples: pd.DataFrame  # object, duplicate_group, crm_object, crm_id, crm_record, matched_by
    near_misses: pd.DataFrame  # object, near_misses
    near_miss_samples: pd.DataFrame  # object, enginy_id, enginy_record, near_miss_crm_id, crm_record, score, detail
    score_histogram: pd.DataFrame  # low, high, near_misses

    def markdown(self) -> str:
        header = "\n".join(f"- **{label}**: {value}" for label, value in self.header.lines())
        return "\n\n".join([header, *(f"### {title}\n\n{_markdown_table(table)}" + (f"\n\n{note}" if note else "")
                                      for title, table, note in self._sections())])

    def html(self) -> str:
        header = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>"
                         for label, value in self.header.lines())
        sections = "\n".join(f"<h2>{html.escape(title)}</h2>\n{_html_table(table)}"
                             + (f"\n<p>{html.escape(note)}</p>" if note else "")
                             for title, table, note in self._sections())
        return (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Match quality</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
            "table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
            "text-align:left}th{background:#f3f3f3}dl{display:grid;grid-template-columns:max-content auto;"
            "gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}</style></head><body>\n<h1>Match quality</h1>\n"
            f"<dl>{header}</dl>\n"
            f"<h2>Outcome rates</h2>\n{self.rate_chart()}\n<h2>Near-miss scores</h2>\n{self.score_chart()}\n"
            f"{sections}\n</body></html>\n")

    def metrics(self) -> dict[str, int | float]:
        """Per object, the figures worth following from run to run: match rate (%, NaN without
        records), records, matched, new, ambiguous, near misses and duplicate groups inside the CRM."""
        near = dict(zip(self.near_misses["object"], self.near_misses["near_misses"]))
        duplicate_groups = dict(zip(self.duplicates["object"], self.duplicates["groups"]))
        figures: dict[str, int | float] = {}
        for row in self.outcomes.to_dict("records"):
            obj = row["object"]
            figures[f"{obj}_match_pct"] = 100 * row[MATCHED] / row["records"] if row["records"] else float("nan")
            figures.update({f"{obj}_{column}": int(row[column]) for column in ("records", *OUTCOMES)})
            figures[f"{obj}_near_misses"] = int(near.get(obj, 0))
            figures[f"{obj}_crm_duplicate_groups"] = int(duplicate_groups.get(obj, 0))
        return figures

    def _sections(self) -> list[tuple[str, pd.DataFrame, str]]:
        outcomes = self.outcomes.copy()
        for outcome in OUTCOMES:
            outcomes[f"{outcome} %"] = [_rate(p, w) for p, w in zip(outcomes[outcome], outcomes["records"])]
        fill = self.fill_rates.copy()
        fill["%"] = [_rate(p, w) for p, w in zip(fill["filled"], fill["records"])]
        several = {obj: n for obj, n in self.found_by_several.items() if n}
        overlap = ("Records found by several rule groups are counted under each of them ("
                   + ", ".join(f"{obj}: {n}" for obj, n in several.items())
                   + "), so a column adds up to more than the records found; Outcomes counts each record once."
                   if several else "")
        duplicate_sections = []
        for row in self.duplicates.to_dict("records"):
            sample = self.duplicate_samples[self.duplicate_samples["object"] == row["object"]]
            duplicate_sections.append((
                f"Duplicate groups inside the CRM: {row['object']} "
                f"({sample['duplicate_group'].nunique()} of {row['groups']} groups shown)",
                sample.drop(columns="object").reset_index(drop=True), ""))
        return [("Outcomes", outcomes, ""), ("By rule group", self.groups, overlap),
                ("Identifier fill rates", fill, ""),
                (f"Matched records (first {SAMPLES} per object)", self.matched, ""),
                (f"Ambiguous records (first {SAMPLES} per object)", self.ambiguous, ""),
                ("Duplicates inside the CRM", self.duplicates, ""),
                *duplicate_sections,
                ("Near misses", self.near_misses, ""),
                (f"Near misses, best scores first (first {SAMPLES} per object)", self.near_miss_samples, ""),
                ("Near-miss score histogram", self.score_histogram, "")]

    def rate_chart(self) -> str:
        """One stacked bar per object, the share of records matched, new and ambiguous; a share
        wide enough carries its count and % on it, and the line under the bar carries all three."""
        width, bar, caption, gap, left = 520, 26, 16, 14, 90
        rows = self.outcomes.to_dict("records")
        row_height = bar + caption + gap
        height = len(rows) * row_height + 30
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 10}" height="{height}" '
                 'role="img" aria-label="outcome rates per object">']
        for i, row in enumerate(rows):
            y, x = i * row_height + 5, left
            parts.append(f'<text x="0" y="{y + bar * 0.7}" font-size="13">{html.escape(str(row["object"]))}</text>')
            figures = {outcome: f"{row[outcome]:,} ({_rate(row[outcome], row['records'])})" for outcome in OUTCOMES}
            for outcome in OUTCOMES:
                share = row[outcome] / row["records"] if row["records"] else 0
                w = share * width
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{COLOURS[outcome]}">'
                             f'<title>{outcome}: {row[outcome]} ({_rate(row[outcome], row["records"])})</title></rect>')
                if w >= 7 * len(figures[outcome]):  # about 7 px a character at 12 px
                    parts.append(f'<text x="{x + 4:.1f}" y="{y + bar * 0.68}" font-size="12" fill="#fff">'
                                 f'{figures[outcome]}</text>')
                x += w
            parts.append(f'<text x="{left}" y="{y + bar + caption - 3}" font-size="12">'
                         + " · ".join(f"{outcome} {figures[outcome]}" for outcome in OUTCOMES)
                         + f" of {row['records']:,}</text>")
        legend_y = height - 8
        for k, outcome in enumerate(OUTCOMES):
            parts.append(f'<rect x="{left + k * 110}" y="{legend_y - 10}" width="10" height="10" '
                         f'fill="{COLOURS[outcome]}"/><text x="{left + k * 110 + 14}" y="{legend_y}" '
                         f'font-size="12">{outcome}</text>')
        parts.append("</svg>")
        return "".join(parts)

    def score_chart(self) -> str:
        """Near misses per score bin, each bar with its count above it."""
        counts = self.score_histogram["near_misses"].to_list()
        width, height, pad = 520, 160, 24
        top = max(counts, default=0) or 1
        step = width / max(len(counts), 1)
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 2 * pad}" height="{height + 2 * pad}" '
                 'role="img" aria-label="near-miss score histogram">']
        for k, row in enumerate(self.score_histogram.to_dict("records")):
            h = row["near_misses"] / top * height
            x = pad + k * step
            parts.append(f'<rect x="{x + 1:.1f}" y="{pad + height - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                         f'fill="#6a1b9a"><title>{row["low"]:.2f}–{row["high"]:.2f}: {row["near_misses"]}</title></rect>')
            parts.append(f'<text x="{x + step / 2:.1f}" y="{pad + height - h - 4:.1f}" font-size="10" '
                         f'text-anchor="middle">{row["near_misses"]:,}</text>')
            parts.append(f'<text x="{x:.1f}" y="{pad + height + 16}" font-size="10">{row["low"]:.2f}</text>')
        parts.append("</svg>")
        return "".join(parts)


def build_report(matches: dict[str, pd.DataFrame], duplicates: pd.DataFrame, fill_rates: pd.DataFrame,
                 records: Records, header: ReportHeader) -> QualityReport:
    """``matches``: object name → its match table (MATCH_COLUMNS, near-miss columns optional);
    ``duplicates``: the CRM duplicate groups (DUPLICATE_COLUMNS)."""
    outcomes, groups, several, matched, ambiguous, near, near_samples, scores = [], [], {}, [], [], [], [], []
    for obj, table in matches.items():
        counts = table["outcome"].value_counts()
        outcomes.append({"object": obj, "records": len(table),
                         **{outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES}})
        found = table[table["outcome"] != NEW]
        several[obj] = int(found["matched_by"].str.contains(" | ", regex=False).sum())
        labels = found.assign(group=found["matched_by"].str.split(" | ", regex=False)).explode("group")
        per_group = labels.groupby("group")["outcome"].value_counts().unstack(fill_value=0)
        for group, row in per_group.iterrows():
            groups.append({"object": obj, "group": group, MATCHED: int(row.get(MATCHED, 0)),
                           AMBIGUOUS: int(row.get(AMBIGUOUS, 0))})
        # The first in the table's order: sorting a million matched records to show ten is not worth it.
        matched.append(table[table["outcome"] == MATCHED].head(SAMPLES).assign(object=obj))
        ambiguous.append(table[table["outcome"] == AMBIGUOUS].sort_values("enginy_id").head(SAMPLES).assign(object=obj))
        proposed = table[table["near_miss_crm_id"].notna()] if "near_miss_crm_id" in table else table.iloc[:0]
        near.append({"object": obj, "near_misses": len(proposed)})
        if len(proposed):
            near_samples.append(proposed.sort_values(["near_miss_score", "enginy_id"], ascending=[False, True])
                                .head(SAMPLES).assign(object=obj))
            scores.append(proposed["near_miss_score"].to_numpy(dtype=float))
    all_scores = np.concatenate(scores) if scores else np.empty(0)
    histogram, _ = np.histogram(all_scores, bins=SCORE_BINS)
    dup_summary, dup_samples = _duplicates(duplicates, list(matches))
    return QualityReport(
        header=header,
        outcomes=pd.DataFrame(outcomes, columns=["object", "records", *OUTCOMES]),
        groups=pd.DataFrame(groups, columns=["object", "group", MATCHED, AMBIGUOUS]),
        found_by_several=several,
        fill_rates=fill_rates.reset_index(drop=True),
        matched=_named_matched(matched, records),
        ambiguous=_named_ambiguous(ambiguous, records),
        duplicates=dup_summary,
        duplicate_samples=_named_duplicates(dup_samples, records),
        near_misses=pd.DataFrame(near, columns=["object", "near_misses"]),
        near_miss_samples=_named_near_misses(near_samples, records),
        score_histogram=pd.DataFrame({"low": SCORE_BINS[:-1], "high": SCORE_BINS[1:], "near_misses": histogram}))


def _duplicates(duplicates: pd.DataFrame, objects: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Groups and records per object, and each object's first groups: companies' groups never
    crowd out the contacts'."""
    frame = duplicates.assign(object=duplicates["crm_object"].replace(REPORTED_AS))
    per_object = frame.groupby("object").agg(crm_objects=("crm_object", lambda o: ", ".join(sorted(o.unique()))),
                                             groups=("duplicate_group", "nunique"), records=("crm_id", "size"))
    summary = (per_object.reindex(list(dict.fromkeys([*objects, *per_object.index])))
               .fillna({"crm_objects": "", "groups": 0, "records": 0}).astype({"groups": int, "records": int}))
    shown = [part[part["duplicate_group"].isin(sorted(part["duplicate_group"].unique())[:SAMPLES])]
             for _, part in frame.groupby("object", sort=False)]
    samples = pd.concat(shown, ignore_index=True) if shown else frame.iloc[:0]
    return summary.rename_axis("object").reset_index(), samples


def _samples(samples: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of every object's sample rows (an empty one with the columns read from them)."""
    return pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(
        columns=["object", *MATCH_COLUMNS, *NEAR_MISS_COLUMNS])


def _named_matched(samples: list[pd.DataFrame], records: Records) -> pd.DataFrame:
    frame = _samples(samples)
    pairs = list(zip(frame["crm_object"], frame["crm_id"]))
    crm = records.crm_names(pairs)
    return frame.assign(enginy_record=_enginy_names(frame, records), crm_record=[crm.get(p, "") for p in pairs])[
        ["object", "enginy_id", "enginy_record", "crm_object", "crm_id", "crm_record", "matched_by"]]


def _named_ambiguous(samples: list[pd.DataFrame], records: Records) -> pd.DataFrame:
    frame = _samples(samples)
    # One record's candidates may be contacts and leads (crm_object lists both): each id is
    # looked up in each of them.
    shown = [(ids.split(", ")[:NAMED_CANDIDATES], objects.split(", "))
             for ids, objects in zip(frame["candidates"], frame["crm_object"])]
    crm = records.crm_names((obj, crm_id) for ids, objects in shown for crm_id in ids for obj in objects)

    def listing(ids: list[str], objects: list[str], total: int) -> str:
        names = [next((crm[(obj, crm_id)] for obj in objects if (obj, crm_id) in crm), "") for crm_id in ids]
        more = f"; … and {total - len(ids)} more" if total > len(ids) else ""
        return "; ".join(f"{crm_id}: {name}" if name else crm_id for crm_id, name in zip(ids, names)) + more

    return frame.assign(enginy_record=_enginy_names(frame, records), candidate_records=[
        listing(ids, objects, total) for (ids, objects), total in zip(shown, frame["n_candidates"])])[
        ["object", "enginy_id", "enginy_record", "candidates", "candidate_records", "matched_by"]]


def _named_near_misses(samples: list[pd.DataFrame], records: Records) -> pd.DataFrame:
    frame = _samples(samples)
    pairs = list(zip(frame["near_miss_object"], frame["near_miss_crm_id"]))
    crm = records.crm_names(pairs)
    return frame.assign(enginy_record=_enginy_names(frame, records), crm_record=[crm.get(p, "") for p in pairs])[
        ["object", "enginy_id", "enginy_record", "near_miss_crm_id", "crm_record", "near_miss_score",
         "near_miss_detail"]]


def _named_duplicates(samples: pd.DataFrame, records: Records) -> pd.DataFrame:
    pairs = list(zip(samples["crm_object"], samples["crm_id"]))
    crm = records.crm_names(pairs)
    return samples.assign(crm_record=[crm.get(p, "") for p in pairs])[
        ["object", "duplicate_group", "crm_object", "crm_id", "crm_record", "matched_by"]].reset_index(drop=True)


def _enginy_names(frame: pd.DataFrame, records: Records) -> list[str]:
    names = {obj: records.enginy_names(obj, part["enginy_id"]) for obj, part in frame.groupby("object")}
    return [names[obj].get(enginy_id, "") for obj, enginy_id in zip(frame["object"], frame["enginy_id"])]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.3f}"
    return str(value)


def _markdown_table(table: pd.DataFrame) -> str:
    if not len(table):
        return "(none)"
    header = "| " + " | ".join(map(str, table.columns)) + " |\n| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, *rows])


def _html_table(table: pd.DataFrame) -> str:
    if not len(table):
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
