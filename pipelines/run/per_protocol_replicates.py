"""One replicate of the per-protocol (clone-censor-weight) simulation study, for the seeded
recovery test and ``bench/per_protocol.py``: generate a synthetic hospital, run the real
pipeline on it (DuckDB, the SQL of sql/), fit the per-protocol estimate and ask the simulator
for its per-protocol truth for the same episodes (:func:`mgca.synthetic.true_per_protocol_effect`:
IV Mg at the first decision after index vs no Mg until the horizon, same random draws). The
primary (initiation) estimate and its own truth come along for comparison.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgca.analysis.estimation.models import prepare_adjusted
from mgca.analysis.estimation.per_protocol import per_protocol_estimate
from mgca.config import MgcaConfig
from mgca.engine import registry
from mgca.run import study
from mgca.synthetic import generate, true_effect, true_per_protocol_effect
from mgca.synthetic.threats import threat_world
from mgca.synthetic.world import WorldKind


@dataclass(frozen=True)
class PerProtocolReplicate:
    """One replicate's per-protocol and primary estimates with their truths (mmol/L); the
    intervals are None when no estimate was made (``reason`` says why)."""

    world: str
    threat: str | None
    seed: int
    n: int
    n_no_mg_followed: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    truth: float
    primary: float | None
    primary_ci_low: float | None
    primary_ci_high: float | None
    primary_truth: float
    reason: str | None

    def covers(self) -> bool | None:
        """Whether the per-protocol 95 % CI contains the per-protocol truth."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= self.truth <= self.ci_high

    def rejects_zero(self) -> bool | None:
        """Whether the per-protocol 95 % CI excludes 0."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low > 0 or self.ci_high < 0


def run_replicate(
    kind: WorldKind,
    seed: int,
    n_stays: int,
    work: Path,
    *,
    threat: str | None = None,
    config: MgcaConfig | None = None,
    bootstrap_replicates: int | None = None,
    with_primary: bool = True,
    keep: bool = False,
) -> PerProtocolReplicate:
    """Generate, derive, fit and replay one replicate in ``work`` (deleted unless ``keep``).
    ``threat``: a key of :data:`mgca.synthetic.threats.THREATS` switched on, else the
    default world of ``kind``; ``with_primary``: also fit the primary estimate (its
    bootstrap is most of a replicate's time) and replay its truth."""
    config = config or MgcaConfig()
    folder = Path(work) / f"{kind}-{threat or 'default'}-{seed}"
    data = folder / "data"
    db = folder / "mgca.duckdb"
    try:
        world = threat_world(threat, kind) if threat else kind
        generate(data, n_stays=n_stays, world=world, seed=seed)
        study.build_database(data, db, config)
        cohort = study.read_cohort(db)
        tables = {
            name: study.read_table(db, registry.table(name).select())
            for name in ("per_protocol_followup", "per_protocol_clones")
        }
        block = per_protocol_estimate(
            cohort,
            tables["per_protocol_followup"],
            tables["per_protocol_clones"],
            config,
            bootstrap_replicates=bootstrap_replicates,
        )
        primary: dict[str, Any] = {}
        if with_primary:
            primary = study.fit_estimates(cohort, config, names=("primary",))[0][0]
        pairs = prepare_adjusted(cohort, "the per-protocol truth").data
        pairs = pairs[["encounter_id", "index_time"]]
        grace, horizon = config.study.grace_hours, config.study.horizon_hours
        truth = true_per_protocol_effect(data, pairs, grace, horizon)
        primary_truth = (
            true_effect(data, pairs, grace, horizon).mean if with_primary else float("nan")
        )
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return PerProtocolReplicate(
        world=kind,
        threat=threat,
        seed=seed,
        n=int(block.get("n") or 0),
        n_no_mg_followed=int(block.get("n_no_mg_to_outcome_followed") or 0),
        estimate=block["estimate"],
        ci_low=block["ci_low"],
        ci_high=block["ci_high"],
        truth=float(truth.mean),
        primary=primary.get("estimate"),
        primary_ci_low=primary.get("ci_low"),
        primary_ci_high=primary.get("ci_high"),
        primary_truth=float(primary_truth),
        reason=block["reason"],
    )
