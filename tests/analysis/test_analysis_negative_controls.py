"""Negative controls refit the primary model with one thing swapped, are suppressed like the
estimates, and reach the report's section, first-screen forest row and caveat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.models import ADJUSTMENT_SET
from mgca.analysis.estimation.negative_controls import (
    CONTROL_UNITS,
    EXPOSURE_TABLE,
    OUTCOMES_TABLE,
    negative_controls_block,
)
from mgca.analysis.report.first_screen import run_caveats
from mgca.analysis.report.negative_controls_section import (
    CALIBRATED_GROUP,
    negative_control_rows,
    with_calibrated_row,
)
from mgca.config import MgcaConfig, StudyConfig

CONFIG = MgcaConfig.model_validate({"estimation": {"bootstrap_replicates": 50}})


def _tables(cohort: pd.DataFrame, seed: int, n_kcl: int | None = None) -> dict[str, pd.DataFrame]:
    """Control values with no effect of either exposure: sodium and albumin noise around the
    patient's baseline, the placebo Ca the baseline plus noise, KCl at random (or in only
    ``n_kcl`` episodes)."""
    rng = np.random.default_rng(seed)
    n = len(cohort)
    kcl = rng.uniform(size=n) < 0.3
    if n_kcl is not None:
        kcl = np.zeros(n, dtype=bool)
        kcl[np.flatnonzero(~cohort["exposed"].to_numpy())[:n_kcl]] = True
    outcomes = pd.DataFrame(
        {
            "encounter_id": cohort["encounter_id"],
            "outcome_sodium_mmol_l": rng.normal(139, 3, n),
            "outcome_albumin_g_l": cohort["baseline_albumin_g_l"] + rng.normal(0, 3, n),
            "placebo_ca_corrected_mmol_l": cohort["baseline_ca_corrected_mmol_l"]
            + rng.normal(0.1, 0.08, n),
            "placebo_hours_from_index": -24.0,
        }
    )
    exposure = pd.DataFrame(
        {
            "encounter_id": cohort["encounter_id"],
            "k_repletion_in_grace": kcl,
            "k_repletion_before_index": False,
        }
    )
    return {OUTCOMES_TABLE: outcomes, EXPOSURE_TABLE: exposure}


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, list[dict], dict]:
    cohort, _ = simulate_cohort(150, seed=31)
    primary = {"estimate": 0.08, "se": 0.02}
    controls, calibration = negative_controls_block(cohort, _tables(cohort, 5), CONFIG, primary)
    return cohort, controls, calibration


def test_each_control_is_the_primary_model_with_one_thing_swapped(fitted) -> None:
    cohort, controls, _ = fitted
    assert [c["name"] for c in controls] == list(CONTROL_UNITS)
    for c in controls:
        assert c["reason"] is None, c["reason"]
        assert c["adjustment_set"] == list(ADJUSTMENT_SET)
        assert c["estimand"] and c["why_null"] and c["outcome"] and c["cohort"]
        # seeded: no control has an effect, and each 95 % CI covers 0
        assert c["ci_low"] <= 0.0 <= c["ci_high"], c["name"]
        std = c["standardised"]
        assert std["estimate"] == pytest.approx(c["estimate"] / std["sd"])
    units = {c["name"]: c["unit"] for c in controls}
    assert units["albumin_outcome"] == "g/L" and units["sodium_outcome"] == "mmol/L"
    kcl = next(c for c in controls if c["name"] == "potassium_exposure")
    assert kcl["n"] + kcl["n_dropped"] == int((~cohort["exposed"]).sum())


def test_the_calibration_uses_every_control_and_does_little_without_systematic_error(
    fitted,
) -> None:
    _, _, cal = fitted
    assert cal["reason"] is None
    assert cal["controls_count"] == 4
    assert cal["controls_reject"] is False
    assert cal["estimate"] == pytest.approx(0.08, abs=0.03)
    assert cal["ci_low"] < cal["estimate"] < cal["ci_high"]


def test_a_control_with_a_small_arm_is_withheld_and_left_out_of_the_calibration() -> None:
    cohort, _ = simulate_cohort(150, seed=31)
    tables = _tables(cohort, 5, n_kcl=6)
    controls, cal = negative_controls_block(cohort, tables, CONFIG, {"estimate": 0.1, "se": 0.02})
    kcl = next(c for c in controls if c["name"] == "potassium_exposure")
    assert kcl["withheld"] and kcl["estimate"] is None
    assert kcl["standardised"] == {"sd": None, "estimate": None, "se": None}
    assert cal["controls_count"] == 3 and "potassium_exposure" not in cal["controls_used"]
    rows = negative_control_rows({"negative_controls": controls}, 11)
    assert "fewer than 11" in rows[-1]["estimate"]


RESULTS = {
    "estimates": [{"name": "primary", "estimate": 0.12, "n_exposed": 150, "n_unexposed": 150}],
    "calibration": {
        "estimate": 0.09,
        "ci_low": 0.06,
        "ci_high": 0.12,
        "controls_count": 4,
        "controls_reject": True,
        "null_test_p": 0.001,
        "controls_ci_excluding_zero": 2,
    },
}


def test_the_calibrated_primary_sits_under_the_primary_in_the_forest() -> None:
    rows = [
        {"group": "primary estimators", "label": "primary"},
        {"group": "primary estimators", "label": "ipw"},
        {"group": "sensitivity", "label": "grace 3h"},
    ]
    got = with_calibrated_row(rows, RESULTS)
    assert [r["group"] for r in got][:4] == [
        "primary estimators",
        CALIBRATED_GROUP,
        "primary estimators",
        "sensitivity",
    ]
    assert with_calibrated_row(rows, {"calibration": {"reason": "too few"}}) == rows


def test_rejecting_controls_make_a_first_screen_caveat() -> None:
    caveats = run_caveats(RESULTS, StudyConfig(), 11)
    titles = [c.title for c in caveats]
    assert "Negative controls reject" in titles
    text = next(c.text for c in caveats if c.title == "Negative controls reject")
    assert "2 of 4" in text and "+0.09" in text


def test_control_counts_follow_the_count_rule_rounding() -> None:
    cohort, _ = simulate_cohort(150, seed=31)
    config = MgcaConfig.model_validate(
        {"estimation": {"bootstrap_replicates": 50}, "privacy": {"rounding": "nearest_5"}}
    )
    controls, _ = negative_controls_block(cohort, _tables(cohort, 5), config, None)
    for c in controls:
        for key in ("n", "n_exposed", "n_unexposed"):
            assert c[key] is None or c[key] % 5 == 0, (c["name"], key, c[key])
