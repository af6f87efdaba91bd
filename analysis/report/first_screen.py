"""The report's first screen: what a clinician reads in one minute.

One A4 page (about 1,300 px at 1,280 px wide): the question, the answer in one sentence (or the
gate's plain "this data cannot answer, because …"), one forest plot of the primary estimate,
the other estimators and the key sensitivity analyses, a small cohort flow (source → eligible
→ analysed, given Mg / not), the gate's checks as a pass/fail list, and the three caveats
that matter most for THIS run, chosen from its own diagnostics (:func:`run_caveats`), not a
fixed list. Everything here reads results.json (aggregates, counts already suppressed) and
shows counts through :func:`mgca.analysis.privacy.display_record_count`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mgca.analysis.missing_outcome_share import KEY as MISSING_OUTCOME_SHARE_KEY
from mgca.analysis.privacy import NOT_APPLICABLE, display_record_count, scrub_dates
from mgca.analysis.report.diagnostic_figures import forest_plot, forest_rows
from mgca.analysis.report.negative_controls_section import (
    calibration_caveat,
    with_calibrated_row,
)
from mgca.analysis.report.per_protocol_section import per_protocol_forest_rows
from mgca.config import StudyConfig

FIRST_SCREEN_FOREST_GROUPS = ("primary estimators", "unadjusted contrast", "sensitivity")
"""Forest rows on the first screen: the estimators of the primary contrast and the
sensitivity analyses (the secondary analyses are further down); the per-protocol point
(:func:`~mgca.analysis.report.per_protocol_section.per_protocol_forest_rows`) is added last."""

SMALL_ARM = 100
"""An arm with fewer analysed episodes than this gets a caveat (wide intervals, few events)."""
MISSING_OUTCOME_SHARE = 0.10
"""A share of eligible episodes without an outcome calcium above this gets a caveat."""


@dataclass(frozen=True)
class Caveat:
    """One caveat: its weight (higher first), a short title and the sentence."""

    weight: int
    title: str
    text: str


def first_screen_forest(results: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """SVG forest plot of the first screen (``None`` when there is no estimate to plot), with
    the primary calibrated by the negative controls right under the primary."""
    rows = [r for r in forest_rows(results, labels) if r["group"] in FIRST_SCREEN_FOREST_GROUPS]
    return forest_plot(with_calibrated_row(rows, results) + per_protocol_forest_rows(results))
    return forest_plot(with_calibrated_row(rows, results))


def _split_rows(attrition: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        r
        for i, r in enumerate(attrition)
        if i > 0 and r.get("n_excluded") is None and not r.get("exclusion_reason")
    ]


def cohort_flow(
    attrition: Sequence[Mapping[str, Any]],
    threshold: int,
    answer: Mapping[str, Any] | None = None,
    answer_label: str = "the answering model",
) -> list[dict[str, Any]] | None:
    """The small cohort flow: stays in the source, episodes eligible before the outcome step,
    analysed episodes, the exposure split, and the episodes of ``answer`` (the answering
    estimate's entry: complete baseline data) with its split (each ``{"label", "n"}``, a
    split ``{"parts": [...]}``; hidden counts read ``<threshold`` or ``suppressed``)."""
    if not attrition:
        return None
    splits = _split_rows(attrition)
    chain = [r for r in attrition if r not in splits]
    first, last = chain[0], chain[-1]

    def item(label: str, record: Mapping[str, Any]) -> dict[str, str]:
        return {"label": label, "n": display_record_count(record, "n", threshold)}

    flow = [item("Stays in the source", first)]
    if len(chain) > 2:
        flow.append(item("Eligible episodes (before the outcome window)", chain[-2]))
    if len(chain) > 1:
        flow.append(item("Analysed (calcium measured at the horizon)", last))
    labels = ("Given Mg", "Not given Mg")
    flow_split = [item(labels[k], r) for k, r in enumerate(splits[:2])]
    if flow_split:
        flow.append({"label": "split", "n": "", "parts": flow_split})
    if answer and answer.get("n") is not None:
        flow.append(item(f"In {answer_label} (complete baseline data)", answer))
        flow.append(
            {
                "label": "split",
                "n": "",
                "parts": [
                    {"label": label, "n": display_record_count(answer, key, threshold)}
                    for key, label in (("n_exposed", labels[0]), ("n_unexposed", labels[1]))
                ],
            }
        )
    return flow


_SUBJECTLESS = ("not assessable", "withheld")
"""Gate words that do not name their check (the reason is shared by several checks)."""


def check_words(check: Mapping[str, Any]) -> str:
    """A gate check's words, led by its label when they do not name the check themselves
    ("balance after weighting: not assessable: ...")."""
    words = scrub_dates(check.get("words") or check.get("label") or "")
    label = scrub_dates(check.get("label") or "")
    if label and words.startswith(_SUBJECTLESS):
        return f"{label}: {words}"
    return words


def gate_list(gate: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The gate's checks as a pass/fail list: ``{"passed", "words"}`` in the gate's order."""
    return [
        {"passed": bool(c.get("passed")), "words": check_words(c)}
        for c in (gate or {}).get("checks") or []
    ]


def _failed_check_texts(gate: Mapping[str, Any]) -> list[str]:
    """One text per distinct reason among the failed checks: checks that failed for the
    same reason (e.g. no propensity model, so equipoise, balance and effective size are all
    not assessable) share one caveat that names them all."""
    by_reason: dict[str, list[Mapping[str, Any]]] = {}
    for check in gate.get("checks") or []:
        if not check.get("passed"):
            words = scrub_dates(check.get("words") or check.get("label") or "")
            by_reason.setdefault(words, []).append(check)
    texts = []
    for words, checks in by_reason.items():
        if len(checks) == 1:
            texts.append(check_words(checks[0]))
        else:
            labels = "; ".join(scrub_dates(c.get("label") or "") for c in checks)
            texts.append(f"{labels}: {words}")
    return texts


