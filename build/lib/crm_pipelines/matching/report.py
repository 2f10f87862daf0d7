"""The match-quality report analysts read: outcome rates per object and per rule group,
identifier fill rates, ambiguous records, duplicates already inside the CRM and near misses.

Every figure is computed here from the match tables, once, and both renderings (markdown for
the Dagster UI, a self-contained HTML page with inline SVG charts) print those same tables.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_pipelines.matching.engine import AMBIGUOUS, MATCHED, NEW, OUTCOMES

SAMPLES = 10
SCORE_BINS = np.round(np.linspace(0.9, 1.0, 11), 2)
COLOURS = {MATCHED: "#2e7d32", NEW: "#1565c0", AMBIGUOUS: "#ef6c00"}


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


@dataclass
class QualityReport:
    outcomes: pd.DataFrame  # object, records, matched, new, ambiguous
    groups: pd.DataFrame  # object, group, matched, ambiguous
    fill_rates: pd.DataFrame  # object, side, identifier, records, filled
    ambiguous: pd.DataFrame  # object, enginy_id, candidates, matched_by (a sample)
    duplicates: pd.DataFrame  # object, groups, records
    duplicate_samples: pd.DataFrame  # duplicate_group, crm_object, crm_id, matched_by
    near_misses: pd.DataFrame  # object, near_misses
    near_miss_samples: pd.DataFrame  # object, enginy_id, near_miss_crm_id, near_miss_score, near_miss_detail
    score_histogram: pd.DataFrame  # low, high, near_misses

    def markdown(self) -> str:
        return "\n\n".join(f"### {title}\n\n{_markdown_table(table)}" for title, table in self._sections())

    def html(self) -> str:
        sections = "\n".join(f"<h2>{html.escape(title)}</h2>\n{_html_table(table)}" for title, table in self._sections())
        return (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Match quality</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
            "table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
            "text-align:left}th{background:#f3f3f3}</style></head><body>\n<h1>Match quality</h1>\n"
            f"<h2>Outcome rates</h2>\n{self.rate_chart()}\n<h2>Near-miss scores</h2>\n{self.score_chart()}\n"
            f"{sections}\n</body></html>\n")

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        outcomes = self.outcomes.copy()
        for outcome in OUTCOMES:
            outcomes[f"{outcome} %"] = [_rate(p, w) for p, w in zip(outcomes[outcome], outcomes["records"])]
        fill = self.fill_rates.copy()
        fill["%"] = [_rate(p, w) for p, w in zip(fill["filled"], fill["records"])]
        return [("Outcomes", outcomes), ("By rule group", self.groups), ("Identifier fill rates", fill),
                (f"Ambiguous records (first {SAMPLES} per object)", self.ambiguous),
                ("Duplicates inside the CRM", self.duplicates),
                (f"Duplicate groups inside the CRM (first {SAMPLES})", self.duplicate_samples),
                ("Near misses", self.near_misses),
                (f"Near misses, best scores first (first {SAMPLES} per object)", self.near_miss_samples),
                ("Near-miss score histogram", self.score_histogram)]

    def rate_chart(self) -> str:
        """One stacked bar per object: the share of records matched, new and ambiguous."""
        width, bar, gap, left = 520, 26, 14, 90
        rows = self.outcomes.to_dict("records")
        height = len(rows) * (bar + gap) + 30
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 10}" height="{height}" '
                 'role="img" aria-label="outcome rates per object">']
        for i, row in enumerate(rows):
            y, x = i * (bar + gap) + 5, left
            parts.append(f'<text x="0" y="{y + bar * 0.7}" font-size="13">{html.escape(str(row["object"]))}</text>')
            for outcome in OUTCOMES:
                share = row[outcome] / row["records"] if row["records"] else 0
                w = share * width
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{COLOURS[outcome]}">'
                             f'<title>{outcome}: {row[outcome]} ({_rate(row[outcome], row["records"])})</title></rect>')
                x += w
        legend_y = height - 8
        for k, outcome in enumerate(OUTCOMES):
            parts.append(f'<rect x="{left + k * 110}" y="{legend_y - 10}" width="10" height="10" '
                         f'fill="{COLOURS[outcome]}"/><text x="{left + k * 110 + 14}" y="{legend_y}" '
                         f'font-size="12">{outcome}</text>')
        parts.append("</svg>")
        return "".join(parts)

    def score_chart(self) -> str:
        """Near misses per score bin."""
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
            parts.append(f'<text x="{x:.1f}" y="{pad + height + 16}" font-size="10">{row["low"]:.2f}</text>')
        parts.append("</svg>")
        return "".join(parts)


def build_report(matches: dict[str, pd.DataFrame], duplicates: pd.DataFrame, fill_rates: pd.DataFrame) -> QualityReport:
    """``matches``: object name → its match table (MATCH_COLUMNS, near-miss columns optional)."""
    outcomes, groups, ambiguous, near, near_samples, scores = [], [], [], [], [], []
    for obj, table in matches.items():
        counts = table["outcome"].value_counts()
        outcomes.append({"object": obj, "records": len(table),
                         **{outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES}})
        found = table[table["outcome"] != NEW]
        labels = found.assign(group=found["matched_by"].str.split(" | ", regex=False)).explode("group")
        per_group = labels.groupby("group")["outcome"].value_counts().unstack(fill_value=0)
        for group, row in per_group.iterrows():
            groups.append({"object": obj, "group": group, MATCHED: int(row.get(MATCHED, 0)),
                           AMBIGUOUS: int(row.get(AMBIGUOUS, 0))})
        ambiguous.append(table[table["outcome"] == AMBIGUOUS].sort_values("enginy_id").head(SAMPLES)
                         .assign(object=obj)[["object", "enginy_id", "candidates", "matched_by"]])
        proposed = table[table["near_miss_crm_id"].notna()] if "near_miss_crm_id" in table else table.iloc[:0]
        near.append({"object": obj, "near_misses": len(proposed)})
        if len(proposed):
            near_samples.append(proposed.sort_values(["near_miss_score", "enginy_id"], ascending=[False, True])
                                .head(SAMPLES).assign(object=obj)[
                ["object", "enginy_id", "near_miss_crm_id", "near_miss_score", "near_miss_detail"]])
            scores.append(proposed["near_miss_score"].to_numpy(dtype=float))
    all_scores = np.concatenate(scores) if scores else np.empty(0)
    histogram, _ = np.histogram(all_scores, bins=SCORE_BINS)
    dup_summary = (duplicates.groupby("crm_object").agg(groups=("duplicate_group", "nunique"), records=("crm_id", "size"))
                   .reset_index().rename(columns={"crm_object": "object"})
                   if len(duplicates) else pd.DataFrame(columns=["object", "groups", "records"]))
    first_groups = sorted(duplicates["duplicate_group"].unique())[:SAMPLES] if len(duplicates) else []
    return QualityReport(
        outcomes=pd.DataFrame(outcomes, columns=["object", "records", *OUTCOMES]),
        groups=pd.DataFrame(groups, columns=["object", "group", MATCHED, AMBIGUOUS]),
        fill_rates=fill_rates.reset_index(drop=True),
        ambiguous=pd.concat(ambiguous, ignore_index=True) if ambiguous else pd.DataFrame(),
        duplicates=dup_summary,
        duplicate_samples=duplicates[duplicates["duplicate_group"].isin(first_groups)][
            ["duplicate_group", "crm_object", "crm_id", "matched_by"]].reset_index(drop=True)
        if len(duplicates) else pd.DataFrame(columns=["duplicate_group", "crm_object", "crm_id", "matched_by"]),
        near_misses=pd.DataFrame(near, columns=["object", "near_misses"]),
        near_miss_samples=pd.concat(near_samples, ignore_index=True) if near_samples else pd.DataFrame(
            columns=["object", "enginy_id", "near_miss_crm_id", "near_miss_score", "near_miss_detail"]),
        score_histogram=pd.DataFrame({"low": SCORE_BINS[:-1], "high": SCORE_BINS[1:], "near_misses": histogram}))


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
