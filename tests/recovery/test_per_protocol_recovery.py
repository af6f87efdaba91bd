"""The per-protocol (clone-censor-weight) estimate recovers the simulator's per-protocol truth.

Each replicate generates a synthetic hospital (2,000 stays, its own seed), runs the real
pipeline (DuckDB file, the SQL of sql/, per_protocol_followup.sql included), fits the
per-protocol estimate (100 patient-cluster bootstrap resamples) and replays, for the same
episodes, IV Mg at the first decision after index vs no Mg until the 48-h horizon with the
same random draws (mgca.synthetic.true_per_protocol_effect).

Replicate seeds: effect world 8101-8104, null world 8201-8204. Tolerances: in the effect
world the 95 % CI covers the truth in >= 3 of 4 replicates and the mean estimate is within
0.06 mmol/L of the mean truth (the truth is about +0.22 mmol/L, twice the initiation
contrast's); in the null world (truth exactly 0) the CI contains 0 in >= 3 of 4.
bench/per_protocol.py runs the same replicates in bulk (README, "Per-protocol").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mgca.run.per_protocol_replicates import PerProtocolReplicate, run_replicate

pytestmark = pytest.mark.slow

STAYS = 2000
BOOTSTRAP = 100


def _replicates(kind: str, seeds: range, root: Path) -> list[PerProtocolReplicate]:
    return [
        run_replicate(
            kind,  # type: ignore[arg-type]
            seed,
            STAYS,
            root,
            bootstrap_replicates=BOOTSTRAP,
            with_primary=False,
        )
        for seed in seeds
    ]


def _table(reps: list[PerProtocolReplicate]) -> str:
    head = "seed, n, no-Mg followers, estimate [95% CI], truth (mmol/L)"
    lines = [f"{reps[0].world} world, {STAYS} stays: {head}"]
    lines += [
        f"  {r.seed}  {r.n:4d}  {r.n_no_mg_followed:3d}  {r.estimate:+.3f} "
        f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]  {r.truth:+.3f}"
        for r in reps
        if r.estimate is not None and r.ci_low is not None and r.ci_high is not None
    ]
    return "\n".join(lines)


def test_per_protocol_covers_its_truth_and_does_not_reject_in_the_null_world(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    effect = _replicates("effect", range(8101, 8105), tmp_path)
    null = _replicates("null", range(8201, 8205), tmp_path)
    record_property("per_protocol_recovery_table", _table(effect) + "\n" + _table(null))
    assert all(r.reason is None and r.ci_low is not None for r in effect + null)
    assert sum(bool(r.covers()) for r in effect) >= 3
    bias = np.mean([r.estimate for r in effect]) - np.mean([r.truth for r in effect])
    assert abs(bias) < 0.06, bias
    assert all(r.truth == 0.0 for r in null)
    assert sum(not r.rejects_zero() for r in null) >= 3
