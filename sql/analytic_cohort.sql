-- analytic_cohort: one row per analysed episode (the stays that pass every eligibility step),
-- with exactly the columns of cohort.parquet (ARCHITECTURE.md, units in the names); and
-- cohort_outcomes, calcium at every outcome horizon for those episodes (long format).
--
-- Reads:  cohort_eligibility, index_events, index_exposure, index_covariates, index_severity,
--         index_outcome, index_outcome_horizons, encounters, persons.
-- Writes: analytic_cohort, cohort_outcomes (subject_id, encounter_id, index_time,
--         horizon_hours, calcium_measure 'corrected' | 'ionized', value_mmol_l,
--         hours_from_index; one row per measured horizon and measure).
--
-- Every value is derived in the files named in the column comments; no threshold is applied
-- here (study_config thresholds are used there). Unknown or missing sex is written 'U'.
--
-- Why the comparison has no immortal time and no post-index covariate (target-trial
-- emulation, clinical.md "study-design traps"):
--   - Time zero is index_time, the draw time of the qualifying lab (index_events.sql), the
--     same moment for treated and untreated episodes; eligibility uses only what is known
--     at it (prevalent Mg users, given Mg at or before index, are excluded, not counted as
--     exposed).
--   - Exposure (exposed, mg_dose_grace_mmol, mg_route_grace) is decided within
--     (index, index + grace_hours] and nothing later: "ever given Mg during the stay" is
--     never used, so no survival time before the first dose is credited to the treated.
--   - Every outcome window starts after the grace period ends: horizon - tolerance >
--     grace_hours for horizon_hours and every outcome_horizons_hours entry (enforced by
--     mgca.config.StudyConfig), so no outcome is measured before exposure is known.
--   - Adjustment covariates are all measured at or before index: baseline labs in
--     [index - lookback, index], drugs in [index - lookback, index). calcium_in_grace and
--     calcium_dose_grace_mmol happen after index: descriptive co-interventions, never in
--     an adjustment set. Stays without an outcome leave at the last attrition step
--     (discharge or death before the horizon is reported there, not imputed).

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
    o.outcome_hours_from_index,
    -- further covariates and exposure detail, after the core columns so that their
    -- positions in cohort.parquet stay fixed
    c.thiazide_before_index,                            -- index_covariates
    c.nephrotoxic_drug_before_index,
    c.vitamin_d_analogue_before_index,
    x.calcium_dose_grace_mmol,                          -- index_exposure (post-index)
    x.mg_route_grace,
    -- the qualifying ionized Ca when the index was defined on it (index_events), else the
    -- last ionized Ca within ionized_window_hours before index (index_covariates)
    COALESCE(i.baseline_ca_ionized_mmol_l, c.baseline_ca_ionized_mmol_l)
        AS baseline_ca_ionized_mmol_l,
    o.outcome_ca_ionized_mmol_l,                        -- index_outcome
    -- the calcium hierarchy: which measure defined the index and the outcome
    i.index_calcium_measure,                            -- index_events
    o.outcome_calcium_measure,                          -- index_outcome
    -- severity proxies at index (null in every row when the source does not record them)
    sev.icu_at_index,                                   -- index_severity
    sev.vasopressor_at_index
FROM cohort_eligibility AS el
INNER JOIN index_events AS i
    ON i.encounter_id = el.encounter_id
INNER JOIN encounters AS e
    ON e.encounter_id = i.encounter_id
INNER JOIN index_exposure AS x
    ON x.encounter_id = i.encounter_id
INNER JOIN index_covariates AS c
    ON c.encounter_id = i.encounter_id
INNER JOIN index_severity AS sev
    ON sev.encounter_id = i.encounter_id
INNER JOIN index_outcome AS o
    ON o.encounter_id = i.encounter_id
LEFT JOIN persons AS p
    ON p.subject_id = i.subject_id
WHERE el.first_failed_step IS NULL;

CREATE OR REPLACE TABLE cohort_outcomes AS
SELECT
    h.subject_id,
    h.encounter_id,
    h.index_time,
    h.horizon_hours,
    h.calcium_measure,
    h.value_mmol_l,
    h.hours_from_index
FROM index_outcome_horizons AS h
INNER JOIN analytic_cohort AS a
    ON a.encounter_id = h.encounter_id;
