"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no external URLs).

``render_report(ReportContext(...))`` turns the run's aggregates into HTML with jinja2
(autoescape on) from ``mgca.templates/report.html.j2`` and ``report.css``. This module prepares
display text (numbers formatted, small counts shown as ``<threshold``); the template only lays
it out. The report never shows subject or encounter ids, and free text taken from results
has absolute dates removed; the run's start time stays in results.json (only the run's
duration is shown).
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from mgca.analysis.estimation.gate import gate_rule_words
from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    COUNT_KEYS,
    MODEL_SPEC_WORDS,
    REPORT_SAYS,
)
from mgca.analysis.privacy import (
    SUPPRESSED_KEY,
    SUPPRESSED_WHY_KEY,
    display_record_count,
    rule_words,
    scrub_dates,
    suppress_estimate,
)
from mgca.analysis.report.consort import consort_diagram
from mgca.analysis.report.correction_curves import FIGURE_KEY as CORRECTION_FIGURE
from mgca.analysis.report.figures import (
    analyte_trajectory_caption,
    group_label,
    trajectory_caption,
    trajectory_sample_caption,
)
from mgca.analysis.report.first_screen import (
    cohort_flow,
    first_screen_forest,
    gate_list,
    run_caveats,
)
from mgca.analysis.report.format import (
    MISSING,
    format_ci,
    format_number,
    format_p_value,
    inline_svg,
)
from mgca.analysis.report.missing_section import missing_outcomes_view
from mgca.analysis.report.negative_controls_section import (
    CALIBRATED_LABEL,
    calibration_caveat,
    negative_control_rows,
)
from mgca.analysis.report.no_episodes import no_eligible_episodes_reason
from mgca.analysis.report.per_protocol_section import (
    per_protocol_method_paragraph,
    per_protocol_view,
)
from mgca.analysis.report.quality_section import data_quality_view
from mgca.analysis.report.stats import FOREST_LABELS, stats_sections
from mgca.analysis.text import (
    estimand_words,
    methods_items,
    missing_outcome_methods,
    model_rule_words,
    question_words,
)
from mgca.config import MgcaConfig, StudyConfig

TEMPLATE = "report.html.j2"
ESTIMATE_LABELS = {
    "primary": "Primary: adjusted average effect (g-computation)",
    "overlap": "Overlap population: adjusted effect where treatment could go either way",
    "ipw": "Inverse-probability weighted (stabilised, Hájek)",
    "doubly_robust": "Doubly robust (augmented IPW)",
    "unadjusted_difference": "Unadjusted difference (exposed − unexposed)",
    "naive_before_after": "Naive before/after change, exposed only (not causal)",
    "primary_complete_case": "Primary model on complete cases (missing outcomes dropped)",
}
METHOD_SHORT = {
    "primary": "outcome regression, g-computation",
    "overlap": "overlap weights",
    "ipw": "propensity weighting",
    "doubly_robust": "augmented IPW",
    "unadjusted_difference": "difference in means",
    "naive_before_after": "before/after, given Mg only",
    "primary_complete_case": "g-computation, measured outcomes only",
}
"""The method of each estimate in a few words (its paragraph is in the Methods appendix)."""
ARM_KEYS = ("n", "n_exposed", "n_unexposed")
"""Group sizes of an estimate: when one is hidden, the estimate is withheld."""


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows. Aggregates only: no row-level data.

    ``results`` is the results.json dict (``estimates``, ``attrition``, ``data_quality``,
    ``provenance``); ``table_one`` comes from ``mgca.analysis.report.table_one.table_one``;
    ``trajectory_svg`` from ``mgca.analysis.report.figures.calcium_trajectory_figure`` (``None``
    when
    there is nothing to plot); ``threshold`` is the small-cell threshold. When there is no
    primary estimate, ``no_estimate_reason`` says why; failing that,
    ``results["no_estimate_reason"]``, "No eligible episodes: ..." worked out from the
    attrition (``mgca.analysis.report.no_episodes``) or a ``"primary: ..."`` entry of
    ``results["estimate_notes"]``.
    ``analyte_trajectory_svg`` (``analyte_trajectory_figure``), ``trajectory_sample_svg``
    (``trajectory_sample_figure``) and ``episode_missingness``
    (``mgca.analysis.report.quality_section.episode_missingness``: raw counts, hidden here) are
    optional.
    """

    title: str
    results: Mapping[str, Any]
    table_one: pd.DataFrame | None
    trajectory_svg: str | None
    config: MgcaConfig
    threshold: int
    no_estimate_reason: str | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    """SVG figures drawn from row-level data by the model task (``love_plot``, ``overlap``)."""
    analyte_trajectory_svg: str | None = None
    trajectory_sample_svg: str | None = None
    episode_missingness: Sequence[Mapping[str, Any]] | None = None


# ---------------------------------------------------------------------------------------------
# templates


def _templates_dir() -> Traversable:
    """The ``mgca.templates`` package folder, or, when an editable install predates that
    package's mapping, ``reports/templates`` beside this source tree."""
    try:
        return importlib.resources.files("mgca.templates")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "reports" / "templates"


