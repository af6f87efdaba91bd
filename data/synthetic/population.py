"""Subjects and stays: ids, dates, lengths of stay and subject-level traits.

Drawn once for the whole dataset from its own random stream (``SeedSequence([seed, 0])``),
so any batch of stays can be regenerated without touching the others. Stays are ordered by
subject; a subject's later stays start after the earlier ones end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mgca.synthetic.world import MAX_STAY_HOURS, World

US_PER_HOUR = 3_600_000_000
"""Microseconds per hour (times are int64 µs since 1970, naive)."""
US_PER_MINUTE = 60_000_000
_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Population:
    """Stay-level arrays (length ``n_stays``) and subject-level arrays (length ``n_subjects``).

    Times are int64 microseconds since 1970-01-01 (naive, shifted years 2150+).
    """

    # subjects
    subject_ids: np.ndarray  # str
    sex: np.ndarray  # "F" / "M" / "U"
    birth_us: np.ndarray  # int64
    mg_setpoint_mmol_l: np.ndarray
    ca_setpoint_mmol_l: np.ndarray
    albumin_base_g_l: np.ndarray
    ckd: np.ndarray  # bool
    creatinine_base_umol_l: np.ndarray
    pth_base_pg_ml: np.ndarray
    potassium_offset_mmol_l: np.ndarray
    phosphate_offset_mmol_l: np.ndarray
    sodium_offset_mmol_l: np.ndarray
    # stays
    encounter_ids: np.ndarray  # str
    subject_index: np.ndarray  # int, index into the subject arrays
    los_hours: np.ndarray  # int, last in-stay grid hour (48..336)
    admit_us: np.ndarray  # int64
    discharge_us: np.ndarray  # int64, >= admit + los_hours h

    @property
    def n_stays(self) -> int:
        return int(self.encounter_ids.size)

    @property
    def n_subjects(self) -> int:
        return int(self.subject_ids.size)

    def age_years(self) -> np.ndarray:
        """Age at admission of every stay (years)."""
        birth = self.birth_us[self.subject_index]
        return (self.admit_us - birth) / (US_PER_HOUR * 24 * _DAYS_PER_YEAR)

    def admit_clock_hour(self) -> np.ndarray:
        """Hour of day (0-23) of each admission."""
        return (self.admit_us // US_PER_HOUR) % 24


def _epoch_us(year: int) -> int:
    return int(np.datetime64(f"{year:04d}-01-01T00:00", "us").astype(np.int64))


def make_population(world: World, n_stays: int, seed: int) -> Population:
    """Draw subjects and stays for ``n_stays`` stays (deterministic in ``seed``)."""
    if n_stays < 1:
        raise ValueError(f"n_stays must be >= 1, got {n_stays}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    w = world

    # Stays per subject: 1, or 2-3 for a fraction of subjects (2 twice as common as 3).
    mf = w.multi_stay_subject_fraction
    k = rng.choice(np.array([1, 2, 3]), size=n_stays, p=[1 - mf, mf * 2 / 3, mf / 3])
    cum = np.cumsum(k)
    n_subj = int(np.searchsorted(cum, n_stays) + 1)
    k = k[:n_subj].copy()
    k[-1] -= int(cum[n_subj - 1] - n_stays)
    subject_index = np.repeat(np.arange(n_subj), k)
    first_of_subject = np.r_[True, subject_index[1:] != subject_index[:-1]]

    # Subject traits.
    u_sex = rng.random(n_subj)
    sex = np.where(
        u_sex < w.unknown_sex_fraction,
        "U",
        np.where(u_sex < w.unknown_sex_fraction + w.female_fraction, "F", "M"),
    )
    paediatric = rng.random(n_subj) < w.paediatric_fraction
    adult_age = np.clip(rng.normal(w.adult_age_mean_years, w.adult_age_sd_years, n_subj), 18, 96)
    child_age = rng.uniform(1.0, 17.9, n_subj)
    age_first = np.where(paediatric, child_age, adult_age)
    mg_set = rng.normal(w.mg_setpoint_mean_mmol_l, w.mg_setpoint_sd_mmol_l, n_subj)
    ca_set = rng.normal(w.ca_setpoint_mean_mmol_l, w.ca_setpoint_sd_mmol_l, n_subj)
    alb = rng.normal(w.albumin_mean_g_l, w.albumin_sd_g_l, n_subj)
    ckd = rng.random(n_subj) < w.ckd_fraction
    cr_median = np.where(ckd, w.creatinine_ckd_median_umol_l, w.creatinine_median_umol_l)
    cr = cr_median * np.exp(rng.normal(0.0, w.creatinine_sd_log, n_subj))
    pth = w.pth_median_pg_ml * np.exp(rng.normal(0.0, w.pth_sd_log, n_subj))
    k_off = rng.normal(0.0, 0.25, n_subj)
    p_off = rng.normal(0.0, 0.12, n_subj)
    na_off = rng.normal(0.0, 2.0, n_subj)

    # Stays: length, gaps between a subject's stays, dates.
    los = np.exp(rng.normal(np.log(w.los_median_days * 24), w.los_sigma_log, n_stays))
    los_hours = np.clip(np.rint(los), w.los_min_days * 24, MAX_STAY_HOURS).astype(np.int64)
    extra_min = rng.integers(0, 60, n_stays)
    discharge_offset = los_hours * US_PER_HOUR + extra_min * US_PER_MINUTE
    gap_days = w.readmission_gap_min_days + np.minimum(
        rng.exponential(w.readmission_gap_mean_days, n_stays), 300.0
    )
    gap_us = np.rint(gap_days * 24 * 60).astype(np.int64) * US_PER_MINUTE
    step = discharge_offset + gap_us  # from this admission to the subject's next one
    cum_step = np.cumsum(step) - step  # offset of each stay from the first stay overall
    group_start = cum_step[first_of_subject][subject_index]
    offset_in_subject = cum_step - group_start
    last = np.r_[subject_index[1:] != subject_index[:-1], True]
    span = np.zeros(n_subj, dtype=np.int64)
    span[subject_index[last]] = offset_in_subject[last] + discharge_offset[last]
    window = _epoch_us(w.first_year + w.n_years) - _epoch_us(w.first_year)
    u_start = rng.random(n_subj)
    first_admit_min = (u_start * np.maximum(window - span, 0) // US_PER_MINUTE).astype(np.int64)
    first_admit = _epoch_us(w.first_year) + first_admit_min * US_PER_MINUTE
    admit_us = first_admit[subject_index] + offset_in_subject
    discharge_us = admit_us + discharge_offset

    birth_us = (
        first_admit - np.rint(age_first * _DAYS_PER_YEAR * 24 * 60).astype(np.int64) * US_PER_MINUTE
    )

    # Ids: MIMIC-like 8-digit numbers as strings; encounter ids in random order.
    subj_num = 10_000_000 + np.cumsum(rng.integers(1, 60, n_subj))
    enc_num = 20_000_000 + np.cumsum(rng.integers(1, 60, n_stays))
    enc_num = rng.permutation(enc_num)

    return Population(
        subject_ids=subj_num.astype(str).astype(object),
        sex=sex.astype(object),
        birth_us=birth_us,
        mg_setpoint_mmol_l=mg_set,
        ca_setpoint_mmol_l=ca_set,
        albumin_base_g_l=alb,
        ckd=ckd,
        creatinine_base_umol_l=cr,
        pth_base_pg_ml=pth,
        potassium_offset_mmol_l=k_off,
        phosphate_offset_mmol_l=p_off,
        sodium_offset_mmol_l=na_off,
        encounter_ids=enc_num.astype(str).astype(object),
        subject_index=subject_index,
        los_hours=los_hours,
        admit_us=admit_us,
        discharge_us=discharge_us,
    )
