"""The hourly engine: latent physiology, lab draws and usual-care decisions, vectorised over stays.

One loop over hours; every step works on all stays (columns) at once. Order within hour ``h``:

1. latent update from ``h-1`` to ``h`` (illness decays; Mg repletion and calcium gluconate
   given at ``h-1`` take effect; corrected Ca moves one step towards its set point);
2. draws taken at ``h`` measure the latent state (analytic noise, rounding to the reporting
   precision of the encounter's lab system);
3. decisions at ``h`` act on the *recorded* values of the draws taken at ``h - 1`` (results
   are available 1 h after the draw) and schedule administrations at ``h + delay``.

Latent model (units mmol/L unless stated; S = illness severity 0..1):

- ``Mg(h) = set - drop*S - min(deficit0 + drift*h, cap) + AR_Mg(h) + R(h)``, where
  ``R`` sums, over given doses, ``gain * elemental_mmol * ((1 - phi) exp(-dt/tau_Mg) +
  phi exp(-dt/tau_store))``: a transient rise (tau_Mg 24-36 h) plus the fraction ``phi``
  retained by depleted stores (tau_store 10 d), computed recursively hour by hour;
- corrected ``Ca(h) = slow(h) + G(h) + AR_Ca(h)``, ``slow`` first-order (time constant
  ``tau_Ca``) towards ``set - drop*S - f(Mg)``; ``f`` (effect world only) is a hyperbolically
  smoothed hinge ``k * (d + sqrt(d^2 + w^2)) / 2`` with ``d = hinge - Mg``;
  ``G`` = calcium gluconate, decaying with ``tau_gluconate``;
- albumin (g/L) ``= base - drop*S``; creatinine (µmol/L) ``= base * (1 + rise*S)``.

The populations a clinician excludes (:mod:`mgca.synthetic.exclusions`, off by default) add an
obstetric MgSO4 infusion to Mg and lower the Ca target under it, pull the Ca target of citrate
CRRT towards the circuit's target, lower it between dialysis sessions, and shift the usual-care
IV Mg decision; none of it reads latent Mg.

In the null world ``f`` is never evaluated, so no Ca value depends on Mg: the two arms of the
known-truth replay then share every Ca value bit for bit. The loop uses only +, -, *, /, sqrt,
rint and comparisons (no exp/log), which IEEE 754 makes exact and independent of which other
stays share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mgca.synthetic.draws import BatchInputs
from mgca.synthetic.exclusions import ExclusionDynamics, exclusions_on
from mgca.synthetic.world import (
    MG_OXIDE_TABLET_MMOL,
    MG_SULFATE_MMOL_PER_G,
    STAY_GRID_HOURS,
    UNITS,
    World,
)

# Administration event kinds (column ``kind`` of :class:`Events`).
MGSO4_IV = 0  # magnesium sulfate, dose in g, iv
MGO_ORAL = 1  # magnesium oxide, dose in mg, oral
CA_GLUCONATE_IV = 2  # calcium gluconate, dose in g, iv

CA_REFERENCE_ALBUMIN_G_L = 40.0
CA_ALBUMIN_SLOPE = 0.02  # mmol/L Ca per g/L albumin (Payne-type, clinical.md)


@dataclass(frozen=True)
class Intervention:
    """A per-column change to usual care (all arrays length n columns; NaN = none).

    - ``force_after_hours``: at the first decision point strictly after this hour, IV MgSO4
      is ordered and given with the usual-care dose (4 g if measured Mg < 0.5 mmol/L else 2 g)
      and usual-care delay ("treat" arm);
    - ``block_from_hours``/``block_to_hours``: no Mg of any kind is administered at an hour
      ``a`` with ``from < a <= to`` (the order is simply not made; "control" arm);
    - ``extra_mg_sulfate_g``/``extra_gluconate_g``: ``(column, hour, grams)`` doses added
      on top of usual care (given, iv), e.g. to test one dose's effect.
    """

    force_after_hours: np.ndarray
    block_from_hours: np.ndarray
    block_to_hours: np.ndarray
    extra_mg_sulfate_g: tuple[tuple[int, int, float], ...] = ()
    extra_gluconate_g: tuple[tuple[int, int, float], ...] = ()

    @classmethod
    def none(cls, n: int) -> Intervention:
        """Usual care for ``n`` columns."""
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), nan.copy())


@dataclass(frozen=True)
class Events:
    """Administrations (one row each): column, hour, kind (see constants), dose, given."""

    col: np.ndarray
    hour: np.ndarray
    kind: np.ndarray
    dose: np.ndarray
    given: np.ndarray


@dataclass(frozen=True)
class SimResult:
    """Latent trajectories ``(hour, col)`` and what was drawn, measured and given.

    ``meas_*`` hold the recorded value converted back to the internal unit (NaN when not
    measured or recorded null); ``rep_*`` the value as reported in the encounter's unit.
    """

    mg: np.ndarray  # latent serum Mg, mmol/L
    ca: np.ndarray  # latent albumin-corrected Ca, mmol/L
    severity: np.ndarray  # S(h)
    draw: np.ndarray  # (STAY_GRID_HOURS, col) bool: a specimen was drawn
    has_ca: np.ndarray  # total Ca measured in that draw
    rep_mg: np.ndarray
    rep_ca: np.ndarray
    rep_cr: np.ndarray
    meas_mg: np.ndarray
    meas_ca: np.ndarray
    meas_cr: np.ndarray
    events: Events
    n_nulls: dict[str, int] = field(default_factory=dict)

    def albumin(self, inputs: BatchInputs, world: World) -> np.ndarray:
        """Latent albumin (g/L), ``(hour, col)``."""
        hours = np.arange(self.severity.shape[0])[:, None]
        shift = unmeasured_shift(world, inputs, hours, np.arange(inputs.n))
        return (
            inputs.albumin_g_l
            - world.albumin_illness_drop_g_l * self.severity
            + world.unmeasured_albumin_rise_g_l * shift
        )


def _f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def report_values(
    values: np.ndarray, analyte: str, si: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Round internal-unit values to each column's reporting unit and precision.

    Returns ``(reported value, reported value converted back to the internal unit)``.
    """
    spec = UNITS[analyte]
    to_internal = np.where(si, spec.si_to_internal, spec.us_to_internal)
    scale = np.where(si, 10.0**spec.si_decimals, 10.0**spec.us_decimals)
    reported = np.rint(values / to_internal * scale) / scale
    return reported, reported * to_internal


