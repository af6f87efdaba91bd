-- analytic_cohort: one row per analysed episode (the stays that pass every eligibility step),
-- with exactly the columns of cohort.parquet (ARCHITECTURE.md, units in the names).
--
-- Reads:  cohort_eligibility, index_events, index_exposure, index_covariates, index_outcome,
--         encounters, persons.
-- Writes: analytic_cohort.
--
-- Every value is derived in the files named in the column comments; no threshold is applied
-- here (study_config thresholds are used there). Unknown or missing sex is written 'U'.

CREATE OR REPLACE TABLE analytic_cohort AS
SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,                                       -- index_events
    x.exposed,                                          -- index_exposure
    x.hours_to_first_mg,
    x.mg_dose_grace_mmol,
    e.age_years,                                        -- encounters
    COALESCE(p.sex, 'U') AS sex,                        -- persons
    i.mg_mmol_l AS baseline_mg_mmol_l,                  -- index_events (qualifying values)
    i.ca_corrected_mmol_l AS baseline_ca_corrected_mmol_l,
    i.ca_total_mmol_l AS baseline_ca_total_mmol_l,
    i.albumin_g_l AS baseline_albumin_g_l,
    c.baseline_creatinine_umol_l,                       -- index_covariates
    c.baseline_potassium_mmol_l,
    c.baseline_phosphate_mmol_l,
    c.ppi_before_index,
    c.loop_diuretic_before_index,
    c.calcium_before_index,
    x.calcium_in_grace,                                 -- index_exposure
    o.outcome_ca_corrected_mmol_l,                      -- index_outcome
    o.outcome_hours_from_index
FROM cohort_eligibility AS el
INNER JOIN index_events AS i
    ON i.encounter_id = el.encounter_id
INNER JOIN encounters AS e
    ON e.encounter_id = i.encounter_id
INNER JOIN index_exposure AS x
    ON x.encounter_id = i.encounter_id
INNER JOIN index_covariates AS c
    ON c.encounter_id = i.encounter_id
INNER JOIN index_outcome AS o
    ON o.encounter_id = i.encounter_id
LEFT JOIN persons AS p
    ON p.subject_id = i.subject_id
WHERE el.first_failed_step IS NULL;
