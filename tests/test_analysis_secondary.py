"""Secondary models on seeded simulated frames whose answer is known (tolerance-based)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_sim import simulate_cohort

from mgca.analysis.secondary import (
    calcium_mg_interaction,
    calcium_trajectory_mixed,
    correction_within_window,
    mg_dose_response,
    pth_response,
    run_secondary,
    time_to_correction,
)
from mgca.config import StudyConfig

STUDY = StudyConfig()


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    frame, _ = simulate_cohort(1200, seed=3)
    return frame


def _treat(cohort: pd.DataFrame) -> np.ndarray:
    return cohort["exposed"].to_numpy(dtype=float)


def test_logistic_recovers_the_odds_ratio_and_risk_difference(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    t = _treat(cohort)
    ca = cohort["baseline_ca_corrected_mmol_l"].to_numpy() - 1.95
    lin0 = -0.5 + 3.0 * ca
    p1, p0 = 1 / (1 + np.exp(-(lin0 + 1.0))), 1 / (1 + np.exp(-lin0))
    y = rng.uniform(size=len(t)) < np.where(t == 1, p1, p0)
    correction = cohort[["encounter_id"]].assign(corrected_within_window=y)
    rd, odds = correction_within_window(cohort, correction, STUDY)
    assert odds["ci_low"] < np.exp(1.0) < odds["ci_high"]
    assert abs(np.log(odds["estimate"]) - 1.0) < 0.35
    true_rd = float(np.mean(p1 - p0))
    assert rd["ci_low"] < true_rd < rd["ci_high"]
    assert abs(rd["estimate"] - true_rd) < 0.07
    assert rd["unit"] == "proportion (0–1)" and odds["scale"] == "odds ratio"
    assert rd["n"] == len(cohort)


def test_cox_recovers_the_hazard_ratio(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(2)
    t = _treat(cohort)
    event_time = rng.exponential(48.0 / np.where(t == 1, 2.0, 1.0))
    censor = rng.uniform(24, 120, len(t))
    correction = cohort[["encounter_id"]].assign(
        hours_to_event=np.minimum(event_time, censor), corrected=event_time <= censor
    )
    hr = time_to_correction(cohort, correction, STUDY)
    assert hr["ci_low"] < 2.0 < hr["ci_high"]
    assert abs(np.log(hr["estimate"]) - np.log(2.0)) < 0.2


def test_interaction_of_calcium_with_mg_repletion(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    t = _treat(cohort)
    ca = rng.uniform(size=len(t)) < 0.4
    y = 2.0 + 0.1 * t + 0.0 * ca + 0.08 * t * ca + rng.normal(0, 0.05, len(t))
    data = cohort.assign(calcium_in_grace=ca, outcome_ca_corrected_mmol_l=y)
    interaction, alone = calcium_mg_interaction(data, STUDY)
    assert interaction["ci_low"] < 0.08 < interaction["ci_high"]
    assert abs(interaction["estimate"] - 0.08) < 0.02
    assert alone["ci_low"] < 0.0 < alone["ci_high"]
    assert interaction["unit"] == "mmol/L"


def test_pth_ratio_of_geometric_means(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(4)
    t = _treat(cohort)
    pth = np.exp(np.log(5.0) + np.log(1.5) * t + rng.normal(0, 0.3, len(t)))
    measured = rng.uniform(size=len(t)) < 0.3  # PTH drawn in some episodes only
    table = cohort[["encounter_id"]].assign(followup_pth_pmol_l=np.where(measured, pth, np.nan))
    ratio = pth_response(cohort, table, STUDY)
    assert ratio["ci_low"] < 1.5 < ratio["ci_high"]
    assert abs(np.log(ratio["estimate"]) - np.log(1.5)) < 0.1
    assert ratio["n"] == int(measured.sum())


def test_dose_response_slope_per_10_mmol(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    t = _treat(cohort)
    dose = np.where(t == 1, rng.choice([8.12, 16.24, 24.36, 32.48], len(t)), 0.0)
    y = 2.0 + 0.03 * dose / 10 + rng.normal(0, 0.05, len(t))
    data = cohort.assign(mg_dose_grace_mmol=dose, outcome_ca_corrected_mmol_l=y)
    slope = mg_dose_response(data, STUDY)
    assert slope["ci_low"] < 0.03 < slope["ci_high"]
    assert abs(slope["estimate"] - 0.03) < 0.01
    assert slope["n"] == int(t.sum()) and slope["n_unexposed"] == 0


def test_mixed_model_recovers_slope_and_horizon_difference(cohort: pd.DataFrame) -> None:
    rng = np.random.default_rng(6)
    rows = []
    t = dict(zip(cohort["encounter_id"], _treat(cohort), strict=True))
    u = {s: rng.normal(0, 0.08) for s in cohort["subject_id"].unique()}
    subject = dict(zip(cohort["encounter_id"], cohort["subject_id"], strict=True))
    for enc in cohort["encounter_id"]:
        for hours in rng.uniform(6, 96, rng.integers(2, 6)):
            days = hours / 24
            ca = 2.0 + u[subject[enc]] + (0.05 + 0.03 * days) * t[enc] + 0.01 * days
            rows.append((enc, hours, ca + rng.normal(0, 0.04)))
    points = pd.DataFrame(rows, columns=["encounter_id", "hours_from_index", "ca_corrected_mmol_l"])
    slope, at_horizon = calcium_trajectory_mixed(cohort, points, STUDY)
    assert slope["ci_low"] < 0.03 < slope["ci_high"]
    assert abs(slope["estimate"] - 0.03) < 0.01
    assert at_horizon["ci_low"] < 0.11 < at_horizon["ci_high"]
    assert slope["unit"] == "mmol/L per day" and at_horizon["unit"] == "mmol/L"


def test_every_analysis_gives_an_entry_with_a_reason_when_it_cannot_be_fitted(
    cohort: pd.DataFrame,
) -> None:
    small = cohort.head(5)
    empty_correction = pd.DataFrame(
        {"encounter_id": [], "corrected_within_window": [], "hours_to_event": [], "corrected": []}
    )
    no_pth = pd.DataFrame({"encounter_id": [], "followup_pth_pmol_l": []})
    no_points = pd.DataFrame(
        {"encounter_id": [], "hours_from_index": [], "ca_corrected_mmol_l": []}
    )
    entries = run_secondary(
        small, correction=empty_correction, pth=no_pth, points=no_points, study=STUDY
    )
    assert len(entries) == 6
    for e in entries:
        assert e["estimate"] is None and e["reason"], e
        assert "fewer than" in e["reason"] or "no " in e["reason"]
