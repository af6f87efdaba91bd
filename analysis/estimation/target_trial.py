"""The target trial the study emulates, written out from the config (results.json
``target_trial``; the report's "Target trial" table).

Components follow Hernán & Robins (Am J Epidemiol 2016;183:758): eligibility, treatment
strategies, assignment, time zero, outcome, follow-up, causal contrast and analysis plan.
Each value says what the trial would do and how the data emulate it; every number comes
from the run's config (units in the text). The wording lives in ``mgca.analysis.text`` with
the estimands it must agree with. The causal contrast is an initiation (intention-to-treat-
like) one: Mg started within the grace period vs not started within it, with usual care,
later Mg included, afterwards; not a per-protocol contrast (no censoring at deviation). The
post-grace Mg it leaves in both arms is counted per arm (sql/post_grace_deviations.sql).
"""

from __future__ import annotations

from typing import Any

from mgca.analysis.estimation.models import ADJUSTMENT_SET
from mgca.analysis.text import TARGET_TRIAL_COMPONENTS, target_trial_words
from mgca.config import MgcaConfig

COMPONENTS = TARGET_TRIAL_COMPONENTS
"""The protocol's components, in order."""


def target_trial_spec(config: MgcaConfig) -> dict[str, Any]:
    """The target-trial protocol as ``{component: text}`` in :data:`COMPONENTS` order; the
    words are in :func:`mgca.analysis.text.target_trial_words`, the adjustment set is the
    primary model's."""
    return target_trial_words(config, ADJUSTMENT_SET)