def _environment() -> jinja2.Environment:
    folder = _templates_dir()

    def load(name: str) -> str:
        return folder.joinpath(name).read_text(encoding="utf-8")

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# ---------------------------------------------------------------------------------------------
# formatting


GATE_FORMATS: dict[str, Callable[[float], str]] = {
    "episodes_per_arm": lambda x: f"{x:.0f}",
    "effective_sample_size": lambda x: f"{x:.0f}",
    "equipoise": lambda x: f"{100 * x:.0f} %",
}
"""How a gate check's value and bound read (default: 3 significant figures)."""


def _gate_view(gate: Mapping[str, Any] | None, threshold: int) -> dict[str, Any] | None:
    """The diagnostics gate for display: verdict, which estimate answers and why, each check
    with its value and bound as text (counts below ``threshold`` were never written)."""
    if not gate:
        return None
    rows = []
    for check in gate.get("checks") or []:
        value, bound = check.get("value"), check.get("bound")
        fmt = GATE_FORMATS.get(check.get("check"), lambda x: f"{x:.3g}")
        rows.append(
            {
                "label": scrub_dates(check["label"]),
                "value": MISSING if value is None else fmt(value),
                "bound": MISSING if bound is None else fmt(bound),
                "passed": bool(check.get("passed")),
                "words": scrub_dates(check.get("words")),
            }
        )
    return {
        "passed": bool(gate.get("passed")),
        "answer": ESTIMATE_LABELS.get(gate.get("answer", ""), scrub_dates(gate.get("answer"))),
        "answer_reason": scrub_dates(gate.get("answer_reason")),
        "checks": rows,
    }


