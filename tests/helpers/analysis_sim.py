"""Seeded simulated analytic cohorts with a known true effect, for the analysis tests.

Not a test module (no ``test_`` prefix): ``tests/analysis/test_analysis_*.py`` import it. The world:

- Each patient has 1-3 episodes and a patient-level random shift in outcome calcium, so
  episodes of one patient are correlated (clustering matters).
- Baseline Mg 0.25-0.69 mmol/L. A latent corrected Ca falls steeply at low Mg; the measured
  (qualifying) corrected Ca is latent + measurement noise, and episodes are selected on the
  measured value < 2.15 mmol/L, so calcium rises on re-test without treatment (regression to
  the mean).
- Total Ca is derived from corrected Ca and albumin by the Payne formula (exactly collinear,
  as in the pipeline).
- Mg repletion is more likely at lower Mg and lower Ca (confounding by indication), and the
  outcome without treatment rises with the latent Ca, so the crude difference is biased down.
- The treatment effect (mmol/L) is heterogeneous: larger at lower Mg and lower creatinine.
  Its truth is the mean over the returned cohort of the conditional effect tau(X).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CA_LOW = 2.15  # mmol/L, selection threshold (StudyConfig default)


def _tau(mg: np.ndarray, creatinine: np.ndarray) -> np.ndarray:
    """Conditional average effect of Mg repletion on corrected Ca, mmol/L."""
    return 0.08 + 0.25 * (0.6 - mg) - 0.03 * np.log(creatinine / 90.0)


def simulate_cohort(
    n_patients: int = 1500,
    *,
    seed: int = 0,
    effect: bool = True,
    patient_sd: float = 0.08,
) -> tuple[pd.DataFrame, float]:
    """A cohort.parquet-shaped frame and its true sample ATE (mmol/L; 0 when ``effect=False``).

    Ids look like ``SUBJ-00042`` / ``ENC-000117``; index times fall in the year 2150.
    """
    rng = np.random.default_rng(seed)
    n_episodes = rng.integers(1, 4, size=n_patients)
    patient = np.repeat(np.arange(n_patients), n_episodes)
    u = rng.normal(0.0, patient_sd, n_patients)[patient]
    sex_p = rng.choice(["F", "M"], size=n_patients)[patient]
    m = len(patient) * 3  # oversample, then select on the measured calcium
    idx = np.resize(np.arange(len(patient)), m)

    mg = rng.uniform(0.25, 0.69, m)
    albumin = np.clip(rng.normal(30, 5, m), 15, 45)
    creatinine = np.exp(rng.normal(np.log(90), 0.5, m))
    age = np.clip(rng.normal(65, 15, m), 18, 95)
    latent = 2.10 - 0.35 * np.exp(-(mg - 0.25) / 0.1) + rng.normal(0, 0.12, m)
    measured = latent + rng.normal(0, 0.06, m)
    selected = measured < CA_LOW
    # keep the first selected draw per intended episode
    first = pd.Series(np.arange(m))[selected].groupby(idx[selected]).first().to_numpy()
    keep = np.sort(first)
    ep = idx[keep]

    mg, albumin, creatinine, age = mg[keep], albumin[keep], creatinine[keep], age[keep]
    latent, measured = latent[keep], measured[keep]
    lin = -0.3 - 6.0 * (mg - 0.45) - 4.0 * (measured - 1.95)
    exposed = rng.uniform(size=len(keep)) < 1 / (1 + np.exp(-lin))
    tau = _tau(mg, creatinine) if effect else np.zeros(len(keep))
    y0 = (
        0.95
        + 0.55 * latent
        - 0.04 * np.log(creatinine / 90)
        + 0.001 * (age - 65)
        + u[ep]
        + rng.normal(0, 0.08, len(keep))
    )
    outcome = y0 + exposed * tau

    n = len(keep)
    base = pd.Timestamp("2150-03-14 08:00")
    index_time = base + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, n), unit="h")
    hours_to_mg = np.where(exposed, rng.uniform(0.2, 6.0, n), np.nan)
    cohort = pd.DataFrame(
        {
            "subject_id": [f"SUBJ-{p:05d}" for p in patient[ep]],
            "encounter_id": [f"ENC-{e:06d}" for e in ep],
            "index_time": index_time,
            "exposed": exposed,
            "hours_to_first_mg": hours_to_mg,
            "mg_dose_grace_mmol": np.where(exposed, 8.12, 0.0),
            "age_years": age,
            "sex": sex_p[ep],
            "baseline_mg_mmol_l": mg,
            "baseline_ca_corrected_mmol_l": measured,
            "baseline_ca_total_mmol_l": measured - 0.02 * (40 - albumin),
            "baseline_albumin_g_l": albumin,
            "baseline_creatinine_umol_l": creatinine,
            "baseline_potassium_mmol_l": rng.normal(3.6, 0.5, n),
            "baseline_phosphate_mmol_l": rng.normal(1.0, 0.3, n),
            "ppi_before_index": rng.uniform(size=n) < 0.3,
            "loop_diuretic_before_index": rng.uniform(size=n) < 0.25,
            "calcium_before_index": rng.uniform(size=n) < 0.1,
            # every 20th / 25th episode, without drawing from rng (the other columns keep
            # their values for a seed)
            "thiazide_before_index": np.arange(n) % 20 == 3,
            "vitamin_d_analogue_before_index": np.arange(n) % 25 == 7,
            "calcium_in_grace": rng.uniform(size=n) < 0.15,
            "outcome_ca_corrected_mmol_l": outcome,
            "outcome_hours_from_index": rng.uniform(36, 60, n),
        }
    )
    return cohort, float(tau.mean())


def trajectory_summary(
    cohort: pd.DataFrame, *, bin_hours: int = 12, before: int = 48, after: int = 96, seed: int = 0
) -> pd.DataFrame:
    """A ``calcium_trajectory_summary``-shaped aggregate for the cohort (figure tests).

    Each episode gets one corrected Ca per bin: its baseline before index, moving linearly to
    its outcome by 48 h after. The last bin holds only 5 episodes per group (to be hidden).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for exposed, group in cohort.groupby("exposed"):
        base = group["baseline_ca_corrected_mmol_l"].to_numpy()
        out = group["outcome_ca_corrected_mmol_l"].to_numpy()
        for start in range(-before, after, bin_hours):
            mid = start + bin_hours / 2
            frac = float(np.clip(mid / 48.0, 0.0, 1.0))
            values = base + frac * (out - base) + rng.normal(0, 0.05, len(base))
            if start + bin_hours >= after:
                values = values[:5]
            rows.append(
                {
                    "exposed": bool(exposed),
                    "hours_bin_start": start,
                    "n_results": len(values),
                    "n_episodes": len(values),
                    "mean_ca_corrected_mmol_l": float(values.mean()),
                    "sd_ca_corrected_mmol_l": float(values.std(ddof=1)),
                }
            )
    return pd.DataFrame(rows)