def unmeasured_shift(
    world: World, inp: BatchInputs, hours: np.ndarray | int, cols: np.ndarray | slice
) -> np.ndarray:
    """The unmeasured illness factor's share at ``hours`` of stays ``cols``: ``U`` times the
    linear ramp ``min(hours / unmeasured_ramp_hours, 1)`` (dimensionless; multiply by a
    ``unmeasured_*_rise`` to get that analyte's rise). Zeros when the threat is off."""
    ramp = np.minimum(np.asarray(hours, dtype=np.float64) / world.unmeasured_ramp_hours, 1.0)
    return inp.unmeasured[cols] * ramp


def ca_hinge(world: World, mg: np.ndarray) -> np.ndarray:
    """Effect world: Ca set-point depression (mmol/L) caused by low Mg (mmol/L).

    A smoothed hinge ``slope * (d + sqrt(d^2 + w^2)) / 2`` with ``d = hinge - Mg``, then a
    smoothed cap at ``ca_hinge_max_mmol_l`` (PTH cannot fall below zero). With the defaults:
    0.015 at Mg 0.7 mmol/L, 0.06 at the 0.6 hinge, 0.27 at 0.5, 0.50 at 0.4, 0.67 at 0.3 and
    at most 0.7. Uses only sqrt, which IEEE 754 rounds exactly (no exp/log).
    """
    d = world.ca_hinge_mg_mmol_l - mg
    w = world.ca_hinge_smooth_mmol_l
    f = world.ca_hinge_slope * 0.5 * (d + np.sqrt(d * d + w * w))
    cap = world.ca_hinge_max_mmol_l
    e = world.ca_hinge_cap_smooth_mmol_l
    g = f - cap
    return 0.5 * (f + cap - np.sqrt(g * g + e * e))


