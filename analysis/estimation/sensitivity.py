"""Sensitivity analyses of the primary estimate (results.json ``sensitivity``).

Each analysis refits the primary model (:func:`mgca.analysis.estimation.models.fit_primary`:
g-computation
from the fully interacted outcome regression, patient-clustered) on a changed cohort or
outcome, and returns an entry with the keys of a results.json ``estimates`` entry plus
``analysis`` (words) and ``reason`` (why there is no estimate, or ``None``):

- :func:`ionized_outcome`: the outcome is ionized Ca (mmol/L) at the horizon instead of
  albumin-corrected Ca; episodes without an ionized outcome are left out.
- :func:`excluding_advanced_ckd`: episodes with baseline eGFR below
  ``advanced_ckd_egfr_ml_min_1_73m2`` (CKD-EPI 2021, ``sql/kidney_function.sql``) left out.
- :func:`same_day_albumin`: only episodes whose index and outcome calcium were corrected
  with an albumin of the same day (or indexed by ionized Ca).
- :func:`alternative_windows`: the cohort re-derived by the same SQL with another grace period
  or outcome horizon (``MgcaConfig.sensitivity_configs``), from the run's database (only the
  steps the changed setting reaches are re-run).
- :func:`primary_evalue`: the E-value of the primary estimate
  (:func:`mgca.analysis.estimation.diagnostics.evalue`).

Nothing here re-implements a cohort rule: changed windows are re-derived in SQL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from mgca.analysis.estimation.diagnostics import evalue, pooled_outcome_sd
from mgca.analysis.estimation.models import OUTCOME, InsufficientDataError, fit_primary
from mgca.config import MgcaConfig, StudyConfig

IONIZED_OUTCOME = "outcome_ca_ionized_mmol_l"
LAST_COHORT_STEP = "analytic_cohort.sql"
"""Alternative windows re-run the SQL steps up to and including this one."""


class AlternativeCohortUnavailable(RuntimeError):
    """An alternative window's cohort cannot be had from this run's database."""


def _no_estimate(name: str, analysis: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "analysis": analysis,
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "n": None,
        "unit": "mmol/L",
        "reason": reason,
    }


def _refit(
    name: str, analysis: str, fit: Callable[[], dict[str, Any]], **overrides: Any
) -> dict[str, Any]:
    """Run one primary refit; an ``InsufficientDataError`` becomes a no-estimate entry."""
    try:
        result = fit()
    except InsufficientDataError as exc:
        return _no_estimate(name, analysis, str(exc))
    return result | {"name": name, "analysis": analysis, "reason": None} | overrides


def ionized_outcome(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Primary model with ionized Ca at the horizon (mmol/L) as the outcome.

    Ionized Ca is the reference measure in critical illness (clinical.md); it is drawn only
    in some episodes (blood gases), so this is a selected subgroup. The adjustment set is
    the primary one (baseline corrected Ca, the selecting value, included).
    """
    analysis = "outcome: ionized Ca instead of albumin-corrected Ca"
    if IONIZED_OUTCOME not in cohort.columns:
        return _no_estimate("ionized_calcium_outcome", analysis, "no ionized outcome column")
    swapped = cohort.assign(**{OUTCOME: cohort[IONIZED_OUTCOME]})
    return _refit(
        "ionized_calcium_outcome",
        analysis,
        lambda: fit_primary(swapped, study),
        outcome=(
            f"ionized Ca (mmol/L) nearest to {study.horizon_hours} h after index, within ± "
            f"{study.outcome_tolerance_hours} h (episodes without one left out, in n_dropped)"
        ),
    )


def excluding_advanced_ckd(
    cohort: pd.DataFrame, kidney: pd.DataFrame, study: StudyConfig
) -> dict[str, Any]:
    """Primary model without episodes whose baseline eGFR is below the configured limit.

    ``kidney`` is ``index_kidney_function`` (``advanced_ckd`` per ``encounter_id``).
    Episodes whose eGFR is unknown (no creatinine, unknown sex) are kept; the primary model
    drops those without creatinine anyway.
    """
    limit = study.advanced_ckd_egfr_ml_min_1_73m2
    analysis = (
        f"excluding advanced kidney disease: baseline eGFR < {limit:g} mL/min/1.73 m² "
        "(CKD-EPI 2021 creatinine equation)"
    )
    flags = cohort[["encounter_id"]].merge(
        kidney[["encounter_id", "advanced_ckd"]], on="encounter_id", how="left"
    )
    keep = ~flags["advanced_ckd"].astype("boolean").fillna(False).astype(bool).to_numpy()
    return _refit(
        "excluding_advanced_ckd",
        analysis,
        lambda: fit_primary(cohort.loc[keep].reset_index(drop=True), study),
    )


