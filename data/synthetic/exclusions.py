"""Populations a clinician excludes: obstetric MgSO4, citrate CRRT and haemodialysis.

Off in the default world (``World.obstetric_fraction``, ``crrt_fraction`` and
``dialysis_ckd_fraction`` all 0: no stay belongs to any of them, nothing here changes a
latent value, a decision or a table row, so the tables for a seed are the pinned ones).
Switched on (threat ``excluded_populations``, :mod:`mgca.synthetic.threats`), three kinds of
stay enter the hospital whose magnesium and calcium move for a reason that is not Mg
repletion, each with the record the pipeline's SQL excludes it by
(``sql/cohort_eligibility.sql`` steps 5-7):

- **obstetric MgSO4** (pre-eclampsia seizure prophylaxis; ``World.obstetric_*``): a 4 g
  loading dose and 2 g/h given whatever the serum Mg, charted as ingredient
  ``magnesium_sulfate_obstetric``. The SQL never counts it as repletion, so without the
  exclusion these women look *unexposed*, while their calcium falls under the infusion
  (hypermagnesaemia suppresses PTH and raises calciuria): the unexposed arm looks worse and
  Mg repletion looks better than it is, in the null world too;
- **CRRT with citrate anticoagulation** (``World.crrt_*``): the circuit's calcium infusion,
  charted as ingredient ``citrate_crrt`` (never a calcium supplement: the patient looks
  *uncomplicated*), is titrated to a systemic ionized-Ca target, so calcium rises towards it
  whatever Mg does; the unit's protocol also replaces Mg, so these patients are more often
  exposed: their circuit-driven rise is credited to Mg;
- **intermittent haemodialysis** (``World.dialysis_*``): sessions written to care_events as
  ``dialysis``; the dialysate sets Mg and Ca (calcium falls between sessions) and IV Mg is
  withheld, so the unexposed arm holds more patients whose calcium is falling for another
  reason.

Membership is drawn from its own stream (``SeedSequence([seed, EXCLUSION_STREAM, batch])``),
one uniform per population per stay, drawn whatever the switches; the three are mutually
exclusive (obstetric first, then CRRT, then dialysis), so each excluded stay has one reason.
Everything else is a deterministic function of the membership and the stay's hours, so the
known-truth replay (:mod:`mgca.synthetic.truth`) rebuilds it from the manifest: an eligible
episode's truth is replayed under the same care, and the excluded stays never reach the
cohort whose truth is asked for. The obstetric infusion and the CRRT calcium are not Mg
repletion: the replay's control arm ("no Mg in the grace period") does not stop them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mgca.engine.database import CARE_EVENTS_FILE
from mgca.synthetic.population import US_PER_HOUR, Population
from mgca.synthetic.world import World

OBSTETRIC_INGREDIENT = "magnesium_sulfate_obstetric"
"""Ingredient of the charted obstetric MgSO4 (sql/reference/ingredients.csv role
'obstetric_magnesium')."""
CRRT_INGREDIENT = "citrate_crrt"
"""Ingredient of the charted citrate-CRRT calcium (ingredients.csv role 'crrt_citrate')."""
DIALYSIS_EVENT = "dialysis"
"""care_events event of a haemodialysis session."""

EXCLUSION_STREAM = 6
"""``SeedSequence([seed, EXCLUSION_STREAM, batch])``: the membership draws' own stream."""

OBSTETRIC_LOADING_DOSE_G = 4.0
"""MgSO4 loading dose (g) at the start of the obstetric infusion (then 2 g/h)."""
OBSTETRIC_MAINTENANCE_G_PER_HOUR = 2.0
"""MgSO4 maintenance rate (g/h), charted as one 2 g row per hour of the infusion."""
CRRT_CALCIUM_MMOL_PER_HOUR = 1.7
"""Systemic calcium infusion of citrate CRRT (mmol elemental Ca per hour; a usual rate with
regional citrate anticoagulation, modelling choice), charted every
``World.crrt_chart_every_hours`` as the amount given since the last row."""


def exclusions_on(world: World) -> bool:
    """True when any excluded population is switched on."""
    return (
        world.obstetric_fraction > 0 or world.crrt_fraction > 0 or (world.dialysis_ckd_fraction > 0)
    )


def dialysis_on(world: World) -> bool:
    """True when haemodialysis stays (and so care_events rows) can occur."""
    return world.dialysis_ckd_fraction > 0