def simulate(world: World, inp: BatchInputs, intervention: Intervention | None = None) -> SimResult:
    """Run the hourly engine over ``inp.n_hours`` hours for every column of ``inp``."""
    w = world
    n = inp.n
    n_hours = inp.n_hours
    iv = intervention if intervention is not None else Intervention.none(n)
    grid = STAY_GRID_HOURS
    los = inp.los_hours
    si = inp.si_units

    rho_mg = float(np.exp(-1.0 / w.mg_ar_tau_hours))
    rho_ca = float(np.exp(-1.0 / w.ca_ar_tau_hours))
    c_mg = w.mg_ar_sd_mmol_l * float(np.sqrt(1.0 - rho_mg * rho_mg))
    c_ca = w.ca_ar_sd_mmol_l * float(np.sqrt(1.0 - rho_ca * rho_ca))
    g_decay = float(np.exp(-1.0 / w.gluconate_tau_hours))
    null_r = np.float32(w.null_value_rate)

    mg_in = np.zeros((n_hours + 4, n))  # effective elemental Mg (mmol) administered at hour
    gl_in = np.zeros((n_hours + 4, n))  # calcium gluconate (g) administered at hour
    recheck = np.zeros((grid, n), dtype=bool)
    recheck_ca = np.zeros((grid, n), dtype=bool)
    out_mg = np.empty((n_hours, n))
    out_ca = np.empty((n_hours, n))
    out_s = np.empty((n_hours, n))
    draw = np.zeros((grid, n), dtype=bool)
    has_ca = np.zeros((grid, n), dtype=bool)
    rep = {k: np.full((grid, n), np.nan) for k in ("mg", "ca", "cr")}
    meas = {k: np.full((grid, n), np.nan) for k in ("mg", "ca", "cr")}
    ev: list[tuple[np.ndarray, ...]] = []
    n_nulls = {"magnesium": 0, "calcium_total": 0, "creatinine": 0}

    def record(
        cols: np.ndarray, hours: np.ndarray, kind: int, dose: np.ndarray, given: np.ndarray
    ) -> None:
        if cols.size:
            ev.append(
                (
                    cols.astype(np.int64),
                    np.asarray(hours, dtype=np.int64),
                    np.full(cols.size, kind, dtype=np.int8),
                    np.asarray(dose, dtype=np.float64),
                    np.asarray(given, dtype=bool),
                )
            )

    for col, hour, grams in iv.extra_mg_sulfate_g:
        if 0 <= hour < n_hours:
            mg_in[hour, col] += grams * MG_SULFATE_MMOL_PER_G
            record(np.array([col]), np.array([hour]), MGSO4_IV, np.array([grams]), np.array([True]))
    for col, hour, grams in iv.extra_gluconate_g:
        if 0 <= hour < n_hours:
            gl_in[hour, col] += grams
            record(
                np.array([col]),
                np.array([hour]),
                CA_GLUCONATE_IV,
                np.array([grams]),
                np.array([True]),
            )

    forced_done = np.zeros(n, dtype=bool)
    force_after = iv.force_after_hours
    block_from = iv.block_from_hours
    block_to = iv.block_to_hours

    s = inp.s0.copy()
    rep_r = np.zeros(n)  # repletion contribution R(h), mmol/L: transient part
    rep_s = np.zeros(n)  # ... and the part retained in refilled stores
    store_decay = float(np.exp(-1.0 / w.mg_store_tau_hours))
    phi = w.mg_retained_fraction
    glu = np.zeros(n)  # gluconate contribution G(h), mmol/L
    ar_mg = np.zeros(n)
    ar_ca = np.zeros(n)
    slow = np.zeros(n)
    target = np.zeros(n)
    prev_idx = np.zeros(0, dtype=np.int64)
    # Threat "unmeasured_confounding": off (all zero) in every named regime.
    confounded = (
        w.unmeasured_mg_policy_coef != 0.0
        or w.unmeasured_ca_rise_mmol_l != 0.0
        or w.unmeasured_albumin_rise_g_l != 0.0
    )
    unmeasured = inp.unmeasured
    all_cols = np.arange(n)

    # severity confounding (World.severity_*): mmol/L per hour lost from the Ca target over
    # the first 72 h of the stay
    n_proxies = inp.severity_icu.astype(float) + inp.severity_vasopressor.astype(float)
    severity_drift = w.severity_ca_drift_mmol_l_per_day / 24.0 * n_proxies
    severity_eta = w.severity_mg_policy_coef * n_proxies
    # populations a clinician excludes (mgca.synthetic.exclusions): off in every named regime
    excluded = (
        ExclusionDynamics(w, inp.obstetric, inp.crrt, inp.dialysis, los)
        if exclusions_on(w)
        else None
    )

    for h in range(n_hours):
        # 1. latent update
        if h == 0:
            ar_mg = w.mg_ar_sd_mmol_l * _f64(inp.z_mg_ar[0])
            ar_ca = w.ca_ar_sd_mmol_l * _f64(inp.z_ca_ar[0])
        else:
            s = s * inp.s_decay
            rep_r = rep_r * inp.mg_decay + inp.mg_gain * (1.0 - phi) * mg_in[h - 1]
            rep_s = rep_s * store_decay + inp.mg_gain * phi * mg_in[h - 1]
            glu = glu * g_decay + w.gluconate_rise_mmol_l_per_g * gl_in[h - 1]
            slow = slow + (target - slow) * inp.ca_step
            ar_mg = rho_mg * ar_mg + c_mg * _f64(inp.z_mg_ar[h])
            ar_ca = rho_ca * ar_ca + c_ca * _f64(inp.z_ca_ar[h])
            if excluded is not None:
                excluded.advance(h)
        drift = np.minimum(inp.mg_deficit0 + inp.mg_drift_per_hour * h, w.mg_drift_cap_mmol_l)
        mg = inp.mg_setpoint - w.mg_illness_drop_mmol_l * s - drift + ar_mg + rep_r + rep_s
        if excluded is not None:
            mg = mg + excluded.mg_shift()
        mg = np.maximum(mg, w.mg_floor_mmol_l)
        target = inp.ca_setpoint - w.ca_illness_drop_mmol_l * s - severity_drift * min(h, 72)
        if confounded:
            target = target + w.unmeasured_ca_rise_mmol_l * unmeasured_shift(w, inp, h, all_cols)
        if w.effect:
            target = target - ca_hinge(w, mg)
        if excluded is not None:
            target = excluded.ca_target(target, h)
        if h == 0:
            slow = target.copy()
        ca = slow + glu + ar_ca
        out_mg[h] = mg
        out_ca[h] = ca
        out_s[h] = s
        if h >= grid:
            continue

        # 2. draws at h (admission / morning panels and Mg re-checks), only within the stay
        routine_h = inp.routine[h]
        is_draw = routine_h | recheck[h]
        idx = np.flatnonzero(is_draw)
        if idx.size:
            draw[h, idx] = True
            full = routine_h[idx]
            with_ca = full | recheck_ca[h, idx]
            has_ca[h, idx] = with_ca
            u0 = inp.u_null[h, idx]
            col_si = si[idx]

            v = mg[idx] * (1.0 + w.cv_magnesium * _f64(inp.z_mg[h, idx]))
            r_v, m_v = report_values(v, "magnesium", col_si)
            null = u0 < null_r
            r_v[null] = np.nan
            m_v[null] = np.nan
            n_nulls["magnesium"] += int(null.sum())
            rep["mg"][h, idx] = r_v
            meas["mg"][h, idx] = m_v

            c_idx = idx[with_ca]
            alb = inp.albumin_g_l[c_idx] - w.albumin_illness_drop_g_l * s[c_idx]
            if confounded:
                alb = alb + w.unmeasured_albumin_rise_g_l * unmeasured_shift(w, inp, h, c_idx)
            total = ca[c_idx] - CA_ALBUMIN_SLOPE * (CA_REFERENCE_ALBUMIN_G_L - alb)
            v = total * (1.0 + w.cv_calcium * _f64(inp.z_ca[h, c_idx]))
            r_v, m_v = report_values(v, "calcium_total", si[c_idx])
            u_c = u0[with_ca]
            null = (u_c >= null_r) & (u_c < 2 * null_r)
            r_v[null] = np.nan
            m_v[null] = np.nan
            n_nulls["calcium_total"] += int(null.sum())
            rep["ca"][h, c_idx] = r_v
            meas["ca"][h, c_idx] = m_v

            r_idx = idx[full]
            cr = inp.creatinine_umol_l[r_idx] * (1.0 + w.creatinine_illness_rise * s[r_idx])
            v = cr * (1.0 + w.cv_creatinine * _f64(inp.z_cr[h, r_idx]))
            r_v, m_v = report_values(v, "creatinine", si[r_idx])
            u_r = u0[full]
            null = (u_r >= 2 * null_r) & (u_r < 3 * null_r)
            r_v[null] = np.nan
            m_v[null] = np.nan
            n_nulls["creatinine"] += int(null.sum())
            rep["cr"][h, r_idx] = r_v
            meas["cr"][h, r_idx] = m_v

        # 3. decisions at h on the results of the draws taken at h - 1
        p = prev_idx
        prev_idx = idx
        if h == 0 or p.size == 0:
            continue
        p = p[h <= los[p]]
        if p.size == 0:
            continue
        hp = h - 1
        mgm = meas["mg"][hp, p]
        cam = meas["ca"][hp, p]
        crm = meas["cr"][hp, p]
        eta = (
            w.mg_policy_intercept
            + w.mg_policy_mg_coef * (0.70 - mgm)
            + w.mg_policy_ca_coef * np.where(np.isnan(cam), 0.0, 2.15 - cam)
            - w.mg_policy_creatinine_coef * (crm > w.mg_policy_creatinine_high_umol_l)
            + severity_eta[p]
        )
        if w.mg_policy_normal_stop:
            eta = eta - w.mg_policy_normal_stop * (mgm >= 0.70)
        if confounded:
            eta = eta + w.unmeasured_mg_policy_coef * unmeasured[p]
        if excluded is not None:
            eta = eta + excluded.policy_shift(p, h)
        order = (eta > inp.logit_u_mg[h, p]) & ~np.isnan(mgm)
        forced = ~forced_done[p] & (h > force_after[p])
        forced_done[p[forced]] = True
        order |= forced
        given = (inp.u_given[h, p] >= w.mg_not_given_fraction) | forced
        dose_g = np.where(mgm < w.mg_high_dose_below_mmol_l, 4.0, 2.0)
        a = h + inp.delay_mg[h, p].astype(np.int64)
        blocked = (a > block_from[p]) & (a <= block_to[p])
        ok = order & ~blocked & (a <= los[p])
        if ok.any():
            q, aq, gq, dq = p[ok], a[ok], given[ok], dose_g[ok]
            record(q, aq, MGSO4_IV, dq, gq)
            mg_in[aq, q] += np.where(gq, dq * MG_SULFATE_MMOL_PER_G, 0.0)
            q2 = q[gq]
            rh = aq[gq] + inp.recheck_lag[h, q2].astype(np.int64)
            keep = rh <= los[q2]
            q2, rh = q2[keep], rh[keep]
            recheck[rh, q2] = True
            recheck_ca[rh, q2] |= inp.u_recheck_ca[h, q2] < w.recheck_calcium_fraction
            # detection-bias switch: extra Mg + Ca re-checks after each given dose
            for lag in w.detection_recheck_after_dose_hours:
                q3 = q[gq]
                rh3 = aq[gq] + int(lag)
                keep3 = rh3 <= los[q3]
                recheck[rh3[keep3], q3[keep3]] = True
                recheck_ca[rh3[keep3], q3[keep3]] = True

        routine_prev = inp.routine[hp, p]
        r = p[routine_prev]
        if r.size == 0:
            continue
        cam_r = cam[routine_prev]
        mgm_r = mgm[routine_prev]
        # Calcium gluconate: measured total Ca very low (routine panels only, never reads Mg).
        glu_ok = (cam_r < w.gluconate_below_total_ca_mmol_l) & (
            inp.u_gluconate[h, r] < w.gluconate_probability
        )
        a = h + inp.delay_gluconate[h, r].astype(np.int64)
        glu_ok &= a <= los[r]
        if glu_ok.any():
            q, aq = r[glu_ok], a[glu_ok]
            grams = np.where(inp.u_gluconate_dose[h, q] < w.gluconate_one_gram_fraction, 1.0, 2.0)
            record(q, aq, CA_GLUCONATE_IV, grams, np.ones(q.size, dtype=bool))
            gl_in[aq, q] += grams
        # Oral MgO on later days when the measured Mg is low-normal.
        if h >= w.mgo_from_hour:
            lo_mgo, hi_mgo = w.mgo_mg_range_mmol_l
            mgo_ok = (mgm_r >= lo_mgo) & (mgm_r < hi_mgo) & (inp.u_mgo[h, r] < w.mgo_probability)
            a = np.full(r.size, h + w.mgo_delay_hours, dtype=np.int64)
            mgo_ok &= ~((a > block_from[r]) & (a <= block_to[r])) & (a <= los[r])
            if mgo_ok.any():
                q, aq = r[mgo_ok], a[mgo_ok]
                record(q, aq, MGO_ORAL, np.full(q.size, 400.0), np.ones(q.size, dtype=bool))
                mg_in[aq, q] += MG_OXIDE_TABLET_MMOL * w.mg_oral_bioavailability

    if ev:
        cols, hours, kinds, doses, givens = (np.concatenate(x) for x in zip(*ev, strict=True))
    else:
        cols = hours = np.zeros(0, dtype=np.int64)
        kinds = np.zeros(0, dtype=np.int8)
        doses = np.zeros(0)
        givens = np.zeros(0, dtype=bool)
    return SimResult(
        mg=out_mg,
        ca=out_ca,
        severity=out_s,
        draw=draw,
        has_ca=has_ca,
        rep_mg=rep["mg"],
        rep_ca=rep["ca"],
        rep_cr=rep["cr"],
        meas_mg=meas["mg"],
        meas_ca=meas["ca"],
        meas_cr=meas["cr"],
        events=Events(col=cols, hour=hours, kind=kinds, dose=doses, given=givens),
        n_nulls=n_nulls,
    )
