"""The any-draw secondaries, reported per arm only: no contrast is estimated for them.

"Calcium corrected within the window" and "time to calcium correction" count an episode as
corrected at the first corrected Ca at or above the low threshold drawn after the grace period
(``index_calcium_correction``, ``sql/calcium_correction_time.sql``). Whether a correction is
seen depends on how often calcium is drawn, and usual care re-checks the treated more often
(about 3.3 against 2.9 corrected-Ca draws per episode in (6 h, 72 h] in the synthetic null
world, where Mg does nothing). So a contrast of the arms on these outcomes rejects "no effect"
far more often than its nominal 5 %: the logistic risk difference and odds ratio in 25-50 %
of null-world hospitals, the Cox hazard ratio in 41 % with no threat switched on and 100 %
with ``detection_bias`` (``bench/secondary_null.py``, 40 replicates of 3,000 stays; README,
"Design threats"). Follow-up starting after the grace period does not remove it, because the
extra re-checks continue after it.

The pre-specified rule therefore is: these three entries never carry an estimate, a CI or a
p-value (``withheld_by_design: "detection_bias"``). Each gives, per arm, what was observed
and how often it was looked for (``by_arm``), so a reader sees the testing-frequency
imbalance beside the proportions. The question they would answer is answered without
detection bias by the fixed-schedule secondaries
(:mod:`mgca.analysis.estimation.fixed_schedule`), whose null false-positive rates are
2.5-7.5 %.

Counts follow the run's count rule (:class:`mgca.analysis.privacy.CountRule`): a hidden
count hides its complement in the same arm and every share, rate or mean computed over it;
shares are computed from the counts as published (rounded when the rule rounds).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mgca.analysis.estimation.models import CLUSTER, EXPOSURE, exposure_indicator
from mgca.analysis.estimation.secondary import entry
from mgca.analysis.privacy import hide_complementary, is_small, suppress_record
from mgca.config import StudyConfig

ANY_DRAW_DESCRIPTIVE: tuple[str, ...] = (
    "calcium_corrected_risk_difference",
    "calcium_corrected_odds_ratio",
    "time_to_calcium_correction_hazard_ratio",
)
"""Secondary entries reported per arm only (their contrast is withheld by design)."""

WITHHELD_BY_DESIGN = "detection_bias"
"""The ``withheld_by_design`` value of these entries: the threat that rules the contrast out."""

ARMS: tuple[tuple[bool, str], ...] = (
    (True, "given Mg within the grace period"),
    (False, "not given Mg within the grace period"),
)

WINDOW_COUNTS: tuple[str, ...] = (
    "n",
    "n_with_calcium_in_window",
    "n_corrected_within_window",
    "n_not_corrected_within_window",
)
"""Per-arm count keys of the two "within the window" entries."""

TIME_COUNTS: tuple[str, ...] = ("n", "n_corrected", "n_not_corrected")
"""Per-arm count keys of the time-to-correction entry."""

DERIVED_KEYS: tuple[str, ...] = (
    "share_corrected_within_window",
    "calcium_draws_in_window_per_episode",
    "episode_days_followed",
    "corrections_per_episode_day",
)
"""Per-arm figures computed over an arm's episodes: hidden with its counts."""


def withheld_words(study: StudyConfig) -> str:
    """Why the contrast is not estimated (results.json ``withheld``, the report's reason)."""
    return (
        "contrast withheld by design (detection bias): correction counts any calcium drawn "
        f"after the {study.grace_hours} h grace period, and the treated are re-checked more "
        "often, so a contrast rejects 'no effect' far above 5 % where Mg does nothing; per-arm "
        "figures only (the fixed-schedule secondaries answer this question)"
    )


def _hidden_pair(
    row: dict[str, Any], events: str, non_events: str, threshold: int
) -> dict[str, Any]:
    """Hide an arm's events and non-events together: one gives the other by subtraction."""
    if row.get(events) is None or row.get(non_events) is None:
        return hide_complementary(row, (events, non_events), threshold)
    return row


