"""Turn simulated stays into the canonical tables (Arrow), exactly as ARCHITECTURE.md specifies.

Values that never feed a clinician decision (albumin, K, phosphate, sodium, PTH, ionized Ca,
PPI and diuretic administrations, rare defects) are drawn here, after the simulation, from a
separate stream (``SeedSequence([seed, 3, batch])``); they cannot change the course of a stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mgca.synthetic.draws import BatchInputs
from mgca.synthetic.exclusions import (
    CRRT_INGREDIENT,
    OBSTETRIC_INGREDIENT,
    crrt_calcium_rows,
    obstetric_doses,
)
from mgca.synthetic.population import US_PER_HOUR, Population
from mgca.synthetic.simulate import (
    CA_GLUCONATE_IV,
    MGO_ORAL,
    MGSO4_IV,
    SimResult,
    report_values,
    unmeasured_shift,
)
from mgca.synthetic.world import ANALYTES, LOINC_SI, UNITS, World

PERSONS_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("sex", pa.string()),
        pa.field("year_of_birth", pa.int32()),
    ]
)
ENCOUNTERS_SCHEMA = pa.schema(
    [
        pa.field("encounter_id", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("admit_time", pa.timestamp("us"), nullable=False),
        pa.field("discharge_time", pa.timestamp("us"), nullable=False),
        pa.field("age_years", pa.float64()),
        pa.field("died_in_hospital", pa.bool_()),
    ]
)
LAB_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("encounter_id", pa.string()),
        pa.field("time", pa.timestamp("us"), nullable=False),
        pa.field("analyte", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("unit", pa.string()),
        pa.field("source_code", pa.string()),
    ]
)
MED_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("encounter_id", pa.string()),
        pa.field("time", pa.timestamp("us"), nullable=False),
        pa.field("ingredient", pa.string(), nullable=False),
        pa.field("dose", pa.float64()),
        pa.field("dose_unit", pa.string()),
        pa.field("route", pa.string()),
        pa.field("given", pa.bool_(), nullable=False),
        pa.field("source_code", pa.string()),
    ]
)

_A = {name: i for i, name in enumerate(ANALYTES)}
# Unit and source-code dictionaries indexed by 2 * analyte_code + si.
_UNIT_DICT = pa.array([u for a in ANALYTES for u in (UNITS[a].us_unit, UNITS[a].si_unit)])
_CODE_DICT = pa.array([c for a in ANALYTES for c in (f"mgca-synthetic:{a}", LOINC_SI[a])])
_ANALYTE_DICT = pa.array(list(ANALYTES))

# Medication kinds: (ingredient, dose_unit, route). Kinds 0-2 come from the engine.
_MED_KINDS = [
    ("magnesium_sulfate", "g", "iv"),  # MGSO4_IV
    ("magnesium_oxide", "mg", "oral"),  # MGO_ORAL
    ("calcium_gluconate", "g", "iv"),  # CA_GLUCONATE_IV
    ("omeprazole", "mg", "oral"),
    ("pantoprazole", "mg", "oral"),
    ("pantoprazole", "mg", "iv"),
    ("furosemide", "mg", "iv"),
    ("furosemide", "mg", "oral"),
    ("potassium_chloride", "mmol", "oral"),
    ("norepinephrine", "mg", "iv"),
    (OBSTETRIC_INGREDIENT, "g", "iv"),  # mgca.synthetic.exclusions
    (CRRT_INGREDIENT, "mmol", "iv"),  # calcium infusion of citrate CRRT
]
assert _MED_KINDS[MGSO4_IV][0] == "magnesium_sulfate"
assert _MED_KINDS[MGO_ORAL][0] == "magnesium_oxide"
assert _MED_KINDS[CA_GLUCONATE_IV][0] == "calcium_gluconate"
_OMEPRAZOLE, _PANTO_ORAL, _PANTO_IV, _FUROSEMIDE_IV, _FUROSEMIDE_ORAL, _KCL_ORAL = 3, 4, 5, 6, 7, 8
_NOREPINEPHRINE = 9
_OBSTETRIC_MG, _CRRT_CALCIUM = 10, 11
KCL_DOSE_MMOL = 40.0
"""Oral potassium chloride dose (mmol K), the usual replacement for a mildly low K."""
_INGREDIENT_DICT = pa.array([k[0] for k in _MED_KINDS])
_DOSE_UNIT_DICT = pa.array([k[1] for k in _MED_KINDS])
_ROUTE_DICT = pa.array([k[2] for k in _MED_KINDS])
_MED_CODE_DICT = pa.array([f"mgca-synthetic:{k[0]}" for k in _MED_KINDS])


@dataclass
class BatchTables:
    """Canonical rows of one batch plus defect counts."""

    labs: pa.Table
    meds: pa.Table
    defects: dict[str, int]


@dataclass(frozen=True)
class PotassiumResults:
    """Recorded K of every routine panel of a batch: hour, column and value (mmol/L, as
    reported and converted back; NaN when recorded null)."""

    hour: np.ndarray
    col: np.ndarray
    value_mmol_l: np.ndarray


def persons_table(pop: Population) -> pa.Table:
    """One row per subject."""
    year = pop.birth_us.astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970
    return pa.table(
        {
            "subject_id": pa.array(pop.subject_ids, pa.string()),
            "sex": pa.array(pop.sex, pa.string()),
            "year_of_birth": pa.array(year.astype(np.int32), pa.int32()),
        },
        schema=PERSONS_SCHEMA,
    )


def encounters_table(pop: Population, died: np.ndarray) -> pa.Table:
    """One row per stay (``died`` from the batch draws, in stay order)."""
    return pa.table(
        {
            "encounter_id": pa.array(pop.encounter_ids, pa.string()),
            "subject_id": pa.array(pop.subject_ids[pop.subject_index], pa.string()),
            "admit_time": pa.array(pop.admit_us, pa.timestamp("us")),
            "discharge_time": pa.array(pop.discharge_us, pa.timestamp("us")),
            "age_years": pa.array(np.round(pop.age_years(), 2), pa.float64()),
            "died_in_hospital": pa.array(died, pa.bool_()),
        },
        schema=ENCOUNTERS_SCHEMA,
    )


def died_in_hospital(world: World, inp: BatchInputs) -> np.ndarray:
    """In-hospital death flag of each stay of the batch (more likely when admitted sicker)."""
    return inp.u_death < world.death_base_probability + world.death_per_severity * inp.s0


def _ids(pop: Population, inp: BatchInputs) -> tuple[pa.Array, pa.Array]:
    enc = pa.array(pop.encounter_ids[inp.stay], pa.string())
    subj = pa.array(pop.subject_ids[pop.subject_index[inp.stay]], pa.string())
    return enc, subj


def albumin_interval_panels(world: World, inp: BatchInputs) -> np.ndarray:
    """``(hour, col)`` bool: routine panels with an albumin under the ward schedule.

    The admission panel has one; after each albumin the next is drawn at the first routine
    panel at least ``U(albumin_interval_hours)`` later (the k-th interval of a stay uses its
    k-th pre-drawn uniform).
    """
    routine = inp.routine
    lo, hi = world.albumin_interval_hours
    gaps = lo + (hi - lo) * inp.u_albumin_interval.astype(np.float64)
    last = gaps.shape[0] - 1
    out = np.zeros_like(routine)
    due = np.zeros(inp.n)  # next albumin at the first routine panel at or after this hour
    k = np.zeros(inp.n, dtype=np.int64)  # albumins drawn so far
    for h in range(routine.shape[0]):
        hit = np.flatnonzero(routine[h] & (h >= due))
        if hit.size:
            out[h, hit] = True
            due[hit] = h + gaps[np.minimum(k[hit], last), hit]
            k[hit] += 1
    return out


def lab_table(
    world: World, pop: Population, inp: BatchInputs, sim: SimResult, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, int], PotassiumResults]:
    """Every lab row of the batch: one row per (draw, analyte measured), the defect counts
    and the recorded K of the routine panels (which the KCl decisions read)."""
    w = world
    hours, cols = np.nonzero(sim.draw)
    routine = inp.routine[hours, cols]
    si = inp.si_units[cols]
    s = sim.severity[hours, cols]
    mg = sim.mg[hours, cols]
    ca = sim.ca[hours, cols]
    subj = pop.subject_index[inp.stay[cols]]
    n_draw = hours.size

    parts: list[tuple[np.ndarray, int, np.ndarray]] = []  # (row selector, analyte, reported)

    def add(sel: np.ndarray, analyte: str, internal: np.ndarray | None, reported=None) -> None:
        if reported is None:
            reported, _ = report_values(internal, analyte, si[sel])
        parts.append((np.flatnonzero(sel), _A[analyte], reported))

    everything = np.ones(n_draw, dtype=bool)
    add(everything, "magnesium", None, sim.rep_mg[hours, cols])
    sel = sim.has_ca[hours, cols]
    add(sel, "calcium_total", None, sim.rep_ca[hours, cols][sel])
    add(routine, "creatinine", None, sim.rep_cr[hours, cols][routine])

    # Post-hoc analytes (never read by a decision). Draw every array at full length, in a
    # fixed order, so the stream layout does not depend on which rows are kept.
    u_alb = rng.random(n_draw)
    u_ica = rng.random(n_draw)
    z = rng.standard_normal((7, n_draw))
    u_null = rng.random((len(ANALYTES), n_draw))

    shift = unmeasured_shift(w, inp, hours, cols)
    alb_latent = (
        inp.albumin_g_l[cols]
        - w.albumin_illness_drop_g_l * s
        + w.unmeasured_albumin_rise_g_l * shift
    )
    ckd = pop.ckd[subj]
    loop = inp.loop[cols]
    if w.albumin_schedule == "panel":
        sel = routine & (u_alb < w.albumin_panel_fraction)
    else:
        sel = albumin_interval_panels(w, inp)[hours, cols]
    add(sel, "albumin", (alb_latent * (1 + w.cv_albumin * z[0]))[sel])
    k = 4.0 + 0.9 * (mg - 0.85) + 0.3 * ckd - 0.25 * loop + pop.potassium_offset_mmol_l[subj]
    k_reported, k_internal = report_values(
        (k * (1 + w.cv_potassium * z[1]))[routine], "potassium", si[routine]
    )
    add(routine, "potassium", None, k_reported)
    phos = 1.10 + 0.35 * ckd - 0.15 * s + pop.phosphate_offset_mmol_l[subj]
    phos = np.maximum(phos, 0.2)
    add(routine, "phosphate", (phos * (1 + w.cv_phosphate * z[2]))[routine])
    na = 139.0 - 3.0 * s + pop.sodium_offset_mmol_l[subj] + w.unmeasured_sodium_rise_mmol_l * shift
    add(routine, "sodium", (na * (1 + w.cv_sodium * z[3]))[routine])
    sel = u_ica < np.where(inp.icu[cols], w.icu_ionized_fraction, w.ionized_draw_fraction)
    ica = w.ionized_fraction_of_corrected * ca + w.ionized_sd_mmol_l * z[4]
    add(sel, "calcium_ionized", ica[sel])

    # PTH: first routine panel with a low measured total Ca, in stays whose team orders it.
    low = (
        routine
        & inp.pth_team[cols]
        & (sim.meas_ca[hours, cols] < w.pth_order_total_ca_below_mmol_l)
    )
    order = np.lexsort((hours, cols))
    low_sorted = low[order]
    first = np.zeros(n_draw, dtype=bool)
    cand = order[low_sorted]
    if cand.size:
        keep = np.r_[True, cols[cand][1:] != cols[cand][:-1]]
        first[cand[keep]] = True
    pth = pop.pth_base_pg_ml[subj] * np.exp(w.pth_ca_slope_per_mmol_l * (2.30 - ca))
    if w.effect:
        suppression = w.pth_mg_suppression / (1 + np.exp((mg - w.pth_mg_half_mmol_l) / 0.04))
        pth = pth * (1 - suppression)
    add(first, "pth", (pth * np.exp(w.cv_pth * z[5]))[first])

    row = np.concatenate([p[0] for p in parts])
    analyte = np.concatenate([np.full(p[0].size, p[1], dtype=np.int64) for p in parts])
    value = np.concatenate([p[2] for p in parts])
    # Rare null values in the post-hoc analytes (Mg, total Ca and creatinine nulls were
    # drawn before the simulation, because clinicians act on those).
    posthoc = ~np.isin(analyte, [_A["magnesium"], _A["calcium_total"], _A["creatinine"]])
    null = posthoc & (u_null[analyte, row] < w.null_value_rate)
    value = np.where(null, np.nan, value)

    order = np.lexsort((analyte, hours[row], cols[row]))
    row, analyte, value = row[order], analyte[order], value[order]
    # Exact duplicate rows.
    dup = rng.random(row.size) < w.duplicate_row_rate
    rep = np.repeat(np.arange(row.size), 1 + dup)
    row, analyte, value = row[rep], analyte[rep], value[rep]
    n_null = int(np.isnan(value).sum())

    enc, subj_ids = _ids(pop, inp)
    c = pa.array(cols[row])
    times = pop.admit_us[inp.stay[cols[row]]] + hours[row] * US_PER_HOUR
    unit_idx = pa.array(2 * analyte + si[row])
    table = pa.table(
        {
            "subject_id": pc.take(subj_ids, c),
            "encounter_id": pc.take(enc, c),
            "time": pa.array(times, pa.timestamp("us")),
            "analyte": pc.take(_ANALYTE_DICT, pa.array(analyte)),
            "value": pa.array(value, pa.float64(), from_pandas=True),
            "unit": pc.take(_UNIT_DICT, unit_idx),
            "source_code": pc.take(_CODE_DICT, unit_idx),
        },
        schema=LAB_SCHEMA,
    )
    k_null = np.zeros(n_draw, dtype=bool)
    k_null[row[(analyte == _A["potassium"]) & np.isnan(value)]] = True
    potassium = PotassiumResults(
        hour=hours[routine],
        col=cols[routine],
        value_mmol_l=np.where(k_null[routine], np.nan, k_internal),
    )
    defects = {"duplicate_lab_rows": int(dup.sum()), "null_lab_values": n_null}
    return table, defects, potassium


def _daily(inp: BatchInputs, pop: Population, cols: np.ndarray, clock: int, every: int):
    """(col, hour) of a scheduled drug at ``clock`` o'clock every ``every`` hours in the stay."""
    admit_clock = pop.admit_clock_hour()[inp.stay[cols]]
    first = (clock - admit_clock) % every
    n_max = int(inp.los_hours.max()) // every + 2
    k = first[None, :] + every * np.arange(n_max)[:, None]
    ok = k <= inp.los_hours[cols][None, :]
    j, i = np.nonzero(ok)
    return cols[i], k[j, i]


