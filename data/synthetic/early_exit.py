"""Informative end of stay: discharge and death that depend on calcium, illness and the arm.

Off in the default world (``World.early_exit_probability_max == 0``: nothing here runs and no
random number is drawn, so the tables for a seed are the pinned ones). Switched on (threat
``informative_censoring``, :mod:`mgca.synthetic.threats`), each stay with a hypomagnesaemic
result may end soon after it:

- the decision is taken once, at the first draw whose recorded Mg is below
  ``early_exit_mg_below_mmol_l`` (mmol/L) and that has a recorded total Ca: for an index
  episode this is (almost always) the index draw itself;
- probability ``max · logistic(a + b_mg (Mg − 0.55) + b_ca (Ca − 2.00) + b_ill S + b_iv [IV
  Mg given within early_exit_treated_within_hours of that draw])``, ``Mg`` and ``Ca`` the
  recorded Mg and total Ca there (mmol/L), ``S`` the illness severity then (0-1): a milder
  deficit and a higher calcium send the patient home, a sicker patient stays (or dies), a
  patient just given IV Mg is kept for the re-check;
- the stay then ends ``U{early_exit_after_hours}`` hours after the draw (before the outcome
  window opens, so the outcome is missing); the patient died, rather than went home, with
  probability ``early_exit_death_base + early_exit_death_per_severity · S``.

The stay is cut *after* the simulation: every hour up to the new end is exactly what the
simulation produced (the engine is causal, hour by hour), draws and administrations after it
are dropped. The known truth replays the latent Ca at the horizon with or without the stay
ending (:mod:`mgca.synthetic.truth`), i.e. the effect had the patient stayed to be measured,
over every eligible episode.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mgca.synthetic.draws import BatchInputs
from mgca.synthetic.population import US_PER_HOUR, Population
from mgca.synthetic.simulate import MGSO4_IV, Events, SimResult
from mgca.synthetic.world import World

EXIT_STREAM = 5
"""``SeedSequence([seed, EXIT_STREAM, batch])``: the early-exit draws' own random stream."""


def early_exit_on(world: World) -> bool:
    """True when the informative end-of-stay switch is on."""
    return world.early_exit_probability_max > 0


def early_exit_hours(
    world: World, inp: BatchInputs, sim: SimResult, seed: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """New last in-stay grid hour of each stay of the batch, and whether it died then."""
    w = world
    n = inp.n
    rng = np.random.default_rng(np.random.SeedSequence([seed, EXIT_STREAM, batch]))
    u_exit, u_after, u_death = rng.random(n), rng.random(n), rng.random(n)
    cols = np.arange(n)
    low = sim.draw & sim.has_ca & (sim.meas_mg < w.early_exit_mg_below_mmol_l)
    decided = low.any(axis=0)
    h0 = np.argmax(low, axis=0)
    ca0 = np.nan_to_num(sim.meas_ca[h0, cols], nan=2.0)
    mg0 = np.nan_to_num(sim.meas_mg[h0, cols], nan=0.55)
    severity = sim.severity[np.minimum(h0, sim.severity.shape[0] - 1), cols]
    ev = sim.events
    iv = ev.given & (ev.kind == MGSO4_IV)
    treated = np.zeros(n, dtype=bool)
    soon = iv & (ev.hour > h0[ev.col]) & (ev.hour <= h0[ev.col] + w.early_exit_treated_within_hours)
    treated[ev.col[soon]] = True
    logit = (
        w.early_exit_intercept
        + w.early_exit_mg_coef * (mg0 - 0.55)
        + w.early_exit_ca_coef * (ca0 - 2.0)
        + w.early_exit_illness_coef * severity
        + w.early_exit_treated_coef * treated
    )
    p = w.early_exit_probability_max / (1.0 + np.exp(-logit))
    lo, hi = w.early_exit_after_hours
    end = h0 + lo + np.floor(u_after * (hi - lo + 1)).astype(np.int64)
    exits = decided & (u_exit < p) & (end < inp.los_hours)
    died = exits & (u_death < w.early_exit_death_base + w.early_exit_death_per_severity * severity)
    return np.where(exits, end, inp.los_hours), died


def cut_stays(
    pop: Population, inp: BatchInputs, sim: SimResult, los: np.ndarray
) -> tuple[BatchInputs, SimResult]:
    """The batch with every stay ended at ``los`` (grid hour): later draws and
    administrations dropped, and ``pop.discharge_us`` moved to the new end (in place; the
    minutes past the hour kept)."""
    grid = np.arange(sim.draw.shape[0])[:, None]
    inside = grid <= los[None, :]
    ev = sim.events
    keep = ev.hour <= los[ev.col]
    events = Events(
        col=ev.col[keep],
        hour=ev.hour[keep],
        kind=ev.kind[keep],
        dose=ev.dose[keep],
        given=ev.given[keep],
    )
    cut = los < inp.los_hours
    stays = inp.stay[cut]
    minutes = (pop.discharge_us[stays] - pop.admit_us[stays]) % US_PER_HOUR
    pop.discharge_us[stays] = pop.admit_us[stays] + los[cut] * US_PER_HOUR + minutes
    new_sim = replace(
        sim,
        draw=sim.draw & inside,
        has_ca=sim.has_ca & inside,
        events=events,
    )
    new_inp = replace(inp, los_hours=los, routine=inp.routine & inside[: inp.routine.shape[0]])
    return new_inp, new_sim
