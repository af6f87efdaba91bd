"""Each design threat is a switch: it changes the world, keeps its kind, and nothing else."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from mgca.synthetic.threats import THREATS, threat_world
from mgca.synthetic.world import default_world


@pytest.mark.parametrize("name", sorted(THREATS))
@pytest.mark.parametrize("kind", ["effect", "null"])
def test_a_threat_switch_changes_the_world_and_keeps_its_kind(name: str, kind: str) -> None:
    base = default_world(kind)  # type: ignore[arg-type]
    on = threat_world(name, kind)  # type: ignore[arg-type]
    changed = [f.name for f in fields(base) if getattr(base, f.name) != getattr(on, f.name)]
    assert changed, f"threat {name} changes no parameter"
    assert "kind" not in changed
    assert on.kind == kind
    assert THREATS[name].problem and THREATS[name].defence


def test_an_unknown_threat_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="informative_end_of_stay"):
        threat_world("no_such_threat")


def _inputs(world, n_stays: int = 800, seed: int = 5):
    from mgca.synthetic.draws import batch_inputs
    from mgca.synthetic.population import make_population
    from mgca.synthetic.world import BATCH_SIZE, STAY_GRID_HOURS

    pop = make_population(world, n_stays, seed)
    return batch_inputs(world, pop, seed, 0, BATCH_SIZE, STAY_GRID_HOURS)


def test_the_unmeasured_factor_raises_mg_giving_and_later_calcium() -> None:
    """Null world (Ca never reads Mg), same draws with the threat off and on: stays with a
    high unmeasured factor (U > 1 SD) are given IV Mg more often than those with U < -1 only
    when it is on (measured with seed 5, 800 stays: 46 vs 48 % off, 76 vs 33 % on), and their
    latent corrected Ca at 72 h moves apart by about the threat's 0.10 mmol/L per SD, lagged
    by the Ca time constant (measured 0.20 mmol/L; asserted above 0.10)."""
    from mgca.synthetic.simulate import MGSO4_IV, simulate

    off = default_world("null")
    on = threat_world("unmeasured_confounding", "null")
    inp = _inputs(off)
    high, low = inp.unmeasured > 1.0, inp.unmeasured < -1.0
    runs = {name: simulate(world, inp) for name, world in (("off", off), ("on", on))}

    def mg_share(name: str, stays) -> float:
        ev = runs[name].events
        given = np.unique(ev.col[(ev.kind == MGSO4_IV) & ev.given])
        return float(np.isin(np.flatnonzero(stays), given).mean())

    assert abs(mg_share("off", high) - mg_share("off", low)) < 0.1
    assert mg_share("on", high) - mg_share("on", low) > 0.2
    change = runs["on"].ca[72] - runs["off"].ca[72]
    assert change[high].mean() - change[low].mean() > 0.10
    assert np.array_equal(runs["on"].ca[0], runs["off"].ca[0])  # nothing at admission


def test_detection_bias_adds_calcium_rechecks_after_each_given_dose(tmp_path) -> None:
    """With the switch on, a total Ca is drawn at every extra lag after a given IV Mg dose
    (within the stay), so the same seed has more calcium results than with it off."""
    import pandas as pd

    from mgca.synthetic import generate

    world = threat_world("detection_bias", "null")
    lags = world.detection_recheck_after_dose_hours
    on = generate(tmp_path / "on", n_stays=300, world=world, seed=3)
    off = generate(tmp_path / "off", n_stays=300, world="null", seed=3)
    meds = pd.read_parquet(on / "medication_administrations.parquet")
    labs = pd.read_parquet(on / "lab_results.parquet")
    enc = pd.read_parquet(on / "encounters.parquet").set_index("encounter_id")
    doses = meds[(meds["ingredient"] == "magnesium_sulfate") & meds["given"]]
    assert len(doses) > 10
    ca_times = labs[labs["analyte"] == "calcium_total"].groupby("encounter_id")["time"].apply(set)
    checked = 0
    for row in doses.itertuples():
        for lag in lags:
            t = row.time + pd.Timedelta(hours=lag)
            if t <= enc.loc[row.encounter_id, "discharge_time"]:
                assert t in ca_times[row.encounter_id], (row, lag)
                checked += 1
    assert checked > len(doses)
    labs_off = pd.read_parquet(off / "lab_results.parquet")
    n_ca = (labs["analyte"] == "calcium_total").sum()
    assert n_ca > (labs_off["analyte"] == "calcium_total").sum()
