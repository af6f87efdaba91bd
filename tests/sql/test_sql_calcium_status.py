"""calcium_status (ionized, else corrected, else uncorrected total), CTCAE grades at their
cut-points, hypocalcaemia episodes on the status series and PTH status during them.

Unless a story says otherwise, each total Ca has albumin 40 g/L drawn beside it, so its
corrected value equals the total.
"""

from __future__ import annotations

import csv
from importlib import resources

import pytest
from helpers.stories import assert_rows, at, build, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""

STATUS = ["time", "calcium_measure", "value_mmol_l", "is_low", "ctcae_grade", "measure_time"]


def test_ionized_is_preferred_within_an_hour_else_corrected_else_uncorrected_total() -> None:
    # d1 08:00 total 2.05 (corrected 2.05, low) but an ionized 1.15 (normal) 30 min later:
    #          at 08:00 the best measure is that ionized value: not low. At 08:30 likewise.
    # d2 08:00 total 2.05, ionized 1.15 61 min later: too far, the corrected 2.05 stands
    #          (low, grade 1: < 2.15 and not < 2.0); 09:01 is ionized 1.15.
    # d3 12:00 total 1.90, no albumin in the look-back, which this story sets to 24 h
    #          (d2 08:00 is 28 h before; d5 08:00 is after it and never used): the total
    #          itself, flagged uncorrected; low, grade 2 (< 2.0).
    # d5 08:00 total 2.30 with an ionized 1.05 exactly 1 h later (the window's edge counts):
    #          ionized 1.05 at both times, low (< 1.12), grade 1 (not < 1.0).
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 08:00 | calcium_total   | 2.05  | mmol/L
        p1         | e1           | d1 08:00 | albumin         | 40    | g/L
        p1         | e1           | d1 08:30 | calcium_ionized | 1.15  | mmol/L
        p1         | e1           | d2 08:00 | calcium_total   | 2.05  | mmol/L
        p1         | e1           | d2 08:00 | albumin         | 40    | g/L
        p1         | e1           | d2 09:01 | calcium_ionized | 1.15  | mmol/L
        p1         | e1           | d3 12:00 | calcium_total   | 1.90  | mmol/L
        p1         | e1           | d5 08:00 | calcium_total   | 2.30  | mmol/L
        p1         | e1           | d5 08:00 | albumin         | 40    | g/L
        p1         | e1           | d5 09:00 | calcium_ionized | 1.05  | mmol/L
        """,
        albumin_lookback_hours=24,
    )
    assert_rows(
        story.rows("calcium_status", STATUS),
        expect("""
        time     | calcium_measure   | value_mmol_l | is_low | ctcae_grade | measure_time
        d1 08:00 | ionized           | 1.15         | false  | -           | d1 08:30
        d1 08:30 | ionized           | 1.15         | false  | -           | d1 08:30
        d2 08:00 | corrected         | 2.05         | true   | 1           | d2 08:00
        d2 09:01 | ionized           | 1.15         | false  | -           | d2 09:01
        d3 12:00 | total_uncorrected | 1.90         | true   | 2           | d3 12:00
        d5 08:00 | ionized           | 1.05         | true   | 1           | d5 09:00
        d5 09:00 | ionized           | 1.05         | true   | 1           | d5 09:00
        """),
    )
    assert story.rows("calcium_status", ["time"], where="uncorrected") == [{"time": at("d3 12:00")}]
    # Episodes run on the status series. d2 08:00 is low, closed by the normal ionized at
    # 09:01. d3 12:00 (uncorrected 1.90), d5 08:00 and d5 09:00 (ionized 1.05) are one run
    # (44 h apart, within 72 h), ending at its last result. Its nadir is the worst grade,
    # the uncorrected 1.90 (grade 2), not the ionized 1.05 (grade 1), whose smaller number
    # only reflects another measure.
    assert_rows(
        story.rows(
            "hypocalcaemia_episodes",
            ["episode_start", "episode_end", "nadir_value_mmol_l", "n_results", "nadir_time"],
        ),
        expect("""
        episode_start | episode_end | nadir_value_mmol_l | n_results | nadir_time
        d2 08:00      | d2 09:01    | 2.05               | 1         | d2 08:00
        d3 12:00      | d5 09:00    | 1.90               | 3         | d3 12:00
        """),
    )
    assert_rows(
        story.rows(
            "hypocalcaemia_episodes",
            ["episode_start", "calcium_measure", "ctcae_grade", "any_uncorrected", "end_reason"],
        ),
        expect("""
        episode_start | calcium_measure   | ctcae_grade | any_uncorrected | end_reason
        d2 08:00      | corrected         | 1           | false           | normal_result
        d3 12:00      | total_uncorrected | 2           | true            | last_result
        """),
    )
    measures = story.rows(
        "data_quality",
        ["check_name", "n_rows", "n_flagged"],
        where="table_name = 'calcium_status'",
    )
    assert measures == [
        {"check_name": "calcium_measure:corrected", "n_rows": 7, "n_flagged": 1},
        {"check_name": "calcium_measure:ionized", "n_rows": 7, "n_flagged": 5},
        {"check_name": "calcium_measure:total_uncorrected", "n_rows": 7, "n_flagged": 1},
    ]


def test_ionized_window_is_configurable() -> None:
    # With ionized_window_hours = 0 only an ionized drawn at the very minute stands in: the
    # d1 08:00 total is read as corrected 2.05 (low), the ionized 30 min later on its own.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 08:00 | calcium_total   | 2.05  | mmol/L
        p1         | e1           | d1 08:00 | albumin         | 40    | g/L
        p1         | e1           | d1 08:30 | calcium_ionized | 1.15  | mmol/L
        """,
        ionized_window_hours=0,
    )
    assert_rows(
        story.rows("calcium_status", ["time", "calcium_measure", "value_mmol_l", "is_low"]),
        expect("""
        time     | calcium_measure | value_mmol_l | is_low
        d1 08:00 | corrected       | 2.05         | true
        d1 08:30 | ionized         | 1.15         | false
        """),
    )


