"""The analytic table's contract (pandera) catches derivation bugs before any model runs."""

from __future__ import annotations

import pandas as pd
import pytest

from mgca.analysis.estimation.cohort_schema import CohortContractError, validate_cohort
from mgca.config import StudyConfig

STUDY = StudyConfig()


def _episode(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "subject_id": "s1",
        "encounter_id": "e1",
        "index_time": pd.Timestamp("2150-01-01 06:00"),
        "exposed": True,
        "hours_to_first_mg": 1.0,
        "mg_dose_grace_mmol": 8.12,
        "age_years": 64.0,
        "sex": "F",
        "baseline_mg_mmol_l": 0.55,
        "baseline_ca_corrected_mmol_l": 2.02,
        "baseline_ca_total_mmol_l": 1.92,
        "baseline_albumin_g_l": 35.0,
        "baseline_creatinine_umol_l": 90.0,
        "outcome_ca_corrected_mmol_l": 2.20,
        "outcome_hours_from_index": 47.5,
    }
    row.update(overrides)
    return row


def test_a_valid_cohort_passes_unchanged() -> None:
    cohort = pd.DataFrame(
        [
            _episode(),
            _episode(
                encounter_id="e2", exposed=False, hours_to_first_mg=None, mg_dose_grace_mmol=0.0
            ),
        ]
    )
    out = validate_cohort(cohort, STUDY)
    assert len(out) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"baseline_mg_mmol_l": 0.70}, "baseline_mg_mmol_l"),  # 0.70 is not low
        ({"baseline_ca_corrected_mmol_l": 2.30}, "baseline_ca_corrected_mmol_l"),
        ({"hours_to_first_mg": 6.5}, "hours_to_first_mg"),  # outside the 6 h grace period
        ({"hours_to_first_mg": None}, "only they"),  # exposed without a dose time
        ({"outcome_hours_from_index": 30.0}, "outcome_hours_from_index"),  # outside 48 ± 12 h
        ({"sex": "female"}, "sex"),
        ({"age_years": 12.0}, "age_years"),
    ],
)
def test_each_broken_rule_is_named(override: dict[str, object], message: str) -> None:
    with pytest.raises(CohortContractError, match=message):
        validate_cohort(pd.DataFrame([_episode(**override)]), STUDY)


def test_duplicate_episode_and_messages_carry_no_ids_or_dates() -> None:
    cohort = pd.DataFrame([_episode(subject_id="SUBJ-7", encounter_id="ENC-9")] * 2)
    with pytest.raises(CohortContractError) as err:
        validate_cohort(cohort, STUDY)
    text = str(err.value)
    assert "encounter_id" in text
    assert "ENC-9" not in text and "SUBJ-7" not in text and "2150" not in text


def test_the_calcium_that_qualified_is_checked_against_its_own_threshold() -> None:
    # An ionized-indexed episode may have a normal or missing corrected Ca (the ionized value
    # decided) but its ionized Ca must be low; a corrected-indexed one needs a low corrected
    # Ca whichever ionized value sits beside it.
    ionized = {
        "index_calcium_measure": "ionized",
        "outcome_calcium_measure": "corrected_lookback_albumin",
        "baseline_ca_ionized_mmol_l": 1.05,
    }
    valid = pd.DataFrame(
        [
            _episode(**ionized, baseline_ca_corrected_mmol_l=2.30),
            _episode(
                **ionized,
                encounter_id="e2",
                baseline_ca_corrected_mmol_l=None,
                baseline_ca_total_mmol_l=None,
                baseline_albumin_g_l=None,
            ),
            _episode(
                encounter_id="e3",
                index_calcium_measure="corrected_same_day_albumin",
                outcome_calcium_measure="corrected_same_day_albumin",
                baseline_ca_ionized_mmol_l=None,
            ),
        ]
    )
    assert len(validate_cohort(valid, STUDY)) == 3
    with pytest.raises(CohortContractError, match="baseline_ca_ionized_mmol_l below"):
        validate_cohort(
            pd.DataFrame([_episode(**{**ionized, "baseline_ca_ionized_mmol_l": 1.12})]), STUDY
        )
    with pytest.raises(CohortContractError, match="index_calcium_measure"):
        validate_cohort(
            pd.DataFrame([_episode(**{**ionized, "index_calcium_measure": "total"})]), STUDY
        )
    with pytest.raises(CohortContractError, match="baseline_ca_corrected_mmol_l below"):
        validate_cohort(
            pd.DataFrame(
                [
                    _episode(
                        index_calcium_measure="corrected_lookback_albumin",
                        baseline_ca_corrected_mmol_l=None,
                    )
                ]
            ),
            STUDY,
        )
