"""Design threats the simulator can switch on, one entry each, with the analysis that defends.

A :class:`Threat` turns one bias that real extracts have (and the default world does not) on
in a :class:`~mgca.synthetic.world.World`: ``threat.switch_on(world)`` returns a copy with only
that threat's parameters changed, for either world kind, so the null world stays null and the
truth is still replayed from the manifest. ``bench/threats.py`` runs every threat on and off
through the whole pipeline and reports bias, coverage and false-positive rate for the primary
estimate and every secondary one; the README's threat table is its output.

Add a threat here, nowhere else: its name is the key the bench, the tests and the README read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mgca.synthetic.world import World, WorldKind, default_world


@dataclass(frozen=True)
class Threat:
    """One design threat as a simulator switch.

    ``problem``: what goes wrong on real data, in a clinician's words; ``defence``: the
    analysis of mgca that answers it (its results.json name), or what the report says where
    the design cannot defend; ``switch_on``: the world with this threat on (pure function).
    """

    name: str
    problem: str
    defence: str
    switch_on: Callable[[World], World]


def _informative_end_of_stay(world: World) -> World:
    return replace(world, discharge_planning_hours=36, discharge_planning_skip_probability=0.6)


def _icu_retests(world: World) -> World:
    return replace(world, icu_fraction=0.3)


def _severity_confounding(world: World) -> World:
    return replace(world, severity_icu_fraction=0.3)


def _informative_censoring(world: World) -> World:
    # About a third of eligible episodes leave before the outcome window; a milder Mg deficit
    # and a higher calcium send the patient home, IV Mg keeps them for the re-check, the
    # sicker stay or die.
    return replace(
        world,
        early_exit_probability_max=0.9,
        early_exit_intercept=0.5,
        early_exit_mg_coef=25.0,
        early_exit_ca_coef=5.0,
        early_exit_illness_coef=-1.0,
        early_exit_treated_coef=-3.0,
        early_exit_death_base=0.05,
        early_exit_death_per_severity=0.4,
    )


def _recheck_stops_mg(world: World) -> World:
    return replace(world, icu_fraction=0.5, mg_policy_normal_stop=4.0)


def _unmeasured_confounding(world: World) -> World:
    # Per SD of the unmeasured factor: odds of Mg repletion x e^1.5, and over the first 72 h
    # of the stay corrected Ca +0.10 mmol/L, sodium +2.5 mmol/L, albumin +4 g/L (each about
    # two-thirds of its outcome's SD in the analysed cohort, so the negative controls carry
    # about the same standardised bias as the primary).
    return replace(
        world,
        unmeasured_mg_policy_coef=1.5,
        unmeasured_ca_rise_mmol_l=0.10,
        unmeasured_sodium_rise_mmol_l=2.5,
        unmeasured_albumin_rise_g_l=4.0,
    )


def _detection_bias(world: World) -> World:
    return replace(world, detection_recheck_after_dose_hours=(10, 14, 20, 28, 40, 52, 64))


def _excluded_populations(world: World) -> World:
    # Obstetric MgSO4 for 60 % of women aged 18-45 (about 4 % of stays), citrate CRRT for 4 %
    # of stays, haemodialysis for half the stays of CKD subjects (about 6 %); each population's
    # physiology and care are in World's "populations a clinician excludes" block.
    return replace(world, obstetric_fraction=0.6, crrt_fraction=0.04, dialysis_ckd_fraction=0.5)


THREATS: dict[str, Threat] = {
    threat.name: threat
    for threat in (
        Threat(
            name="informative_end_of_stay",
            problem=(
                "Routine bloods are often dropped once discharge is planned, so patients about "
                "to go home miss their 48-h calcium more often."
            ),
            defence="primary (complete cases; the missing outcomes are counted in the attrition)",
            switch_on=_informative_end_of_stay,
        ),
        Threat(
            name="informative_censoring",
            problem=(
                "Who has a 48-h calcium depends on calcium, illness and the arm: patients whose "
                "calcium is near normal go home, those just given IV Mg are kept for the "
                "re-check, the sickest die; the measured episodes are not a random part of "
                "the eligible ones."
            ),
            defence=(
                "primary (inverse probability of censoring weights over all eligible "
                "episodes; primary_complete_case beside it; composite "
                "composite_corrected_or_discharged_alive in missing_outcomes)"
            ),
            switch_on=_informative_censoring,
        ),
        Threat(
            name="icu_retests",
            problem=(
                "ICU-like stays have full panels every 4-6 h and mostly ionized calcium, so "
                "re-checks inside the grace period are frequent."
            ),
            defence="primary (exposure fixed at the end of the grace period)",
            switch_on=_icu_retests,
        ),
        Threat(
            name="severity_confounding",
            problem=(
                "The sickest patients (in an ICU, on a vasopressor) get Mg more readily and "
                "their calcium keeps falling, so an unadjusted comparison credits Mg with "
                "less than it does."
            ),
            defence=(
                "primary (adjusted for icu_at_index and vasopressor_at_index where the "
                "source records them; the notes say when it does not)"
            ),
            switch_on=_severity_confounding,
        ),
        Threat(
            name="recheck_stops_mg",
            problem=(
                "On ICU-like stays (half of them; labs every 4-6 h) a re-check that comes back "
                "normal stops Mg, inside the grace period or later, and a normal re-check also "
                "predicts a better calcium: who keeps to 'no Mg' depends on the re-checks."
            ),
            defence=(
                "per_protocol (clone-censor-weighting; the no-Mg clones' censoring is modelled "
                "on the latest Mg and calcium re-check; the Mg clones' only on what was known "
                "at time zero, so a re-check inside the grace period that stops Mg is not "
                "defended against: the report's per-protocol section says so)"
            ),
            switch_on=_recheck_stops_mg,
        ),
        Threat(
            name="unmeasured_confounding",
            problem=(
                "An illness factor no table records (how fast the patient is recovering) makes "
                "Mg repletion likelier and raises calcium, sodium and albumin over the next "
                "days, so the adjusted contrast credits Mg with part of the recovery."
            ),
            defence=(
                "calibration (negative-control outcomes sodium and albumin, KCl as a "
                "negative-control exposure and a pre-index placebo window calibrate the "
                "primary CI; results.json negative_controls, calibration)"
            ),
            switch_on=_unmeasured_confounding,
        ),
        Threat(
            name="detection_bias",
            problem=(
                "Treated patients get extra calcium re-checks after each Mg dose, so an "
                "outcome that counts any normal draw sees correction likelier and sooner in "
                "them even where Mg does nothing."
            ),
            defence=(
                "primary (one calcium at a fixed horizon ± tolerance, not any draw); "
                "calcium_corrected_at_horizon_risk_difference and "
                "calcium_corrected_fixed_looks_risk_difference (one value per pre-specified "
                "look, a missing look weighted by the primary's censoring model); the "
                "any-draw and every-draw secondaries are not defended and carry the caveat "
                "'descriptive only, not protected against detection bias'"
            ),
            switch_on=_detection_bias,
        ),
        Threat(
            name="excluded_populations",
            problem=(
                "Patients a clinician would never count are in the extract: women on "
                "obstetric MgSO4 (given whatever the serum Mg; calcium falls under it), "
                "patients on citrate CRRT (the circuit's calcium infusion sets calcium; the "
                "protocol replaces Mg) and patients on haemodialysis (the dialysate sets Mg "
                "and calcium; IV Mg is withheld). Counted as ordinary patients they look "
                "unexposed or uncomplicated and their calcium moves for reasons that are "
                "not Mg repletion."
            ),
            defence=(
                "primary (eligibility steps 5-7 exclude obstetric MgSO4, citrate-CRRT "
                "calcium and dialysis started by the end of the grace period, each counted "
                "in the attrition under its reason; dialysis only where the source records "
                "it in care_events)"
            ),
            switch_on=_excluded_populations,
        ),
    )
}
"""Every threat the simulator can switch on, by name."""


def threat_world(name: str, kind: WorldKind = "effect", base: World | None = None) -> World:
    """``base`` (default: the default world of ``kind``) with threat ``name`` switched on."""
    if name not in THREATS:
        raise ValueError(f"unknown threat {name!r}; choose one of {', '.join(THREATS)}")
    return THREATS[name].switch_on(base if base is not None else default_world(kind))