def test_ctcae_hypocalcaemia_grades_at_their_exact_cut_points() -> None:
    # Corrected (stay e1, one total + albumin 40 every 2 h): G1 < 2.15-2.0, G2 < 2.0-1.75,
    # G3 < 1.75-1.5, G4 < 1.5. A value at a cut-point takes the milder grade.
    # Ionized (stay e2, 2 h apart): G1 < 1.12-1.0, G2 < 1.0-0.9, G3 < 0.9-0.8, G4 < 0.8.
    corrected = [2.15, 2.14, 2.00, 1.99, 1.75, 1.74, 1.50, 1.49]
    ionized = [1.12, 1.11, 1.00, 0.99, 0.90, 0.89, 0.80, 0.79]
    labs = "subject_id | encounter_id | time | analyte | value | unit\n"
    for n, (ca, ica) in enumerate(zip(corrected, ionized, strict=True)):
        labs += f"p1 | e1 | d1 {2 * n:02d}:00 | calcium_total   | {ca}  | mmol/L\n"
        labs += f"p1 | e1 | d1 {2 * n:02d}:00 | albumin         | 40    | g/L\n"
        labs += f"p2 | e2 | d1 {2 * n:02d}:00 | calcium_ionized | {ica} | mmol/L\n"
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        e2           | p2         | d1 00:00   | d9 00:00
        """,
        labs=labs,
    )
    assert_rows(
        story.rows(
            "calcium_status", ["encounter_id", "value_mmol_l", "calcium_measure", "ctcae_grade"]
        ),
        expect("""
        encounter_id | value_mmol_l | calcium_measure | ctcae_grade
        e1           | 1.49         | corrected       | 4
        e1           | 1.50         | corrected       | 3
        e1           | 1.74         | corrected       | 3
        e1           | 1.75         | corrected       | 2
        e1           | 1.99         | corrected       | 2
        e1           | 2.00         | corrected       | 1
        e1           | 2.14         | corrected       | 1
        e1           | 2.15         | corrected       | -
        e2           | 0.79         | ionized         | 4
        e2           | 0.80         | ionized         | 3
        e2           | 0.89         | ionized         | 3
        e2           | 0.90         | ionized         | 2
        e2           | 0.99         | ionized         | 2
        e2           | 1.00         | ionized         | 1
        e2           | 1.11         | ionized         | 1
        e2           | 1.12         | ionized         | -
        """),
    )


def test_grade_cut_points_come_from_the_reference_csv() -> None:
    # The cut-points are data (like admiral's CTCAE grading metadata), each with its source;
    # grade 1 is left blank: it is the configured lower limit.
    text = resources.files("mgca.sql").joinpath("reference", "ctcae_grades.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    cut_points = {(r["measure"], int(r["grade"])): r["below_si"] for r in rows}
    assert cut_points == {
        ("magnesium", 1): "", ("magnesium", 2): "0.5", ("magnesium", 3): "0.4",
        ("magnesium", 4): "0.3",
        ("calcium_corrected", 1): "", ("calcium_corrected", 2): "2.0",
        ("calcium_corrected", 3): "1.75", ("calcium_corrected", 4): "1.5",
        ("calcium_ionized", 1): "", ("calcium_ionized", 2): "1.0",
        ("calcium_ionized", 3): "0.9", ("calcium_ionized", 4): "0.8",
        ("potassium", 1): "", ("potassium", 3): "3.0", ("potassium", 4): "2.5",
    }  # fmt: skip
    assert all(r["source"].startswith("CTCAE v5") and r["si_unit"] == "mmol/L" for r in rows)


# --- PTH during hypocalcaemia -----------------------------------------------------------------

# Each stay: corrected Ca 1.90 (low) at d2 08:00, 2.20 (normal) at d3 08:00: one episode
# d2 08:00 - d3 08:00 with its nadir at d2 08:00. PTH 65 pg/mL = 6.89 -> 6.9 pmol/L is the
# upper limit itself (cfg.pth_upper_ng_l 65 ng/L, in pmol/L at PTH's 1 dp: 6.9).
PTH_STORY = {
    "e1": "d2 12:00 | 120 | pg/mL",  # 12.72 -> 12.7 pmol/L during the episode: raised
    "e2": "d2 12:00 | 30  | pg/mL",  # 3.18 -> 3.2: normal while Ca is low
    "e3": "d2 12:00 | 65  | pg/mL",  # 6.9, at the limit: not above it
    "e4": "d4 09:00 | 120 | pg/mL",  # 25 h after the episode ended: outside the 24 h window
    "e5": "d1 09:00 | 100 | pg/mL",  # 23 h before it began: inside the window, 10.6 raised
    "e6": "d2 12:00 | 5.0 | pmol/L",  # reported in pmol/L: below 6.9
}


def test_pth_is_appropriately_raised_inappropriately_normal_or_not_measured() -> None:
    encounters = "encounter_id | subject_id | admit_time | discharge_time\n" + "".join(
        f"{e} | p{e[1]} | d1 00:00 | d9 00:00\n" for e in PTH_STORY
    )
    labs = "subject_id | encounter_id | time | analyte | value | unit\n"
    for e, pth in PTH_STORY.items():
        p = f"p{e[1]}"
        labs += f"{p} | {e} | d2 08:00 | calcium_total | 1.90 | mmol/L\n"
        labs += f"{p} | {e} | d2 08:00 | albumin       | 40   | g/L\n"
        labs += f"{p} | {e} | d3 08:00 | calcium_total | 2.20 | mmol/L\n"
        labs += f"{p} | {e} | d3 08:00 | albumin       | 40   | g/L\n"
        labs += f"{p} | {e} | {pth.split('|')[0]} | pth | {'|'.join(pth.split('|')[1:])}\n"
    story = build(encounters=encounters, labs=labs)
    assert_rows(
        story.rows(
            "hypocalcaemia_pth_status",
            ["encounter_id", "pth_status", "pth_time", "pth_pmol_l", "pth_during_episode"],
        ),
        expect("""
        encounter_id | pth_status                    | pth_time | pth_pmol_l | pth_during_episode
        e1           | appropriately_raised          | d2 12:00 | 12.7       | true
        e2           | inappropriately_normal_or_low | d2 12:00 | 3.2        | true
        e3           | inappropriately_normal_or_low | d2 12:00 | 6.9        | true
        e4           | not_measured                  | -        | -          | -
        e5           | appropriately_raised          | d1 09:00 | 10.6       | false
        e6           | inappropriately_normal_or_low | d2 12:00 | 5.0        | true
        """),
    )
    assert {r["pth_upper_pmol_l"] for r in story.rows("hypocalcaemia_pth_status")} == {6.9}
    assert story.rows(
        "data_quality",
        ["check_name", "n_rows", "n_flagged"],
        where="table_name = 'hypocalcaemia_pth_status'",
    ) == [
        {"check_name": "pth_status:appropriately_raised", "n_rows": 6, "n_flagged": 2},
        {"check_name": "pth_status:inappropriately_normal_or_low", "n_rows": 6, "n_flagged": 3},
        {"check_name": "pth_status:not_measured", "n_rows": 6, "n_flagged": 1},
    ]


def test_pth_drawn_during_the_episode_beats_one_nearer_outside_it() -> None:
    # Episode d2 08:00 - d3 08:00 (nadir d2 08:00). PTH 30 pg/mL 1 h before it began and
    # 120 pg/mL during it (d3 06:00): the one drawn while calcium was low decides: raised.
    # Without the second PTH and with pth_window_hours = 0, the PTH 1 h early does not count.
    labs = """
    subject_id | encounter_id | time     | analyte       | value | unit
    p1         | e1           | d2 07:00 | pth           | 30    | pg/mL
    p1         | e1           | d2 08:00 | calcium_total | 1.90  | mmol/L
    p1         | e1           | d2 08:00 | albumin       | 40    | g/L
    p1         | e1           | d3 06:00 | pth           | 120   | pg/mL
    p1         | e1           | d3 08:00 | calcium_total | 2.20  | mmol/L
    p1         | e1           | d3 08:00 | albumin       | 40    | g/L
    """
    story = build(encounters=STAY, labs=labs)
    assert_rows(
        story.rows("hypocalcaemia_pth_status", ["pth_status", "pth_time"]),
        expect("""
        pth_status           | pth_time
        appropriately_raised | d3 06:00
        """),
    )
    story = build(
        encounters=STAY,
        labs="\n".join(line for line in labs.splitlines() if "d3 06:00" not in line),
        pth_window_hours=0,
    )
    assert [r["pth_status"] for r in story.rows("hypocalcaemia_pth_status")] == ["not_measured"]


@pytest.mark.parametrize(
    ("mg_at", "mg_encounter", "expected"),
    [
        # Episode d2 08:00 - d3 08:00. PTH 30 pg/mL (normal) at d2 10:00, 120 pg/mL (raised)
        # at d2 20:00. No Mg: the one nearest the nadir decides (inappropriately normal).
        (None, None, "inappropriately_normal_or_low | d2 10:00"),
        # Mg at d2 09:00, before both PTHs: neither is used; they exist, so not 'not_measured'
        ("d2 09:00", "e1", "measured_only_after_mg | -"),
        # Mg at d2 15:00: the PTH before it decides even though it is the only one left
        ("d2 15:00", "e1", "inappropriately_normal_or_low | d2 10:00"),
        # Mg at the PTH's own minute counts as before it (as a dose at index makes a
        # prevalent user); an unlinked dose inside the stay is the stay's dose
        ("d2 10:00", "e1", "measured_only_after_mg | -"),
        ("d2 09:00", "-", "measured_only_after_mg | -"),
    ],
)
def test_pth_status_uses_only_a_pth_drawn_before_any_mg(
    mg_at: str | None, mg_encounter: str | None, expected: str
) -> None:
    labs = """
    subject_id | encounter_id | time     | analyte       | value | unit
    p1         | e1           | d2 08:00 | calcium_total | 1.90  | mmol/L
    p1         | e1           | d2 08:00 | albumin       | 40    | g/L
    p1         | e1           | d2 10:00 | pth           | 30    | pg/mL
    p1         | e1           | d2 20:00 | pth           | 120   | pg/mL
    p1         | e1           | d3 08:00 | calcium_total | 2.20  | mmol/L
    p1         | e1           | d3 08:00 | albumin       | 40    | g/L
    """
    meds = None
    if mg_at is not None:
        meds = f"""
        subject_id | encounter_id   | time    | ingredient        | dose | dose_unit
        p1         | {mg_encounter} | {mg_at} | magnesium_sulfate | 2    | g
        """
    story = build(encounters=STAY, labs=labs, meds=meds)
    assert_rows(
        story.rows("hypocalcaemia_pth_status", ["pth_status", "pth_time"]),
        expect("pth_status | pth_time\n" + expected),
    )
