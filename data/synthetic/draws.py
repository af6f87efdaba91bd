"""Every random number of one batch of stays, drawn before any simulation.

Layout (the basis of the exact known-truth replay):

- stay-level draws: one value per stay (severity, exposures, gains, time constants, ...);
- ``(hour, stay)`` arrays for everything that can happen at an hour: measurement noise of the
  draw taken at that hour, and the uniforms of the clinician decision taken at that hour
  (order or not, given or not, delay, re-check lag, ...);
- latent AR(1) innovations as ``(hour, stay)`` arrays from their own streams, drawn
  time-major so that a longer horizon only appends rows (the first rows never change).

The simulation indexes these arrays by (hour, stay) and never draws anything itself, so an
intervention that changes what happens at one hour cannot shift which random number any other
hour, stay or arm uses. Streams: ``SeedSequence([seed, 1, batch])`` for the batch draws,
``[seed, 2, batch, 0|1]`` for the Mg / Ca innovations, ``[seed, 4, batch]`` for the draws of
the regime switches (discharge-planning skips, albumin intervals, ICU stays, the unmeasured
illness factor; ``[seed, 6, batch]``: membership of the excluded populations of
:mod:`mgca.synthetic.exclusions`). Those streams are always drawn, whatever the switches,
and are never read in the default world, so the default world's draws do not depend on the
switches (its tables per seed are pinned by
``tests/synthetic/test_synthetic_generator.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from mgca.synthetic.exclusions import draw_membership, exclusions_on, setpoint_drops
from mgca.synthetic.population import Population
from mgca.synthetic.world import STAY_GRID_HOURS, World

MAX_MORNINGS = 16
"""Routine-draw days considered per stay (covers 14 days plus the admission day)."""

MAX_ICU_GAPS = STAY_GRID_HOURS // 2 + 1
"""Intervals between ICU panels drawn per stay (enough for a panel every 2 h, the shortest
interval :class:`World` accepts)."""


@dataclass(frozen=True)
class BatchInputs:
    """Simulation inputs for a set of stays (columns). 1-D arrays are per stay; 2-D arrays are
    ``(hour, stay)``. Rates and gains are already converted to per-hour, per-mmol values."""

    stay: np.ndarray  # global stay index into the Population
    los_hours: np.ndarray  # last in-stay grid hour
    si_units: np.ndarray  # bool: second lab system (SI units)
    # illness
    s0: np.ndarray
    s_decay: np.ndarray  # exp(-1 h / tau_illness)
    # magnesium
    mg_setpoint: np.ndarray  # mmol/L, subject set point (+ CKD rise)
    mg_deficit0: np.ndarray  # mmol/L, chronic deficit at admission
    mg_drift_per_hour: np.ndarray  # mmol/L per h
    mg_gain: np.ndarray  # mmol/L per mmol elemental Mg
    mg_decay: np.ndarray  # exp(-1 h / tau_Mg)
    # calcium
    ca_setpoint: np.ndarray  # mmol/L, subject set point minus loop / CKD drops
    ca_step: np.ndarray  # 1 - exp(-1 h / tau_Ca)
    # albumin and creatinine
    albumin_g_l: np.ndarray  # stay baseline before illness
    creatinine_umol_l: np.ndarray  # stay baseline before illness
    # exposures and habits of the care team
    ppi: np.ndarray
    loop: np.ndarray
    pth_team: np.ndarray
    u_death: np.ndarray
    u_drugs: np.ndarray  # drives PPI / diuretic product and route choices
    routine: np.ndarray  # (hour, stay) bool: scheduled panel (admission + mornings)
    u_albumin_interval: np.ndarray  # (MAX_MORNINGS, stay): k-th albumin interval uniform
    icu: np.ndarray  # bool: ICU-like stay (frequent panels, mostly with ionized Ca)
    # measurement noise at each hour (standard normal)
    z_mg: np.ndarray
    z_ca: np.ndarray
    z_cr: np.ndarray
    u_null: np.ndarray  # < r: Mg null; < 2r: Ca null; < 3r: creatinine null
    # decision uniforms at each hour
    logit_u_mg: np.ndarray  # order IV Mg iff the policy's linear predictor > this
    u_given: np.ndarray
    delay_mg: np.ndarray  # int, hours from decision to administration
    recheck_lag: np.ndarray  # int, hours from administration to the Mg re-check
    u_recheck_ca: np.ndarray
    u_gluconate: np.ndarray
    u_gluconate_dose: np.ndarray
    delay_gluconate: np.ndarray
    u_mgo: np.ndarray
    # latent AR(1) innovations (hour, stay), standard normal, n_hours rows
    z_mg_ar: np.ndarray
    z_ca_ar: np.ndarray
    # severity proxies (World.severity_*): in an ICU for the whole stay; on a vasopressor
    severity_icu: np.ndarray
    severity_vasopressor: np.ndarray
    # unmeasured illness factor U (standard normal, per stay; read only when the threat
    # "unmeasured_confounding" is on)
    unmeasured: np.ndarray
    # populations a clinician excludes (mgca.synthetic.exclusions; all False when off)
    obstetric: np.ndarray
    crrt: np.ndarray
    dialysis: np.ndarray

    @property
    def n(self) -> int:
        return int(self.stay.size)

    @property
    def n_hours(self) -> int:
        return int(self.z_mg_ar.shape[0])

    def take(self, cols: np.ndarray) -> BatchInputs:
        """The same inputs for columns ``cols`` (repeats allowed: one column per arm)."""
        cols = np.asarray(cols, dtype=np.int64)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value[cols] if value.ndim == 1 else value[:, cols]
        return replace(self, **out)


def _uniform_int(u: np.ndarray, low: int, high: int) -> np.ndarray:
    """Map uniforms in [0, 1) to integers low..high inclusive (equal probabilities)."""
    k = low + np.floor(u.astype(np.float64) * (high - low + 1))
    return np.minimum(k, high).astype(np.int16)


def _innovations(seed: int, batch: int, which: int, n_hours: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, batch, which]))
    return rng.standard_normal((n_hours, n), dtype=np.float32)


def batch_inputs(
    world: World, pop: Population, seed: int, batch: int, batch_size: int, n_hours: int
) -> BatchInputs:
    """Draw all random numbers of batch ``batch`` (stays ``batch*batch_size ...``).

    ``n_hours`` (>= STAY_GRID_HOURS) rows of latent innovations are drawn; a larger value
    only appends rows, so the simulated stay is identical for any ``n_hours``.
    """
    if n_hours < STAY_GRID_HOURS:
        raise ValueError(f"n_hours must be >= {STAY_GRID_HOURS}, got {n_hours}")
    start = batch * batch_size
    stop = min(start + batch_size, pop.n_stays)
    if start >= stop:
        raise ValueError(f"batch {batch} is empty for {pop.n_stays} stays")
    stay = np.arange(start, stop)
    n = stay.size
    w = world
    subj = pop.subject_index[stay]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, batch]))

    # Stay-level draws (order is part of the layout: append, never reorder).
    ill = rng.random(n) < w.ill_fraction
    u_s0 = rng.random(n)
    s0 = np.where(ill, w.ill_s0_low + (1 - w.ill_s0_low) * u_s0, w.well_s0_high * u_s0)
    tau_s = rng.uniform(*w.illness_tau_hours, n)
    ppi = rng.random(n) < w.ppi_fraction
    loop = rng.random(n) < w.loop_diuretic_fraction
    drift_mult = np.exp(rng.normal(0.0, w.mg_drift_sd_log, n))
    mg_gain = w.mg_gain_mmol_l_per_mmol * np.exp(rng.normal(0.0, w.mg_gain_sd_log, n))
    tau_mg = rng.uniform(*w.mg_tau_hours, n)
    tau_ca = rng.uniform(*w.ca_tau_hours, n)
    alb_offset = rng.normal(0.0, w.albumin_stay_sd_g_l, n)
    pth_team = rng.random(n) < w.pth_stay_fraction
    si_units = rng.random(n) < w.si_lab_fraction
    u_death = rng.random(n)
    u_drugs = rng.random(n)
    u_chronic = rng.random(n)
    chronic_size = rng.exponential(w.mg_chronic_deficit_mean_mmol_l, n)
    u_morning = rng.random((MAX_MORNINGS, n))

    shape = (STAY_GRID_HOURS, n)
    z_mg = rng.standard_normal(shape, dtype=np.float32)
    z_ca = rng.standard_normal(shape, dtype=np.float32)
    z_cr = rng.standard_normal(shape, dtype=np.float32)
    u_null = rng.random(shape, dtype=np.float32)
    u_mg = rng.random(shape, dtype=np.float32).astype(np.float64)
    u_given = rng.random(shape, dtype=np.float32)
    u_delay = rng.random(shape, dtype=np.float32)
    u_lag = rng.random(shape, dtype=np.float32)
    u_recheck_ca = rng.random(shape, dtype=np.float32)
    u_gluconate = rng.random(shape, dtype=np.float32)
    u_gluconate_dose = rng.random(shape, dtype=np.float32)
    u_gdelay = rng.random(shape, dtype=np.float32)
    u_mgo = rng.random(shape, dtype=np.float32)

    # Derived per-stay quantities.
    ckd = pop.ckd[subj]
    drift_per_day = drift_mult * (
        w.mg_drift_ppi_mmol_l_per_day * ppi
        + w.mg_drift_loop_mmol_l_per_day * loop
        + w.mg_drift_illness_mmol_l_per_day * s0
    )
    p_chronic = (
        w.mg_chronic_probability
        + w.mg_chronic_ppi_probability * ppi
        + w.mg_chronic_loop_probability * loop
    )
    deficit0 = np.where(u_chronic < p_chronic, chronic_size, 0.0)
    ca_set = (
        pop.ca_setpoint_mmol_l[subj] - w.ca_loop_drop_mmol_l * loop - w.ca_ckd_drop_mmol_l * ckd
    )

    # Regime-switch draws, own stream (see the module docstring); fixed order, append only.
    rng_regime = np.random.default_rng(np.random.SeedSequence([seed, 4, batch]))
    u_discharge_skip = rng_regime.random((MAX_MORNINGS, n))
    u_albumin_interval = rng_regime.random((MAX_MORNINGS, n))
    u_icu = rng_regime.random(n)
    u_icu_gap = rng_regime.random((MAX_ICU_GAPS, n), dtype=np.float32)
    unmeasured = rng_regime.standard_normal(n)

    # Routine schedule: admission panel at hour 0, then one morning draw a day at clock
    # 05:mm or 06:mm (mm = admission minute), skipped if within the skip window after admission
    # and, with the discharge-planning switch, sometimes in the last hours of the stay.
    los = pop.los_hours[stay]
    clock = pop.admit_clock_hour()[stay]
    routine = np.zeros(shape, dtype=bool)
    routine[0, :] = True
    first5 = (5 - clock) % 24
    planning = w.discharge_planning_hours > 0 and w.discharge_planning_skip_probability > 0
    icu = u_icu < w.icu_fraction
    for d in range(MAX_MORNINGS):
        k = first5 + 24 * d + (u_morning[d] < 0.5)
        ok = (k > w.morning_skip_after_admission_hours) & (k <= los) & ~icu
        if planning:
            skipped = (k > los - w.discharge_planning_hours) & (
                u_discharge_skip[d] < w.discharge_planning_skip_probability
            )
            ok &= ~skipped
        routine[k[ok], np.flatnonzero(ok)] = True
    # ICU-like stays: a full panel from admission every U{icu_draw_interval_hours} hours
    # (no morning panels, no discharge-planning skips).
    if icu.any():
        lo_i, hi_i = w.icu_draw_interval_hours
        gaps = _uniform_int(u_icu_gap, lo_i, hi_i).astype(np.int64)
        k = np.zeros(n, dtype=np.int64)
        for j in range(MAX_ICU_GAPS):
            k = k + gaps[j]
            ok = icu & (k <= los)
            if not ok.any():
                break
            routine[k[ok], np.flatnonzero(ok)] = True

    # Order iff u < floor + (ceiling - floor) * logistic(eta), i.e. iff eta > logit(v) with
    # v = (u - floor) / (ceiling - floor): -inf below the floor, +inf above the ceiling.
    lo, hi = w.mg_policy_floor, w.mg_policy_ceiling
    v = (u_mg - lo) / (hi - lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        logit_u_mg = np.log(v) - np.log1p(-v)
    logit_u_mg[v <= 0] = -np.inf
    logit_u_mg[v >= 1] = np.inf
    lo_d, hi_d = w.mg_admin_delay_hours
    lo_l, hi_l = w.recheck_after_dose_hours
    # Severity proxies, own stream ([seed, 5, batch]) so that the default world is unchanged.
    rng_severity = np.random.default_rng(np.random.SeedSequence([seed, 5, batch]))
    severity_icu = rng_severity.random(n) < w.severity_icu_fraction
    severity_vasopressor = severity_icu & (rng_severity.random(n) < w.severity_vasopressor_fraction)
    # Excluded populations, own stream; their set points move only when the switch is on.
    obstetric, crrt, dialysis = draw_membership(w, pop, stay, seed, batch)
    mg_set = pop.mg_setpoint_mmol_l[subj] + w.mg_ckd_rise_mmol_l * ckd
    if exclusions_on(w):
        mg_drop, ca_drop = setpoint_drops(w, obstetric, crrt, dialysis)
        mg_set = mg_set - mg_drop
        ca_set = ca_set - ca_drop
    return BatchInputs(
        stay=stay,
        los_hours=los,
        si_units=si_units,
        s0=s0,
        s_decay=np.exp(-1.0 / tau_s),
        mg_setpoint=mg_set,
        mg_deficit0=deficit0,
        mg_drift_per_hour=drift_per_day / 24.0,
        mg_gain=mg_gain,
        mg_decay=np.exp(-1.0 / tau_mg),
        ca_setpoint=ca_set,
        ca_step=-np.expm1(-1.0 / tau_ca),
        albumin_g_l=pop.albumin_base_g_l[subj] + alb_offset,
        creatinine_umol_l=pop.creatinine_base_umol_l[subj],
        ppi=ppi,
        loop=loop,
        pth_team=pth_team,
        u_death=u_death,
        u_drugs=u_drugs,
        routine=routine,
        u_albumin_interval=u_albumin_interval,
        icu=icu,
        z_mg=z_mg,
        z_ca=z_ca,
        z_cr=z_cr,
        u_null=u_null,
        logit_u_mg=logit_u_mg,
        u_given=u_given,
        delay_mg=_uniform_int(u_delay, lo_d, hi_d),
        recheck_lag=_uniform_int(u_lag, lo_l, hi_l),
        u_recheck_ca=u_recheck_ca,
        u_gluconate=u_gluconate,
        u_gluconate_dose=u_gluconate_dose,
        delay_gluconate=_uniform_int(u_gdelay, 0, 1),
        u_mgo=u_mgo,
        z_mg_ar=_innovations(seed, batch, 0, n_hours, n),
        z_ca_ar=_innovations(seed, batch, 1, n_hours, n),
        severity_icu=severity_icu,
        severity_vasopressor=severity_vasopressor,
        unmeasured=unmeasured,
        obstetric=obstetric,
        crrt=crrt,
        dialysis=dialysis,
    )
