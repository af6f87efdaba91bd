"""The fixed-schedule secondaries (mgca.analysis.estimation.fixed_schedule) on seeded
simulated cohorts (helpers.analysis_sim) with outcomes hidden at random given the arm and the
index Mg: the 0/1 outcome goes through the primary's IPCW g-computation, every eligible
episode is counted, and in the null cohort the risk difference is about 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.fixed_schedule import (
    FIXED_LOOKS_NAME,
    HORIZON_NAME,
    corrected_at_fixed_looks,
    corrected_at_horizon,
)
from mgca.analysis.estimation.models import InsufficientDataError
from mgca.analysis.estimation.secondary import SECONDARY_COUNT_KEYS, entry
from mgca.config import EstimationConfig, StudyConfig

STUDY = StudyConfig()
ESTIMATION = EstimationConfig(bootstrap_replicates=50)


def _eligible(effect: bool, seed: int) -> pd.DataFrame:
    """``eligible_episodes``-shaped: the outcome hidden at random given the arm and Mg."""
    cohort, _ = simulate_cohort(1500, seed=seed, effect=effect)
    rng = np.random.default_rng(seed)
    mg = cohort["baseline_mg_mmol_l"].to_numpy()
    treated = cohort["exposed"].to_numpy(dtype=bool)
    home = rng.uniform(size=len(cohort)) < 1 / (1 + np.exp(-(-0.5 + 20 * (mg - 0.5) - treated)))
    eligible = cohort.copy()
    eligible.loc[home, "outcome_ca_corrected_mmol_l"] = np.nan
    eligible["outcome_observed"] = ~home
    eligible["outcome_corrected"] = (
        eligible["outcome_ca_corrected_mmol_l"] >= STUDY.ca_corrected_low_mmol_l
    ).where(~home)
    return eligible


def _looks(eligible: pd.DataFrame, unread: np.ndarray) -> pd.DataFrame:
    """``index_calcium_fixed_looks``-shaped: corrected at a look = corrected at the horizon;
    ``unread`` episodes miss one of the three looks (outcome null)."""
    return pd.DataFrame(
        {
            "encounter_id": eligible["encounter_id"],
            "n_looks": 3,
            "n_looks_observed": np.where(unread, 2, 3),
            "corrected_at_fixed_looks": eligible["outcome_corrected"].where(~unread),
        }
    )


@pytest.fixture(scope="module")
def null_eligible() -> pd.DataFrame:
    return _eligible(effect=False, seed=20261206)


def test_horizon_entry_counts_every_eligible_episode_with_the_secondary_keys(
    null_eligible: pd.DataFrame,
) -> None:
    e = corrected_at_horizon(null_eligible, STUDY, ESTIMATION)
    assert e["name"] == HORIZON_NAME and e["scale"] == "risk difference"
    assert set(entry(name="", estimand="", outcome="", unit="", scale="", method="")) <= set(e)
    assert e["n"] == len(null_eligible)  # unmeasured episodes are weighted for, not dropped
    assert all(isinstance(e[k], int) for k in SECONDARY_COUNT_KEYS)
    assert e["missing_outcome_handling"] and e["cohort"] and e["exposure"]
    for words in ("cohort:", "exposure:"):
        assert any(n.startswith(words) for n in e["notes"])
    # null cohort (true risk difference 0): estimate within ± 0.05, CI covers 0
    assert abs(e["estimate"]) < 0.05 and e["ci_low"] <= 0 <= e["ci_high"], e


def test_an_unread_look_is_weighted_not_dropped(null_eligible: pd.DataFrame) -> None:
    rng = np.random.default_rng(7)
    unread = rng.uniform(size=len(null_eligible)) < 0.2
    e = corrected_at_fixed_looks(null_eligible, _looks(null_eligible, unread), STUDY, ESTIMATION)
    assert e["name"] == FIXED_LOOKS_NAME
    assert e["n"] == len(null_eligible)
    assert abs(e["estimate"]) < 0.05 and e["ci_low"] <= 0 <= e["ci_high"], e
    # with every look read the outcome is the horizon one, so the two estimates agree
    same = corrected_at_fixed_looks(
        null_eligible, _looks(null_eligible, np.zeros(len(null_eligible), bool)), STUDY, ESTIMATION
    )
    horizon = corrected_at_horizon(null_eligible, STUDY, ESTIMATION)
    assert same["estimate"] == pytest.approx(horizon["estimate"], abs=1e-12)


def test_a_constant_outcome_gives_a_reason_not_a_zero_width_interval(
    null_eligible: pd.DataFrame,
) -> None:
    everyone = null_eligible.assign(
        outcome_corrected=null_eligible["outcome_corrected"].where(
            null_eligible["outcome_corrected"].isna(), True
        )
    )
    with pytest.raises(InsufficientDataError, match="same outcome"):
        corrected_at_horizon(everyone, STUDY, ESTIMATION)
