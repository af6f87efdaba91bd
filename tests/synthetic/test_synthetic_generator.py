"""The synthetic generator: determinism, the exact canonical schema, units, lab schedule,
rare counted defects, atomic publication, and the physiology it simulates."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mgca.synthetic import World, generate
from mgca.synthetic import writer as writer_module
from mgca.synthetic.draws import batch_inputs
from mgca.synthetic.population import make_population
from mgca.synthetic.simulate import CA_GLUCONATE_IV, Intervention, simulate
from mgca.synthetic.world import (
    BATCH_SIZE,
    REGIMES,
    STAY_GRID_HOURS,
    UNITS,
    regime_name,
    regime_world,
    ward_world,
)

TABLES = ("persons", "encounters", "lab_results", "medication_administrations")
N_STAYS = 1500
SEED = 11

# DuckDB types of the canonical schema (ARCHITECTURE.md).
CANONICAL_TYPES = {
    "persons": {"subject_id": "VARCHAR", "sex": "VARCHAR", "year_of_birth": "INTEGER"},
    "encounters": {
        "encounter_id": "VARCHAR",
        "subject_id": "VARCHAR",
        "admit_time": "TIMESTAMP",
        "discharge_time": "TIMESTAMP",
        "age_years": "DOUBLE",
        "died_in_hospital": "BOOLEAN",
    },
    "lab_results": {
        "subject_id": "VARCHAR",
        "encounter_id": "VARCHAR",
        "time": "TIMESTAMP",
        "analyte": "VARCHAR",
        "value": "DOUBLE",
        "unit": "VARCHAR",
        "source_code": "VARCHAR",
    },
    "medication_administrations": {
        "subject_id": "VARCHAR",
        "encounter_id": "VARCHAR",
        "time": "TIMESTAMP",
        "ingredient": "VARCHAR",
        "dose": "DOUBLE",
        "dose_unit": "VARCHAR",
        "route": "VARCHAR",
        "given": "BOOLEAN",
        "source_code": "VARCHAR",
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("syn") / "a", n_stays=N_STAYS, seed=SEED)


@pytest.fixture(scope="module")
def tables(data: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(data / f"{t}.parquet") for t in TABLES}


@pytest.fixture(scope="module")
def manifest(data: Path) -> dict:
    return json.loads((data / "manifest.json").read_text())


def _si_values(labs: pd.DataFrame) -> np.ndarray:
    factor = {}
    for analyte, spec in UNITS.items():
        factor[(analyte, spec.us_unit)] = spec.us_to_internal
        factor[(analyte, spec.si_unit)] = spec.si_to_internal
    f = np.array([factor[(a, u)] for a, u in zip(labs["analyte"], labs["unit"], strict=True)])
    return labs["value"].to_numpy() * f


# --- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_tables(data: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "b", n_stays=N_STAYS, seed=SEED)
    for t in TABLES:
        assert pq.read_table(data / f"{t}.parquet").equals(pq.read_table(again / f"{t}.parquet")), t
    assert json.loads((data / "manifest.json").read_text()) == json.loads(
        (again / "manifest.json").read_text()
    )


def test_different_seed_gives_different_tables(data: Path, tmp_path: Path) -> None:
    other = generate(tmp_path / "c", n_stays=N_STAYS, seed=SEED + 1)
    for t in TABLES:
        assert not pq.read_table(data / f"{t}.parquet").equals(
            pq.read_table(other / f"{t}.parquet")
        ), t


def test_world_changes_only_what_it_should(data: Path, tmp_path: Path) -> None:
    """Same seed, null world: same people and stays, different calcium."""
    null = generate(tmp_path / "n", n_stays=N_STAYS, world="null", seed=SEED)
    for t in ("persons", "encounters"):
        assert pq.read_table(data / f"{t}.parquet").equals(pq.read_table(null / f"{t}.parquet"))
    assert json.loads((null / "manifest.json").read_text())["world"] == "null"


# --- schema, ids, times, units -------------------------------------------------------------


def test_canonical_schema_and_types_are_exact(data: Path) -> None:
    con = duckdb.connect()
    for t, expected in CANONICAL_TYPES.items():
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{data / t}.parquet')").fetchall()
        assert {r[0]: r[1] for r in rows} == expected, t
        assert [r[0] for r in rows] == list(expected), f"{t}: column order"
    # naive microsecond timestamps
    for t in ("encounters", "lab_results", "medication_administrations"):
        for field in pq.read_schema(data / f"{t}.parquet"):
            if field.name.endswith("time"):
                assert str(field.type) == "timestamp[us]", (t, field.name)


def test_ids_are_unique_linked_and_numeric_strings(tables: dict[str, pd.DataFrame]) -> None:
    persons, enc = tables["persons"], tables["encounters"]
    assert persons["subject_id"].is_unique and enc["encounter_id"].is_unique
    assert len(enc) == N_STAYS
    assert set(enc["subject_id"]) == set(persons["subject_id"])
    assert persons["subject_id"].str.fullmatch(r"1\d{7}").all()
    assert enc["encounter_id"].str.fullmatch(r"2\d{7}").all()
    stay_of = enc.set_index("encounter_id")["subject_id"]
    for t in ("lab_results", "medication_administrations"):
        df = tables[t]
        assert df["encounter_id"].notna().all()
        assert (df["encounter_id"].map(stay_of) == df["subject_id"]).all(), t
    assert set(persons["sex"]) <= {"F", "M", "U"}
    # about 15 % of subjects have 2-3 stays
    per_subject = enc.groupby("subject_id").size()
    assert per_subject.max() <= 3
    assert 0.08 < (per_subject > 1).mean() < 0.22


def test_times_are_inside_stays_and_stays_do_not_overlap(tables: dict[str, pd.DataFrame]) -> None:
    enc = tables["encounters"].set_index("encounter_id")
    assert (enc["discharge_time"] >= enc["admit_time"]).all()
    los_days = (enc["discharge_time"] - enc["admit_time"]) / pd.Timedelta("1D")
    assert los_days.between(2, 14 + 1 / 24).all()
    assert 4.0 < los_days.median() < 6.0
    assert enc["admit_time"].dt.year.between(2150, 2152).all()
    for t in ("lab_results", "medication_administrations"):
        df = tables[t]
        admit = df["encounter_id"].map(enc["admit_time"])
        discharge = df["encounter_id"].map(enc["discharge_time"])
        assert ((df["time"] >= admit) & (df["time"] <= discharge)).all(), t
    by_subject = tables["encounters"].sort_values(["subject_id", "admit_time"])
    same = by_subject["subject_id"].eq(by_subject["subject_id"].shift())
    gap = by_subject["admit_time"] - by_subject["discharge_time"].shift()
    assert (gap[same] > pd.Timedelta(0)).all()
    ages = tables["encounters"]["age_years"]
    assert (ages < 18).mean() < 0.05 and (ages >= 18).mean() > 0.9


def test_units_are_the_declared_ones(tables: dict[str, pd.DataFrame], manifest: dict) -> None:
    labs = tables["lab_results"]
    declared = {(a, u["us_unit"]) for a, u in manifest["units"].items()} | {
        (a, u["si_unit"]) for a, u in manifest["units"].items()
    }
    used = set(zip(labs["analyte"], labs["unit"], strict=True))
    assert used <= declared
    assert {"magnesium", "calcium_total", "calcium_ionized", "albumin", "pth"} <= set(
        labs["analyte"]
    )
    # Each encounter reports in one lab system; about 10 % of encounters use SI units.
    mg = labs[labs["analyte"] == "magnesium"]
    units_per_enc = mg.groupby("encounter_id")["unit"].nunique()
    assert (units_per_enc == 1).all()
    si_share = (mg.groupby("encounter_id")["unit"].first() == "mmol/L").mean()
    assert 0.05 < si_share < 0.15
    assert manifest["lab_systems"]["si"]["encounters"] == int(
        (mg.groupby("encounter_id")["unit"].first() == "mmol/L").sum()
    )
    # Converted to SI, values are physiological (medians near the usual ranges).
    labs = labs.assign(si=_si_values(labs))
    medians = labs.groupby("analyte")["si"].median()
    assert 0.70 < medians["magnesium"] < 0.95
    assert 2.0 < medians["calcium_total"] < 2.45
    assert 30 < medians["albumin"] < 42
    assert 3.6 < medians["potassium"] < 4.6
    assert 132 < medians["sodium"] < 145
    assert 1.0 < medians["calcium_ionized"] < 1.3


def test_lab_schedule(tables: dict[str, pd.DataFrame]) -> None:
    labs, enc = tables["lab_results"], tables["encounters"].set_index("encounter_id")
    draws = labs[labs["analyte"] == "magnesium"].drop_duplicates(["encounter_id", "time"])
    admit = draws["encounter_id"].map(enc["admit_time"])
    # an admission panel for every stay
    assert set(draws.loc[draws["time"] == admit, "encounter_id"]) == set(enc.index)
    # routine panels (sodium is only drawn with them) after admission: 05:00-07:00, and
    # never within 8 h after the admission draw
    panels = labs[labs["analyte"] == "sodium"].drop_duplicates(["encounter_id", "time"])
    p_admit = panels["encounter_id"].map(enc["admit_time"])
    morning = panels[panels["time"] != p_admit]
    hours = morning["time"].dt.hour + morning["time"].dt.minute / 60
    assert hours.between(5, 7).all()
    assert ((morning["time"] - p_admit[morning.index]) > pd.Timedelta("8h")).all()
    # albumin in ~60 % of panels, ionized Ca in ~15-20 % of draws
    albumin = labs[labs["analyte"] == "albumin"].drop_duplicates(["encounter_id", "time"])
    assert 0.5 < len(albumin) / len(panels) < 0.7
    ionized = labs[labs["analyte"] == "calcium_ionized"].drop_duplicates(["encounter_id", "time"])
    assert 0.13 < len(ionized) / len(draws) < 0.22


def test_every_given_iv_mg_dose_is_rechecked_6_to_8_hours_later(
    tables: dict[str, pd.DataFrame],
) -> None:
    meds, labs = tables["medication_administrations"], tables["lab_results"]
    enc = tables["encounters"].set_index("encounter_id")
    doses = meds[(meds["ingredient"] == "magnesium_sulfate") & meds["given"]]
    assert len(doses) > 100
    assert set(doses["dose"]) <= {2.0, 4.0} and (doses["route"] == "iv").all()
    assert (doses["dose_unit"] == "g").all()
    mg_times = labs[labs["analyte"] == "magnesium"].groupby("encounter_id")["time"].apply(set)
    checked = 0
    for row in doses.itertuples():
        window = [row.time + pd.Timedelta(hours=k) for k in (6, 7, 8)]
        if window[-1] > enc.loc[row.encounter_id, "discharge_time"]:
            continue
        assert any(t in mg_times[row.encounter_id] for t in window), row
        checked += 1
    assert checked > 0.8 * len(doses)


def test_potassium_chloride_follows_a_recorded_low_potassium(
    tables: dict[str, pd.DataFrame],
) -> None:
    """KCl (the negative-control exposure) is 40 mmol oral, given 2 h after a routine panel
    with a recorded K, and far more often after a K below 3.5 mmol/L than after a normal one
    (world: 70 % vs 10 %; tolerance: at least 40 points apart)."""
    meds, labs = tables["medication_administrations"], tables["lab_results"]
    kcl = meds[meds["ingredient"] == "potassium_chloride"]
    assert len(kcl) > 0
    assert (kcl["dose"] == 40.0).all() and (kcl["dose_unit"] == "mmol").all()
    assert (kcl["route"] == "oral").all() and kcl["given"].all()
    k = labs[(labs["analyte"] == "potassium") & labs["value"].notna()].drop_duplicates(
        ["encounter_id", "time"]
    )
    k = k.assign(dose_time=k["time"] + pd.Timedelta(hours=2))
    hit = k.merge(
        kcl[["encounter_id", "time"]].rename(columns={"time": "dose_time"}).drop_duplicates(),
        on=["encounter_id", "dose_time"],
        how="left",
        indicator=True,
    )
    given = hit["_merge"] == "both"
    assert given.sum() == len(kcl.drop_duplicates(["encounter_id", "time"]))
    low = hit["value"] < 3.5  # every K unit here is mmol/L or mEq/L (1:1)
    assert given[low].mean() - given[~low].mean() > 0.4


def test_ordered_but_not_given_mg_is_rare_and_recorded(tables: dict[str, pd.DataFrame]) -> None:
    mg = tables["medication_administrations"]
    mg = mg[mg["ingredient"] == "magnesium_sulfate"]
    not_given = (~mg["given"]).mean()
    assert 0.02 < not_given < 0.09
    other = tables["medication_administrations"]["ingredient"].unique()
    for ingredient in ("calcium_gluconate", "magnesium_oxide", "furosemide"):
        assert ingredient in other
    assert {"omeprazole", "pantoprazole"} & set(other)


def test_defects_are_rare_and_counted_in_the_manifest(
    tables: dict[str, pd.DataFrame], manifest: dict
) -> None:
    labs = tables["lab_results"]
    n = len(labs)
    assert manifest["row_counts"] == {t: len(tables[t]) for t in TABLES}
    n_dup = int(labs.duplicated(keep="first").sum())
    n_null = int(labs["value"].isna().sum())
    assert manifest["defects"] == {"duplicate_lab_rows": n_dup, "null_lab_values": n_null}
    assert 0.001 < n_dup / n < 0.006
    assert 0.0005 < n_null / n < 0.005
    for key in ("generator_version", "world", "seed", "n_stays", "parameters", "units"):
        assert key in manifest
    assert manifest["n_stays"] == N_STAYS and manifest["seed"] == SEED
    assert World.from_dict(manifest["parameters"]) == World(kind="effect")


# --- publication -----------------------------------------------------------------------------


def test_replaces_an_earlier_dataset_but_never_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    generate(out, n_stays=40, seed=1)
    first = pq.read_table(out / "encounters.parquet")
    generate(out, n_stays=50, seed=2)
    assert pq.read_table(out / "encounters.parquet").num_rows == 50
    assert not first.equals(pq.read_table(out / "encounters.parquet"))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        generate(foreign, n_stays=40, seed=1)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]  # no temp folders


def test_a_crash_leaves_no_half_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = writer_module.batch_tables

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "batch_tables", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(tmp_path / "out", n_stays=BATCH_SIZE + 10, seed=3)
    assert list(tmp_path.iterdir()) == []


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="world"):
        generate(tmp_path / "x", n_stays=10, world="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_stays"):
        generate(tmp_path / "x", n_stays=0)
    with pytest.raises(ValueError, match="seed"):
        generate(tmp_path / "x", n_stays=10, seed=-1)
    assert not (tmp_path / "x").exists()


def test_progress_is_reported(tmp_path: Path) -> None:
    messages: list[str] = []
    generate(tmp_path / "p", n_stays=30, seed=4, progress=messages.append)
    assert messages and any("30" in m for m in messages)


# --- physiology (engine level, latent states) ------------------------------------------------


def _batch(world: World, n_stays: int = 3000, seed: int = 5, n_hours: int = STAY_GRID_HOURS):
    pop = make_population(world, n_stays, seed)
    return pop, batch_inputs(world, pop, seed, 0, BATCH_SIZE, n_hours)


def test_effect_world_low_mg_stays_have_lower_calcium() -> None:
    """Stays with sustained Mg < 0.5 have clearly lower corrected Ca than stays with Mg > 0.7
    (effect world, no repletion given; tolerance: at least 0.3 mmol/L apart), but not in the
    null world (within 0.1 mmol/L)."""
    gaps = {}
    for kind in ("effect", "null"):
        world = World(kind=kind)
        _, inp = _batch(world)
        # no Mg repletion at all, so that depletion can be sustained
        sim = simulate(
            world,
            inp,
            Intervention(np.full(inp.n, np.nan), np.full(inp.n, -1.0), np.full(inp.n, 1e9)),
        )
        assert not np.isin(sim.events.kind, [0, 1]).any()
        hours = np.arange(STAY_GRID_HOURS)[:, None]
        window = (hours >= 24) & (hours <= np.minimum(inp.los_hours, 96)[None, :])
        mg = np.where(window, sim.mg, np.nan)
        ca = np.nanmean(np.where(window, sim.ca, np.nan), axis=0)
        low = np.nanmax(mg, axis=0) < 0.5
        high = np.nanmin(mg, axis=0) > 0.7
        assert low.sum() >= 20 and high.sum() >= 100
        gaps[kind] = ca[high].mean() - ca[low].mean()
    assert gaps["effect"] > 0.3  # measured about 0.55 (classic series: 7.2 vs 9.3 mg/dL)
    assert abs(gaps["null"]) < 0.1  # measured about 0.02


def test_calcium_gluconate_effect_is_gone_after_12_hours() -> None:
    """1 g calcium gluconate lifts corrected Ca by about 0.1 mmol/L an hour later and by under
    0.01 mmol/L 12 h later (null world, so Mg decisions cannot feed back on Ca)."""
    world = World(kind="null")
    _, inp = _batch(world)
    inp = inp.take(np.arange(300))
    h0 = 30
    base = simulate(world, inp)
    extra = Intervention.none(inp.n)
    extra = Intervention(
        extra.force_after_hours,
        extra.block_from_hours,
        extra.block_to_hours,
        extra_gluconate_g=tuple((c, h0, 1.0) for c in range(inp.n)),
    )
    dosed = simulate(world, inp, extra)
    n_base = np.bincount(base.events.col[base.events.kind == CA_GLUCONATE_IV], minlength=inp.n)
    n_dosed = np.bincount(dosed.events.col[dosed.events.kind == CA_GLUCONATE_IV], minlength=inp.n)
    same_care = n_dosed == n_base + 1  # no other gluconate decision changed
    assert same_care.mean() > 0.9
    diff = dosed.ca - base.ca
    assert np.all(diff[: h0 + 1] == 0.0)
    assert np.all(diff[h0 + 1, same_care] > 0.08)
    assert np.all(np.abs(diff[h0 + 12, same_care]) < 0.01)


def test_a_2_g_mgso4_dose_raises_serum_mg_by_about_0_1_to_0_3() -> None:
    world = World(kind="effect")
    _, inp = _batch(world)
    inp = inp.take(np.arange(500))
    h0 = 40
    base = simulate(world, inp)
    none = Intervention.none(inp.n)
    dosed = simulate(
        world,
        inp,
        Intervention(
            none.force_after_hours,
            none.block_from_hours,
            none.block_to_hours,
            extra_mg_sulfate_g=tuple((c, h0, 2.0) for c in range(inp.n)),
        ),
    )
    rise = dosed.mg[h0 + 1] - base.mg[h0 + 1]
    assert np.all(dosed.mg[: h0 + 1] == base.mg[: h0 + 1])
    assert 0.15 < rise.mean() < 0.22
    assert np.mean((rise > 0.1) & (rise < 0.3)) > 0.95
    # transient: most of the rise is gone a day later
    later = dosed.mg[h0 + 25] - base.mg[h0 + 25]
    assert np.median(later) < 0.75 * np.median(rise)


def test_null_world_calcium_never_reads_magnesium() -> None:
    world = World(kind="null")
    _, inp = _batch(world)
    inp = inp.take(np.arange(200))
    none = Intervention.none(inp.n)
    base = simulate(world, inp)
    dosed = simulate(
        world,
        inp,
        Intervention(
            none.force_after_hours,
            none.block_from_hours,
            none.block_to_hours,
            extra_mg_sulfate_g=tuple((c, 20, 4.0) for c in range(inp.n)),
        ),
    )
    assert not np.array_equal(dosed.mg, base.mg)
    assert np.array_equal(dosed.ca, base.ca)


def test_simulation_does_not_depend_on_batch_company_or_horizon() -> None:
    """A stay simulated alone, with others, or on a longer grid is the same stay (the basis
    of the known-truth replay)."""
    world = World(kind="effect")
    pop, full = _batch(world, n_stays=600)
    _, longer = _batch(world, n_stays=600, n_hours=STAY_GRID_HOURS + 100)
    all_sim = simulate(world, full)
    cols = np.array([5, 77, 300, 599])
    sub_sim = simulate(world, longer.take(cols))
    assert np.array_equal(sub_sim.mg[:STAY_GRID_HOURS], all_sim.mg[:, cols])
    assert np.array_equal(sub_sim.ca[:STAY_GRID_HOURS], all_sim.ca[:, cols])
    assert np.array_equal(sub_sim.rep_mg, all_sim.rep_mg[:, cols], equal_nan=True)
    assert pop.n_stays == 600


def test_qualifying_fraction_and_treatment_positivity(tables: dict[str, pd.DataFrame]) -> None:
    """About one stay in six has a concurrent low Mg and low corrected Ca panel (effect
    world), and clinicians give Mg at roughly half of those first decisions (positivity both
    ways)."""
    labs = tables["lab_results"].drop_duplicates()
    labs = labs.assign(si=_si_values(labs))
    wide = labs.pivot_table(
        index=["encounter_id", "time"], columns="analyte", values="si"
    ).reset_index()
    wide = wide.dropna(subset=["magnesium", "calcium_total", "albumin"])
    wide["ca_corrected"] = wide["calcium_total"] + 0.02 * (40 - wide["albumin"])
    q = wide[(wide["magnesium"] < 0.70) & (wide["ca_corrected"] < 2.15)]
    first = q.sort_values("time").groupby("encounter_id").head(1)
    assert 0.08 < len(first) / N_STAYS < 0.30
    meds = tables["medication_administrations"]
    mg = meds[meds["ingredient"].str.startswith("magnesium") & meds["given"]]
    m = first.merge(mg[["encounter_id", "time"]], on="encounter_id", suffixes=("", "_dose"))
    dt = (m["time_dose"] - m["time"]) / pd.Timedelta("1h")
    treated = set(m.loc[(dt > 0) & (dt <= 6), "encounter_id"])
    share = first["encounter_id"].isin(treated).mean()
    assert 0.35 < share < 0.75


@pytest.mark.slow
def test_speed_smoke_20000_stays(tmp_path: Path) -> None:
    start = time.perf_counter()
    generate(tmp_path / "big", n_stays=20_000, seed=9)
    seconds = time.perf_counter() - start
    print(f"\ngenerate(20,000 stays): {seconds:.1f} s ({20_000 / seconds:,.0f} stays/s)")
    assert pq.read_metadata(tmp_path / "big" / "encounters.parquet").num_rows == 20_000


# --- regimes: the default world is pinned, the ward world is harsher ---------------------------


def _table_digest(path: Path) -> tuple[int, str]:
    """Row count and a content hash of one Parquet table (independent of Parquet encoding)."""
    table = pq.read_table(path)
    h = hashlib.sha256()
    for name, col in zip(table.column_names, table.columns, strict=True):
        h.update(name.encode())
        if pa.types.is_string(col.type):
            h.update("\x1f".join("\x00" if v is None else v for v in col.to_pylist()).encode())
        else:
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.int64())
            h.update(np.ascontiguousarray(col.to_numpy(zero_copy_only=False)).tobytes())
    return table.num_rows, h.hexdigest()[:16]


# Recorded with the generator as it was before the regime switches existed (the tables were
# checked identical, value for value, at 300 and 4,200 stays, effect and null); generator
# 1.1.0 re-pinned the medication table only: it adds the potassium chloride doses (drawn
# last in the post-hoc stream, so every earlier row is unchanged; lab tables identical).
DEFAULT_WORLD_PIN = {
    "effect": {
        "persons": (249, "2b352b1c4f2be846"),
        "encounters": (300, "228877e2afa79531"),
        "lab_results": (12834, "f2b4d65cbe448cec"),
        "medication_administrations": (1801, "6b8ad8137fb5ead8"),
    },
    "null": {
        "persons": (249, "2b352b1c4f2be846"),
        "encounters": (300, "228877e2afa79531"),
        "lab_results": (12810, "148f34b7844657ec"),
        "medication_administrations": (1791, "90b83b7c78106239"),
    },
}


@pytest.mark.parametrize("kind", ["effect", "null"])
def test_default_world_tables_are_pinned(kind: str, tmp_path: Path) -> None:
    """Same seed, same default tables as before the regime switches: the switches draw from
    their own stream and are off by default (a change here needs a GENERATOR_VERSION bump)."""
    out = generate(tmp_path / kind, n_stays=300, world=kind, seed=7)  # type: ignore[arg-type]
    got = {t: _table_digest(out / f"{t}.parquet") for t in TABLES}
    assert got == DEFAULT_WORLD_PIN[kind]
    again = generate(tmp_path / "r", n_stays=300, world=kind, seed=7, regime="default")  # type: ignore[arg-type]
    assert {t: _table_digest(again / f"{t}.parquet") for t in TABLES} == got
    assert json.loads((out / "manifest.json").read_text())["regime"] == "default"


WARD_STAYS = 2000
WARD_SEED = 13


@pytest.fixture(scope="module")
def ward_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pd.DataFrame]]:
    """Default and ward effect worlds with the same seed (same people, stays and mornings)."""
    root = tmp_path_factory.mktemp("ward")
    out = {}
    for regime in ("default", "ward"):
        d = generate(root / regime, n_stays=WARD_STAYS, seed=WARD_SEED, regime=regime)
        out[regime] = {t: pd.read_parquet(d / f"{t}.parquet") for t in TABLES}
        out[regime]["dir"] = d  # type: ignore[assignment]
    return out


def _albumin_within_24h_share(labs: pd.DataFrame) -> float:
    """Share of total-Ca draws with an albumin of the same stay drawn within +/- 24 h."""
    labs = labs.drop_duplicates(["encounter_id", "time", "analyte"])
    ca = labs.loc[labs["analyte"] == "calcium_total", ["encounter_id", "time"]]
    ca = ca.reset_index(drop=True).reset_index()
    alb = labs.loc[labs["analyte"] == "albumin", ["encounter_id", "time"]]
    m = ca.merge(alb.rename(columns={"time": "t_alb"}), on="encounter_id")
    near = m.loc[(m["t_alb"] - m["time"]).abs() <= pd.Timedelta("24h"), "index"].nunique()
    return near / len(ca)


def test_ward_albumin_is_drawn_on_admission_then_every_2_to_4_days(ward_pair) -> None:
    """Measured at 2,000 stays (seeds 13, 14): albumin within 24 h of 85 % / 84 % of
    total-Ca draws in the default world, 67 % / 66 % in the ward world (a third without)."""
    default = _albumin_within_24h_share(ward_pair["default"]["lab_results"])
    ward = _albumin_within_24h_share(ward_pair["ward"]["lab_results"])
    assert 0.80 < default < 0.92, default
    assert 0.58 < ward < 0.74, ward
    assert default - ward > 0.12
    labs = ward_pair["ward"]["lab_results"]
    enc = ward_pair["ward"]["encounters"].set_index("encounter_id")
    alb = labs[labs["analyte"] == "albumin"].drop_duplicates(["encounter_id", "time"])
    panels = labs[labs["analyte"] == "sodium"].drop_duplicates(["encounter_id", "time"])
    # only on routine panels, one on every admission panel, then 48-96 h apart at least
    on_panel = alb.merge(panels[["encounter_id", "time"]], on=["encounter_id", "time"])
    assert len(on_panel) == len(alb)
    first = alb.groupby("encounter_id")["time"].min()
    assert (first == enc.loc[first.index, "admit_time"]).all() and len(first) == len(enc)
    gaps = alb.sort_values("time").groupby("encounter_id")["time"].diff().dropna()
    assert (gaps >= pd.Timedelta("48h")).all()
    assert gaps.median() < pd.Timedelta("120h")


def test_ward_skips_most_routine_draws_in_the_last_36_hours(ward_pair) -> None:
    """Routine panels more than 36 h before discharge are the same as in the default world;
    in the last 36 h about 40 % remain (skip probability 0.6)."""
    kept = {}
    for regime in ("default", "ward"):
        labs = ward_pair[regime]["lab_results"]
        enc = ward_pair[regime]["encounters"].set_index("encounter_id")
        panels = labs[labs["analyte"] == "sodium"].drop_duplicates(["encounter_id", "time"])
        left = panels["encounter_id"].map(enc["discharge_time"]) - panels["time"]
        # the last in-stay grid hour is discharge minus 0-59 min
        late = left <= pd.Timedelta("36h") + pd.Timedelta("59min")
        kept[regime] = (panels.loc[late], panels.loc[left > pd.Timedelta("37h")])
    pd.testing.assert_frame_equal(
        kept["default"][1][["encounter_id", "time"]].reset_index(drop=True),
        kept["ward"][1][["encounter_id", "time"]].reset_index(drop=True),
    )
    ratio = len(kept["ward"][0]) / len(kept["default"][0])
    assert len(kept["default"][0]) > 0.8 * WARD_STAYS
    assert 0.3 < ratio < 0.5, ratio


def _first_index_episodes(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """First draw per stay with Mg < 0.70 and albumin-corrected Ca < 2.15 mmol/L (nearest
    albumin within 24 h; simple pandas, the pipeline uses SQL)."""
    labs = tables["lab_results"].drop_duplicates()
    labs = labs.assign(si=_si_values(labs))
    wide = labs.pivot_table(
        index=["encounter_id", "time"], columns="analyte", values="si"
    ).reset_index()
    wide = wide.dropna(subset=["magnesium", "calcium_total"]).sort_values("time")
    alb = labs.loc[labs["analyte"] == "albumin", ["encounter_id", "time", "si"]].dropna()
    alb = alb.rename(columns={"si": "alb", "time": "t_alb"}).sort_values("t_alb")
    wide = pd.merge_asof(
        wide,
        alb,
        left_on="time",
        right_on="t_alb",
        by="encounter_id",
        direction="nearest",
        tolerance=pd.Timedelta("24h"),
    ).dropna(subset=["alb"])
    corrected = wide["calcium_total"] + 0.02 * (40 - wide["alb"])
    q = wide[(wide["magnesium"] < 0.70) & (corrected < 2.15)]
    return q.sort_values("time").groupby("encounter_id").head(1)


def _exposed_within_6h(tables: dict[str, pd.DataFrame], first: pd.DataFrame) -> float:
    meds = tables["medication_administrations"]
    mg = meds[meds["ingredient"].str.startswith("magnesium") & meds["given"]]
    m = first.merge(mg[["encounter_id", "time"]], on="encounter_id", suffixes=("", "_dose"))
    dt = (m["time_dose"] - m["time"]) / pd.Timedelta("1h")
    treated = set(m.loc[(dt > 0) & (dt <= 6), "encounter_id"])
    return float(first["encounter_id"].isin(treated).mean())


def test_ward_clinicians_replete_about_80_percent_of_index_episodes(ward_pair) -> None:
    """Measured at 2,000 stays (seeds 13, 14), first qualifying draw per stay: Mg within
    6 h in 52 % / 48 % (default) and 82 % / 81 % (ward) of them."""
    shares = {}
    for regime in ("default", "ward"):
        first = _first_index_episodes(ward_pair[regime])
        assert len(first) > 0.08 * WARD_STAYS, regime
        shares[regime] = _exposed_within_6h(ward_pair[regime], first)
    assert 0.70 < shares["ward"] < 0.90, shares
    assert shares["ward"] - shares["default"] > 0.1, shares


def test_ward_changes_only_its_switches_and_the_policy_coefficients() -> None:
    """The ward world differs from the default only in its switches and the coefficients of
    the usual-care Mg policy, whose inputs stay the recorded Mg, total Ca and creatinine plus
    an independent uniform (the engine's rule is shared), so confounding stays measured."""
    ward = ward_world("effect")
    default = World()
    changed = {
        f.name
        for f in dataclasses.fields(World)
        if getattr(ward, f.name) != getattr(default, f.name)
    }
    assert changed == {
        "albumin_schedule",  # albumin_interval_hours: the ward's 48-96 h is also the default
        "discharge_planning_hours",
        "discharge_planning_skip_probability",
        "mg_policy_ceiling",
        "mg_policy_intercept",
        "mg_policy_mg_coef",
        "mg_policy_ca_coef",
    }
    assert ward.mg_policy_floor > 0 and ward.mg_policy_ceiling < 1  # positivity both ways


def test_regime_manifest_round_trips(ward_pair) -> None:
    manifest = json.loads((ward_pair["ward"]["dir"] / "manifest.json").read_text())
    assert manifest["regime"] == "ward"
    world = World.from_dict(manifest["parameters"])
    assert world == ward_world("effect") == regime_world("ward", "effect")
    assert isinstance(world.albumin_interval_hours, tuple)
    assert World.from_dict(json.loads(json.dumps(ward_world("null").to_dict()))) == ward_world(
        "null"
    )
    # a manifest without the regime-switch keys rebuilds the default world (switches off)
    no_switches = {
        k: v for k, v in World().to_dict().items() if not k.startswith(("albumin_s", "dis"))
    }
    no_switches.pop("albumin_interval_hours")
    assert World.from_dict(no_switches) == World()
    custom = dataclasses.replace(ward_world("effect"), discharge_planning_hours=24)
    assert regime_name(custom) == "custom" and regime_name(ward_world("null")) == "ward"
    assert set(REGIMES) == {"default", "ward"}


def test_regime_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="regime"):
        generate(tmp_path / "x", n_stays=10, regime="icu")
    with pytest.raises(ValueError, match="regime"):
        generate(tmp_path / "x", n_stays=10, world=World(), regime="ward")
    with pytest.raises(ValueError, match="albumin_schedule"):
        World(albumin_schedule="weekly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="discharge_planning_skip_probability"):
        World(discharge_planning_skip_probability=1.5)
    assert not (tmp_path / "x").exists()


def test_ward_exposure_in_the_pipeline_cohort(ward_pair, tmp_path: Path) -> None:
    """The real pipeline (DuckDB SQL) on the 2,000-stay ward world: most analysed episodes
    are exposed (measured 86 %, 62 episodes at seed 13; 79 %, 56 at seed 14), and few are
    left (sparse albumin and dropped late bloods cost outcomes)."""
    from mgca.config import MgcaConfig
    from mgca.run import study

    db = tmp_path / "ward.duckdb"
    n = study.build_database(ward_pair["ward"]["dir"], db, MgcaConfig())
    cohort = study.read_cohort(db)
    assert n == len(cohort) and n > 20
    assert 0.65 < cohort["exposed"].mean() < 0.97, cohort["exposed"].mean()


def test_icu_switch_draws_frequent_panels_with_ionized_calcium(tmp_path: Path) -> None:
    """icu_fraction (off in both presets): that share of stays has full panels every 4-6 h from
    admission and an ionized Ca on about 80 % of its draws; the other stays keep mornings."""
    world = dataclasses.replace(ward_world("effect"), icu_fraction=0.3)
    out = generate(tmp_path / "icu", n_stays=400, world=world, seed=5)
    assert json.loads((out / "manifest.json").read_text())["regime"] == "custom"
    labs = pd.read_parquet(out / "lab_results.parquet").drop_duplicates(
        ["encounter_id", "time", "analyte"]
    )
    panels = labs[labs["analyte"] == "sodium"].sort_values("time")
    gaps = panels.groupby("encounter_id")["time"].diff() / pd.Timedelta("1h")
    icu = set(panels.loc[gaps <= 6, "encounter_id"])
    assert 0.22 < len(icu) / 400 < 0.38
    icu_gaps = gaps[panels["encounter_id"].isin(icu)].dropna()
    assert icu_gaps.between(4, 6).all()
    ward_gaps = gaps[~panels["encounter_id"].isin(icu)].dropna()
    assert (ward_gaps > 8).all()  # the first morning panel comes > 8 h after admission
    draws = labs[labs["analyte"] == "magnesium"]
    ionized = labs[labs["analyte"] == "calcium_ionized"]
    share = {
        flag: ionized["encounter_id"].isin(icu).eq(flag).sum()
        / draws["encounter_id"].isin(icu).eq(flag).sum()
        for flag in (True, False)
    }
    assert 0.7 < share[True] < 0.9 and 0.12 < share[False] < 0.22, share
    with pytest.raises(ValueError, match="icu_draw_interval_hours"):
        World(icu_draw_interval_hours=(1, 3))
