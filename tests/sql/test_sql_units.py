"""lab_harmonised: units to SI, quarantine reasons, duplicates, labs without a stay.

Each story says what a clinician would expect; the expected rows are worked out by hand from
clinical.md's conversion factors.
"""

from __future__ import annotations

import csv
from importlib import resources

import pytest
from helpers.stories import assert_rows, build, expect

from mgca.engine.database import normalise_unit

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""

ANALYTES = {
    "magnesium", "calcium_total", "calcium_ionized", "albumin", "pth", "phosphate",
    "potassium", "creatinine", "sodium", "vitamin_d_25oh", "vitamin_d_1_25",
}  # fmt: skip

COLUMNS = ["time", "analyte", "value", "unit", "value_si", "unit_si", "status"]


def _reference(name: str) -> list[dict[str, str]]:
    text = resources.files("mgca.sql").joinpath("reference", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_magnesium_in_mg_per_dl_meq_and_mmol_lands_in_mmol_per_litre() -> None:
    # A clinician reads 1.2 mg/dL and 1.2 mEq/L as two different things: 0.49 and 0.60 mmol/L.
    # Spelling does not matter (MG/DL, "mmol / L"). Values are kept at the laboratory's SI
    # reporting precision (Mg: 2 dp), the unrounded conversion beside them: 1.2 x 0.4114 =
    # 0.49368 is reported 0.49; 1.7 mg/dL, the usual lower limit in mg/dL, is 0.69938 and
    # reported 0.70 mmol/L, the lower limit itself.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d1 08:00 | magnesium | 1.2   | mg/dL
        p1         | e1           | d1 09:00 | magnesium | 1.2   | mEq/L
        p1         | e1           | d1 10:00 | magnesium | 0.65  | mmol/L
        p1         | e1           | d1 11:00 | magnesium | 1.7   | MG/DL
        p1         | e1           | d1 12:00 | magnesium | 0.6   | mmol / L
        """,
    )
    assert_rows(
        story.rows("lab_harmonised", [*COLUMNS, "value_si_unrounded"]),
        expect("""
        time     | analyte   | value | unit     | value_si | unit_si | status | value_si_unrounded
        d1 08:00 | magnesium | 1.2   | mg/dL    | 0.49     | mmol/L  | used   | 0.49368
        d1 09:00 | magnesium | 1.2   | mEq/L    | 0.6      | mmol/L  | used   | 0.6
        d1 10:00 | magnesium | 0.65  | mmol/L   | 0.65     | mmol/L  | used   | 0.65
        d1 11:00 | magnesium | 1.7   | MG/DL    | 0.70     | mmol/L  | used   | 0.69938
        d1 12:00 | magnesium | 0.6   | mmol / L | 0.6      | mmol/L  | used   | 0.6
        """),
    )


def test_every_unit_of_clinical_md_converts_with_its_factor() -> None:
    # One result in each unit clinical.md lists, converted by hand with its factor, then
    # rounded to the SI reporting precision (Mg, Ca, phosphate 2 dp; K, PTH 1 dp; albumin,
    # creatinine, sodium, vitamin D whole numbers). Creatinine's micromole comes in every
    # spelling: umol/L, µmol/L (micro sign), μmol/L (Greek mu) and micromol/L.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 01:00 | calcium_total   | 8.6   | mg/dL
        p1         | e1           | d1 02:00 | calcium_total   | 2.15  | mmol/L
        p1         | e1           | d1 03:00 | calcium_ionized | 1.12  | mmol/L
        p1         | e1           | d1 04:00 | calcium_ionized | 4.5   | mg/dL
        p1         | e1           | d1 05:00 | albumin         | 3.5   | g/dL
        p1         | e1           | d1 06:00 | albumin         | 35    | g/L
        p1         | e1           | d1 07:00 | pth             | 65    | pg/mL
        p1         | e1           | d1 08:00 | pth             | 65    | ng/L
        p1         | e1           | d1 09:00 | pth             | 6.9   | pmol/L
        p1         | e1           | d1 10:00 | phosphate       | 3.1   | mg/dL
        p1         | e1           | d1 11:00 | phosphate       | 1.0   | mmol/L
        p1         | e1           | d1 12:00 | potassium       | 4.1   | mEq/L
        p1         | e1           | d1 13:00 | potassium       | 4.1   | mmol/L
        p1         | e1           | d1 14:00 | creatinine      | 1.5   | mg/dL
        p1         | e1           | d1 15:00 | creatinine      | 132   | µmol/L
        p1         | e1           | d1 16:00 | creatinine      | 132   | μmol/L
        p1         | e1           | d1 17:00 | sodium          | 140   | mEq/L
        p1         | e1           | d1 18:00 | sodium          | 140   | mmol/L
        p1         | e1           | d1 19:00 | vitamin_d_25oh  | 20    | ng/mL
        p1         | e1           | d1 20:00 | vitamin_d_25oh  | 50    | nmol/L
        p1         | e1           | d1 21:00 | vitamin_d_1_25  | 30    | pg/mL
        p1         | e1           | d1 22:00 | vitamin_d_1_25  | 72    | pmol/L
        p1         | e1           | d1 23:00 | creatinine      | 132   | umol/L
        p1         | e1           | d2 00:00 | creatinine      | 132   | micromol/L
        p1         | e1           | d2 01:00 | vitamin_d_25oh  | 20    | ug/L
        p1         | e1           | d2 02:00 | vitamin_d_1_25  | 30    | ng/L
        p1         | e1           | d2 03:00 | magnesium       | 1.7   | mEq/L
        p1         | e1           | d2 04:00 | potassium       | 3.45  | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "lab_harmonised",
            ["time", "analyte", "value_si_unrounded", "value_si", "unit_si", "status"],
        ),
        expect("""
        time     | analyte         | value_si_unrounded | value_si | unit_si | status
        d1 01:00 | calcium_total   | 2.1457             | 2.15     | mmol/L  | used
        d1 02:00 | calcium_total   | 2.15               | 2.15     | mmol/L  | used
        d1 03:00 | calcium_ionized | 1.12               | 1.12     | mmol/L  | used
        d1 04:00 | calcium_ionized | 1.12275            | 1.12     | mmol/L  | used
        d1 05:00 | albumin         | 35                 | 35       | g/L     | used
        d1 06:00 | albumin         | 35                 | 35       | g/L     | used
        d1 07:00 | pth             | 6.89               | 6.9      | pmol/L  | used
        d1 08:00 | pth             | 6.89               | 6.9      | pmol/L  | used
        d1 09:00 | pth             | 6.9                | 6.9      | pmol/L  | used
        d1 10:00 | phosphate       | 1.0013             | 1.00     | mmol/L  | used
        d1 11:00 | phosphate       | 1.0                | 1.00     | mmol/L  | used
        d1 12:00 | potassium       | 4.1                | 4.1      | mmol/L  | used
        d1 13:00 | potassium       | 4.1                | 4.1      | mmol/L  | used
        d1 14:00 | creatinine      | 132.6              | 133      | umol/L  | used
        d1 15:00 | creatinine      | 132                | 132      | umol/L  | used
        d1 16:00 | creatinine      | 132                | 132      | umol/L  | used
        d1 17:00 | sodium          | 140                | 140      | mmol/L  | used
        d1 18:00 | sodium          | 140                | 140      | mmol/L  | used
        d1 19:00 | vitamin_d_25oh  | 49.92              | 50       | nmol/L  | used
        d1 20:00 | vitamin_d_25oh  | 50                 | 50       | nmol/L  | used
        d1 21:00 | vitamin_d_1_25  | 72                 | 72       | pmol/L  | used
        d1 22:00 | vitamin_d_1_25  | 72                 | 72       | pmol/L  | used
        d1 23:00 | creatinine      | 132                | 132      | umol/L  | used
        d2 00:00 | creatinine      | 132                | 132      | umol/L  | used
        d2 01:00 | vitamin_d_25oh  | 49.92              | 50       | nmol/L  | used
        d2 02:00 | vitamin_d_1_25  | 72                 | 72       | pmol/L  | used
        d2 03:00 | magnesium       | 0.85               | 0.85     | mmol/L  | used
        d2 04:00 | potassium       | 3.45               | 3.5      | mmol/L  | used
        """),
    )


@pytest.mark.parametrize(
    ("analyte", "spellings"),
    [
        ("magnesium", {"mmol/l", "mg/dl", "meq/l"}),
        ("calcium_total", {"mmol/l", "mg/dl"}),
        ("calcium_ionized", {"mmol/l", "mg/dl"}),
        ("albumin", {"g/l", "g/dl"}),
        ("pth", {"pg/ml", "ng/l", "pmol/l"}),
        ("phosphate", {"mmol/l", "mg/dl"}),
        ("potassium", {"mmol/l", "meq/l"}),
        ("creatinine", {"umol/l", "mg/dl", "micromol/l"}),
        ("sodium", {"mmol/l", "meq/l"}),
        ("vitamin_d_25oh", {"ng/ml", "nmol/l"}),
        ("vitamin_d_1_25", {"pg/ml", "pmol/l"}),
    ],
)
def test_every_unit_clinical_md_names_is_accepted_for_its_analyte(
    analyte: str, spellings: set[str]
) -> None:
    # clinical.md's units table, column by column (sodium: mmol/L = mEq/L, monovalent).
    accepted = {r["unit"] for r in _reference("unit_conversions.csv") if r["analyte"] == analyte}
    assert spellings <= accepted


def test_unknown_or_missing_unit_is_quarantined_never_guessed() -> None:
    # "mg%" is an old spelling nobody listed, a missing unit could be anything, and mmol/L
    # is no unit of albumin: none of them is converted or used, whatever the number suggests.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d1 08:00 | magnesium | 1.2   | mg%
        p1         | e1           | d1 09:00 | magnesium | 0.6   | -
        p1         | e1           | d1 10:00 | albumin   | 30    | mmol/L
        """,
    )
    assert_rows(
        story.rows("lab_harmonised", COLUMNS),
        expect("""
        time     | analyte   | value | unit   | value_si | unit_si | status
        d1 08:00 | magnesium | 1.2   | mg%    | -        | -       | unknown_unit
        d1 09:00 | magnesium | 0.6   | -      | -        | -       | unknown_unit
        d1 10:00 | albumin   | 30    | mmol/L | -        | -       | unknown_unit
        """),
    )
    assert story.rows("hypomagnesaemia_episodes") == []


