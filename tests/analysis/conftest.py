"""Test tier analysis/: Statistical models, estimators, diagnostics, the gate, disclosure control
and the report, on simulated analytic cohorts whose true effect is known
(``helpers.analysis_sim``).
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort


@pytest.fixture(scope="module")
def confounded() -> tuple[pd.DataFrame, float]:
    """3,000 episodes confounded by indication, with a known true effect (mmol/L)."""
    return simulate_cohort(3000, seed=20261124)


@pytest.fixture(scope="module")
def null_world() -> tuple[pd.DataFrame, float]:
    """2,000 episodes whose true effect is zero."""
    return simulate_cohort(2000, seed=20261125, effect=False)
