"""eligible_episodes: every eligible episode, its outcome observed or not, and why not.

The qualifying stay (helpers.stories.QUALIFYING_LABS): index d1 10:00, corrected Ca 2.10,
creatinine at d1 06:00. The horizon is 48 h (d3 10:00), the outcome window 36-60 h.
"""

from __future__ import annotations

import pytest
from helpers.stories import QUALIFYING_LABS, build, calcium_at

COLUMNS = [
    "encounter_id",
    "outcome_observed",
    "outcome_missing_reason",
    "hours_to_discharge",
    "corrected_or_discharged_alive",
]


def _stay(discharge: str, died: bool = False) -> str:
    return f"""
    encounter_id | subject_id | admit_time | discharge_time | age_years | died_in_hospital
    e1           | p1         | d1 00:00   | {discharge}    | 70        | {str(died).lower()}
    """


@pytest.mark.parametrize(
    ("discharge", "died", "draws", "observed", "reason", "hours", "composite"),
    [
        # re-tested at 47 h, corrected (2.30 >= 2.15): observed, no reason, composite true
        ("d9 00:00", False, [("d3 09:00", 2.30)], True, None, 182.0, True),
        # re-tested at 47 h, still low (2.10 < 2.15): composite false
        ("d9 00:00", False, [("d3 09:00", 2.10)], True, None, 182.0, False),
        # exactly at the threshold counts as corrected
        ("d9 00:00", False, [("d3 09:00", 2.15)], True, None, 182.0, True),
        # went home alive at 30 h, before the horizon: composite true
        ("d2 16:00", False, [], False, "discharged_alive", 30.0, True),
        # died at 20 h, before the horizon: composite false
        ("d2 06:00", True, [], False, "died", 20.0, False),
        # died on day 9: still in hospital at the horizon, simply not re-tested
        ("d9 00:00", True, [], False, "not_retested", 182.0, False),
        # left at 50 h, inside the window but after the horizon, without a draw
        ("d3 12:00", False, [], False, "not_retested", 50.0, False),
        # a draw at 24 h only is no outcome: in hospital at the horizon, not re-tested
        ("d9 00:00", False, [("d2 10:00", 2.20)], False, "not_retested", 182.0, False),
    ],
)
def test_every_eligible_episode_says_whether_and_why_its_outcome_is_missing(
    discharge: str,
    died: bool,
    draws: list[tuple[str, float]],
    observed: bool,
    reason: str | None,
    hours: float,
    composite: bool,
) -> None:
    story = build(encounters=_stay(discharge, died), labs=QUALIFYING_LABS + calcium_at(*draws))
    assert story.rows("eligible_episodes", COLUMNS) == [
        {
            "encounter_id": "e1",
            "outcome_observed": observed,
            "outcome_missing_reason": reason,
            "hours_to_discharge": hours,
            "corrected_or_discharged_alive": composite,
        }
    ]
    # the analysed episodes are exactly the eligible ones with an observed outcome
    assert story.excluded_at("e1") == (None if observed else 10)


def test_an_episode_failing_an_earlier_step_is_not_eligible() -> None:
    # no baseline creatinine: excluded at step 9, so not among the eligible episodes either
    labs = "\n".join(line for line in QUALIFYING_LABS.splitlines() if "creatinine" not in line)
    story = build(encounters=_stay("d9 00:00"), labs=labs + calcium_at(("d3 10:00", 2.3)))
    assert story.excluded_at("e1") == 9
    assert story.rows("eligible_episodes", COLUMNS) == []


def test_eligible_episodes_carry_the_arm_and_the_pre_index_covariates() -> None:
    story = build(
        encounters=_stay("d9 00:00"),
        labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.3)),
        meds="""
        subject_id | encounter_id | time     | ingredient        | dose | dose_unit
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g
        """,
    )
    (row,) = story.rows(
        "eligible_episodes",
        [
            "exposed",
            "baseline_mg_mmol_l",
            "baseline_creatinine_umol_l",
            "outcome_ca_corrected_mmol_l",
        ],
    )
    assert row == {
        "exposed": True,
        "baseline_mg_mmol_l": 0.55,
        "baseline_creatinine_umol_l": 90.0,
        "outcome_ca_corrected_mmol_l": 2.3,
    }