def _count(record: Mapping[str, Any] | None, key: str) -> int | None:
    value = (record or {}).get(key)
    return None if value is None else int(value)


def _missing_outcome_share(results: Mapping[str, Any]) -> tuple[float, int] | None:
    """Share of eligible episodes without an outcome calcium and its denominator, from
    results.json ``missing_outcome_share`` (computed before suppression); ``None`` when it
    is withheld or absent."""
    block = results.get(MISSING_OUTCOME_SHARE_KEY) or {}
    share, denominator = block.get("share"), block.get("n_eligible")
    return None if share is None or denominator is None else (float(share), int(denominator))


def run_caveats(
    results: Mapping[str, Any],
    study: StudyConfig,
    threshold: int,
    naive_text: str | None = None,
    limit: int = 3,
) -> list[Caveat]:
    """The ``limit`` caveats that matter most for this run, from its own diagnostics.

    Candidates, by weight: each failed gate check; balance or overlap warnings of the
    weighting diagnostics; negative controls that reject "no systematic error"; a sensitivity
    analysis of the same outcome and horizon whose 95 % CI excludes the answering estimate;
    a large share of eligible episodes without an outcome calcium; a small arm; then the
    standing caveats of the design (regression to the mean, quoting this run's naive change;
    confounding by indication; corrected vs ionized calcium) fill what is left.
    """
    found: list[Caveat] = []
    gate = results.get("gate") or {}
    for text in _failed_check_texts(gate):
        found.append(Caveat(100, "Gate check failed", text))
    diagnostics = results.get("diagnostics") or {}
    for warning in diagnostics.get("warnings") or []:
        text = scrub_dates(warning).rstrip(".") + "."
        found.append(Caveat(80, "Balance / overlap", text[:1].upper() + text[1:]))
    estimates = {e.get("name"): e for e in results.get("estimates") or []}
    answer = estimates.get(gate.get("answer") or "primary") or {}
    point = answer.get("estimate")
    if point is not None:
        off = [
            s
            for s in (results.get("sensitivity") or {}).get("analyses") or []
            if s.get("unit") == "mmol/L"
            # the same outcome at the same horizon: another horizon or calcium measure is
            # another question, and a different answer there is no warning about this one
            and s.get("outcome") == answer.get("outcome")
            and s.get("horizon_hours") == answer.get("horizon_hours")
            and s.get("ci_low") is not None
            and s.get("ci_high") is not None
            and not s["ci_low"] <= point <= s["ci_high"]
        ]
        if off:
            names = ", ".join(str(s.get("name", "")).replace("_", " ") for s in off)
            found.append(
                Caveat(
                    70,
                    "Sensitivity analyses disagree",
                    f"The 95 % CI of {len(off)} sensitivity analys"
                    f"{'is' if len(off) == 1 else 'es'} ({names}) excludes the answering "
                    f"estimate ({point:+.2f} mmol/L): the answer depends on those choices.",
                )
            )
    systematic = calibration_caveat(results)
    if systematic:
        found.append(Caveat(75, "Negative controls reject", systematic))
    share = _missing_outcome_share(results)
    if share is not None and share[0] > MISSING_OUTCOME_SHARE:
        found.append(
            Caveat(
                60,
                "Missing outcomes",
                f"{100 * share[0]:.0f} % of {share[1]:,} eligible episodes had no "
                "albumin-corrected calcium "
                f"at {study.horizon_hours} ± {study.outcome_tolerance_hours} h and are not "
                "analysed (discharged, died or not re-tested); if re-testing depends on how "
                "calcium responds, the estimate is biased.",
            )
        )
    arms = [
        (_count(answer, "n_exposed"), "given Mg"),
        (_count(answer, "n_unexposed"), "not given Mg"),
    ]
    small = [(n, who) for n, who in arms if n is not None and n < SMALL_ARM]
    hidden_arm = any(answer.get(k) is None for k in ("n_exposed", "n_unexposed")) and bool(answer)
    if small or hidden_arm:
        what = (
            f"an exposure group has fewer than {threshold} episodes"
            if hidden_arm
            else "; ".join(f"{n:,} episodes {who}" for n, who in small)
        )
        found.append(
            Caveat(
                50,
                "Small arm",
                f"Few analysed episodes ({what}): intervals are wide and a few atypical stays "
                "can move the estimate.",
            )
        )
    rtm = (
        "Calcium selected for being low rises on re-test anyway; the before/after change in "
        "treated patients is not an effect"
    )
    rtm += (
        f" (here {naive_text} mmol/L, which a before/after study would have reported)."
        if naive_text and naive_text != NOT_APPLICABLE
        else "."
    )
    found += [
        Caveat(
            30,
            "Confounding by indication",
            "Observational data: the estimate is causal only if the adjustment set captures why "
            "some patients were given magnesium (severity of illness, vitamin D and PTH status "
            "are not in it).",
        ),
        Caveat(20, "Regression to the mean", rtm),
        Caveat(
            10,
            "Corrected calcium",
            "Albumin-corrected calcium agrees poorly with ionized calcium in critical illness "
            "and advanced kidney disease.",
        ),
    ]
    found.sort(key=lambda c: -c.weight)
    return found[:limit]
