"""Table 1 by exposure: units in every label, SMDs, and small counts hidden."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.report.table_one import HIDDEN, table_one

UNIT = re.compile(r", (years|mmol/L|g/L|µmol/L|n)\b")


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(400, seed=11)[0]


def _row(t: pd.DataFrame, label: str) -> pd.Series:
    return t.set_index("characteristic").loc[label]


def test_every_row_has_a_unit_and_the_expected_characteristics(cohort) -> None:
    t = table_one(cohort, 11)
    assert list(t.columns) == ["characteristic", "exposed", "unexposed", "smd"]
    assert all(UNIT.search(label) for label in t["characteristic"]), t["characteristic"].tolist()
    for label in [
        "Episodes, n",
        "Age, years — mean (SD)",
        "Female, n (%)",
        "Baseline Mg, mmol/L — mean (SD)",
        "Baseline albumin-corrected Ca, mmol/L — mean (SD)",
        "Baseline total Ca, mmol/L — mean (SD)",
        "Baseline albumin, g/L — mean (SD)",
        "Baseline creatinine, µmol/L — median [IQR]",
        "Baseline potassium, mmol/L — mean (SD)",
        "Baseline phosphate, mmol/L — mean (SD)",
        "PPI before index, n (%)",
        "Loop diuretic before index, n (%)",
        "Calcium given before index, n (%)",
    ]:
        assert label in t["characteristic"].tolist()


def test_summaries_and_smd_match_the_data(cohort) -> None:
    t = table_one(cohort, 11)
    exposed = cohort.loc[cohort["exposed"]]
    unexposed = cohort.loc[~cohort["exposed"]]
    assert _row(t, "Episodes, n")["exposed"] == f"{len(exposed):,}"
    mg = _row(t, "Baseline Mg, mmol/L — mean (SD)")
    x = exposed["baseline_mg_mmol_l"]
    assert mg["exposed"] == f"{x.mean():.2f} ({x.std():.2f})"
    y = unexposed["baseline_mg_mmol_l"]
    smd = (x.mean() - y.mean()) / np.sqrt((x.var() + y.var()) / 2)
    assert mg["smd"] == pytest.approx(smd, abs=1e-3)
    assert mg["smd"] < -0.5  # lower Mg is treated more often
    ppi = _row(t, "PPI before index, n (%)")
    k = int(exposed["ppi_before_index"].sum())
    assert ppi["exposed"] == f"{k:,} ({100 * k / len(exposed):.1f} %)"
    creat = _row(t, "Baseline creatinine, µmol/L — median [IQR]")["exposed"]
    assert re.fullmatch(r"\d+ \[\d+, \d+\]", creat)


def test_small_counts_are_hidden_and_zero_shown(cohort) -> None:
    cohort = cohort.copy()
    exposed_idx = cohort.index[cohort["exposed"]]
    cohort["ppi_before_index"] = False
    cohort.loc[exposed_idx[:4], "ppi_before_index"] = True  # 4 exposed, 0 unexposed
    cohort["loop_diuretic_before_index"] = True
    cohort.loc[exposed_idx[:3], "loop_diuretic_before_index"] = False  # complement of 3
    cohort["calcium_before_index"] = False
    cohort.loc[exposed_idx[:11], "calcium_before_index"] = True  # 11: at the threshold
    t = table_one(cohort, 11)
    ppi = _row(t, "PPI before index, n (%)")
    assert (ppi["exposed"], ppi["unexposed"], ppi["smd"]) == ("<11", "0 (0.0 %)", None)
    loop = _row(t, "Loop diuretic before index, n (%)")
    n_exposed = len(exposed_idx)
    assert loop["exposed"] == f"≥{n_exposed - 10:,}"  # exact count would reveal the 3
    assert loop["smd"] is None
    calcium = _row(t, "Calcium given before index, n (%)")
    assert calcium["exposed"].startswith("11 (")
    assert calcium["unexposed"] == "0 (0.0 %)"


def test_missing_values_get_their_own_row(cohort) -> None:
    cohort = cohort.copy()
    cohort.loc[cohort.index[:5], "baseline_phosphate_mmol_l"] = np.nan
    t = table_one(cohort, 11)
    missing = _row(t, "Baseline phosphate missing, n (%)")
    assert "<11" in (missing["exposed"], missing["unexposed"])


def test_a_small_arm_shows_nothing_but_its_hidden_size(cohort) -> None:
    small = pd.concat([cohort.loc[cohort["exposed"]].head(6), cohort.loc[~cohort["exposed"]]])
    t = table_one(small, 11)
    episodes = _row(t, "Episodes, n")
    assert episodes["exposed"] == "<11"
    assert episodes["unexposed"] == HIDDEN  # total minus it would reveal the 6
    assert set(t["exposed"].iloc[1:]) == {HIDDEN}
    assert t["smd"].isna().all()


def test_empty_cohort_gives_zeros_and_dashes(cohort) -> None:
    t = table_one(cohort.iloc[:0], 11)
    assert _row(t, "Episodes, n").tolist()[:2] == ["0", "0"]
    assert _row(t, "Age, years — mean (SD)")["exposed"] == HIDDEN


def test_severity_rows_count_recorded_proxies_and_say_when_not_recorded(cohort) -> None:
    from mgca.analysis.report.table_one import NOT_RECORDED

    flags = np.arange(len(cohort)) % 4 == 0
    t = table_one(cohort.assign(icu_at_index=flags, vasopressor_at_index=None), 11)
    icu = _row(t, "In an ICU at index, n (%)")
    n_exposed = int(flags[cohort["exposed"].to_numpy(dtype=bool)].sum())
    assert icu["exposed"].startswith(f"{n_exposed} (")
    vaso = _row(t, "Vasopressor at or before index, n (%)")
    assert vaso["exposed"] == vaso["unexposed"] == NOT_RECORDED and vaso["smd"] is None
