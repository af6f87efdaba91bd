"""Prefect artifacts for each run: what a reader of the Prefect UI sees without opening files.

Three artifacts per flow run, built from the run's results dict (aggregates only, small counts
already suppressed by ``mgca.analysis.privacy``; a small count shown as ``<threshold``, a
count hidden to protect a small one as ``suppressed``, the rule in force stated):

- ``mgca-summary`` (markdown): the question, the primary estimate with its 95% CI, the
  number of episodes analysed, and how the run compares with the previous one;
- ``mgca-estimates`` (table): every estimate with CI and group sizes;
- ``mgca-attrition`` (table): the cohort flow, step by step.

No subject or encounter ids and no patient dates ever enter an artifact.
"""

from __future__ import annotations

from typing import Any

from mgca.analysis.privacy import display_record_count, rule_words
from mgca.analysis.report.format import format_number
from mgca.ops.history import n_analysed_text

SUMMARY_KEY = "mgca-summary"
ESTIMATES_KEY = "mgca-estimates"
ATTRITION_KEY = "mgca-attrition"
QUESTION = "Does calcium correct once magnesium is repleted?"


def _count(record: dict[str, Any], key: str, threshold: int) -> str:
    return display_record_count(record, key, threshold)


def _num(value: Any) -> str:
    return format_number(value, 3, signed=True)


def estimates_table(results: dict[str, Any], threshold: int) -> list[dict[str, str]]:
    """Rows of the estimates artifact (strings, so hidden counts read ``<threshold``)."""
    rows = []
    for e in results.get("estimates", []):
        rows.append(
            {
                "estimate": e.get("name", ""),
                "effect_mmol_l": _num(e.get("estimate")),
                "ci_low": _num(e.get("ci_low")),
                "ci_high": _num(e.get("ci_high")),
                "n": _count(e, "n", threshold),
                "n_exposed": _count(e, "n_exposed", threshold),
                "n_unexposed": _count(e, "n_unexposed", threshold),
                "method": str(e.get("method", "")),
            }
        )
    return rows


def attrition_table(results: dict[str, Any], threshold: int) -> list[dict[str, str]]:
    """Rows of the attrition artifact."""
    return [
        {
            "step": str(a.get("step", "")),
            "n_remaining": _count(a, "n", threshold),
            "n_excluded": _count(a, "n_excluded", threshold),
            "exclusion_reason": str(a.get("exclusion_reason") or ""),
        }
        for a in results.get("attrition", [])
    ]


def summary_markdown(results: dict[str, Any], run_id: str, threshold: int) -> str:
    """The markdown summary artifact."""
    primary = next((e for e in results.get("estimates", []) if e.get("name") == "primary"), None)

    analysed = n_analysed_text(results)
    lines = [f"# {QUESTION}", "", f"Run `{run_id}` (source: {results['provenance']['source']})."]
    lines.append("")
    if primary and primary.get("estimate") is not None:
        lines += [
            f"**Primary estimate:** {_num(primary['estimate'])} mmol/L albumin-corrected calcium "
            f"at {primary.get('horizon_hours')} h (95% CI {_num(primary.get('ci_low'))} to "
            f"{_num(primary.get('ci_high'))}; n = {_count(primary, 'n', threshold)} episodes, "
            f"{_count(primary, 'n_exposed', threshold)} exposed).",
            "",
            f"Estimand: {primary.get('estimand', '')}",
        ]
    else:
        reason = (primary or {}).get("withheld") or "; ".join(results.get("estimate_notes", []))
        lines.append(f"**No primary estimate.** {reason}".rstrip())
    lines += ["", f"Episodes analysed (cohort size): {analysed}."]
    cmp = results.get("comparison_with_previous")
    if cmp:
        change = cmp.get("primary_estimate_change")
        lines += [
            "",
            f"Compared with run `{cmp['previous_run']}`: estimate change "
            f"{_num(change)} mmol/L; CIs "
            + {True: "overlap", False: "do not overlap", None: "not comparable"}[
                cmp.get("ci_overlap")
            ]
            + f"; cohort {'changed' if cmp.get('cohort_changed') else 'unchanged'}; config "
            f"{'changed' if cmp.get('config_changed') else 'unchanged'}; input "
            f"{'changed' if cmp.get('input_changed') else 'unchanged'}.",
        ]
    cache = results.get("provenance", {}).get("cache") or {}
    if cache:
        lines += [
            "",
            "Derived tables "
            + ("reused from the cache" if cache.get("derive_reused") else "computed")
            + "; model fits "
            + ("reused from the cache." if cache.get("fit_reused") else "computed."),
        ]
    rounding = (results.get("config") or {}).get("privacy", {}).get("rounding", "none")
    lines += ["", rule_words(threshold, rounding)]
    return "\n".join(lines) + "\n"


def create_run_artifacts(results: dict[str, Any], run_id: str, threshold: int) -> list[str]:
    """Create the three artifacts in the current Prefect run; return their keys."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        markdown=summary_markdown(results, run_id, threshold),
        key=SUMMARY_KEY,
        description="mgca run summary (aggregates only)",
    )
    create_table_artifact(
        table=estimates_table(results, threshold),
        key=ESTIMATES_KEY,
        description="Estimates, mmol/L, with 95% CI (aggregates only)",
    )
    create_table_artifact(
        table=attrition_table(results, threshold),
        key=ATTRITION_KEY,
        description="Cohort attrition (small counts suppressed)",
    )
    return [SUMMARY_KEY, ESTIMATES_KEY, ATTRITION_KEY]
