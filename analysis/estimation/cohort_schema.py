"""The analytic table's contract between the SQL (which derives it) and the models (which
trust it), checked with pandera before any model is fitted (by the run's derive stage,
:func:`mgca.run.stages.derive_stage`).

A violation here is a bug in the derivation or a source adapter, never a patient's problem,
so the error names the check, the column and how many rows fail (row positions only: no ids
or dates reach the message, which may end up in logs).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from mgca.config import StudyConfig


class CohortContractError(ValueError):
    """The analytic table breaks its contract (ARCHITECTURE.md, 'cohort.parquet columns')."""


INDEX_CALCIUM_MEASURES = ["ionized", "corrected_same_day_albumin", "corrected_lookback_albumin"]
"""Values of ``index_calcium_measure``: the measure that qualified (sql/index_events.sql)."""
OUTCOME_CALCIUM_MEASURES = ["corrected_same_day_albumin", "corrected_lookback_albumin"]
"""Values of ``outcome_calcium_measure`` in an analysed episode (sql/index_outcome.sql)."""


def _indexed_on_ionized(df: pd.DataFrame) -> pd.Series:
    """True for episodes whose index was defined on ionized Ca; a table without the column
    (a hand-made cohort, e.g. a simulated one) counts as indexed on corrected Ca."""
    if "index_calcium_measure" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["index_calcium_measure"] == "ionized"


def cohort_schema(study: StudyConfig) -> pa.DataFrameSchema:
    """The pandera schema of ``analytic_cohort`` under ``study``'s thresholds (units in names)."""
    grace = float(study.grace_hours)
    horizon, tol = float(study.horizon_hours), float(study.outcome_tolerance_hours)

    def mmol(low: float, high: float, *, nullable: bool = False) -> pa.Column:
        return pa.Column(float, pa.Check.in_range(low, high), nullable=nullable, coerce=True)

    return pa.DataFrameSchema(
        {
            "subject_id": pa.Column(str, nullable=False, coerce=True),
            "encounter_id": pa.Column(str, nullable=False, unique=True, coerce=True),
            "index_time": pa.Column("datetime64[us]", nullable=False, coerce=True),
            "exposed": pa.Column(bool, nullable=False),
            "hours_to_first_mg": pa.Column(
                float, pa.Check.in_range(0, grace, include_min=False), nullable=True, coerce=True
            ),
            "mg_dose_grace_mmol": pa.Column(float, pa.Check.ge(0), nullable=True, coerce=True),
            "age_years": pa.Column(
                float, pa.Check.in_range(study.min_age_years, 130), nullable=False, coerce=True
            ),
            "sex": pa.Column(str, pa.Check.isin(["F", "M", "U"]), nullable=False, coerce=True),
            # Qualifying values are below the study thresholds by definition (the calcium
            # one by the measure that qualified: table checks below).
            "baseline_mg_mmol_l": pa.Column(
                float,
                pa.Check.in_range(0.0, study.mg_low_mmol_l, include_max=False),
                coerce=True,
            ),
            # null only for an episode indexed on ionized Ca with no corrected total beside it
            "baseline_ca_corrected_mmol_l": mmol(0.0, 6.0, nullable=True),
            "baseline_ca_total_mmol_l": mmol(0.5, 6.0, nullable=True),
            "baseline_albumin_g_l": mmol(5.0, 80.0, nullable=True),
            "baseline_ca_ionized_mmol_l": pa.Column(
                float, pa.Check.in_range(0.1, 3.0), nullable=True, coerce=True, required=False
            ),
            "index_calcium_measure": pa.Column(
                str,
                pa.Check.isin(INDEX_CALCIUM_MEASURES),
                nullable=False,
                required=False,
                coerce=True,
            ),
            "outcome_calcium_measure": pa.Column(
                str,
                pa.Check.isin(OUTCOME_CALCIUM_MEASURES),
                nullable=False,
                required=False,
                coerce=True,
            ),
            "baseline_creatinine_umol_l": mmol(5.0, 3500.0, nullable=True),
            "outcome_ca_corrected_mmol_l": mmol(0.5, 6.0),
            "outcome_hours_from_index": pa.Column(
                float, pa.Check.in_range(horizon - tol, horizon + tol), coerce=True
            ),
        },
        checks=[
            pa.Check(
                lambda df: df["exposed"] == df["hours_to_first_mg"].notna(),
                name="exposed episodes, and only they, have a first Mg time within grace",
            ),
            pa.Check(
                lambda df: ~df["exposed"] | (df["mg_dose_grace_mmol"].fillna(1.0) > 0),
                name="an exposed episode's elemental Mg dose, when known, is positive",
            ),
            pa.Check(
                lambda df: (
                    _indexed_on_ionized(df)
                    | (df["baseline_ca_corrected_mmol_l"] < study.ca_corrected_low_mmol_l)
                ),
                name="an episode indexed on corrected Ca has baseline_ca_corrected_mmol_l "
                "below ca_corrected_low_mmol_l",
            ),
            pa.Check(
                lambda df: (
                    ~_indexed_on_ionized(df)
                    | (
                        df.get("baseline_ca_ionized_mmol_l", pd.Series(float("nan"), df.index))
                        < study.ca_ionized_low_mmol_l
                    )
                ),
                name="an episode indexed on ionized Ca has baseline_ca_ionized_mmol_l "
                "below ca_ionized_low_mmol_l",
            ),
        ],
        strict=False,
    )


def validate_cohort(cohort: pd.DataFrame, study: StudyConfig) -> pd.DataFrame:
    """Return ``cohort`` (types coerced) or raise ``CohortContractError`` listing every failure."""
    try:
        return cohort_schema(study).validate(cohort, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.copy()
        table_level = cases["schema_context"] == "DataFrameSchema"
        cases.loc[table_level, "column"] = None  # a table check fails whole rows, not a column
        cases = cases.drop_duplicates(["column", "check", "index"])
        lines = ["the analytic table breaks its contract (a derivation or adapter bug):"]
        grouped = cases.groupby(["column", "check"], dropna=False, sort=True)["index"]
        for (column, check), index in grouped:
            where = "table" if pd.isna(column) else f"column {column}"
            rows = index.dropna()
            shown = ", ".join(str(int(i)) for i in rows.head(5))
            more = ", …" if len(rows) > 5 else ""
            at = f" (row positions {shown}{more})" if len(rows) else ""
            lines.append(f"  {where}: {check}: {len(index)} failing row(s){at}")
        raise CohortContractError("\n".join(lines)) from None
