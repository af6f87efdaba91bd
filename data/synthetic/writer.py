"""``generate``: simulate the world batch by batch and publish the canonical Parquet folder.

Everything is written into a hidden sibling folder first and moved into place with a
directory rename at the end, so a crash never leaves a half dataset at ``out_dir``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mgca.engine.database import CARE_EVENTS_FILE
from mgca.synthetic.draws import batch_inputs
from mgca.synthetic.early_exit import cut_stays, early_exit_hours, early_exit_on
from mgca.synthetic.exclusions import dialysis_care_table, dialysis_on
from mgca.synthetic.population import make_population
from mgca.synthetic.simulate import simulate
from mgca.synthetic.tables import (
    CARE_SCHEMA,
    ENCOUNTERS_SCHEMA,
    LAB_SCHEMA,
    MED_SCHEMA,
    PERSONS_SCHEMA,
    batch_tables,
    care_table,
    died_in_hospital,
    encounters_table,
    persons_table,
)
from mgca.synthetic.world import (
    BATCH_SIZE,
    GENERATOR_VERSION,
    REGIMES,
    STAY_GRID_HOURS,
    UNITS,
    World,
    WorldKind,
    regime_name,
    regime_world,
)

TABLES = ("persons", "encounters", "lab_results", "medication_administrations")
# care_events.parquet is written only when the world has ICU stays
# (World.severity_icu_fraction > 0) or dialysis sessions (World.dialysis_ckd_fraction > 0): a
# default world's hospital records neither.
DATASET_FILES = frozenset(
    {f"{t}.parquet" for t in TABLES} | {"manifest.json", CARE_EVENTS_FILE}
)


def _check_args(n_stays: int, world: str | World, seed: int, regime: str | None) -> None:
    if not isinstance(world, World) and world not in ("effect", "null"):
        raise ValueError(f"world must be 'effect' or 'null', got {world!r}")
    if regime is not None and regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
    preset = regime is not None and isinstance(world, World)
    if preset and world != regime_world(regime, world.kind):  # type: ignore[union-attr]
        raise ValueError(
            f"regime {regime!r} was given with a World whose parameters differ from it; pass "
            "either the world kind with a regime, or the World alone"
        )
    if isinstance(n_stays, bool) or not isinstance(n_stays, int | np.integer) or n_stays < 1:
        raise ValueError(f"n_stays must be a positive integer, got {n_stays!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _publish(tmp: Path, out_dir: Path) -> None:
    """Move the finished folder ``tmp`` to ``out_dir``, replacing an earlier dataset only."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a folder; choose another --out")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in DATASET_FILES)
        if foreign:
            raise FileExistsError(
                f"{out_dir} already holds files that are not an mgca synthetic dataset "
                f"({', '.join(foreign[:5])}); choose an empty or new folder"
            )
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def _units_manifest() -> dict[str, Any]:
    return {
        a: {
            "internal_unit": s.internal_unit,
            "us_unit": s.us_unit,
            "us_to_internal": s.us_to_internal,
            "si_unit": s.si_unit,
            "si_to_internal": s.si_to_internal,
        }
        for a, s in UNITS.items()
    }


