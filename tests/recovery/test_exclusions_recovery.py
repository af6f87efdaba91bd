"""With the clinician's excluded populations in the hospital, the eligibility steps remove
them, count them in the attrition under their reasons, and the primary recovers the truth of
the eligible episodes; a source that records none of them gives a biased answer.

The ``excluded_populations`` threat (mgca.synthetic.threats) adds women on obstetric MgSO4
(given whatever the serum Mg; calcium falls under it), patients on citrate CRRT (the
circuit's calcium infusion sets calcium, the protocol replaces Mg) and patients on
haemodialysis (the dialysate sets Mg and calcium, IV Mg is withheld). The simulator charts
them as ingredient ``magnesium_sulfate_obstetric``, ingredient ``citrate_crrt`` and
care_events ``dialysis``; the real pipeline (DuckDB, sql/cohort_eligibility.sql steps 5-7)
excludes them. ``mgca.synthetic.truth.excluded_stays`` rebuilds who they are from the
manifest, so the test checks the attrition stay by stay.

"Without the exclusion": the same folder with those three records deleted
(``strip_exclusion_records``: a source that codes none of them): the members then enter the
cohort, the obstetric women and most dialysis patients as unexposed.

Seeds 1 and 2 per world, 3,000 stays each, 100 bootstrap resamples (each pipeline run about
4 s; the test about 35 s). Measured when written (IPCW primary, mmol/L; seed 1, seed 2):
- effect world: +0.099 and +0.124 (eligible truths +0.113 and +0.108; 305 and 292 eligible
  episodes, 188 and 211 stays excluded at steps 5-7); with the records stripped +0.127 and
  +0.127 (truths of those larger cohorts +0.099 and +0.089);
- null world: -0.019 [-0.049, +0.011] and -0.022 [-0.054, +0.011]; stripped +0.052
  [+0.028, +0.075] and +0.064 [+0.036, +0.093]: false positives.
Tolerances: every CI with the exclusions covers its truth (0 in the null world), the mean
effect-world error is within 0.03 mmol/L; stripped, the null-world estimates average above
+0.025 mmol/L (Mg credited with calcium changes it did not cause).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mgca.analysis.estimation.missing_outcome import fit_primary_ipcw
from mgca.config import EstimationConfig, MgcaConfig
from mgca.run import study
from mgca.synthetic import generate
from mgca.synthetic.exclusions import strip_exclusion_records
from mgca.synthetic.threats import threat_world
from mgca.synthetic.truth import excluded_stays

pytestmark = pytest.mark.slow

STAYS = 3000
SEEDS = (1, 2)
CONFIG = MgcaConfig(estimation=EstimationConfig(bootstrap_replicates=100))
STEP_OF = {"obstetric": 5, "crrt": 6, "dialysis": 7}
"""cohort_eligibility.sql step that excludes each population."""


def _primary(data: Path, db: Path) -> tuple[dict, float]:
    """IPCW primary of the pipeline run on ``data`` and the truth of its eligible episodes."""
    study.build_database(data, db, CONFIG)
    eligible = study.read_secondary_tables(db)["eligible_episodes"]
    primary, _ = fit_primary_ipcw(eligible, CONFIG.study, CONFIG.estimation)
    truth = study.eligible_truth(data, eligible, CONFIG)
    assert truth is not None, "no eligible episode: nothing to score"
    return primary, truth[0]


def _replicate(kind: str, seed: int, root: Path) -> dict:
    data = generate(
        root / f"{kind}-{seed}",
        n_stays=STAYS,
        world=threat_world("excluded_populations", kind),
        seed=seed,
    )
    db = root / f"{kind}-{seed}.duckdb"
    primary, truth = _primary(data, db)

    # every member that reaches the exclusions is excluded at its own step, nobody else is
    steps = study.read_table(db, "SELECT encounter_id, first_failed_step FROM cohort_eligibility")
    members = excluded_stays(data).merge(steps, on="encounter_id")
    reached = members.loc[~members["first_failed_step"].isin([2, 3, 4])]
    assert set(reached["population"]) == set(STEP_OF), reached["population"].value_counts()
    assert (reached["first_failed_step"] == reached["population"].map(STEP_OF)).all()
    others = steps.loc[~steps["encounter_id"].isin(members["encounter_id"])]
    assert not others["first_failed_step"].isin(STEP_OF.values()).any()
    attrition = study.read_table(db, "SELECT step_order, n_excluded FROM attrition")
    counted = dict(zip(attrition["step_order"], attrition["n_excluded"], strict=True))
    for name, step in STEP_OF.items():
        assert counted[step] == int((reached["population"] == name).sum()), (name, counted)

    stripped, _ = _primary(
        strip_exclusion_records(data, root / f"{kind}-{seed}-stripped"),
        root / f"{kind}-{seed}-stripped.duckdb",
    )
    return {"primary": primary, "truth": truth, "stripped": stripped["estimate"]}


def test_exclusions_are_counted_and_the_primary_recovers_the_eligible_truth(
    tmp_path: Path,
) -> None:
    effect = [_replicate("effect", seed, tmp_path) for seed in SEEDS]
    null = [_replicate("null", seed, tmp_path) for seed in SEEDS]
    table = [
        (round(r["primary"]["estimate"], 3), round(r["truth"], 3), round(r["stripped"], 3))
        for r in effect + null
    ]
    for r in effect:
        assert r["primary"]["ci_low"] <= r["truth"] <= r["primary"]["ci_high"], table
    assert abs(np.mean([r["primary"]["estimate"] - r["truth"] for r in effect])) < 0.03, table
    for r in null:
        assert r["truth"] == 0.0
        assert r["primary"]["ci_low"] <= 0.0 <= r["primary"]["ci_high"], table
    assert np.mean([r["stripped"] for r in null]) > 0.025, table
