"""results.json: the one place a run's results are assembled, small counts suppressed.

Everything here is aggregate: estimates, counts and the tables the report shows. A count
below the config's ``privacy.small_cell_threshold`` is hidden (primary suppression), and where
hidden cells could be recovered by subtraction from published totals, the next smallest cell
is hidden too (complementary suppression; ARCHITECTURE.md, "Privacy").
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mgca.analysis.estimation.models import COUNT_KEYS
from mgca.analysis.estimation.target_trial import target_trial_spec
from mgca.analysis.privacy import (
    SUPPRESSED_KEY,
    is_small,
    suppress_attrition,
    suppress_estimate,
    suppress_record,
    suppressed_text,
)
from mgca.analysis.report.no_episodes import no_eligible_episodes_reason
from mgca.config import MgcaConfig


def records(frame: pd.DataFrame, count_columns: list[str], threshold: int) -> list[dict[str, Any]]:
    """DataFrame → JSON records with small counts suppressed (see ARCHITECTURE.md)."""
    records = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        records.append(suppress_record(row, count_columns, threshold))
    return records


def attrition_records(attrition: pd.DataFrame, threshold: int) -> list[dict[str, Any]]:
    frame = attrition.rename(columns={"n_remaining": "n"})
    keep = [c for c in ("step", "n", "n_excluded", "exclusion_reason") if c in frame.columns]
    raw = records(frame[keep], [], threshold)
    return suppress_attrition(raw, threshold)  # primary + complementary suppression


CALCIUM_MEASURE_COUNTS = ("n_eligible_index_events", "n_analysed")


def calcium_measure_records(measures: pd.DataFrame, threshold: int) -> list[dict[str, Any]]:
    """results.json ``calcium_measures``: which calcium measure defined the index and the
    outcome (table episode_calcium_measures), small counts hidden as in the attrition.

    Within one role each count column adds up to a total published elsewhere (eligible index
    events and analysed episodes are attrition counts), so a single hidden cell could be
    recovered by subtraction: while a role's column has exactly one hidden cell, its smallest
    other nonzero cell is hidden too (complementary suppression).
    """
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in measures.to_dict(orient="records")
    ]
    hidden = {
        (i, key)
        for i, r in enumerate(records)
        for key in CALCIUM_MEASURE_COUNTS
        if r.get(key) is not None and is_small(int(r[key]), threshold)
    }
    identities = [
        [(i, key) for i, r in enumerate(records) if r["role"] == role]
        for role in dict.fromkeys(r["role"] for r in records)
        for key in CALCIUM_MEASURE_COUNTS
    ]
    changed = True
    while changed:
        changed = False
        for cells in identities:
            if sum(cell in hidden for cell in cells) != 1:
                continue
            shown = sorted(
                (c for c in cells if c not in hidden),
                key=lambda c: (int(records[c[0]][c[1]] or 0) == 0, records[c[0]][c[1]] or 0, c),
            )
            if shown:
                hidden.add(shown[0])
                changed = True
    out = []
    for i, record in enumerate(records):
        row = dict(record)
        for key in CALCIUM_MEASURE_COUNTS:
            row[key] = None if (i, key) in hidden else int(row[key])
        if any((i, key) in hidden for key in CALCIUM_MEASURE_COUNTS):
            row[SUPPRESSED_KEY] = suppressed_text(threshold)
        out.append(row)
    return out


DEVIATION_COUNTS = ("n_mg_after_grace", "n_no_mg_after_grace")


def deviation_records(
    deviations: pd.DataFrame, attrition: list[dict[str, Any]], threshold: int
) -> list[dict[str, Any]]:
    """results.json ``post_grace_deviations``: per arm, analysed episodes given Mg after the
    grace period and before the outcome draw, and those not (sql/post_grace_deviations.sql).

    The two counts of an arm add up to the arm's attrition count, so both are hidden when
    either is small or when the attrition hides the arm (``attrition``: the suppressed
    attrition records); the arm total itself is not repeated here.
    """
    hidden_arms = {
        step.startswith("analysed episodes: exposed")
        for row in attrition
        if (step := str(row.get("step", ""))).startswith("analysed episodes:")
        and row.get("n") is None
    }
    out = []
    for row in deviations.to_dict(orient="records"):
        exposed = bool(row["exposed"])
        counts = {key: int(row[key]) for key in DEVIATION_COUNTS}
        record: dict[str, Any] = {"exposed": exposed, **counts}
        if exposed in hidden_arms or any(is_small(v, threshold) for v in counts.values()):
            record.update(dict.fromkeys(DEVIATION_COUNTS))
            record[SUPPRESSED_KEY] = suppressed_text(threshold)
        out.append(record)
    return out


def assemble_results(
    *,
    fitted: dict[str, Any],
    sensitivity: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    truth: dict[str, Any] | None,
    config: MgcaConfig,
) -> dict[str, Any]:
    """results.json before provenance, the comparison with the previous run and Table 1:
    every estimate suppressed over small arms, the attrition and calcium-measure counts with
    complementary suppression, data quality and source rows, the synthetic truth, the
    config, and ``no_estimate_reason`` when no episode was eligible.

    ``fitted`` is :func:`mgca.run.study.fit_all`'s result, ``sensitivity`` the sensitivity
    block, ``tables`` the report's tables by ``report_name``
    (:func:`mgca.engine.registry.report_tables`).
    """
    threshold = config.privacy.small_cell_threshold
    attrition = attrition_records(tables["attrition"], threshold)
    results: dict[str, Any] = {
        "estimates": [
            suppress_estimate(e, COUNT_KEYS, ("n_exposed", "n_unexposed"), threshold)
            for e in fitted["estimates"]
        ],
        "estimate_notes": fitted["notes"],
        "gate": fitted["gate"],
        "target_trial": target_trial_spec(config),
        "secondary": fitted["secondary"],
        "diagnostics": fitted["diagnostics"],
        "sensitivity": sensitivity,
        "attrition": attrition,
        "calcium_measures": calcium_measure_records(tables["calcium_measures"], threshold),
        "post_grace_deviations": deviation_records(
            tables["post_grace_deviations"], attrition, threshold
        ),
        "data_quality": records(tables["data_quality"], ["n_rows", "n_flagged"], threshold),
        "source_rows": records(tables["source_rows"], ["n_rows"], threshold),
        "synthetic_truth": truth,
        "config": config.model_dump(mode="json"),
        "provenance": {},
    }
    no_episodes = no_eligible_episodes_reason(
        results["attrition"], results["data_quality"], results["source_rows"], threshold
    )
    if no_episodes:
        results["no_estimate_reason"] = no_episodes
    return results
