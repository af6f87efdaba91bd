"""Table 1: baseline characteristics of the analytic cohort by exposure, with small counts hidden.

Columns of the returned frame: ``characteristic`` (label with its unit and summary type),
``exposed`` (Mg repletion within the grace period), ``unexposed`` (display text) and ``smd``
(standardised mean difference exposed − unexposed, a float, or ``None`` when undefined or
when showing it could reveal a hidden count). It is ready for HTML (``DataFrame.to_html``) and
for results.json (``to_dict("records")``).

Disclosure control (``mgca.analysis.privacy``): a count from 1 to threshold − 1 shows as
``<threshold``; when the complement (arm size − count) is that small, the count shows as
``≥arm size − threshold + 1`` so the hidden complement cannot be worked out. An arm with fewer
than ``threshold`` episodes shows its size as ``<threshold`` and nothing else, and then the
other arm's size is withheld too (the analysed total, printed in the attrition table, minus it
would reveal the hidden one).

Under ``privacy.rounding: nearest_5`` (``threshold`` a rounding
:class:`~mgca.analysis.privacy.CountRule`) every count is rounded and each percentage is
computed from the rounded counts (:func:`count_cell`). Means, SDs, medians and SMDs are
computed from the exact data (summaries of values, not counts); a binary row's SMD uses the
rounded proportions shown, since one of the exact proportions could single out the exact counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mgca.analysis.privacy import (
    ROUNDING_BASES,
    display_count,
    is_small,
    rounding_of,
    suppress_count,
)

Kind = Literal["mean_sd", "median_iqr", "binary"]
COLUMNS = ("characteristic", "exposed", "unexposed", "smd")
HIDDEN = "—"
"""Shown in place of a statistic withheld because its arm or cell is too small."""
NOT_RECORDED = "not recorded by this source"
"""Shown for a characteristic missing in every episode (a severity proxy the source lacks)."""


@dataclass(frozen=True)
class Characteristic:
    """One Table 1 row: a cohort.parquet column, its label with unit, and how to summarise."""

    label: str
    column: str
    kind: Kind
    decimals: int = 2
    level: str | None = None  # for binary rows from a categorical column: the level counted


ROWS: tuple[Characteristic, ...] = (
    Characteristic("Age, years — mean (SD)", "age_years", "mean_sd", 1),
    Characteristic("Female, n (%)", "sex", "binary", level="F"),
    Characteristic("Baseline Mg, mmol/L — mean (SD)", "baseline_mg_mmol_l", "mean_sd", 2),
    Characteristic(
        "Baseline albumin-corrected Ca, mmol/L — mean (SD)",
        "baseline_ca_corrected_mmol_l",
        "mean_sd",
        2,
    ),
    Characteristic(
        "Baseline total Ca, mmol/L — mean (SD)", "baseline_ca_total_mmol_l", "mean_sd", 2
    ),
    Characteristic("Baseline albumin, g/L — mean (SD)", "baseline_albumin_g_l", "mean_sd", 1),
    Characteristic(
        "Baseline creatinine, µmol/L — median [IQR]", "baseline_creatinine_umol_l", "median_iqr", 0
    ),
    Characteristic(
        "Baseline potassium, mmol/L — mean (SD)", "baseline_potassium_mmol_l", "mean_sd", 1
    ),
    Characteristic(
        "Baseline phosphate, mmol/L — mean (SD)", "baseline_phosphate_mmol_l", "mean_sd", 2
    ),
    Characteristic("PPI before index, n (%)", "ppi_before_index", "binary"),
    Characteristic("Loop diuretic before index, n (%)", "loop_diuretic_before_index", "binary"),
    Characteristic("Calcium given before index, n (%)", "calcium_before_index", "binary"),
    Characteristic("In an ICU at index, n (%)", "icu_at_index", "binary"),
    Characteristic(
        "Vasopressor at or before index, n (%)", "vasopressor_at_index", "binary"
    ),
)
"""Rows after the two count rows, in order. A continuous row with missing values is followed
by a "<name> missing, n (%)" row."""


def count_cell(count: int, total: int, threshold: int) -> tuple[str, bool]:
    """``"n (p %)"`` for a count out of ``total``; the flag says whether anything was hidden.

    When ``threshold`` is a :class:`~mgca.analysis.privacy.CountRule` that rounds, the count
    is shown rounded and the percentage is the rounded count over the rounded total: a
    percentage of the exact counts (to 0.1 %) would let a reader work the exact count back
    out of the rounded one. The ``≥`` bound of a count whose complement is small is rounded
    down to the rule's base, so it stays a true lower bound.
    """
    if is_small(count, threshold):
        return display_count(count, threshold), True
    if is_small(total - count, threshold):
        base = ROUNDING_BASES[rounding_of(threshold)]
        return f"≥{(total - threshold + 1) // base * base:,}", True
    shown, shown_total = suppress_count(count, threshold), suppress_count(total, threshold)
    pct = 100.0 * shown / shown_total if shown_total else 0.0
    return f"{display_count(count, threshold)} ({pct:.1f} %)", False


def _continuous_cell(
    values: pd.Series, kind: Kind, decimals: int, threshold: int
) -> tuple[str, bool]:
    """``"mean (SD)"`` or ``"median [Q1, Q3]"`` of the non-missing values."""
    x = values.dropna().astype(float)
    if x.empty:
        return HIDDEN, False
    if is_small(len(x), threshold):
        return HIDDEN, True
    f = f".{decimals}f"
    if kind == "median_iqr":
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
        return f"{med:{f}} [{q1:{f}}, {q3:{f}}]", False
    sd = x.std(ddof=1)
    return f"{x.mean():{f}} ({sd:{f}})", False


def _smd_continuous(a: pd.Series, b: pd.Series) -> float | None:
    """(mean_a − mean_b) / sqrt((var_a + var_b) / 2) on non-missing values."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return None if pooled == 0 else float((a.mean() - b.mean()) / pooled)


