"""The synthetic lab world: a seeded hospital whose true effect of Mg repletion is known.

Public API (contract)::

    generate(out_dir, n_stays=4000, world="effect", seed=0, progress=None, regime=None) -> Path
    true_effect(data_dir, pairs, grace_hours, horizon_hours) -> TrueEffect
    World  # all parameters (frozen dataclass); generate() also accepts a World instance
    REGIMES  # named presets {"default": default_world, "ward": ward_world}, kind -> World
    ward_world(kind) -> World; regime_world(regime, kind) -> World

Modules, one job each:

- :mod:`~mgca.synthetic.world`: parameters (units in the names), unit conversions, constants;
- :mod:`~mgca.synthetic.population`: subjects, stays, dates, ids (one global random stream);
- :mod:`~mgca.synthetic.draws`: every random number of a batch, drawn before simulating,
  indexed by stay or by (hour, stay);
- :mod:`~mgca.synthetic.simulate`: the hourly engine (latent Mg, Ca, illness; lab draws;
  usual-care decisions), with optional interventions;
- :mod:`~mgca.synthetic.tables`: canonical Arrow tables (post-hoc analytes, units, defects);
- :mod:`~mgca.synthetic.writer`: :func:`generate` (atomic folder publication, manifest);
- :mod:`~mgca.synthetic.truth`: :func:`true_effect` (treat vs control replay of each pair);
- :mod:`~mgca.synthetic.exclusions`: obstetric MgSO4, citrate CRRT and haemodialysis stays
  (threat ``excluded_populations``; off by default).

Identifiability by design: clinicians decide only at result times (draw + 1 h), on the
recorded values of that draw (measured Mg, total Ca, creatinine, after rounding to the lab's
reporting precision) and independent pre-drawn uniforms, never on latent states. Conditional
on the recorded index values, receiving Mg at the index decision is random.

Measured with the defaults (4,000 stays, seeds 0-4) on a simple cohort, the first draw per
stay with unrounded Mg < 0.70 mmol/L and albumin-corrected Ca < 2.15 mmol/L (albumin nearest
within 24 h): qualifying stays 16-18 % (effect world), 6-8 % (null world); Mg given at the
index decision in 51-55 % (effect) and 37-41 % (null) of them; true 48-h effect +0.085 to
+0.102 mmol/L, mean +0.093 (effect world), exactly 0.0 (null world). The pipeline rounds SI
values to reporting precision first (1.7 mg/dL reads as 0.70, not low), so its cohorts are
about 15-30 % smaller and its truths somewhat larger (+0.098 to +0.115 mmol/L over the seeds
of tests/recovery/test_study_recovery.py). 100,000 stays generate in about 8 s.

The ``ward`` regime (``generate(..., regime="ward")``, :func:`ward_world`) is harsher and
real-shaped: albumin on admission then every 2-4 days (66-67 % of total-Ca draws have one
within 24 h, against 85 %), about 80 % of index episodes given Mg within 6 h (80-88 % of the
pipeline's analysed episodes), routine bloods in the last 36 h before discharge skipped with
probability 0.6. Through the pipeline's SQL at 4,000 stays (seeds 0-2) it leaves 112-127
analysed episodes in the effect world (35-46 null) where the default leaves 382-392
(129-131); the true effect stays about +0.09 to +0.10 mmol/L and exactly 0.0 in the null world.
"""

from mgca.synthetic.truth import TrueEffect, true_effect, true_per_protocol_effect
from mgca.synthetic.world import (
    GENERATOR_VERSION,
    REGIMES,
    World,
    default_world,
    regime_world,
    ward_world,
)
from mgca.synthetic.writer import generate

__all__ = [
    "GENERATOR_VERSION",
    "REGIMES",
    "TrueEffect",
    "World",
    "default_world",
    "generate",
    "regime_world",
    "true_effect",
    "true_per_protocol_effect",
    "ward_world",
]
