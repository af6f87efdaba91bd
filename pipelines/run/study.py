"""The study's steps as plain functions: the Prefect tasks call these, and so can a notebook.

    from mgca.run import study
    from mgca.config import load_config
    config = load_config()
    study.build_database(Path("data/synthetic/demo"), Path("demo.duckdb"), config)
    cohort = study.read_cohort(Path("demo.duckdb"))          # pandas, one row per episode
    estimates, notes = study.fit_estimates(cohort, config)

Every cohort rule runs in SQL (sql/); these functions only move data and call the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.blas import model_blas_threads
from mgca.analysis.estimation.analyses import (
    diagnostics_block,
    effect_modification_block,
    secondary_block,
)
from mgca.analysis.estimation.estimators import aipw_ate, ipw_ate, overlap_ate, overlap_weights
from mgca.analysis.estimation.gate import evaluate_gate as gate_checks
from mgca.analysis.estimation.missing_outcome import (
    complete_case_entry,
    eligible_rows,
    fit_primary_ipcw,
    missing_outcomes_analysis,
)
from mgca.analysis.estimation.models import (
    COUNT_KEYS,
    InsufficientDataError,
    fit_primary,
    naive_before_after,
    no_estimate_entry,
    prepare_adjusted,
    unadjusted_difference,
)
from mgca.analysis.estimation.negative_controls import negative_controls_block
from mgca.analysis.estimation.per_protocol import per_protocol_estimate
from mgca.analysis.estimation.propensity import fit_propensity
from mgca.analysis.estimation.sensitivity import CohortFor
from mgca.analysis.privacy import count_rule, display_count, suppress_estimate
from mgca.analysis.report.correction_curves import FIGURE_KEY as CORRECTION_FIGURE
from mgca.analysis.report.correction_curves import correction_curve_svg
from mgca.analysis.text import ESTIMAND_WORDS
from mgca.config import MgcaConfig
from mgca.engine import base, registry
from mgca.engine.base import Progress, SourceTables, engine_for
from mgca.synthetic import true_effect, true_per_protocol_effect


def source_tables(
    data_dir: Path | str,
    config: MgcaConfig,
    data_format: str | None = None,
    delta_versions: dict[str, int] | None = None,
) -> SourceTables:
    """Where the canonical tables are, as the configured engine reads them: ``data_format``
    defaults to the engine's (:meth:`mgca.engine.base.Engine.default_format`)."""
    engine = engine_for(config.engine.name)
    return SourceTables(
        location=str(data_dir),
        data_format=data_format or engine.default_format(config),
        delta_versions=delta_versions,
    )


def load_tables(
    source: SourceTables, db_path: Path, config: MgcaConfig, progress: Progress | None = None
) -> dict[str, int]:
    """Create ``db_path`` with the canonical tables (or, on Spark, their checks), reference
    tables and study config, by the configured engine (:meth:`mgca.engine.base.Engine.load`).
    Returns the row count of each canonical table."""
    counts = engine_for(config.engine.name).load(source, db_path, config, progress)
    if progress:
        rule = count_rule(config)  # the console follows the count rule
        progress(
            "loaded "
            + ", ".join(f"{name}: {display_count(n, rule)} rows" for name, n in counts.items())
        )
    return counts


def derive_from(
    source: SourceTables, db_path: Path, config: MgcaConfig, progress: Progress | None = None
) -> int:
    """Run every SQL step by the configured engine (:meth:`mgca.engine.base.Engine.derive`)
    and leave every registry output table in ``db_path``; return the number of analysed
    episodes. ``source`` is where an engine that reads the canonical tables itself (Spark)
    finds them."""
    return engine_for(config.engine.name).derive(source, db_path, config, progress)


def load_database(
    data_dir: Path | str,
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_format: str | None = None,
    delta_versions: dict[str, int] | None = None,
) -> dict[str, int]:
    """:func:`load_tables` for the canonical tables in ``data_dir`` (with the Spark engine a
    URL the cluster reads, ``data_format`` "parquet" or "delta", ``delta_versions`` the Delta
    versions to read)."""
    source = source_tables(data_dir, config, data_format, delta_versions)
    return load_tables(source, db_path, config, progress)