def _estimate_view(
    entry: Mapping[str, Any], threshold: int, gate: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Display text of an estimate; statistics over a hidden group size are withheld. With
    ``gate``, the answering estimate is flagged as the answer, or as failing the gate."""
    entry = suppress_estimate(entry, COUNT_KEYS, ARM_KEYS, threshold)
    gate_flag = None
    if gate and entry.get("name") == gate.get("answer"):
        gate_flag = (
            "the answer" if gate.get("passed") else "fails the diagnostics gate: not the finding"
        )
    withheld = "withheld" in entry
    has = entry.get("estimate") is not None
    ci = format_ci(entry, signed=False) if has else MISSING
    return {
        "name": entry.get("name", ""),
        "label": ESTIMATE_LABELS.get(entry.get("name", ""), scrub_dates(entry.get("name", ""))),
        "method_short": METHOD_SHORT.get(entry.get("name", ""), "see Methods"),
        "estimate": format_number(entry.get("estimate"), signed=True),
        "ci": ci,
        "p": format_p_value(entry.get("p_value")),
        "n": display_record_count(entry, "n", threshold),
        "n_exposed": display_record_count(entry, "n_exposed", threshold),
        "n_unexposed": display_record_count(entry, "n_unexposed", threshold),
        "n_clusters": display_record_count(entry, "n_clusters", threshold),
        "withheld": withheld,
        "estimand": scrub_dates(entry.get("estimand")),
        "method": scrub_dates(entry.get("method")),
        "notes": [scrub_dates(n) for n in entry.get("notes") or []],
        "reason": scrub_dates(entry.get("reason")) if entry.get("reason") else None,
        "model_spec": scrub_dates((entry.get("model_spec") or {}).get("reason")) or None,
        "gate_flag": gate_flag,
    }


def _find(estimates: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((e for e in estimates if e.get("name") == name), None)


# ---------------------------------------------------------------------------------------------
# sections


def _summary(
    primary: Mapping[str, Any] | None,
    view: Mapping[str, Any] | None,
    reason: str | None,
    study: StudyConfig,
    threshold: int,
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The question and the one-sentence answer (or why there is none); the caveats are
    chosen per run by :func:`mgca.analysis.report.first_screen.run_caveats`.

    ``primary`` is the results entry that answers (``gate["answer"]``: the primary or the
    overlap-population estimate) and ``view`` its display text (both ``None`` when there is
    no such estimate); ``gate`` results.json's diagnostics gate: when it failed, the answer says
    this data cannot answer, and why.
    """
    question = question_words(study)
    if primary is None or view is None or view["estimate"] == MISSING:
        if view is not None and view["withheld"]:
            why = f"an exposure group has fewer than {threshold} analysed episodes"
        else:
            why = scrub_dates(reason).replace(REPORT_SAYS, "").rstrip("; .") if reason else ""
            why = why or "the primary model was not fitted"
        answer = (
            why
            if re.match(r"no (primary )?estimate\b|no eligible episodes\b", why, re.I)
            else f"No estimate: {why}"
        )
        return {
            "question": question,
            "answer": answer[0].upper() + answer[1:] + ".",
            "has_estimate": False,
        }
    if gate is not None and not gate.get("passed", True):
        failed = "; ".join(scrub_dates(w) for w in gate.get("failed") or [])
        return {
            "question": question,
            "answer": (
                "This data cannot answer the question: the pre-specified diagnostics gate "
                f"failed ({failed}). The estimates below are shown for transparency only and "
                "must not be read as the finding."
            ),
            "has_estimate": False,
        }
    low, high = primary["ci_low"], primary["ci_high"]
    if low is not None and low > 0:
        direction = "higher with magnesium"
    elif high is not None and high < 0:
        direction = "lower with magnesium"
    else:
        direction = "the interval includes no difference"
    population = (
        " in the overlap population (episodes weighted towards those in whom treatment could "
        "have gone either way, because the data do not support the whole cohort)"
        if primary.get("name") == "overlap"
        else ""
    )
    answer = (
        f"Giving magnesium within {study.grace_hours} h changed albumin-corrected calcium at "
        f"{study.horizon_hours} h by {view['estimate']} mmol/L (95 % CI {view['ci']} mmol/L; "
        f"{direction}) compared with not giving it{population}, in {view['n']} analysed "
        f"episodes ({view['n_exposed']} given magnesium, {view['n_unexposed']} not)."
    )
    return {"question": question, "answer": answer, "has_estimate": True}


def _rows(
    records: Sequence[Mapping[str, Any]], threshold: int
) -> tuple[list[str], list[list[str]]]:
    """Header and display rows of a list of dicts; ``n``/``n_*`` columns are counts."""
    columns: list[str] = []
    for record in records:
        columns += [
            k for k in record if k not in columns and k not in (SUPPRESSED_KEY, SUPPRESSED_WHY_KEY)
        ]
    rows = [
        [
            display_record_count(r, c, threshold)
            if c == "n" or c.startswith("n_")
            else scrub_dates(r.get(c))
            for c in columns
        ]
        for r in records
    ]
    return columns, rows


def _methods(config: MgcaConfig, threshold: int) -> list[tuple[str, str]]:
    """Methods items generated from the config (thresholds with units), then software; the
    disclosure-control item states the rule in force (``privacy.rounding`` included)."""
    rule = rule_words(threshold, config.privacy.rounding).rstrip(".")
    replaced = {
        "Disclosure control": f"{rule}; zero is shown as 0; estimates are withheld when an "
        f"exposure group has fewer than {threshold} episodes",
        "Estimators": "; ".join(ESTIMATE_LABELS.values())
        + " (each one's estimand and method in its paragraph below)",
    }
    items = methods_items(
        config,
        threshold,
        model_rule=model_rule_words(config.estimation, MODEL_SPEC_WORDS),
        gate_rule=gate_rule_words(config.gate),
        adjustment_set=ADJUSTMENT_SET,
        estimator_labels=ESTIMATE_LABELS.values(),
        software=software_versions(),
    )
    return [(label, replaced.get(label, text)) for label, text in items] + [
        ("Missing outcomes", missing_outcome_methods(config.study, config.estimation))
    ]


def _sentence_end(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "?", "!")) else text + "."