def med_table(
    world: World,
    pop: Population,
    inp: BatchInputs,
    sim: SimResult,
    rng: np.random.Generator,
    potassium: PotassiumResults,
) -> pa.Table:
    """Every administration (or unadministered order) of the batch."""
    ev = sim.events
    cols = [ev.col]
    hours = [ev.hour]
    kinds = [ev.kind.astype(np.int64)]
    doses = [ev.dose]
    given = [ev.given]

    u_product = rng.random(inp.n)
    all_cols = np.arange(inp.n)
    ppi_cols = all_cols[inp.ppi]
    c, h = _daily(inp, pop, ppi_cols, 9, 24)
    u = u_product[c]
    kind = np.where(u < 0.5, _OMEPRAZOLE, np.where(u < 0.6, _PANTO_IV, _PANTO_ORAL))
    cols.append(c)
    hours.append(h)
    kinds.append(kind)
    doses.append(np.full(c.size, 40.0))
    given.append(rng.random(c.size) >= 0.03)

    loop_cols = all_cols[inp.loop]
    iv = u_product[loop_cols] < 0.5
    c1, h1 = _daily(inp, pop, loop_cols[iv], 9, 12)
    c2, h2 = _daily(inp, pop, loop_cols[~iv], 9, 24)
    c = np.concatenate([c1, c2])
    cols.append(c)
    hours.append(np.concatenate([h1, h2]))
    kinds.append(np.r_[np.full(c1.size, _FUROSEMIDE_IV), np.full(c2.size, _FUROSEMIDE_ORAL)])
    doses.append(np.full(c.size, 40.0))
    given.append(rng.random(c.size) >= 0.03)

    # vasopressor stays (World.severity_*): norepinephrine charted every 12 h from admission,
    # so a dose lies in the day before any index time; no random numbers are drawn here, so
    # the other rows are the same with the switch on or off
    vaso_cols = all_cols[inp.severity_vasopressor]
    if vaso_cols.size:
        n_max = int(inp.los_hours.max()) // 12 + 1
        k = 12 * np.arange(n_max)[:, None] + np.zeros(vaso_cols.size, dtype=np.int64)[None, :]
        j, i = np.nonzero(k <= inp.los_hours[vaso_cols][None, :])
        cols.append(vaso_cols[i])
        hours.append(k[j, i])
        kinds.append(np.full(i.size, _NOREPINEPHRINE))
        doses.append(np.full(i.size, 4.0))
        given.append(np.ones(i.size, dtype=bool))

    # excluded populations (mgca.synthetic.exclusions): the obstetric MgSO4 infusion and the
    # citrate-CRRT calcium, deterministic given membership (no random number drawn here)
    for kind_code, (c, h, d) in (
        (_OBSTETRIC_MG, obstetric_doses(world, inp.obstetric, inp.los_hours)),
        (_CRRT_CALCIUM, crrt_calcium_rows(world, inp.crrt, inp.los_hours)),
    ):
        if c.size:
            cols.append(c)
            hours.append(h)
            kinds.append(np.full(c.size, kind_code))
            doses.append(d)
            given.append(np.ones(c.size, dtype=bool))

    # Potassium chloride on the recorded K of routine panels (drawn last in the stream, so
    # every earlier row keeps its values); never read by the simulation: K does not move Ca.
    u_kcl = rng.random(potassium.hour.size)
    low_k = potassium.value_mmol_l < world.kcl_below_k_mmol_l
    p_kcl = np.where(low_k, world.kcl_probability_low, world.kcl_probability_other)
    a = potassium.hour + world.kcl_delay_hours
    ok = (u_kcl < p_kcl) & ~np.isnan(potassium.value_mmol_l)
    ok &= a <= inp.los_hours[potassium.col]
    cols.append(potassium.col[ok])
    hours.append(a[ok])
    kinds.append(np.full(int(ok.sum()), _KCL_ORAL))
    doses.append(np.full(int(ok.sum()), KCL_DOSE_MMOL))
    given.append(np.ones(int(ok.sum()), dtype=bool))

    col = np.concatenate(cols)
    hour = np.concatenate(hours)
    kind = np.concatenate(kinds)
    dose = np.concatenate(doses)
    giv = np.concatenate(given)
    order = np.lexsort((kind, hour, col))
    col, hour, kind, dose, giv = col[order], hour[order], kind[order], dose[order], giv[order]

    enc, subj_ids = _ids(pop, inp)
    c = pa.array(col)
    k = pa.array(kind)
    times = pop.admit_us[inp.stay[col]] + hour * US_PER_HOUR
    return pa.table(
        {
            "subject_id": pc.take(subj_ids, c),
            "encounter_id": pc.take(enc, c),
            "time": pa.array(times, pa.timestamp("us")),
            "ingredient": pc.take(_INGREDIENT_DICT, k),
            "dose": pa.array(dose, pa.float64()),
            "dose_unit": pc.take(_DOSE_UNIT_DICT, k),
            "route": pc.take(_ROUTE_DICT, k),
            "given": pa.array(giv, pa.bool_()),
            "source_code": pc.take(_MED_CODE_DICT, k),
        },
        schema=MED_SCHEMA,
    )