def derive_tables(
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
    data_format: str | None = None,
    delta_versions: dict[str, int] | None = None,
) -> int:
    """:func:`derive_from` with the canonical tables' location given as for
    :func:`load_database` (needed only by an engine that reads them itself)."""
    location = "" if data_dir is None else data_dir
    return derive_from(
        source_tables(location, config, data_format, delta_versions), db_path, config, progress
    )


def build_database(
    data_dir: Path | str,
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_format: str | None = None,
) -> int:
    """Load and derive in one call; return the number of analysed episodes.

    Both steps read the same snapshot: the engine pins the tables' versions first
    (:meth:`mgca.engine.base.Engine.pin`; Delta tables at their versions when the load starts).
    """
    engine = engine_for(config.engine.name)
    source = engine.pin(source_tables(data_dir, config, data_format))
    versions = dict(source.delta_versions) if source.delta_versions else None
    load_database(data_dir, db_path, config, progress, source.data_format, versions)
    return derive_tables(db_path, config, progress, data_dir, source.data_format, versions)


def read_table(db_path: Path, sql: str) -> pd.DataFrame:
    """Read a query's result from a run's database, read-only."""
    return base.read_table(db_path, sql)


def read_cohort(db_path: Path) -> pd.DataFrame:
    """The analytic table (one row per episode, with ids) in a stable order."""
    return base.read_table(db_path, registry.table(registry.ANALYTIC_COHORT))


def cohort_for(engine_name: str, db_path: Path, work_dir: Path) -> CohortFor:
    """The sensitivity windows' cohorts from a run's database, by the engine that derived it
    (:meth:`mgca.engine.base.Engine.alternative_cohort`)."""
    engine = engine_for(engine_name)
    return lambda name, config: engine.alternative_cohort(db_path, name, config, work_dir)


ESTIMATE_NAMES: tuple[str, ...] = (
    "primary",
    "overlap",
    "unadjusted_difference",
    "naive_before_after",
    "ipw",
    "doubly_robust",
    "primary_complete_case",
)
"""Every estimate results.json carries, in order; each is a figure or a named reason."""


