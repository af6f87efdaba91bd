"""The first screen reads on its own: the forest plot prints each row's numbers."""

from __future__ import annotations

from mgca.analysis.report.diagnostic_figures import forest_plot


def test_forest_prints_estimate_and_ci_beside_each_row() -> None:
    rows = [
        {"label": "Primary", "group": "primary estimators", "estimate": 0.123,
         "ci_low": 0.051, "ci_high": 0.194},
        {"label": "Grace 3 h", "group": "sensitivity", "estimate": -0.02,
         "ci_low": -0.101, "ci_high": 0.06},
    ]
    svg = forest_plot(rows)
    assert svg is not None
    assert "+0.12 (+0.05 to +0.19)" in svg
    assert "-0.02 (-0.10 to +0.06)" in svg
