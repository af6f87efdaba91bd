"""lab_harmonised: units to SI, quarantine reasons, duplicates, labs without a stay.

Each story says what a clinician would expect; the expected rows are worked out by hand from
clinical.md's conversion factors.
"""

from __future__ import annotations

import csv
from importlib import resources

import pytest
from stories import assert_rows, build, expect

from mgca.database import normalise_unit

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
    # Spelling does not matter (MG/DL, "mmol / L"). 1.7 mg/dL, the usual lower limit in mg/dL,
    # is 0.699 mmol/L: just under the 0.70 mmol/L threshold (kept as is, not rounded up).
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
        story.rows("lab_harmonised", COLUMNS),
        expect("""
        time     | analyte   | value | unit     | value_si | unit_si | status
        d1 08:00 | magnesium | 1.2   | mg/dL    | 0.49368  | mmol/L  | used
        d1 09:00 | magnesium | 1.2   | mEq/L    | 0.6      | mmol/L  | used
        d1 10:00 | magnesium | 0.65  | mmol/L   | 0.65     | mmol/L  | used
        d1 11:00 | magnesium | 1.7   | MG/DL    | 0.69938  | mmol/L  | used
        d1 12:00 | magnesium | 0.6   | mmol / L | 0.6      | mmol/L  | used
        """),
    )


def test_every_unit_of_clinical_md_converts_with_its_factor() -> None:
    # One result in each unit clinical.md lists, converted by hand with its factor.
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
        """,
    )
    assert_rows(
        story.rows("lab_harmonised", ["time", "analyte", "value_si", "unit_si", "status"]),
        expect("""
        time     | analyte         | value_si | unit_si | status
        d1 01:00 | calcium_total   | 2.1457   | mmol/L  | used
        d1 02:00 | calcium_total   | 2.15     | mmol/L  | used
        d1 03:00 | calcium_ionized | 1.12     | mmol/L  | used
        d1 04:00 | calcium_ionized | 1.12275  | mmol/L  | used
        d1 05:00 | albumin         | 35       | g/L     | used
        d1 06:00 | albumin         | 35       | g/L     | used
        d1 07:00 | pth             | 6.89     | pmol/L  | used
        d1 08:00 | pth             | 6.89     | pmol/L  | used
        d1 09:00 | pth             | 6.9      | pmol/L  | used
        d1 10:00 | phosphate       | 1.0013   | mmol/L  | used
        d1 11:00 | phosphate       | 1.0      | mmol/L  | used
        d1 12:00 | potassium       | 4.1      | mmol/L  | used
        d1 13:00 | potassium       | 4.1      | mmol/L  | used
        d1 14:00 | creatinine      | 132.6    | umol/L  | used
        d1 15:00 | creatinine      | 132      | umol/L  | used
        d1 16:00 | creatinine      | 132      | umol/L  | used
        d1 17:00 | sodium          | 140      | mmol/L  | used
        d1 18:00 | sodium          | 140      | mmol/L  | used
        d1 19:00 | vitamin_d_25oh  | 49.92    | nmol/L  | used
        d1 20:00 | vitamin_d_25oh  | 50       | nmol/L  | used
        d1 21:00 | vitamin_d_1_25  | 72       | pmol/L  | used
        d1 22:00 | vitamin_d_1_25  | 72       | pmol/L  | used
        """),
    )


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


def test_impossible_and_missing_values_are_quarantined() -> None:
    # Mg 25 mmol/L and sodium 1400 mmol/L are not compatible with life, a negative calcium is
    # an entry error, and albumin "3.5 g/L" is a g/dL result with the wrong unit (3.5 g/L is
    # impossible). Bounds are inclusive: Mg 0.1 mmol/L is extreme but possible. No number (or
    # NaN) is a missing value.
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
        d1 11:00 | albumin       | 3.5      | implausible_value
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
        "vitamin_d_analogue", "mg_wasting",
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
