"""The clone-censor-weight estimate (mgca.analysis.estimation.per_protocol) on a toy process
whose per-protocol truth is known, its count rule, and its report view.

Toy process (seeded, 1,000 episodes of 1,000 patients, grace 6 h in 2-h intervals, outcome at
24 h): baseline Mg ~ U(0.40, 0.70) mmol/L; Mg started in the first interval with probability
expit(-1 + 8 (0.70 - Mg0)), never later in the grace period; after it, in each 2-h interval
with probability expit(-3.5 + 6 (0.70 - R)), R the interval's re-check Mg0 + 0.15 U + noise,
U ~ N(0, 1) unrecorded. Outcome corrected Ca = 2.0 + 0.6 Mg0 + 0.15 U + 0.20 [Mg in grace] +
noise: the per-protocol truth (Mg in grace vs never) is +0.20 mmol/L. Patients who keep to
"no Mg" have a high U (their re-checks stayed normal), so the unweighted contrast of the
clones that follow their strategies is biased (by about 0.08 mmol/L); the weights must
remove it (tolerance 0.05 mmol/L; seeds 7-10 land within 0.022 of the truth).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mgca.analysis.estimation.models import ADJUSTMENT_SET
from mgca.analysis.estimation.per_protocol import (
    COUNT_KEYS,
    per_protocol_estimate,
    suppress_block,
)
from mgca.analysis.report.per_protocol_section import (
    per_protocol_forest_rows,
    per_protocol_method_paragraph,
    per_protocol_view,
)
from mgca.config import MgcaConfig

TRUTH = 0.20
N = 1000


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _toy(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    mg0 = rng.uniform(0.40, 0.70, N)
    u = rng.normal(size=N)
    ids = [f"e{i}" for i in range(N)]
    # pre-index covariates that do not matter are constant (dropped from the models)
    cohort = pd.DataFrame({col: np.ones(N) for col in ADJUSTMENT_SET})
    cohort = cohort.assign(
        subject_id=[f"p{i}" for i in range(N)],
        encounter_id=ids,
        index_time=pd.Timestamp("2024-01-01"),
        exposed=False,
        baseline_mg_mmol_l=mg0,
        baseline_ca_corrected_mmol_l=rng.normal(2.0, 0.05, N),
        baseline_creatinine_umol_l=rng.uniform(60, 200, N),
        sex=rng.choice(["F", "M"], N),
        outcome_hours_from_index=24.0,
    )
    k = np.arange(1, 13)
    recheck = mg0[:, None] + np.where(
        k > 3, 0.15 * u[:, None] + rng.normal(0, 0.03, (N, 12)), 0.0
    )
    p = np.where(k > 3, _expit(-3.5 + 6 * (0.70 - recheck)), 0.0)
    p[:, 0] = _expit(-1 + 8 * (0.70 - mg0))
    started = rng.uniform(size=(N, 12)) < p
    first = np.where(started.any(axis=1), started.argmax(axis=1) + 1, 0)
    last = np.where(first > 0, first, 12)
    ep = np.repeat(np.arange(N), last)
    kk = np.concatenate([np.arange(1, n + 1) for n in last])
    followup = pd.DataFrame(
        {
            "subject_id": cohort["subject_id"].to_numpy()[ep],
            "encounter_id": np.asarray(ids)[ep],
            "interval_number": kk,
            "interval_start_hours": 2.0 * (kk - 1),
            "interval_end_hours": 2.0 * kk,
            "in_grace": kk <= 3,
            "last_grace_interval": kk == 3,
            "mg_started": started[ep, kk - 1],
            "latest_mg_mmol_l": recheck[ep, kk - 1],
            "latest_mg_hours_from_index": 2.0 * (kk - 1),
            "latest_ca_corrected_mmol_l": 2.0,
            "true_probability": p[ep, kk - 1],
        }
    )
    in_grace = (first >= 1) & (first <= 3)
    cohort["exposed"] = in_grace
    cohort["outcome_ca_corrected_mmol_l"] = (
        2.0 + 0.6 * mg0 + 0.15 * u + TRUTH * in_grace + rng.normal(0, 0.03, N)
    )
    clones = pd.DataFrame(
        {
            "subject_id": np.repeat(cohort["subject_id"], 2),
            "encounter_id": np.repeat(ids, 2),
            "clone": ["mg_within_grace", "no_mg_to_outcome"] * N,
            "follows_strategy": np.ravel(np.column_stack([in_grace, first == 0])),
        }
    )
    return cohort, followup, clones


@pytest.fixture(scope="module")
def block() -> dict:
    cohort, followup, clones = _toy(7)
    return per_protocol_estimate(cohort, followup, clones, MgcaConfig(), bootstrap_replicates=40)


def test_weights_recover_the_per_protocol_truth_the_unweighted_contrast_misses(
    block: dict,
) -> None:
    cohort, _, clones = _toy(7)
    follows = clones.pivot(index="encounter_id", columns="clone", values="follows_strategy")
    y = cohort.set_index("encounter_id")["outcome_ca_corrected_mmol_l"]
    naive = y[follows["mg_within_grace"]].mean() - y[follows["no_mg_to_outcome"]].mean()
    assert block["reason"] is None
    assert abs(block["estimate"] - TRUTH) < 0.05, block["estimate"]
    assert abs(naive - TRUTH) > 0.05, naive
    assert block["ci_low"] < block["estimate"] < block["ci_high"]
    assert block["n"] == N and block["n_clusters"] == N
    assert block["weights"]["no_mg_to_outcome"]["max"] > 1.0
    for key in ("estimand", "cohort", "exposure_strategies", "outcome_window", "method"):
        assert block[key]
    assert "latest_mg_mmol_l" in block["adjustment_set"]


def test_a_small_clone_arm_hides_its_pair_and_withholds_the_statistics(block: dict) -> None:
    small = dict(block, n_no_mg_to_outcome_followed=4, n_no_mg_to_outcome_censored=N - 4)
    out = suppress_block(small, threshold=11)
    assert out["n_no_mg_to_outcome_followed"] is None
    assert out["n_no_mg_to_outcome_censored"] is None  # complementary: n - followed
    assert out["suppressed_why"]["n_no_mg_to_outcome_censored"] == "complementary"
    assert out["estimate"] is None and out["ci_low"] is None and out["weights"] == {}
    assert set(COUNT_KEYS) <= set(out)
    assert suppress_block(block, threshold=11)["estimate"] == block["estimate"]


def test_report_view_forest_point_and_methods_paragraph(block: dict) -> None:
    view = per_protocol_view(suppress_block(block, 11), 11)
    assert view is not None and view["estimate"].startswith("+0.")
    assert [a["label"] for a in view["arms"]] == [
        "Mg started within the grace period",
        "no Mg until the outcome draw",
    ]
    [row] = per_protocol_forest_rows({"per_protocol": block})
    assert row["estimate"] == block["estimate"]
    [paragraph] = per_protocol_method_paragraph(block)
    assert paragraph["anchor"] == "per-protocol" and "bootstrap" in paragraph["text"]
    assert per_protocol_view(None, 11) is None
    assert per_protocol_forest_rows({}) == []


def test_too_few_episodes_gives_a_reason_not_an_error() -> None:
    cohort, followup, clones = _toy(1)
    few = cohort.head(5)
    out = per_protocol_estimate(few, followup, clones, MgcaConfig(), bootstrap_replicates=20)
    assert out["estimate"] is None and out["reason"].startswith("no per-protocol estimate")