CARE_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("encounter_id", pa.string()),
        pa.field("start_time", pa.timestamp("us"), nullable=False),
        pa.field("end_time", pa.timestamp("us")),
        pa.field("event", pa.string(), nullable=False),
        pa.field("source_code", pa.string()),
    ]
)
"""The optional canonical care_events table (mgca.engine.database.CARE_EVENTS_COLUMNS)."""


def care_table(pop: Population, inp: BatchInputs) -> pa.Table:
    """ICU stays of the batch (World.severity_icu_fraction): admission to the last in-stay
    hour of every severity-ICU stay."""
    col = np.flatnonzero(inp.severity_icu)
    enc, subj_ids = _ids(pop, inp)
    c = pa.array(col, pa.int64())
    start = pop.admit_us[inp.stay[col]]
    end = start + inp.los_hours[col].astype(np.int64) * US_PER_HOUR
    return pa.table(
        {
            "subject_id": pc.take(subj_ids, c),
            "encounter_id": pc.take(enc, c),
            "start_time": pa.array(start, pa.timestamp("us")),
            "end_time": pa.array(end, pa.timestamp("us")),
            "event": pa.array(["icu_stay"] * col.size, pa.string()),
            "source_code": pa.array(["mgca-synthetic:icu_stay"] * col.size, pa.string()),
        },
        schema=CARE_SCHEMA,
    )


def batch_tables(
    world: World, pop: Population, inp: BatchInputs, sim: SimResult, seed: int, batch: int
) -> BatchTables:
    """Lab and medication tables of one simulated batch (usual care, no intervention)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3, batch]))
    labs, defects, potassium = lab_table(world, pop, inp, sim, rng)
    meds = med_table(world, pop, inp, sim, rng, potassium)
    return BatchTables(labs=labs, meds=meds, defects=defects)
