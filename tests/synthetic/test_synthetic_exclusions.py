"""The excluded_populations threat: who the members are, how they are charted, their
physiology, and a null world that stays null for them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgca.synthetic import generate, true_effect
from mgca.synthetic.draws import batch_inputs
from mgca.synthetic.population import make_population
from mgca.synthetic.simulate import MGSO4_IV, simulate
from mgca.synthetic.threats import threat_world
from mgca.synthetic.truth import excluded_stays
from mgca.synthetic.world import BATCH_SIZE, STAY_GRID_HOURS

STAYS = 800


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exclusions")
    return generate(
        root / "on", n_stays=STAYS, world=threat_world("excluded_populations", "null"), seed=4
    )


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(folder / f"{name}.parquet")


def test_each_member_is_charted_the_way_the_sql_excludes_it(folder: Path) -> None:
    members = excluded_stays(folder)
    by = {k: set(g["encounter_id"]) for k, g in members.groupby("population")}
    assert set(by) == {"obstetric", "crrt", "dialysis"}
    assert not members["encounter_id"].duplicated().any()  # one reason per stay
    enc = _read(folder, "encounters").set_index("encounter_id")
    persons = _read(folder, "persons").set_index("subject_id")
    meds = _read(folder, "medication_administrations")

    obstetric = meds[meds["ingredient"] == "magnesium_sulfate_obstetric"]
    assert set(obstetric["encounter_id"]) == by["obstetric"]
    first = obstetric.groupby("encounter_id")["time"].min()
    hours = (first - enc.loc[first.index, "admit_time"]).dt.total_seconds() / 3600
    assert (hours == 2).all()  # the default obstetric_start_hour
    women = enc.loc[sorted(by["obstetric"])]
    assert (persons.loc[women["subject_id"], "sex"] == "F").all()
    assert women["age_years"].between(18, 45).all()

    crrt = meds[meds["ingredient"] == "citrate_crrt"]
    assert set(crrt["encounter_id"]) == by["crrt"]
    assert (
        crrt.groupby("encounter_id")["time"].min() == enc.loc[sorted(by["crrt"]), "admit_time"]
    ).all()

    care = _read(folder, "care_events")
    assert set(care["event"]) == {"dialysis"}
    assert set(care["encounter_id"]) == by["dialysis"]


def test_member_physiology_and_care() -> None:
    """Obstetric MgSO4 lifts latent Mg towards Cruikshank's 1.65-2.25 mmol/L (24 h: mean above
    1.6, every woman above 1.2) and
    replaces usual-care repletion; citrate CRRT pulls calcium towards its 2.30 mmol/L target
    (72 h: mean within 0.1, spread narrower than the others'); IV Mg is withheld on dialysis
    (fewer dialysis stays given it than with dialysis_mg_policy_coef 0; null world, seed 5,
    2,000 stays)."""
    world = threat_world("excluded_populations", "null")
    pop = make_population(world, 2000, 5)
    inp = batch_inputs(world, pop, 5, 0, BATCH_SIZE, STAY_GRID_HOURS)
    sim = simulate(world, inp)
    assert sim.mg[24, inp.obstetric].mean() > 1.6
    assert (sim.mg[24, inp.obstetric] > 1.2).all()
    end = world.obstetric_start_hour + world.obstetric_infusion_hours
    ev = sim.events
    repletion = (ev.kind == MGSO4_IV) & (ev.hour <= end)
    assert not np.isin(ev.col[repletion], np.flatnonzero(inp.obstetric)).any()

    others = ~(inp.obstetric | inp.crrt | inp.dialysis)
    ca72 = sim.ca[72]
    assert abs(ca72[inp.crrt].mean() - world.crrt_ca_target_mmol_l) < 0.1
    assert ca72[inp.crrt].std() < ca72[others].std()

    # the same stays with IV Mg not withheld on dialysis: more of them are given it
    kept = simulate(replace(world, dialysis_mg_policy_coef=0.0), inp).events

    def share(events) -> float:
        given = np.unique(events.col[(events.kind == MGSO4_IV) & events.given])
        return float(np.isin(np.flatnonzero(inp.dialysis), given).mean())

    assert share(ev) < share(kept) - 0.1, (share(ev), share(kept))


def test_the_null_world_stays_null_for_the_members(folder: Path) -> None:
    """Replayed at their first lab draw, the members' true effect is exactly 0: the
    obstetric infusion, the CRRT calcium and the dialysis sessions move calcium the same way
    in both arms, and none of them reads Mg in the null world."""
    labs = _read(folder, "lab_results")
    members = excluded_stays(folder)
    first = labs.groupby("encounter_id")["time"].min().rename("index_time").reset_index()
    pairs = first[first["encounter_id"].isin(members["encounter_id"])]
    truth = true_effect(folder, pairs, grace_hours=6, horizon_hours=48)
    assert truth.n == len(members)
    assert (truth.per_pair == 0.0).all()