def generate(
    out_dir: Path,
    n_stays: int = 4000,
    world: WorldKind | World = "effect",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    regime: str | None = None,
) -> Path:
    """Write a seeded synthetic hospital in the canonical schema; return ``out_dir``.

    Files: ``persons``, ``encounters``, ``lab_results``, ``medication_administrations``
    (``.parquet``, exact canonical types: ids string, times naive timestamp[us]) and
    ``manifest.json`` (generator version, world, seed, n_stays, all parameters, row and
    defect counts). Same arguments → identical tables. ``out_dir`` must be new, empty or an
    earlier dataset (which is replaced); its parent folders are created. ``world`` may also be
    a :class:`World` with non-default parameters (sensitivity analyses); the manifest records
    them and :func:`true_effect` replays them.

    ``regime`` names a preset of :data:`mgca.synthetic.world.REGIMES` (``"default"`` or
    ``"ward"``) applied to the world kind; None means ``"default"`` for a kind. The manifest's
    ``regime`` is that name, or for a :class:`World` the regime it equals, else ``"custom"``.
    """
    _check_args(n_stays, world, seed, regime)
    n_stays = int(n_stays)
    seed = int(seed)
    out_dir = Path(out_dir)
    say = progress or (lambda _msg: None)
    params = world if isinstance(world, World) else regime_world(regime or "default", world)
    regime_label = regime_name(params)
    pop = make_population(params, n_stays, seed)
    n_batches = -(-n_stays // BATCH_SIZE)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        died = np.zeros(n_stays, dtype=bool)
        defects = {"duplicate_lab_rows": 0, "null_lab_values": 0}
        rows = {t: 0 for t in TABLES}
        si_stays = 0
        care_batches = []
        with (
            pq.ParquetWriter(tmp / "lab_results.parquet", LAB_SCHEMA) as labs,
            pq.ParquetWriter(tmp / "medication_administrations.parquet", MED_SCHEMA) as meds,
        ):
            for b in range(n_batches):
                inp = batch_inputs(params, pop, seed, b, BATCH_SIZE, STAY_GRID_HOURS)
                sim = simulate(params, inp)
                exit_died = np.zeros(inp.n, dtype=bool)
                if early_exit_on(params):
                    los, exit_died = early_exit_hours(params, inp, sim, seed, b)
                    inp, sim = cut_stays(pop, inp, sim, los)
                out = batch_tables(params, pop, inp, sim, seed, b)
                labs.write_table(out.labs)
                meds.write_table(out.meds)
                rows["lab_results"] += out.labs.num_rows
                rows["medication_administrations"] += out.meds.num_rows
                for key, value in out.defects.items():
                    defects[key] += value
                died[inp.stay] = died_in_hospital(params, inp) | exit_died
                si_stays += int(inp.si_units.sum())
                if params.severity_icu_fraction > 0:
                    care_batches.append(care_table(pop, inp))
                if dialysis_on(params):
                    care_batches.append(
                        dialysis_care_table(
                            params, pop, inp.stay, inp.dialysis, inp.los_hours, CARE_SCHEMA
                        )
                    )
                say(f"synthetic: batch {b + 1}/{n_batches} ({int(inp.stay[-1]) + 1:,} stays)")
        persons = persons_table(pop)
        encounters = encounters_table(pop, died)
        pq.write_table(persons, tmp / "persons.parquet")
        pq.write_table(encounters, tmp / "encounters.parquet")
        assert persons.schema.equals(PERSONS_SCHEMA) and encounters.schema.equals(ENCOUNTERS_SCHEMA)
        rows["persons"] = persons.num_rows
        rows["encounters"] = encounters.num_rows
        if params.severity_icu_fraction > 0 or dialysis_on(params):
            care = pa.concat_tables(care_batches) if care_batches else CARE_SCHEMA.empty_table()
            pq.write_table(care, tmp / CARE_EVENTS_FILE)
            rows["care_events"] = care.num_rows

        manifest = {
            "generator": "mgca.synthetic",
            "generator_version": GENERATOR_VERSION,
            "world": params.kind,
            "regime": regime_label,
            "seed": seed,
            "n_stays": n_stays,
            "n_subjects": pop.n_subjects,
            "batch_size": BATCH_SIZE,
            "row_counts": rows,
            "defects": defects,
            "lab_systems": {
                "us": {
                    "encounters": n_stays - si_stays,
                    "source_code": "mgca-synthetic:<analyte>",
                },
                "si": {"encounters": si_stays, "source_code": "LOINC:<code>"},
            },
            "units": _units_manifest(),
            "parameters": params.to_dict(),
            "notes": (
                "Clinicians act at result times (draw + 1 h) on the recorded values of that "
                "draw only (Mg, total Ca, creatinine) plus independent random numbers, so "
                "adjusting for the recorded index values removes confounding by indication. "
                "Defects: exact duplicate lab rows and lab rows with a null value, counted in "
                "'defects'. In the null world Mg has no causal effect on Ca. 'regime' names "
                "the preset the parameters equal (default, ward) or 'custom'."
            ),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(
        f"synthetic: wrote {n_stays:,} stays, {rows['lab_results']:,} lab rows, "
        f"{rows['medication_administrations']:,} administrations to {out_dir}"
    )
    return out_dir
