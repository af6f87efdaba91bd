"""results.json: the one place a run's results are assembled, small counts suppressed.

Everything here is aggregate: estimates, counts and the tables the report shows. A count
below the config's ``privacy.small_cell_threshold`` is hidden (primary suppression), and where
hidden cells could be recovered by subtraction from published totals, the next smallest cell
is hidden too (complementary suppression; ARCHITECTURE.md, "Privacy").
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mgca.analysis.data_quality_suppression import suppress_quality
from mgca.analysis.estimation.models import COUNT_KEYS
from mgca.analysis.estimation.per_protocol import suppress_block as suppress_per_protocol
from mgca.analysis.estimation.target_trial import target_trial_spec
from mgca.analysis.missing_outcome_share import KEY as MISSING_OUTCOME_SHARE_KEY
from mgca.analysis.missing_outcome_share import missing_outcome_share
from mgca.analysis.privacy import (
    COMPLEMENTARY,
    SMALL,
    count_rule,
    hide_complementary,
    is_small,
    mark_hidden,
    round_count,
    suppress_attrition,
    suppress_count,
    suppress_estimate,
    suppress_record,
)
from mgca.analysis.report.no_episodes import no_eligible_episodes_reason
from mgca.analysis.report.quality_section import orphan_code_records
from mgca.config import MgcaConfig


def records(
    frame: pd.DataFrame, count_columns: list[str], threshold: int, rounding: str = "none"
) -> list[dict[str, Any]]:
    """DataFrame → JSON records with small counts suppressed (see ARCHITECTURE.md)."""
    records = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        records.append(suppress_record(row, count_columns, threshold, rounding))
    return records


def attrition_records(
    attrition: pd.DataFrame, threshold: int, rounding: str = "none"
) -> list[dict[str, Any]]:
    frame = attrition.rename(columns={"n_remaining": "n"})
    keep = [c for c in ("step", "n", "n_excluded", "exclusion_reason") if c in frame.columns]
    raw = records(frame[keep], [], threshold)
    return suppress_attrition(raw, threshold, rounding)  # primary + complementary suppression


CALCIUM_MEASURE_COUNTS = ("n_eligible_index_events", "n_analysed")


def calcium_measure_records(
    measures: pd.DataFrame,
    threshold: int,
    rounding: str = "none",
    hidden_totals: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """results.json ``calcium_measures``: which calcium measure defined the index and the
    outcome (table episode_calcium_measures), small counts hidden as in the attrition.

    Within one role each count column adds up to a total published elsewhere (eligible index
    events and analysed episodes are attrition counts), so a single hidden cell could be
    recovered by subtraction: while a role's column has exactly one hidden cell, its smallest
    other nonzero cell is hidden too (complementary suppression). ``suppressed_why`` says which
    cells were small and which complementary (shown as "suppressed", not "<threshold").

    ``hidden_totals`` names the count columns whose total is hidden in the attrition table
    (:func:`attrition_totals_hidden`): the column would publish it as its sum, so all of its
    cells are hidden (complementary).
    """
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in measures.to_dict(orient="records")
    ]
    small = {
        (i, key)
        for i, r in enumerate(records)
        for key in CALCIUM_MEASURE_COUNTS
        if r.get(key) is not None and is_small(int(r[key]), threshold)
    }
    hidden = set(small) | {
        (i, key) for i in range(len(records)) for key in hidden_totals
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
        why = {
            key: SMALL if (i, key) in small else COMPLEMENTARY
            for key in CALCIUM_MEASURE_COUNTS
            if (i, key) in hidden
        }
        for key in CALCIUM_MEASURE_COUNTS:
            if key not in why:
                row[key] = round_count(int(row[key]), rounding, threshold)
        out.append(mark_hidden(row, why, threshold))
    return out


ROUNDED_KEYS = ("n", "n_exposed", "n_unexposed", "n_clusters", "n_dropped")
"""Count keys rounded inside the secondary, sensitivity and diagnostics blocks."""


def rounded_counts(block: Any, rounding: str, threshold: int = 0) -> Any:
    """``block`` (nested dicts and lists) with every integer under a count key of
    :data:`ROUNDED_KEYS` rounded by ``rounding``, never below ``threshold`` (hidden counts
    are already ``None``)."""
    if rounding == "none":
        return block
    if isinstance(block, dict):
        return {
            k: round_count(v, rounding, threshold)
            if k in ROUNDED_KEYS and isinstance(v, int) and not isinstance(v, bool)
            else rounded_counts(v, rounding, threshold)
            for k, v in block.items()
        }
    if isinstance(block, list):
        return [rounded_counts(v, rounding, threshold) for v in block]
    return block


def attrition_totals_hidden(attrition: list[dict[str, Any]]) -> tuple[str, ...]:
    """Which calcium-measure count columns add up to an attrition count that suppression hid:
    ``n_eligible_index_events`` sums to the ``n`` of the step before the outcome step, and
    ``n_analysed`` to the analysed episodes (the last eligibility step)."""
    chain = [
        r
        for i, r in enumerate(attrition)
        if i == 0 or r.get("n_excluded") is not None or r.get("exclusion_reason")
    ]
    hidden = []
    if len(chain) >= 2 and chain[-2].get("n") is None:
        hidden.append("n_eligible_index_events")
    if chain and chain[-1].get("n") is None:
        hidden.append("n_analysed")
    return tuple(hidden)


ELIGIBLE_COUNT_KEYS = ("n", "n_exposed", "n_unexposed", "n_clusters")
"""Counts of an entry fitted over every eligible episode (outcome measured or not: the IPCW
estimates, ``missing_outcome_handling`` set). When the attrition hides the eligible total,
they are hidden as complementary: the entry's ``n`` would give that total back, and with it
the small count of episodes without an outcome. The statistics stay: the episodes behind
them are not few."""


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
        small = {key for key, value in counts.items() if is_small(value, threshold)}
        if exposed in hidden_arms or small:
            why = {key: SMALL if key in small else COMPLEMENTARY for key in DEVIATION_COUNTS}
            mark_hidden(record, why, threshold)
        else:  # shown counts follow the rule's rounding (threshold: a CountRule)
            record.update({key: suppress_count(v, threshold) for key, v in counts.items()})
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
    config, and ``no_estimate_reason`` when no episode was eligible. With
    ``privacy.rounding`` other than ``none`` every shown count is rounded too.

    ``fitted`` is :func:`mgca.run.study.fit_all`'s result, ``sensitivity`` the sensitivity
    block, ``tables`` the report's tables by ``report_name``
    (:func:`mgca.engine.registry.report_tables`).
    """
    threshold = count_rule(config)
    rounding = config.privacy.rounding
    attrition = attrition_records(tables["attrition"], threshold, rounding)
    results: dict[str, Any] = {
        "estimates": [
            suppress_estimate(e, COUNT_KEYS, ("n_exposed", "n_unexposed"), threshold, rounding)
            for e in fitted["estimates"]
        ],
        "estimate_notes": fitted["notes"],
        "gate": fitted["gate"],
        "target_trial": target_trial_spec(config),
        "secondary": rounded_counts(fitted["secondary"], rounding, threshold),
        "missing_outcomes": rounded_counts(
            fitted.get("missing_outcomes") or {"reason": "not computed for this run"},
            rounding,
            threshold,
        ),
        "negative_controls": rounded_counts(
            fitted.get("negative_controls", []), rounding, threshold
        ),
        "calibration": fitted.get("calibration"),
        "diagnostics": rounded_counts(fitted["diagnostics"], rounding, threshold),
        "sensitivity": rounded_counts(sensitivity, rounding, threshold),
        "effect_modification": rounded_counts(
            fitted.get("effect_modification", []), rounding, threshold
        ),
        "attrition": attrition,
        "calcium_measures": calcium_measure_records(
            tables["calcium_measures"], threshold, rounding, attrition_totals_hidden(attrition)
        ),
        # rows that add up to a shown total get complementary suppression too
        "data_quality": suppress_quality(records(tables["data_quality"], [], threshold), threshold),
        MISSING_OUTCOME_SHARE_KEY: missing_outcome_share(
            tables["calcium_measures"], attrition, threshold
        ),
        "post_grace_deviations": deviation_records(
            tables["post_grace_deviations"], attrition, threshold
        ),
        "source_rows": records(tables["source_rows"], ["n_rows"], threshold, rounding),
        "orphan_codes": orphan_code_records(tables.get("orphan_codes"), threshold),
        "per_protocol": (
            None
            if fitted.get("per_protocol") is None
            else suppress_per_protocol(fitted["per_protocol"], threshold, rounding)
        ),
        "synthetic_truth": rounded_counts(truth, rounding, threshold),
        "config": config.model_dump(mode="json"),
        "provenance": {},
    }
    if "n_eligible_index_events" in attrition_totals_hidden(attrition):
        for block in ("estimates", "secondary"):
            results[block] = [
                hide_complementary(e, ELIGIBLE_COUNT_KEYS, threshold)
                if e.get("missing_outcome_handling")
                else e
                for e in results[block]
            ]
    no_episodes = no_eligible_episodes_reason(
        results["attrition"], results["data_quality"], results["source_rows"], threshold
    )
    if no_episodes:
        results["no_estimate_reason"] = no_episodes
    return results