def _share(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _window_row(arm: pd.DataFrame, label: str, threshold: int) -> dict[str, Any]:
    looked = arm["corrected_within_window"].notna()
    corrected = arm["corrected_within_window"].fillna(False).astype(bool)
    row = suppress_record(
        {
            "arm": label,
            "n": len(arm),
            "n_with_calcium_in_window": int(looked.sum()),
            "n_corrected_within_window": int(corrected.sum()),
            "n_not_corrected_within_window": int((looked & ~corrected).sum()),
        },
        WINDOW_COUNTS,
        threshold,
    )
    row = _hidden_pair(row, "n_corrected_within_window", "n_not_corrected_within_window", threshold)
    # episodes without a draw in the window are n minus n_with_calcium_in_window: a small
    # difference hides every count it could be recovered from
    if row["n"] is None or is_small(len(arm) - int(looked.sum()), threshold):
        row = hide_complementary(row, WINDOW_COUNTS[1:], threshold)
    draws = pd.to_numeric(arm["n_calcium_in_window"], errors="coerce").fillna(0)
    row["calcium_draws_in_window_per_episode"] = (
        None if row["n"] is None or arm.empty else float(draws.mean())
    )
    row["share_corrected_within_window"] = _share(
        row["n_corrected_within_window"], row["n_with_calcium_in_window"]
    )
    return row


def _time_row(arm: pd.DataFrame, label: str, study: StudyConfig, threshold: int) -> dict[str, Any]:
    corrected = arm["corrected"].fillna(False).astype(bool)
    row = suppress_record(
        {
            "arm": label,
            "n": len(arm),
            "n_corrected": int(corrected.sum()),
            "n_not_corrected": int((~corrected).sum()),
        },
        TIME_COUNTS,
        threshold,
    )
    row = _hidden_pair(row, "n_corrected", "n_not_corrected", threshold)
    hours = pd.to_numeric(arm["hours_to_event"], errors="coerce").fillna(study.grace_hours)
    days_at_risk = float((hours - study.grace_hours).clip(lower=0).sum()) / 24.0
    shown = row["n"] is not None and not arm.empty
    row["episode_days_followed"] = days_at_risk if shown else None
    row["corrections_per_episode_day"] = (
        row["n_corrected"] / days_at_risk
        if shown and row["n_corrected"] is not None and days_at_risk > 0
        else None
    )
    return row


def _across_arms(
    rows: list[dict[str, Any]], count_keys: tuple[str, ...], threshold: int
) -> list[dict[str, Any]]:
    """When one arm's episode count is hidden, every arm's figures are: the arms add up to the
    entry's published ``n``, so the other arm's count would give the hidden one back."""
    if all(r["n"] is not None for r in rows):
        return rows
    out = []
    for r in rows:
        hidden = hide_complementary(r, count_keys, threshold)
        for key in DERIVED_KEYS:
            if key in hidden:
                hidden[key] = None
        out.append(hidden)
    return out


def any_draw_entries(
    cohort: pd.DataFrame, correction: pd.DataFrame, study: StudyConfig, threshold: int
) -> list[dict[str, Any]]:
    """The three :data:`ANY_DRAW_DESCRIPTIVE` entries of results.json ``secondary``.

    ``cohort``: the analytic cohort (``encounter_id``, exposure, patient); ``correction``:
    ``index_calcium_correction`` (``corrected_within_window``, ``n_calcium_in_window``,
    ``corrected``, ``hours_to_event`` in hours from index). Each entry has the keys of
    :func:`mgca.analysis.estimation.secondary.entry` with no statistics, plus ``withheld``
    (why), ``withheld_by_design`` (:data:`WITHHELD_BY_DESIGN`), ``descriptive_measure``
    (words) and ``by_arm`` (one row per arm: counts under ``threshold``, the share or rate,
    and the calcium draws per episode in the window).
    """
    data = cohort[["encounter_id", EXPOSURE, CLUSTER]].merge(
        correction[
            [
                "encounter_id",
                "corrected_within_window",
                "n_calcium_in_window",
                "corrected",
                "hours_to_event",
            ]
        ],
        on="encounter_id",
        how="left",
    )
    treat = exposure_indicator(data[EXPOSURE]).astype(bool)
    arms = [(data.loc[treat == given], label) for given, label in ARMS]
    window_rows = _across_arms(
        [_window_row(arm, label, threshold) for arm, label in arms], WINDOW_COUNTS, threshold
    )
    time_rows = _across_arms(
        [_time_row(arm, label, study, threshold) for arm, label in arms], TIME_COUNTS, threshold
    )
    window = f"(index + {study.grace_hours} h, index + {study.correction_window_hours} h]"
    low = f"{study.ca_corrected_low_mmol_l:.2f} mmol/L"
    common = {
        "unit": "",
        "scale": "per arm only (no contrast)",
        "data": data,
        "adjustment_set": (),
    }
    window_method = (
        "Counts per arm: episodes with a corrected Ca drawn in the window, those with one at or "
        f"above {low}, and the mean number of corrected Ca draws per episode in the window; "
        "no model, no contrast."
    )
    out = [
        entry(
            name=name,
            estimand=f"(not estimated: per-arm share corrected only) {contrast} of calcium "
            f"correction within {study.correction_window_hours} h, Mg repletion within "
            f"{study.grace_hours} h vs not",
            outcome=f"albumin-corrected Ca ≥ {low} at any draw in {window}",
            method=window_method,
            notes=[note],
            **common,
        )
        for name, contrast, note in (
            (
                ANY_DRAW_DESCRIPTIVE[0],
                "risk difference",
                "share = episodes corrected / episodes with a corrected Ca in the window",
            ),
            (
                ANY_DRAW_DESCRIPTIVE[1],
                "odds ratio",
                f"the same per-arm counts as {ANY_DRAW_DESCRIPTIVE[0]}",
            ),
        )
    ] + [
        entry(
            name="time_to_calcium_correction_hazard_ratio",
            estimand="(not estimated: per-arm crude correction rate only) hazard ratio of "
            f"calcium correction (corrected Ca ≥ {low}), Mg repletion within "
            f"{study.grace_hours} h vs not",
            outcome="hours from index to the first corrected Ca at or above the threshold "
            f"drawn after the {study.grace_hours} h grace period, censored at the last "
            "corrected Ca draw before discharge",
            method="Counts per arm: episodes corrected and not, episode-days followed from the "
            "end of the grace period to correction or censoring, and corrections per "
            "episode-day (crude rate); no model, no contrast.",
            notes=["a crude rate assumes a constant rate; it is not adjusted for anything"],
            **common,
        ),
    ]
    words = withheld_words(study)
    measures = (
        ("share corrected within the window", window_rows),
        ("share corrected within the window", window_rows),
        ("corrections per episode-day followed (crude rate)", time_rows),
    )
    for e, (measure, rows) in zip(out, measures, strict=True):
        e.update(
            withheld=words,
            withheld_by_design=WITHHELD_BY_DESIGN,
            descriptive_measure=measure,
            by_arm=[dict(r) for r in rows],
        )
    return out


__all__ = [
    "ANY_DRAW_DESCRIPTIVE",
    "WITHHELD_BY_DESIGN",
    "any_draw_entries",
    "withheld_words",
]