def test_values_are_judged_at_reporting_precision_not_by_binary_conversion() -> None:
    # Day 1: Mg 1.7 mg/dL (0.69938 -> reported 0.70 mmol/L) is the lower limit, not low; total
    # Ca 8.6 mg/dL (2.1457 -> 2.15) with albumin 4.0 g/dL (40 g/L) is corrected 2.15, the lower
    # limit, not low. A clinician sees no hypoMg and no hypoCa: no index on day 1.
    # Day 2: Mg 1.6 mg/dL (0.65824 -> 0.66) is low; Ca 8.5 mg/dL (2.12075 -> 2.12) corrected
    # 2.12 is low: index at the later draw, d2 10:00, baseline values as reported.
    # Day 3: a lab reporting Mg to 3 dp sends 0.695 mmol/L: reported to 2 dp that is 0.70
    # (half away from zero, although binary 0.695 is 0.69499999...): not low, so it closes
    # the day-2 episode.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | magnesium     | 1.7   | mg/dL
        p1         | e1           | d1 10:00 | calcium_total | 8.6   | mg/dL
        p1         | e1           | d1 10:00 | albumin       | 4.0   | g/dL
        p1         | e1           | d2 08:00 | magnesium     | 1.6   | mg/dL
        p1         | e1           | d2 10:00 | calcium_total | 8.5   | mg/dL
        p1         | e1           | d2 10:00 | albumin       | 4.0   | g/dL
        p1         | e1           | d3 08:00 | magnesium     | 0.695 | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "calcium_corrected", ["time", "ca_corrected_mmol_l", "ca_corrected_unrounded_mmol_l"]
        ),
        expect("""
        time     | ca_corrected_mmol_l | ca_corrected_unrounded_mmol_l
        d1 10:00 | 2.15                | 2.1457
        d2 10:00 | 2.12                | 2.12075
        """),
    )
    assert_rows(
        story.rows("hypomagnesaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d2 08:00      | d3 08:00    | 0.66               | 1
        """),
    )
    assert_rows(
        story.rows(
            "hypocalcaemia_episodes", ["episode_start", "episode_end", "nadir_value_mmol_l"]
        ),
        expect("""
        episode_start | episode_end | nadir_value_mmol_l
        d2 10:00      | d2 10:00    | 2.12
        """),
    )
    assert_rows(
        story.rows(
            "index_events", ["index_time", "mg_mmol_l", "ca_corrected_mmol_l", "ca_total_mmol_l"]
        ),
        expect("""
        index_time | mg_mmol_l | ca_corrected_mmol_l | ca_total_mmol_l
        d2 10:00   | 0.66      | 2.12                | 2.12
        """),
    )
    # Mg: 1.7 and 1.6 mg/dL and 0.695 mmol/L changed when rounded; both calcium results too;
    # albumin 4.0 g/dL = 40 g/L did not.
    assert story.rows(
        "data_quality",
        ["analyte", "n_rows", "n_flagged"],
        where="check_name = 'reporting_precision_rounding'",
    ) == [
        {"analyte": "albumin", "n_rows": 2, "n_flagged": 0},
        {"analyte": "calcium_total", "n_rows": 2, "n_flagged": 2},
        {"analyte": "magnesium", "n_rows": 3, "n_flagged": 3},
    ]


MISSING_UNITS = """
subject_id | encounter_id | time     | analyte    | value | unit
p1         | e1           | d1 08:00 | albumin    | 3.2   | -
p1         | e1           | d1 09:00 | creatinine | 1.1   | -
p1         | e1           | d1 10:00 | creatinine | 90    | -
p1         | e1           | d1 11:00 | magnesium  | 0.6   | -
p1         | e1           | d1 12:00 | sodium     | 14000 | -
p1         | e1           | d1 13:00 | magnesium  | 1.2   | mg%
"""


def test_missing_unit_is_inferred_only_when_switched_on_and_the_value_fits_one_unit() -> None:
    # infer_missing_units = true. Without a unit:
    # - albumin 3.2 is impossible in g/L (3 < 5 g/L) and plausible in g/dL: 32 g/L, inferred.
    # - creatinine 1.1 is impossible in umol/L (1 < 5) and plausible in mg/dL: 97.24 -> 97.
    # - creatinine 90 is plausible in umol/L (or micromol/L, the same unit spelled out) and
    #   impossible in mg/dL (7956 umol/L > 3500): 90 umol/L, inferred under its SI spelling.
    # - Mg 0.6 fits mmol/L (0.6), mg/dL (0.25) and mEq/L (0.3): ambiguous, quarantined.
    # - sodium 14000 fits no unit: quarantined.
    # - "mg%" is a unit given but not accepted: never guessed, even with inference on.
    story = build(encounters=STAY, labs=MISSING_UNITS, infer_missing_units=True)
    assert_rows(
        story.rows(
            "lab_harmonised",
            ["time", "analyte", "value_si", "inferred_unit", "unit_check", "status"],
        ),
        expect("""
        time     | analyte    | value_si | inferred_unit | unit_check          | status
        d1 08:00 | albumin    | 32       | g/dl          | inferred            | used
        d1 09:00 | creatinine | 97       | mg/dl         | inferred            | used
        d1 10:00 | creatinine | 90       | umol/l        | inferred            | used
        d1 11:00 | magnesium  | -        | -             | missing_ambiguous   | unknown_unit
        d1 12:00 | sodium     | -        | -             | missing_implausible | unknown_unit
        d1 13:00 | magnesium  | -        | -             | not_accepted        | unknown_unit
        """),
    )
    inferred = story.rows("lab_harmonised", ["time", "unit_si"], where="unit_inferred")
    assert [r["unit_si"] for r in inferred] == ["g/L", "umol/L", "umol/L"]
    assert_rows(
        story.rows(
            "data_quality",
            ["check_name", "analyte", "n_rows", "n_flagged"],
            where="check_name LIKE 'unit_inferred:%' OR check_name LIKE 'unit_check:%'",
        ),
        expect("""
        check_name                     | analyte    | n_rows | n_flagged
        unit_check:inferred            | albumin    | 1      | 1
        unit_check:inferred            | creatinine | 2      | 2
        unit_check:missing_ambiguous   | magnesium  | 2      | 1
        unit_check:missing_implausible | sodium     | 1      | 1
        unit_check:not_accepted        | magnesium  | 2      | 1
        unit_inferred:g/dl             | albumin    | 1      | 1
        unit_inferred:mg/dl            | creatinine | 2      | 1
        unit_inferred:umol/l           | creatinine | 2      | 1
        """),
    )
    # an inferred row is used, not a status of its own: statuses still add up to all rows
    assert (
        story.value("SELECT sum(n_flagged) FROM data_quality WHERE check_name LIKE 'status:%'") == 6
    )


def test_missing_unit_is_quarantined_when_inference_is_off_the_default() -> None:
    # The same rows with the shipped default (infer_missing_units = false): every row without
    # a unit is unknown_unit, and data_quality says the unit was missing.
    story = build(encounters=STAY, labs=MISSING_UNITS)
    assert_rows(
        story.rows("lab_harmonised", ["time", "unit_inferred", "unit_check", "status"]),
        expect("""
        time     | unit_inferred | unit_check   | status
        d1 08:00 | false         | missing      | unknown_unit
        d1 09:00 | false         | missing      | unknown_unit
        d1 10:00 | false         | missing      | unknown_unit
        d1 11:00 | false         | missing      | unknown_unit
        d1 12:00 | false         | missing      | unknown_unit
        d1 13:00 | false         | not_accepted | unknown_unit
        """),
    )
    assert (
        story.value(
            "SELECT sum(n_flagged) FROM data_quality WHERE check_name = 'unit_check:missing'"
        )
        == 5
    )


def test_impossible_and_missing_values_are_quarantined() -> None:
    # Mg 25 mmol/L and sodium 1400 mmol/L are not compatible with life, a negative calcium is
    # an entry error, and albumin "3.5 g/L" is a g/dL result with the wrong unit (3.5 g/L,
    # reported 4 g/L, is impossible). Bounds are inclusive: Mg 0.1 mmol/L is extreme but
    # possible. No number (or NaN) is a missing value.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | magnesium     | 25    | mmol/L
        p1         | e1           | d1 09:00 | sodium        | 1400  | mmol/L
        p1         | e1           | d1 10:00 | calcium_total | -1    | mmol/L
        p1         | e1           | d1 11:00 | albumin       | 3.5   | g/L
        p1         | e1           | d1 12:00 | magnesium     | 0.1   | mmol/L
        p1         | e1           | d1 13:00 | magnesium     | -     | mmol/L
        p1         | e1           | d1 14:00 | magnesium     | nan   | mmol/L
        """,
    )
    assert_rows(
        story.rows("lab_harmonised", ["time", "analyte", "value_si", "status"]),
        expect("""
        time     | analyte       | value_si | status
        d1 08:00 | magnesium     | 25       | implausible_value
        d1 09:00 | sodium        | 1400     | implausible_value
        d1 10:00 | calcium_total | -1       | implausible_value
        d1 11:00 | albumin       | 4        | implausible_value
        d1 12:00 | magnesium     | 0.1      | used
        d1 13:00 | magnesium     | -        | missing_value
        d1 14:00 | magnesium     | -        | missing_value
        """),
    )


def test_duplicated_rows_are_kept_once() -> None:
    # The same Mg result sent twice (once spelled mmol/l) is one result, not two: the episode
    # has 2 low results (08:00 and 12:00), not 4. The same value at another time is a new draw.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit   | source_code
        p1         | e1           | d1 08:00 | magnesium | 0.6   | mmol/L | lab:A
        p1         | e1           | d1 08:00 | magnesium | 0.6   | mmol/L | lab:A
        p1         | e1           | d1 08:00 | magnesium | 0.6   | mmol/l | lab:B
        p1         | e1           | d1 12:00 | magnesium | 0.6   | mmol/L | lab:A
        """,
    )
    assert_rows(
        story.rows("lab_harmonised", ["time", "unit", "source_code", "status"]),
        expect("""
        time     | unit   | source_code | status
        d1 08:00 | mmol/L | lab:A       | duplicate
        d1 08:00 | mmol/L | lab:A       | used
        d1 08:00 | mmol/l | lab:B       | duplicate
        d1 12:00 | mmol/L | lab:A       | used
        """),
    )
    assert_rows(
        story.rows("hypomagnesaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d1 08:00      | d1 12:00    | 0.6                | 2
        """),
    )


