"""What the next push would do, record by record, as text: the `dry-run` command prints it and
the nightly reconciliation attaches it to its run."""

import pandas as pd

ACTIONS = ("create", "update", "skip", "reject")
# The batch columns the dry run shows (a reader can load just these).
DRY_RUN_COLUMNS = ("enginy_id", "action", "crm_id", "diff", "reason")


def render_dry_run(batches: dict[str, pd.DataFrame], limit: int = 50, show_skips: bool = True) -> list[str]:
    """Per batch: its counts, each write with its field diff (CRM value → new value), then the
    skips and rejections with their reasons. ``batches`` hold parsed JSON columns."""
    lines: list[str] = []
    for name, batch in batches.items():
        counts = batch["action"].value_counts().to_dict()
        lines += ["", f"{name}: " + ", ".join(f"{counts.get(a, 0)} {a}" for a in ACTIONS)]
        batch = batch.reindex(columns=list(DRY_RUN_COLUMNS))
        writing = batch[batch["action"].isin(["create", "update"])]
        for row in writing.head(limit).to_dict("records"):
            target = f"CRM {row['crm_id']}" if row["action"] == "update" else "new record"
            lines.append(f"  {row['action'].upper():<7} Enginy {row['enginy_id']} → {target}")
            lines += [f"      {change['field']}: {change['crm_value']!r} → {change['new_value']!r}"
                      f"  ({change.get('rule', '')})" for change in row["diff"] or []]
        if len(writing) > limit:
            lines.append(f"  … {len(writing) - limit} more writes (--limit)")
        if show_skips:
            lines += [f"  {row['action'].upper():<7} Enginy {row['enginy_id']}: {row['reason']}"
                      for row in batch[batch["action"].isin(["skip", "reject"])].head(limit).to_dict("records")]
    return lines
