"""The share of eligible episodes with no outcome calcium, computed before suppression.

results.json ``missing_outcome_share``: of the episodes eligible before the outcome step
(index events that passed every other criterion), the share with no albumin-corrected calcium
at ``horizon_hours ± outcome_tolerance_hours`` (discharged, died or not re-tested), so not
analysed. The counts come from SQL (``episode_calcium_measures``, role ``outcome``: the
``not_measured`` row over all rows); nothing is re-derived here.

The share is computed from the counts before suppression, because suppression may hide the
per-measure counts it would otherwise be read from. It is a fraction of a denominator a reader
sees, so it follows the count rule (:class:`mgca.analysis.privacy.CountRule`):

- the denominator is published through the rule (rounded under ``nearest_5``);
- the share is withheld (``share: None`` with ``withheld``) when the denominator is small, when
  the attrition hides the eligible count (the denominator) or the outcome step's exclusion
  count (the share times the denominator would give it back), or when the number without an
  outcome is small (1 to threshold − 1): in each case share × denominator recovers a hidden
  count;
- under rounding the share is the rounded count over the rounded denominator, as the
  report's other percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mgca.analysis.privacy import is_small, suppress_count

KEY = "missing_outcome_share"
"""results.json key (``missing_outcomes`` is the IPCW block's)."""
NOT_MEASURED = "not_measured"
"""``episode_calcium_measures.calcium_measure`` of an eligible episode without an outcome."""


def _outcome_step_cells_hidden(attrition: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the suppressed attrition hides the eligible count (the step before the outcome
    step) or the outcome step's exclusion count."""
    chain = [
        r
        for i, r in enumerate(attrition)
        if i == 0 or r.get("n_excluded") is not None or r.get("exclusion_reason")
    ]
    if len(chain) < 2:
        return True
    return chain[-2].get("n") is None or chain[-1].get("n_excluded") is None


def missing_outcome_share(
    measures: pd.DataFrame, attrition: Sequence[Mapping[str, Any]], threshold: int
) -> dict[str, Any] | None:
    """results.json ``missing_outcome_share`` from the raw ``calcium_measures`` table and the
    suppressed ``attrition`` records; ``threshold`` is the run's count rule.

    Returns ``{"share", "n_eligible", "denominator"}`` (``share`` a fraction 0–1 to 3
    decimals, ``n_eligible`` the denominator in episodes as published) plus ``withheld`` (why)
    when the share cannot be shown; ``None`` when no episode was eligible.
    """
    rows = measures[measures["role"] == "outcome"]
    eligible = int(rows["n_eligible_index_events"].fillna(0).sum())
    if eligible == 0:
        return None
    missing = int(
        rows.loc[rows["calcium_measure"] == NOT_MEASURED, "n_eligible_index_events"]
        .fillna(0)
        .sum()
    )
    out: dict[str, Any] = {
        "share": None,
        "n_eligible": suppress_count(eligible, threshold),
        "denominator": "episodes eligible before the outcome step",
    }
    if is_small(eligible, threshold) or _outcome_step_cells_hidden(attrition):
        out["n_eligible"] = None
        out["withheld"] = "its denominator (eligible episodes) is hidden by disclosure control"
    elif is_small(missing, threshold):
        out["withheld"] = f"fewer than {int(threshold)} eligible episodes had no outcome"
    else:
        shown_missing = suppress_count(missing, threshold)
        out["share"] = round(shown_missing / out["n_eligible"], 3)
    return out