def test_of_two_copies_the_one_the_source_linked_to_the_stay_is_kept() -> None:
    # 08:00: the lab system sent the same Mg twice, once linked to stay e1 (lab:B) and once
    # unlinked (lab:A), which the time attaches to e1: one result, and the linked copy is the
    # one kept although lab:A sorts first. 10:00: two different Mg values at one time are two
    # results. 11:00: calcium and potassium with the same number are different analytes.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit   | source_code
        p1         | -            | d1 08:00 | magnesium     | 0.6   | mmol/L | lab:A
        p1         | e1           | d1 08:00 | magnesium     | 0.6   | mmol/L | lab:B
        p1         | e1           | d1 10:00 | magnesium     | 0.6   | mmol/L | lab:A
        p1         | e1           | d1 10:00 | magnesium     | 0.7   | mmol/L | lab:A
        p1         | e1           | d1 11:00 | calcium_total | 2.0   | mmol/L | lab:A
        p1         | e1           | d1 11:00 | potassium     | 2.0   | mmol/L | lab:A
        """,
    )
    assert_rows(
        story.rows(
            "lab_harmonised",
            ["time", "analyte", "value", "source_code", "encounter_assigned_by_time", "status"],
        ),
        expect("""
        time     | analyte       | value | source_code | encounter_assigned_by_time | status
        d1 08:00 | magnesium     | 0.6   | lab:A       | true                       | duplicate
        d1 08:00 | magnesium     | 0.6   | lab:B       | false                      | used
        d1 10:00 | magnesium     | 0.6   | lab:A       | false                      | used
        d1 10:00 | magnesium     | 0.7   | lab:A       | false                      | used
        d1 11:00 | calcium_total | 2.0   | lab:A       | false                      | used
        d1 11:00 | potassium     | 2.0   | lab:A       | false                      | used
        """),
    )


def test_lab_without_encounter_is_attached_by_time_only_when_one_stay_contains_it() -> None:
    # p1 has two stays; p3 has two overlapping ones. A result the lab system did not link to a
    # stay belongs to the stay of that patient whose admission contains its draw time (the
    # discharge minute included). Outside every stay, or inside two at once, it is left out;
    # another patient's stay never adopts it. A result linked to a stay of another patient is
    # left out too. The source's own link is trusted even outside the stay's times.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d5 00:00
        e2           | p1         | d10 00:00  | d15 00:00
        e3           | p2         | d1 00:00   | d20 00:00
        e4           | p3         | d1 00:00   | d5 00:00
        e5           | p3         | d3 00:00   | d8 00:00
        """,
        labs="""
        subject_id | encounter_id | time      | analyte   | value | unit
        p1         | -            | d2 08:00  | magnesium | 0.8   | mmol/L
        p1         | -            | d5 00:00  | magnesium | 0.8   | mmol/L
        p1         | -            | d7 08:00  | magnesium | 0.8   | mmol/L
        p1         | -            | d11 08:00 | magnesium | 0.8   | mmol/L
        p1         | e3           | d12 08:00 | magnesium | 0.8   | mmol/L
        p1         | e1           | d7 09:00  | magnesium | 0.8   | mmol/L
        p3         | -            | d4 08:00  | magnesium | 0.8   | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "lab_harmonised",
            ["subject_id", "time", "encounter_id", "encounter_assigned_by_time", "status"],
        ),
        expect("""
        subject_id | time      | encounter_id | encounter_assigned_by_time | status
        p1         | d2 08:00  | e1           | true                       | used
        p1         | d5 00:00  | e1           | true                       | used
        p1         | d7 08:00  | -            | false                      | no_encounter
        p1         | d7 09:00  | e1           | false                      | used
        p1         | d11 08:00 | e2           | true                       | used
        p1         | d12 08:00 | e3           | false                      | unknown_encounter
        p3         | d4 08:00  | -            | false                      | ambiguous_encounter
        """),
    )


def test_unknown_analyte_is_quarantined() -> None:
    # Urine magnesium is not a canonical analyte: it must never be mistaken for serum Mg.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 08:00 | urine_magnesium | 0.5   | mmol/L
        """,
    )
    assert story.rows("lab_harmonised", ["analyte", "status"]) == [
        {"analyte": "urine_magnesium", "status": "unknown_analyte"}
    ]