def fit_estimates(
    cohort: pd.DataFrame,
    config: MgcaConfig,
    names: tuple[str, ...] = ESTIMATE_NAMES,
    eligible: pd.DataFrame | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Primary estimate, the overlap-population estimate, the crude difference, the naive
    before/after contrast, and the primary contrast by inverse-probability weighting and by
    augmented IPW (doubly robust).

    Returns one results.json entry per name of ``names`` (default :data:`ESTIMATE_NAMES`:
    a run fits them all; a simulation study may ask for the ones it scores), in that order:
    an estimate that cannot be made is an entry with ``estimate: None`` and a ``reason``.
    The notes repeat those reasons as ``"<name>: <reason>"``.

    ``eligible`` (the ``eligible_episodes`` table): with it the primary weights the measured
    episodes back to all eligible ones (:func:`fit_primary_ipcw`) and
    ``primary_complete_case`` is the complete-case fit; without it both are complete-case.
    """
    threshold = count_rule(config)
    estimation = config.estimation
    fits = {
        "primary": lambda: (
            fit_primary(cohort, config.study, estimation=estimation)
            if eligible is None
            else fit_primary_ipcw(eligible, config.study, estimation)[0]
        ),
        "primary_complete_case": lambda: complete_case_entry(
            fit_primary(cohort, config.study, estimation=estimation), config.study
        ),
        "overlap": lambda: overlap_ate(
            cohort, config.study, estimation=estimation, threshold=threshold
        ),
        "unadjusted_difference": lambda: unadjusted_difference(cohort, config.study),
        "naive_before_after": lambda: naive_before_after(cohort, config.study),
        "ipw": lambda: ipw_ate(cohort, config.study, threshold=threshold),
        "doubly_robust": lambda: aipw_ate(
            cohort, config.study, threshold=threshold, estimation=estimation
        ),
    }
    estimates: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in names:
        try:
            entry = fits[name]()
            if entry["estimate"] is None or entry["se"] is None:
                raise InsufficientDataError(
                    f"no {name} estimate: its value or standard error is not a finite number "
                    "(weights or the outcome model degenerate on these episodes)"
                )
            estimates.append(entry)
        except (InsufficientDataError, np.linalg.LinAlgError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, InsufficientDataError)
                else (f"no {name} estimate: the model's equations could not be solved ({exc})")
            )
            entry = no_estimate_entry(name, ESTIMAND_WORDS[name], reason, config.study)
            estimates.append(entry)
            notes.append(f"{name}: {exc}")
    return estimates, notes


@model_blas_threads
def fit_all(
    cohort: pd.DataFrame,
    secondary_tables: dict[str, pd.DataFrame],
    config: MgcaConfig,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every estimate (:func:`fit_estimates`), the diagnostics gate (:func:`evaluate_gate`),
    the weighting diagnostics with their figures (and the time-to-correction curves), the
    secondary analyses, the effect modification, the per-protocol estimate and the negative
    controls with the calibrated primary
    (:func:`mgca.analysis.estimation.negative_controls.negative_controls_block`) and the
    missing-outcome analysis (:func:`missing_outcomes_analysis`: IPCW vs complete cases, the
    composite): ``{"estimates", "notes", "gate", "diagnostics", "figures", "secondary",
    "missing_outcomes", "per_protocol", "negative_controls", "calibration",
    "effect_modification"}``, JSON-ready.

    ``progress`` gets the diagnostics warnings, the answering estimate (suppressed as in
    results.json: no statistic over a small arm) and the gate's verdict.
    """
    say = progress or (lambda _line: None)
    eligible = secondary_tables.get("eligible_episodes")
    estimates, notes = fit_estimates(cohort, config, eligible=eligible)
    gate = evaluate_gate(cohort, estimates, config)
    diagnostics, figures = diagnostics_block(cohort, count_rule(config))
    for warning in diagnostics["warnings"]:
        say(f"diagnostics warning: {warning}")
    secondary = secondary_block(cohort, secondary_tables, config)
    effect_modification = effect_modification_block(cohort, secondary_tables, config)
    curves = correction_curve_svg(
        cohort,
        secondary_tables["index_calcium_correction"],
        count_rule(config),
        config.study.correction_window_hours,
    )
    if curves is not None:
        figures[CORRECTION_FIGURE] = curves
    answer = suppress_estimate(
        next(e for e in estimates if e["name"] == gate["answer"]),
        COUNT_KEYS,
        ("n_exposed", "n_unexposed"),
        count_rule(config),
    )
    if answer["estimate"] is not None:
        say(
            f"{answer['name']} estimate {answer['estimate']:+.3f} mmol/L "
            f"(95% CI {answer['ci_low']:+.3f} to {answer['ci_high']:+.3f}), "
            f"n = {answer['n']:,}"
        )
    if gate["passed"]:
        say(f"diagnostics gate passed: the report states the {gate['answer']} estimate")
    else:
        say("diagnostics gate failed, the report states no answer: " + "; ".join(gate["failed"]))
    for note in notes:
        say(note)
    primary = next((e for e in estimates if e["name"] == "primary"), None)
    negative_controls, calibration = negative_controls_block(
        cohort, secondary_tables, config, primary
    )
    if calibration["reason"] is None:
        say(
            f"calibrated primary {calibration['estimate']:+.3f} mmol/L (95% CI "
            f"{calibration['ci_low']:+.3f} to {calibration['ci_high']:+.3f}) from "
            f"{calibration['controls_count']} negative controls"
        )
    else:
        say(f"calibration: {calibration['reason']}")
    return {
        "estimates": estimates,
        "notes": notes,
        "gate": gate,
        "diagnostics": diagnostics,
        "figures": figures,
        "secondary": secondary,
        "missing_outcomes": missing_outcomes_analysis(
            eligible,
            estimates,
            config.study,
            config.estimation,
            config.privacy.small_cell_threshold,
            config.privacy.rounding,
        ),
        "per_protocol": per_protocol_block(cohort, secondary_tables, config),
        "negative_controls": negative_controls,
        "calibration": calibration,
        "effect_modification": effect_modification,
    }


def per_protocol_block(
    cohort: pd.DataFrame, secondary_tables: dict[str, pd.DataFrame], config: MgcaConfig
) -> dict[str, Any] | None:
    """results.json ``per_protocol`` before suppression: the clone-censor-weight estimate
    (:func:`mgca.analysis.estimation.per_protocol.per_protocol_estimate`); None when
    ``per_protocol.enabled`` is false."""
    if not config.per_protocol.enabled:
        return None
    return per_protocol_estimate(
        cohort,
        secondary_tables["per_protocol_followup"],
        secondary_tables["per_protocol_clones"],
        config,
    )


def evaluate_gate(
    cohort: pd.DataFrame, estimates: list[dict[str, Any]], config: MgcaConfig
) -> dict[str, Any]:
    """results.json ``gate``: which estimate answers, each diagnostic check, the verdict
    (:func:`mgca.analysis.estimation.gate.evaluate_gate`)."""
    return gate_checks(cohort, estimates, config.gate, count_rule(config))


def synthetic_truths(
    data_dir: Path | str,
    cohort: pd.DataFrame,
    config: MgcaConfig,
    eligible: pd.DataFrame | None = None,
) -> dict[str, Any] | None:
    """On synthetic data, the simulator's true effect for the populations mgca may answer for.

    The episodes are those every adjusted estimate uses (complete cases of the adjustment
    set; an episode indexed on ionized Ca with no corrected Ca beside it has no baseline
    corrected Ca), or the whole analytic cohort when no adjusted model can be fitted. Returns
    ``{"true_effect": mean per-episode effect (the primary's cohort), "true_effect_overlap":
    the same effects weighted by the overlap weights of the propensity model the overlap
    estimate uses (None when it cannot be fitted), "n", "description"}``, mmol/L; ``None``
    for an empty cohort. With ``eligible`` (the IPCW primary's population) ``true_effect``
    and ``n`` are over the eligible episodes, and the complete-case cohort's truth moves to
    ``true_effect_complete_case`` and ``n_complete_case``.
    """
    if cohort.empty:
        return None
    rows, weights = cohort, None
    try:
        rows = prepare_adjusted(cohort, "the synthetic truth").data
        ps = fit_propensity(cohort)
        weights = overlap_weights(ps.treat, ps.score)
    except InsufficientDataError:
        pass
    truth = true_effect(
        Path(data_dir),
        rows[["encounter_id", "index_time"]],
        grace_hours=config.study.grace_hours,
        horizon_hours=config.study.horizon_hours,
    )
    overlap = None
    if weights is not None:
        overlap = float(np.sum(weights * truth.per_pair) / np.sum(weights))
    out: dict[str, Any] = {
        "true_effect": float(truth.mean),
        "true_effect_overlap": overlap,
        "n": int(truth.n),
        "description": truth.description,
    }
    if config.per_protocol.enabled:
        # the per-protocol analysis clones the analysed (complete-case) episodes
        per_protocol = true_per_protocol_effect(
            Path(data_dir),
            rows[["encounter_id", "index_time"]],
            grace_hours=config.study.grace_hours,
            horizon_hours=config.study.horizon_hours,
        )
        out["true_per_protocol_effect"] = float(per_protocol.mean)
        out["per_protocol_description"] = per_protocol.description
    weighted = eligible_truth(data_dir, eligible, config)
    if weighted is not None:
        # the IPCW primary describes every eligible episode: its truth is the headline one
        out.update(
            {
                "true_effect": weighted[0],
                "n": weighted[1],
                "true_effect_complete_case": float(truth.mean),
                "n_complete_case": int(truth.n),
            }
        )
    return out


def eligible_truth(
    data_dir: Path | str, eligible: pd.DataFrame | None, config: MgcaConfig
) -> tuple[float, int] | None:
    """The simulator's mean true effect (mmol/L) over the eligible episodes the IPCW primary
    uses (outcome measured or not: as if every patient had stayed to be measured) and their
    number; ``None`` without an eligible-episode table or episode."""
    if eligible is None:
        return None
    rows, _ = eligible_rows(eligible)
    if rows.empty:
        return None
    truth = true_effect(
        Path(data_dir),
        rows[["encounter_id", "index_time"]],
        grace_hours=config.study.grace_hours,
        horizon_hours=config.study.horizon_hours,
    )
    return float(truth.mean), int(truth.n)


def read_secondary_tables(db_path: Path) -> dict[str, pd.DataFrame]:
    """The per-episode tables of the secondary and sensitivity analyses
    (:func:`mgca.engine.registry.secondary_tables`), each in a stable order."""
    return {t.name: base.read_table(db_path, t) for t in registry.secondary_tables()}
