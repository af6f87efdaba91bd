"""Secondary models on seeded simulated frames whose answer is known (tolerance-based)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import TRAJECTORY_TRUTH, simulate_cohort, simulate_trajectory_points

from mgca.analysis.estimation.mechanism import calcium_alone_effect
from mgca.analysis.estimation.secondary import (
    calcium_trajectory_mixed,
    correction_within_window,
    mg_dose_response,
    patient_sample,
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


def test_calcium_alone_effect_among_episodes_not_given_mg(cohort: pd.DataFrame) -> None:
    """Calcium given without Mg vs neither: recovers a known +0.05 mmol/L among the
    unexposed, whatever the exposed do; n_exposed counts the episodes given calcium."""
    rng = np.random.default_rng(3)
    t = _treat(cohort)
    ca = rng.uniform(size=len(t)) < 0.4
    y = 2.0 + 0.1 * t + 0.05 * ca * (1 - t) + 0.3 * ca * t + rng.normal(0, 0.05, len(t))
    data = cohort.assign(calcium_in_grace=ca, outcome_ca_corrected_mmol_l=y)
    alone = calcium_alone_effect(data, STUDY)
    assert alone["ci_low"] < 0.05 < alone["ci_high"]
    assert abs(alone["estimate"] - 0.05) < 0.02
    assert alone["n"] == int((t == 0).sum())
    assert alone["n_exposed"] == int((ca & (t == 0)).sum())
    assert alone["unit"] == "mmol/L" and "calcium alone" in alone["estimand"]


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


@pytest.fixture(scope="module")
def points(cohort: pd.DataFrame) -> pd.DataFrame:
    return simulate_trajectory_points(cohort, seed=6)


@pytest.fixture(scope="module")
def mixed(cohort: pd.DataFrame, points: pd.DataFrame) -> list[dict]:
    """The mixed model's entries under the default config (cap above the cohort's patients)."""
    return calcium_trajectory_mixed(cohort, points, STUDY)


def test_mixed_model_recovers_slope_and_horizon_difference(
    cohort: pd.DataFrame, points: pd.DataFrame, mixed: list[dict]
) -> None:
    slope, at_horizon = mixed
    truth = TRAJECTORY_TRUTH
    assert slope["ci_low"] < truth["slope_difference"] < slope["ci_high"]
    assert abs(slope["estimate"] - truth["slope_difference"]) < 0.01
    assert at_horizon["ci_low"] < truth["difference_at_48h"] < at_horizon["ci_high"]
    assert slope["unit"] == "mmol/L per day" and at_horizon["unit"] == "mmol/L"
    # fewer patients than the default cap: every patient and every draw is fitted
    assert cohort["subject_id"].nunique() < STUDY.trajectory_model_max_patients
    assert slope["n"] == len(cohort) and slope["n_clusters"] == cohort["subject_id"].nunique()
    assert slope["notes"][0].startswith("every patient and every draw in the window kept")
    assert f"{len(points):,} calcium results" in slope["notes"][0]


def test_mixed_model_on_a_seeded_patient_sample(cohort: pd.DataFrame, points: pd.DataFrame) -> None:
    cap, n_patients = 400, cohort["subject_id"].nunique()
    study = StudyConfig(trajectory_model_max_patients=cap, trajectory_model_seed=7)
    slope, at_horizon = calcium_trajectory_mixed(cohort, points, study)
    sampled = patient_sample(cohort["subject_id"], cap, 7)
    assert sampled is not None and len(set(sampled)) == cap
    episodes = cohort.loc[cohort["subject_id"].isin(sampled), "encounter_id"]
    kept_points = points.loc[points["encounter_id"].isin(episodes)]
    # exactly the cap's patients, with every episode and every draw of each
    assert slope["n_clusters"] == cap and slope["n"] == len(episodes)
    assert slope["notes"][0] == (
        f"fitted on a random sample of {cap} of {n_patients:,} patients (seed 7; "
        f"study.trajectory_model_max_patients = {cap} keeps the fit fast); every calcium "
        f"result of a sampled patient kept ({len(kept_points):,} calcium results of "
        f"{len(episodes):,} episodes of {cap} patients, of {len(points):,} results in all)"
    )
    assert slope["n_dropped"] == 0  # episodes outside the sample are not "dropped"
    # deterministic: the same again, and the same with the input rows in another order
    again = calcium_trajectory_mixed(cohort, points, study)
    shuffled = calcium_trajectory_mixed(
        cohort.sample(frac=1.0, random_state=1),
        points.sample(frac=1.0, random_state=2),
        study,
    )
    for other in (again, shuffled):
        for mine, theirs in zip((slope, at_horizon), other, strict=True):
            for key in ("estimate", "ci_low", "ci_high", "p_value"):
                assert theirs[key] == pytest.approx(mine[key], rel=1e-9, abs=1e-12), key
            for key in ("n", "n_exposed", "n_clusters", "notes"):
                assert theirs[key] == mine[key], key
    # Recovery on a third of the patients: the slope difference's SE is about
    # 0.04 mmol/L / sqrt(2,800 draws x var(days) 1.2 x var(exposed) 0.25) ~ 0.0015 mmol/L/day,
    # so 0.006 is four SEs; the horizon difference's SE is about 0.005 mmol/L (0.02: 4 SEs).
    truth = TRAJECTORY_TRUTH
    assert slope["ci_low"] < truth["slope_difference"] < slope["ci_high"]
    assert abs(slope["estimate"] - truth["slope_difference"]) < 0.006
    assert at_horizon["ci_low"] < truth["difference_at_48h"] < at_horizon["ci_high"]
    assert abs(at_horizon["estimate"] - truth["difference_at_48h"]) < 0.02


def test_mixed_model_below_the_cap_is_unchanged_and_small_counts_hidden(
    cohort: pd.DataFrame, points: pd.DataFrame, mixed: list[dict]
) -> None:
    n_patients = cohort["subject_id"].nunique()
    at_cap = calcium_trajectory_mixed(
        cohort, points, StudyConfig(trajectory_model_max_patients=n_patients)
    )
    uncapped = calcium_trajectory_mixed(
        cohort, points, StudyConfig(trajectory_model_max_patients=0), threshold=10_000
    )
    default = mixed
    assert at_cap == default  # a cap the cohort does not exceed changes nothing
    for mine, theirs in zip(default, uncapped, strict=True):
        assert {k: v for k, v in mine.items() if k != "notes"} == {
            k: v for k, v in theirs.items() if k != "notes"
        }
    # counts in the notes obey the small-cell threshold: here every count is below it
    note = uncapped[0]["notes"][0]
    assert note == (
        "every patient and every draw in the window kept (<10000 calcium results of <10000 "
        "episodes of <10000 patients)"
    )


def test_every_analysis_gives_an_entry_with_a_reason_when_it_cannot_be_fitted(
    cohort: pd.DataFrame,
) -> None:
    small = cohort.head(5)
    no_pth = pd.DataFrame({"encounter_id": [], "followup_pth_pmol_l": []})
    no_points = pd.DataFrame(
        {"encounter_id": [], "hours_from_index": [], "ca_corrected_mmol_l": []}
    )
    entries = run_secondary(small, pth=no_pth, points=no_points, study=STUDY)
    assert len(entries) == 3
    for e in entries:
        assert e["estimate"] is None and e["reason"], e
        assert "fewer than" in e["reason"] or "no " in e["reason"]