TRAJECTORY_TRUTH = {"slope_difference": 0.03, "difference_at_48h": 0.05 + 0.03 * 48 / 24}
"""True exposure effects of :func:`simulate_trajectory_points`: mmol/L per day, and mmol/L at
48 h (the default primary horizon) = shift 0.05 + 0.03 mmol/L/day × 2 days."""


def simulate_trajectory_points(
    cohort: pd.DataFrame, *, seed: int = 6, draws: tuple[int, int] = (2, 6)
) -> pd.DataFrame:
    """A ``calcium_trajectory_points``-shaped frame (``encounter_id, hours_from_index,
    ca_corrected_mmol_l``) for the cohort's episodes, with a known mixed-model truth.

    Each episode has ``draws[0]`` to ``draws[1] - 1`` corrected Ca draws at uniform times in
    (6 h, 96 h] after index: 2.0 mmol/L + a patient intercept (SD 0.08) + 0.01 mmol/L per day
    + (0.05 + 0.03 per day) if exposed + noise (SD 0.04). Truth: :data:`TRAJECTORY_TRUTH`.
    """
    rng = np.random.default_rng(seed)
    subjects = np.sort(cohort["subject_id"].unique())
    intercept = pd.Series(rng.normal(0.0, 0.08, len(subjects)), index=subjects)
    k = rng.integers(draws[0], draws[1], len(cohort))
    u = np.repeat(intercept.loc[cohort["subject_id"]].to_numpy(), k)
    t = np.repeat(cohort["exposed"].to_numpy(dtype=float), k)
    hours = rng.uniform(6, 96, int(k.sum()))
    days = hours / 24
    ca = 2.0 + u + (0.05 + 0.03 * days) * t + 0.01 * days + rng.normal(0, 0.04, len(hours))
    return pd.DataFrame(
        {
            "encounter_id": np.repeat(cohort["encounter_id"].to_numpy(), k),
            "hours_from_index": hours,
            "ca_corrected_mmol_l": ca,
        }
    )