SAME_DAY_INDEX_MEASURES = frozenset({"ionized", "corrected_same_day_albumin"})
"""Index calcium measures that used no albumin older than a day (ionized needs none)."""


def same_day_albumin(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Primary model on the episodes whose index and outcome calcium needed no albumin older
    than ``albumin_same_day_hours``: index by ionized Ca or by a Ca corrected with a same-day
    albumin, outcome corrected with a same-day albumin.

    The primary cohort corrects calcium with the most recent albumin of the look-back
    (``albumin_lookback_hours``); albumin drifts over days in acute illness, so this shows
    whether the older albumins moved the answer.
    """
    name = "same_day_albumin"
    analysis = (
        f"only episodes whose calcium was corrected with an albumin drawn at most "
        f"{study.albumin_same_day_hours} h before it (or indexed by ionized Ca)"
    )
    needed = {"index_calcium_measure", "outcome_calcium_measure"}
    if not needed <= set(cohort.columns):
        return _no_estimate(name, analysis, "the cohort has no calcium measure columns")
    keep = cohort["index_calcium_measure"].isin(SAME_DAY_INDEX_MEASURES) & (
        cohort["outcome_calcium_measure"] == "corrected_same_day_albumin"
    )
    subset = cohort.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)
    return _refit(name, analysis, lambda: fit_primary(subset, study))


def _differences(
    values: dict[str, Any], horizons: list[tuple[int, bool]], config: MgcaConfig
) -> set[str]:
    """Study-config columns whose value differs from ``config``'s, plus
    ``"study_outcome_horizons"`` when the horizon rows differ."""
    from mgca.engine.database import study_config_values, study_outcome_horizons

    wanted = study_config_values(config)
    changed = {
        name for name in values.keys() | wanted.keys() if values.get(name) != wanted.get(name)
    }
    if horizons != study_outcome_horizons(config):
        changed.add("study_outcome_horizons")
    return changed


def settings_changed(base: MgcaConfig, alternative: MgcaConfig) -> set[str]:
    """The settings (``study_config`` columns, ``"study_outcome_horizons"``) that differ
    between two configs: what :func:`mgca.engine.derive.steps_to_rerun` needs."""
    from mgca.engine.database import study_config_values, study_outcome_horizons

    return _differences(study_config_values(base), study_outcome_horizons(base), alternative)


def settings_changed_from_run(con: Any, config: MgcaConfig, catalog: str) -> set[str]:
    """The settings whose value in ``catalog`` (the run's database, attached: what its tables
    were derived with) differs from ``config``'s."""
    cursor = con.execute(f"SELECT * FROM {catalog}.main.study_config")
    names = [d[0] for d in cursor.description]
    stored = dict(zip(names, cursor.fetchone(), strict=True))
    horizons = con.execute(
        f"SELECT horizon_hours, is_primary FROM {catalog}.main.study_outcome_horizons "
        "ORDER BY horizon_hours"
    ).fetchall()
    return _differences(stored, [tuple(row) for row in horizons], config)


def rederive_cohort(db_path: Path, config: MgcaConfig, work_dir: Path) -> pd.DataFrame:
    """The analytic cohort under ``config``, re-derived by the SQL from the run's database.

    A new database in ``work_dir`` (deleted afterwards) attaches ``db_path`` read-only, gets
    ``config``'s study_config, and re-runs only the steps up to :data:`LAST_COHORT_STEP`
    that the changed settings reach (:func:`mgca.engine.derive.steps_to_rerun`: from the first step
    that reads one of them); unqualified table names resolve to the new database first and
    to the run's second, so the steps before read the run's tables as they are. Nothing is
    copied and the run's own database is never changed. At 1e7 lab rows a changed grace
    period re-runs 5 of the 12 cohort steps, on episode-sized tables.
    """
    from mgca.engine.database import open_database, write_study_config
    from mgca.engine.derive import read_sql, steps_to_rerun

    with tempfile.TemporaryDirectory(prefix="sensitivity-", dir=work_dir) as folder:
        con = open_database(Path(folder) / "alternative.duckdb", config)
        try:
            con.execute("ATTACH ? AS run (READ_ONLY)", [str(db_path)])
            changed = settings_changed_from_run(con, config, "run")
            con.execute("SET search_path = 'alternative.main,run.main'")
            write_study_config(con, config)
            for step in steps_to_rerun(changed, LAST_COHORT_STEP):
                con.execute(read_sql(step))
            return con.execute(
                "SELECT * FROM analytic_cohort ORDER BY subject_id, encounter_id, index_time"
            ).df()
        finally:
            con.close()


def _alternative_cohort(
    db_path: Path, name: str, config: MgcaConfig, work_dir: Path
) -> pd.DataFrame:
    """The cohort of alternative window ``name``: pulled back from Spark by the run when it
    was derived there, else re-derived from the run's DuckDB tables."""
    import duckdb

    from mgca.engine.spark import ALTERNATIVE_COHORT_PREFIX

    table = f"{ALTERNATIVE_COHORT_PREFIX}{name}"
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        present = {
            t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if table in present:
            return con.execute(
                f'SELECT * FROM "{table}" ORDER BY subject_id, encounter_id, index_time'
            ).df()
    finally:
        con.close()
    if "index_events" not in present:
        raise AlternativeCohortUnavailable(
            "the run's database holds the analytic table but not the tables it was derived "
            "from (a Spark-engine run), and no cohort for this window was pulled back from "
            "Spark; run again with --no-cache"
        )
    return rederive_cohort(db_path, config, work_dir)


def alternative_windows(db_path: Path, config: MgcaConfig, work_dir: Path) -> list[dict[str, Any]]:
    """The primary model on cohorts re-derived with each alternative grace period/horizon.

    A run on the Spark engine derived them on the cluster and pulled them back
    (``alternative_cohort__<name>``, :func:`mgca.engine.spark.derive_alternative_cohorts`);
    otherwise they are re-derived here from the run's DuckDB tables. A window whose cohort
    cannot be had gets an entry without an estimate that says why, not a failed run."""
    out = []
    for name, label, alt in config.sensitivity_configs():
        analysis = f"re-derived cohort: {label}"
        try:
            cohort = _alternative_cohort(db_path, name, alt, work_dir)
        except AlternativeCohortUnavailable as exc:
            out.append(_no_estimate(name, analysis, f"cohort not available: {exc}"))
            continue
        except Exception as exc:  # one window must not stop the run; the entry says why
            # (the exception's type only: a database message may quote a value or a date)
            reason = f"cohort could not be re-derived ({type(exc).__name__})"
            out.append(_no_estimate(name, analysis, reason))
            continue
        fit = partial(fit_primary, cohort, alt.study)
        out.append(_refit(name, analysis, fit))
    return out


def primary_evalue(primary: dict[str, Any] | None, cohort: pd.DataFrame) -> dict[str, Any]:
    """E-value of the primary estimate and its CI limit nearer the null (approximate).

    The mmol/L difference is standardised by the pooled within-arm SD of the outcome and
    converted to a risk ratio by RR ≈ exp(0.91 d) (VanderWeele & Ding 2017); see
    :func:`mgca.analysis.estimation.diagnostics.evalue`.
    """
    approximation = (
        "difference standardised by the pooled within-arm SD of the outcome (d), converted "
        "to an approximate risk ratio RR = exp(0.91 d) (VanderWeele & Ding 2017, Ann Intern "
        "Med 167:268); assumes a roughly normal outcome: a rough guide"
    )
    if not primary or primary.get("estimate") is None or primary.get("ci_low") is None:
        return {
            "evalue_estimate": None,
            "evalue_ci": None,
            "approximation": approximation,
            "reason": "no primary estimate",
        }
    try:
        sd = pooled_outcome_sd(cohort)
        values = evalue(primary["estimate"], primary["ci_low"], primary["ci_high"], sd)
    except ValueError as exc:
        return {
            "evalue_estimate": None,
            "evalue_ci": None,
            "approximation": approximation,
            "reason": str(exc),
        }
    return values | {"sd_outcome_mmol_l": sd, "approximation": approximation, "reason": None}


def run_sensitivity(
    cohort: pd.DataFrame,
    *,
    kidney: pd.DataFrame,
    primary: dict[str, Any] | None,
    db_path: Path | None,
    config: MgcaConfig,
    work_dir: Path,
) -> dict[str, Any]:
    """Every sensitivity analysis: ``{"analyses": [entries], "evalue": {...}}``.

    ``db_path`` ``None`` skips the re-derived windows (e.g. in a notebook without a database).
    """
    analyses = [ionized_outcome(cohort, config.study)]
    analyses.append(excluding_advanced_ckd(cohort, kidney, config.study))
    analyses.append(same_day_albumin(cohort, config.study))
    if db_path is not None:
        analyses += alternative_windows(db_path, config, work_dir)
    return {"analyses": analyses, "evalue": primary_evalue(primary, cohort)}