# --- the reference CSVs themselves -------------------------------------------------------


def test_unit_conversions_are_normalised_unique_and_anchored_on_si() -> None:
    rows = _reference("unit_conversions.csv")
    keys = [(r["analyte"], r["unit"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert all(r["unit"] == normalise_unit(r["unit"]) for r in rows)
    assert all(r["source"] for r in rows)
    lab_rows = [r for r in rows if r["analyte"] != "medication_dose"]
    assert {r["analyte"] for r in lab_rows} == ANALYTES
    bounds = {r["analyte"]: r for r in _reference("analyte_bounds.csv")}
    assert set(bounds) == ANALYTES
    for analyte in ANALYTES:
        si_units = {r["si_unit"] for r in lab_rows if r["analyte"] == analyte}
        assert si_units == {bounds[analyte]["si_unit"]}, analyte
        identity = [
            r for r in lab_rows
            if r["analyte"] == analyte and normalise_unit(r["si_unit"]) == r["unit"]
        ]  # fmt: skip
        assert [float(r["factor_to_si"]) for r in identity] == [1.0], analyte


@pytest.mark.parametrize(
    ("analyte", "unit", "factor"),
    [
        ("magnesium", "mg/dl", 0.4114),
        ("magnesium", "meq/l", 0.5),
        ("calcium_total", "mg/dl", 0.2495),
        ("calcium_ionized", "mg/dl", 0.2495),
        ("albumin", "g/dl", 10),
        ("pth", "pg/ml", 0.106),
        ("pth", "ng/l", 0.106),
        ("phosphate", "mg/dl", 0.323),
        ("potassium", "meq/l", 1),
        ("creatinine", "mg/dl", 88.4),
        ("vitamin_d_25oh", "ng/ml", 2.496),
        ("vitamin_d_1_25", "pg/ml", 2.40),
    ],
)
def test_clinical_md_factors_are_the_ones_in_the_csv(
    analyte: str, unit: str, factor: float
) -> None:
    factors = {
        (r["analyte"], r["unit"]): float(r["factor_to_si"])
        for r in _reference("unit_conversions.csv")
    }
    assert factors[(analyte, unit)] == factor


def test_bounds_are_ordered_and_sourced() -> None:
    for row in _reference("analyte_bounds.csv"):
        assert float(row["plausible_low"]) < float(row["plausible_high"]), row
        assert row["source"], row


def test_ingredients_carry_clinical_md_elemental_amounts() -> None:
    rows = {r["ingredient"]: r for r in _reference("ingredients.csv")}
    assert {r["role"] for r in rows.values()} <= {
        "mg_repletion", "calcium_supplement", "ppi", "loop_diuretic", "thiazide",
        "vitamin_d_analogue", "mg_wasting", "obstetric_magnesium", "crrt_citrate", "mg_laxative",
        "potassium_repletion", "vasopressor",
    }  # fmt: skip
    expected = {
        "magnesium_sulfate": 4.06, "magnesium_oxide": 24.8,
        "calcium_gluconate": 2.23, "calcium_chloride": 6.8,
    }  # fmt: skip
    for ingredient, mmol_per_g in expected.items():
        assert float(rows[ingredient]["elemental_mmol_per_g"]) == mmol_per_g
    for row in rows.values():
        if row["role"] in {"mg_repletion", "calcium_supplement"}:
            assert float(row["elemental_mmol_per_g"]) > 0 and row["valence"] == "2", row
    assert rows["omeprazole"]["rxnorm"] == "7646"
    assert rows["furosemide"]["rxnorm"] == "4603"
    assert rows["magnesium_sulfate"]["atc"] == "A12CC02;B05XA05"


def test_ingredient_codes_say_whether_they_were_checked() -> None:
    # clinical.md lists some RxNorm codes as checked and some under "to verify" (MgSO4 6585,
    # MgO 29155, calcium carbonate 1897, calcitriol 1894): the CSV carries that flag. MgO's
    # 29155 is wrong (6582 is magnesium oxide); the calcium salts and Mg chloride were checked
    # against the OHDSI vocabulary, each row naming where (code_verification).
    rows = {r["ingredient"]: r for r in _reference("ingredients.csv")}
    checked_in_clinical_md = {
        "omeprazole": "7646", "pantoprazole": "40790", "lansoprazole": "17128",
        "rabeprazole": "114979", "esomeprazole": "283742", "furosemide": "4603",
        "hydrochlorothiazide": "5487", "cisplatin": "2555", "cyclosporine": "3008",
        "ciclosporin": "3008", "tacrolimus": "42316",
    }  # fmt: skip
    to_verify = {"magnesium_sulfate": "6585", "calcium_carbonate": "1897",
                 "calcitriol": "1894",
                 # the vasopressors of the severity proxy: not in clinical.md, to verify
                 "norepinephrine": "7512", "epinephrine": "3992", "vasopressin": "11149",
                 "phenylephrine": "8163", "dopamine": "3628"}  # fmt: skip
    checked_elsewhere = {"magnesium_oxide": "6582", "magnesium_chloride": "6579",
                         "calcium_gluconate": "1908", "calcium_chloride": "1901"}  # fmt: skip
    for ingredient, row in rows.items():
        if row["rxnorm"]:
            assert row["code_verification"], ingredient
        if ingredient in checked_elsewhere:
            expected = (checked_elsewhere[ingredient], "checked")
            assert (row["rxnorm"], row["rxnorm_status"]) == expected, ingredient
            assert row["omop_concept_id"] and "OHDSI vocabulary" in row["code_verification"]
        elif ingredient in checked_in_clinical_md:
            assert (row["rxnorm"], row["rxnorm_status"]) == (
                checked_in_clinical_md[ingredient],
                "checked",
            ), ingredient
        elif ingredient in to_verify:
            assert (row["rxnorm"], row["rxnorm_status"]) == (to_verify[ingredient], "unverified"), (
                ingredient
            )
        else:
            assert (row["rxnorm"], row["rxnorm_status"]) == ("", ""), ingredient
        assert row["atc_status"] in ({"clinical_md", "unverified"} if row["atc"] else {""})
    clinical_md_atc = {
        "magnesium_sulfate": "A12CC02;B05XA05", "magnesium_oxide": "A12CC10",
        "calcium_gluconate": "A12AA03", "calcitriol": "A11CC04", "alfacalcidol": "A11CC03",
    }  # fmt: skip
    assert {i: r["atc"] for i, r in rows.items() if r["atc_status"] == "clinical_md"} == (
        clinical_md_atc
    )


def test_every_drug_class_the_cohort_needs_is_listed() -> None:
    rows = _reference("ingredients.csv")
    by_class: dict[str, set[str]] = {}
    for row in rows:
        by_class.setdefault(row["drug_class"], set()).add(row["ingredient"])
        assert row["role"] and row["drug_class"] and row["source"], row
    assert {"magnesium_sulfate", "magnesium_oxide"} <= by_class["magnesium_salt"]
    assert {"calcium_gluconate", "calcium_chloride", "calcium_carbonate"} <= by_class[
        "calcium_salt"
    ]
    assert {"calcitriol", "alfacalcidol"} <= by_class["vitamin_d_analogue"]
    assert {"gentamicin", "tobramycin", "amikacin"} <= by_class["aminoglycoside"]
    assert {"cyclosporine", "ciclosporin", "tacrolimus"} <= by_class["calcineurin_inhibitor"]
    assert by_class["platinum"] == {"cisplatin"}
    assert by_class["polyene_antifungal"] == {"amphotericin_b"}
    roles = {row["ingredient"]: row["role"] for row in rows}
    for drug in ("cisplatin", "gentamicin", "amphotericin_b", "tacrolimus", "ciclosporin"):
        assert roles[drug] == "mg_wasting", drug
    assert roles["hydrochlorothiazide"] == "thiazide"
    assert {roles[p] for p in by_class["ppi"]} == {"ppi"}