def method_paragraphs(
    estimates: Sequence[Mapping[str, Any]], secondary: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The Methods appendix's paragraph of each estimator and each secondary analysis, once
    each (its estimand, outcome and method, as the estimation code wrote them from
    ``mgca.analysis.text``); ``anchor`` is what the tables link to (``#method-<anchor>``)."""
    out: list[dict[str, str]] = []
    for e in estimates:
        name = e.get("name", "")
        words = [_sentence_end(scrub_dates(e.get(k) or "")) for k in ("estimand", "method")]
        out.append(
            {
                "anchor": name,
                "label": ESTIMATE_LABELS.get(name, scrub_dates(name)),
                "text": " ".join(w[:1].upper() + w[1:] for w in words if w),
            }
        )
    for e in secondary:
        if e.get("reason") or not e.get("method"):
            continue
        parts = [
            _sentence_end(scrub_dates(e.get("estimand") or "")),
            _sentence_end("Outcome: " + scrub_dates(e["outcome"])) if e.get("outcome") else "",
            _sentence_end(scrub_dates(e.get("method") or "")),
            *(_sentence_end(scrub_dates(n)) for n in e.get("notes") or []),
            _sentence_end(scrub_dates(e["withheld"])) if e.get("withheld_by_design") else "",
        ]
        out.append(
            {
                "anchor": f"secondary-{e.get('name', '')}",
                "label": scrub_dates(e.get("name", "")).replace("_", " "),
                "text": " ".join(w[:1].upper() + w[1:] for w in parts if w),
            }
        )
    return out


SOFTWARE = ("duckdb", "pandas", "numpy", "statsmodels", "scipy", "matplotlib", "prefect", "jinja2")


def software_versions() -> str:
    """Python and the versions of the packages that shape the numbers, as one line."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for name in SOFTWARE:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


_PROVENANCE = (
    ("mgca_version", "mgca version"),
    ("git_commit", "Git commit"),
    ("config_sha256", "Config SHA-256"),
    ("input_fingerprint", "Input fingerprint"),
    ("source", "Data source"),
    ("duration_s", "Run time"),
    ("cohort_sha256", "Analytic table SHA-256"),
    ("rerun_identical_given", "Identical rerun"),
    ("private_outputs", "Private files (ids)"),
)


def _provenance(results: Mapping[str, Any], config: MgcaConfig) -> list[tuple[str, str]]:
    prov = dict(results.get("provenance") or {})
    prov.setdefault("config_sha256", config.sha256())
    items = []
    for key, label in _PROVENANCE:
        value = prov.get(key)
        if key == "duration_s" and value is not None:
            value = f"{float(value):.1f} s"
        items.append((label, scrub_dates(value) if value is not None else "not recorded"))
    return items


def _primary_note(results: Mapping[str, Any]) -> str | None:
    """Why the primary model was not fitted, from ``results["estimate_notes"]`` entries of the
    form ``"primary: <InsufficientDataError message>"`` (as the flow records them)."""
    notes = results.get("estimate_notes") or []
    return next(
        (n.removeprefix("primary:").strip() for n in notes if n.startswith("primary:")), None
    )


def _scrubbed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: scrub_dates(v) for k, v in row.items()} for row in rows]


def render_report(context: ReportContext) -> str:
    """The report as one HTML string (UTF-8 text; write it with ``encoding="utf-8"``)."""
    results, threshold, study = context.results, context.threshold, context.config.study
    estimates = list(results.get("estimates") or [])
    gate = results.get("gate")
    answer_name = gate["answer"] if gate else "primary"
    primary = _find(estimates, answer_name)
    attrition = list(results.get("attrition") or [])
    reason = (
        context.no_estimate_reason
        or results.get("no_estimate_reason")
        or no_eligible_episodes_reason(
            attrition,
            results.get("data_quality") or [],
            results.get("source_rows") or [],
            threshold,
        )
        or _primary_note(results)
        or (primary or {}).get("reason")
    )
    order = [n for n in ESTIMATE_LABELS if _find(estimates, n) is not None]
    order += [e.get("name", "") for e in estimates if e.get("name") not in ESTIMATE_LABELS]
    attrition_cols, attrition_rows = _rows(attrition, threshold)
    measure_cols, measure_rows = _rows(list(results.get("calcium_measures") or []), threshold)
    deviation_cols, deviation_rows = _rows(
        list(results.get("post_grace_deviations") or []), threshold
    )
    primary_view = _estimate_view(primary, threshold) if primary is not None else None
    naive = _find(estimates, "naive_before_after")
    naive_view = _estimate_view(naive, threshold) if naive is not None else None
    quality = data_quality_view(results, context.episode_missingness, threshold)
    t1 = context.table_one
    summary = _summary(primary, primary_view, reason, study, threshold, gate)
    naive_text = naive_view["estimate"] if naive_view else None
    template = _environment().get_template(TEMPLATE)
    return template.render(
        title=context.title,
        summary=summary,
        first_forest_svg=inline_svg(first_screen_forest(results, FOREST_LABELS)),
        first_flow=cohort_flow(
            _scrubbed_records(attrition),
            threshold,
            suppress_estimate(primary, COUNT_KEYS, ARM_KEYS, threshold) if primary else None,
            "the primary model" if answer_name == "primary" else "the answering model",
        ),
        first_gate=gate_list(gate),
        first_caveats=run_caveats(results, study, threshold, naive_text),
        correction_svg=inline_svg(context.figures.get(CORRECTION_FIGURE)),
        method_paragraphs=method_paragraphs(
            [_find(estimates, n) or {} for n in order], results.get("secondary") or []
        )
        + per_protocol_method_paragraph(results.get("per_protocol")),
        per_protocol=per_protocol_view(results.get("per_protocol"), threshold),
        primary=primary_view,
        gate=_gate_view(gate, threshold),
        estimates=[_estimate_view(_find(estimates, n) or {}, threshold, gate) for n in order],
        attrition_columns=attrition_cols,
        attrition_rows=attrition_rows,
        consort=consort_diagram(_scrubbed_records(attrition), threshold),
        calcium_measure_columns=measure_cols,
        calcium_measure_rows=measure_rows,
        deviation_columns=deviation_cols,
        deviation_rows=deviation_rows,
        quality={k: _scrubbed(v) for k, v in quality.items()},
        table_one=None if t1 is None or t1.empty else t1.to_dict("records"),
        exposed_label=group_label(True, study),
        unexposed_label=group_label(False, study),
        trajectory_svg=inline_svg(context.trajectory_svg),
        trajectory_caption=trajectory_caption(threshold, study),
        analyte_trajectory_svg=inline_svg(context.analyte_trajectory_svg),
        analyte_trajectory_caption=analyte_trajectory_caption(threshold, study),
        trajectory_sample_svg=inline_svg(context.trajectory_sample_svg),
        trajectory_sample_caption=trajectory_sample_caption(
            threshold, study, context.config.report.trajectory_sample_size
        ),
        methods=_methods(context.config, threshold),
        provenance=_provenance(results, context.config),
        study=study,
        threshold=threshold,
        count_rule=rule_words(threshold, context.config.privacy.rounding),
        adjustment_set=list(ADJUSTMENT_SET),
        words=estimand_words(study),
        synthetic_truth=_synthetic_truth(results.get("synthetic_truth"), primary),
        **stats_sections(results, context.figures, threshold),
        negative_controls=negative_controls_view(results, threshold),
        results=results,  # for _comparison.html.j2 (comparison_with_previous)
        missing_outcomes=missing_outcomes_view(results.get("missing_outcomes"), threshold),
    )


def negative_controls_view(results: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    """The negative-control section's rows, the calibration entry and its caveat."""
    return {
        "rows": _scrubbed(negative_control_rows(results, threshold)),
        "calibration": results.get("calibration"),
        "calibrated_label": CALIBRATED_LABEL[:1].upper() + CALIBRATED_LABEL[1:],
        "caveat": calibration_caveat(results),
    }


def _scrubbed_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records with free-text values date-scrubbed (counts untouched)."""
    return [{k: scrub_dates(v) if isinstance(v, str) else v for k, v in r.items()} for r in records]


def _synthetic_truth(
    truth: Mapping[str, Any] | None, primary: Mapping[str, Any] | None
) -> str | None:
    """On synthetic data, one sentence comparing the estimate with the simulator's truth."""
    overlap = bool(primary) and primary.get("name") == "overlap"
    key = "true_effect_overlap" if overlap else "true_effect"
    # the IPCW primary describes every eligible episode; the complete-case one does not
    weighted = bool(primary) and not overlap and primary.get("censoring_model") is not None
    if truth and not weighted and truth.get("true_effect_complete_case") is not None:
        key = "true_effect_complete_case"
    if not truth or truth.get(key) is None:
        return None
    value = float(truth[key])
    scope = (
        " (every eligible episode, outcome measured or not)"
        if key == "true_effect" and truth.get("true_effect_complete_case") is not None
        else ""
    )
    sentence = (
        f"These are synthetic data, so the true effect is known: replaying every stay of this "
        f"very cohort{scope} with and without Mg repletion (same random draws) gives "
        f"{format_number(value, signed=True)} mmol/L"
        + (", weighted like the overlap population." if overlap else ".")
    )
    if primary and primary.get("ci_low") is not None and primary.get("ci_high") is not None:
        covered = float(primary["ci_low"]) <= value <= float(primary["ci_high"])
        which = "overlap-population" if overlap else "primary"
        sentence += (
            f" The {which} 95 % CI covers it."
            if covered
            else f" The {which} 95 % CI does not cover it (expected in about 1 run in 20)."
        )
    return sentence