def draw_membership(
    world: World, pop: Population, stay: np.ndarray, seed: int, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(obstetric, crrt, dialysis)``: bool per stay of the batch, mutually exclusive."""
    w = world
    n = stay.size
    rng = np.random.default_rng(np.random.SeedSequence([seed, EXCLUSION_STREAM, batch]))
    u_obstetric, u_crrt, u_dialysis = rng.random(n), rng.random(n), rng.random(n)
    subj = pop.subject_index[stay]
    age = pop.age_years()[stay]
    lo, hi = w.obstetric_age_years
    of_age = (pop.sex[subj] == "F") & (age >= lo) & (age <= hi)
    obstetric = of_age & (u_obstetric < w.obstetric_fraction)
    crrt = ~obstetric & (u_crrt < w.crrt_fraction)
    dialysis = ~obstetric & ~crrt & pop.ckd[subj] & (u_dialysis < w.dialysis_ckd_fraction)
    return obstetric, crrt, dialysis


def setpoint_drops(
    world: World, obstetric: np.ndarray, crrt: np.ndarray, dialysis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-stay drops of the Mg and corrected-Ca set points (mmol/L) of the three
    populations (pregnancy; CRRT effluent losses and acute illness; dialysate and CKD-MBD)."""
    w = world
    mg = (
        w.obstetric_mg_setpoint_drop_mmol_l * obstetric
        + w.crrt_mg_setpoint_drop_mmol_l * crrt
        + w.dialysis_mg_setpoint_drop_mmol_l * dialysis
    )
    ca = (
        w.obstetric_ca_setpoint_drop_mmol_l * obstetric
        + w.crrt_ca_setpoint_drop_mmol_l * crrt
        + w.dialysis_ca_setpoint_drop_mmol_l * dialysis
    )
    return mg, ca


class ExclusionDynamics:
    """The hour-by-hour physiology and care of the excluded populations for one batch.

    ``obstetric``, ``crrt``, ``dialysis``, ``los_hours``: per column of the simulation.
    Call :meth:`advance` once per hour ``h >= 1`` before reading the shifts of hour ``h``.
    Only +, -, *, / and comparisons inside the hourly loop (the decay constant is computed
    once), like the engine.
    """

    def __init__(
        self,
        world: World,
        obstetric: np.ndarray,
        crrt: np.ndarray,
        dialysis: np.ndarray,
        los_hours: np.ndarray,
    ) -> None:
        self.w = world
        self.obstetric = obstetric
        self.crrt = crrt.astype(np.float64)
        self.dialysis = dialysis.astype(np.float64)
        self.los = los_hours
        self.decay = float(np.exp(-1.0 / world.obstetric_tau_hours))
        self.infusion = np.zeros(obstetric.size)  # first-order infusion state, 0..1

    def _infusing(self, h: int) -> np.ndarray:
        start = self.w.obstetric_start_hour
        return (
            self.obstetric
            & (h >= start)
            & (h < start + self.w.obstetric_infusion_hours)
            & (h <= self.los)
        )

    def advance(self, h: int) -> None:
        """Move the obstetric infusion state from hour ``h - 1`` to ``h``."""
        running = self._infusing(h - 1).astype(np.float64)
        self.infusion = self.infusion * self.decay + (1.0 - self.decay) * running

    def mg_shift(self) -> np.ndarray:
        """Rise of latent Mg (mmol/L) under the obstetric infusion at the current hour."""
        return self.w.obstetric_mg_rise_mmol_l * self.infusion

    def ca_target(self, target: np.ndarray, h: int) -> np.ndarray:
        """The corrected-Ca target (mmol/L) at hour ``h`` given the usual one: lowered under
        the obstetric infusion and between dialysis sessions, pulled towards the CRRT
        target by the circuit's calcium infusion."""
        w = self.w
        out = target - w.obstetric_ca_drop_mmol_l * self.infusion
        first = w.dialysis_first_session_hour
        since = (h - first) % w.dialysis_interval_hours if h >= first else 0
        out = out - self.dialysis * (w.dialysis_ca_fall_mmol_l_per_day / 24.0 * since)
        weight = self.crrt * (w.crrt_ca_clamp * min(h / w.crrt_titration_hours, 1.0))
        return out * (1.0 - weight) + weight * w.crrt_ca_target_mmol_l

    def policy_shift(self, cols: np.ndarray, h: int) -> np.ndarray:
        """Logit shift of the usual-care IV Mg order at hour ``h`` for columns ``cols``:
        up on CRRT (protocol replacement), down on dialysis (withheld), minus infinity for an
        obstetric stay up to the end of its infusion (the obstetric order replaces it)."""
        w = self.w
        shift = w.crrt_mg_policy_coef * self.crrt[cols] - (
            w.dialysis_mg_policy_coef * self.dialysis[cols]
        )
        end = w.obstetric_start_hour + w.obstetric_infusion_hours
        return np.where(self.obstetric[cols] & (h <= end), -np.inf, shift)


def obstetric_doses(
    world: World, obstetric: np.ndarray, los_hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(column, hour, grams)`` of every charted obstetric MgSO4 row in the stay: the loading
    dose at the start, then 2 g each hour of the infusion."""
    w = world
    cols = np.flatnonzero(obstetric)
    hours = w.obstetric_start_hour + np.arange(w.obstetric_infusion_hours)
    c = np.repeat(cols, hours.size)
    h = np.tile(hours, cols.size)
    grams = np.full(c.size, OBSTETRIC_MAINTENANCE_G_PER_HOUR)
    load_h = np.full(cols.size, w.obstetric_start_hour)
    c, h = np.r_[cols, c], np.r_[load_h, h]
    grams = np.r_[np.full(cols.size, OBSTETRIC_LOADING_DOSE_G), grams]
    keep = h <= los_hours[c]
    return c[keep], h[keep], grams[keep]


def crrt_calcium_rows(
    world: World, crrt: np.ndarray, los_hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(column, hour, mmol)`` of every charted citrate-CRRT calcium row: from admission
    every ``crrt_chart_every_hours`` hours to the end of the stay."""
    every = world.crrt_chart_every_hours
    cols = np.flatnonzero(crrt)
    if cols.size == 0:
        return cols, cols.copy(), np.zeros(0)
    n_max = int(los_hours.max()) // every + 1
    k = every * np.arange(n_max)[:, None] + np.zeros(cols.size, dtype=np.int64)[None, :]
    j, i = np.nonzero(k <= los_hours[cols][None, :])
    c, h = cols[i], k[j, i]
    return c, h, np.full(c.size, CRRT_CALCIUM_MMOL_PER_HOUR * every)


def dialysis_sessions(
    world: World, dialysis: np.ndarray, los_hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(column, start hour, end hour)`` of every haemodialysis session in the stay."""
    w = world
    cols = np.flatnonzero(dialysis)
    if cols.size == 0:
        return cols, cols.copy(), cols.copy()
    n_max = int(los_hours.max()) // w.dialysis_interval_hours + 1
    k = (
        w.dialysis_first_session_hour
        + w.dialysis_interval_hours * np.arange(n_max)[:, None]
        + np.zeros(cols.size, dtype=np.int64)[None, :]
    )
    j, i = np.nonzero(k <= los_hours[cols][None, :])
    c, start = cols[i], k[j, i]
    end = np.minimum(start + w.dialysis_session_hours, los_hours[c])
    return c, start, end


def dialysis_care_table(
    world: World,
    pop: Population,
    stay: np.ndarray,
    dialysis: np.ndarray,
    los_hours: np.ndarray,
    schema: pa.Schema,
) -> pa.Table:
    """care_events rows (``schema``) of the batch's haemodialysis sessions."""
    c, start_h, end_h = dialysis_sessions(world, dialysis, los_hours)
    admit = pop.admit_us[stay[c]]
    col = pa.array(c, pa.int64())
    enc = pa.array(pop.encounter_ids[stay], pa.string())
    subj = pa.array(pop.subject_ids[pop.subject_index[stay]], pa.string())
    return pa.table(
        {
            "subject_id": pc.take(subj, col),
            "encounter_id": pc.take(enc, col),
            "start_time": pa.array(admit + start_h * US_PER_HOUR, pa.timestamp("us")),
            "end_time": pa.array(admit + end_h * US_PER_HOUR, pa.timestamp("us")),
            "event": pa.array([DIALYSIS_EVENT] * c.size, pa.string()),
            "source_code": pa.array(["mgca-synthetic:haemodialysis"] * c.size, pa.string()),
        },
        schema=schema,
    )


def strip_exclusion_records(data_dir: Path, out_dir: Path) -> Path:
    """Copy a generated folder to ``out_dir`` without the records the exclusions read (the
    obstetric MgSO4 and citrate-CRRT rows, the dialysis sessions): the same hospital as a
    source that codes none of them would deliver it, for measuring what the exclusions
    defend against. Returns ``out_dir`` (which must not exist)."""
    shutil.copytree(data_dir, out_dir)
    path = out_dir / "medication_administrations.parquet"
    meds = pq.read_table(path)
    drop = pc.is_in(meds["ingredient"], value_set=pa.array([OBSTETRIC_INGREDIENT, CRRT_INGREDIENT]))
    pq.write_table(meds.filter(pc.invert(drop)), path)
    care = out_dir / CARE_EVENTS_FILE
    if care.exists():
        events = pq.read_table(care)
        pq.write_table(events.filter(pc.not_equal(events["event"], DIALYSIS_EVENT)), care)
    return out_dir