def _smd_binary(p_a: float, p_b: float) -> float | None:
    """(p_a − p_b) / sqrt((p_a(1 − p_a) + p_b(1 − p_b)) / 2)."""
    pooled = np.sqrt((p_a * (1 - p_a) + p_b * (1 - p_b)) / 2)
    return None if pooled == 0 else float((p_a - p_b) / pooled)


def _share(count: int, total: int, threshold: int) -> float:
    """``count / total`` for a binary SMD (NaN when undefined). Under a rounding count rule it
    is the rounded count over the rounded total, as the percentage shown: an SMD of the exact
    proportions could single out the exact counts among the few the rounded ones allow."""
    shown, shown_total = suppress_count(count, threshold), suppress_count(total, threshold)
    if rounding_of(threshold) == "none":
        shown, shown_total = count, total
    if not shown_total or shown is None:
        return np.nan
    return shown / shown_total


def _indicator(arm: pd.DataFrame, row: Characteristic) -> pd.Series:
    col = arm[row.column]
    if row.level is not None:
        return col.astype(str).eq(row.level)
    return col.fillna(False).astype(bool)


def table_one(cohort: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Baseline characteristics by exposure (``exposed`` column), counts disclosure-controlled.

    ``threshold`` is ``privacy.small_cell_threshold``: counts 1..threshold − 1 are hidden.
    """
    exposed = cohort["exposed"].fillna(False).astype(bool).to_numpy()
    arms = {"exposed": cohort.loc[exposed], "unexposed": cohort.loc[~exposed]}
    sizes = {k: len(v) for k, v in arms.items()}
    arm_hidden = any(is_small(n, threshold) for n in sizes.values())

    def row_of(label: str, cells: dict[str, tuple[str, bool]], smd: float | None) -> dict:
        """A record; a small arm shows nothing, and the SMD goes when any cell is hidden."""
        hidden = arm_hidden or any(h for _, h in cells.values())
        shown = {k: HIDDEN if is_small(sizes[k], threshold) else t for k, (t, _) in cells.items()}
        return {"characteristic": label, **shown, "smd": None if hidden else smd}

    records: list[dict] = [
        {
            "characteristic": "Episodes, n",
            # with one arm hidden, the other arm's size would reveal it (total minus it)
            **{
                k: HIDDEN
                if arm_hidden and not is_small(n, threshold)
                else display_count(n, threshold)
                for k, n in sizes.items()
            },
            "smd": None,
        },
        row_of(
            "Patients, n",
            {
                k: (display_count(a["subject_id"].nunique(), threshold), False)
                for k, a in arms.items()
            },
            None,
        ),
    ]
    for row in ROWS:
        if row.column not in cohort.columns:
            continue
        if row.kind == "binary" and cohort[row.column].isna().all() and len(cohort):
            records.append(row_of(row.label, dict.fromkeys(arms, (NOT_RECORDED, False)), None))
            continue
        if row.kind == "binary":
            flags = {k: _indicator(a, row) for k, a in arms.items()}
            cells = {k: count_cell(int(f.sum()), sizes[k], threshold) for k, f in flags.items()}
            p = [_share(int(f.sum()), len(f), threshold) for f in flags.values()]
            smd = None if np.isnan(p).any() else _smd_binary(p[0], p[1])
        else:
            values = {k: a[row.column] for k, a in arms.items()}
            cells = {
                k: _continuous_cell(v, row.kind, row.decimals, threshold) for k, v in values.items()
            }
            smd = _smd_continuous(values["exposed"], values["unexposed"])
        records.append(row_of(row.label, cells, smd))

        if row.kind != "binary" and cohort[row.column].isna().any():
            missing = {
                k: count_cell(int(a[row.column].isna().sum()), sizes[k], threshold)
                for k, a in arms.items()
            }
            records.append(row_of(f"{row.label.split(',')[0]} missing, n (%)", missing, None))

    out = pd.DataFrame.from_records(records, columns=COLUMNS)
    out["smd"] = pd.Series(
        [None if pd.isna(v) else round(float(v), 3) for v in out["smd"]], dtype="object"
    )
    return out
