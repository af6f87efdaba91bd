-- eligible_episodes: every eligible episode, whether or not its outcome was measured, with its
-- arm, its pre-index covariates, whether the primary outcome was observed and, when not, why.
--
-- Reads:  cohort_eligibility, eligibility_steps, index_events, index_exposure, index_covariates,
--         index_severity, index_outcome, encounters, persons, study_config.
-- Writes: eligible_episodes (one row per episode that passes every eligibility step before
--         the outcome step, 1-9 of cohort_eligibility.sql; ids: episode-level, private).
--
-- Why: the last attrition step drops every episode without a corrected Ca within
-- cfg.horizon_hours +/- cfg.outcome_tolerance_hours (hours, default 48 +/- 12). Who goes
-- home, who dies and who is re-tested depends on calcium, illness and the arm, so the
-- analysed episodes are not a random part of the eligible ones. The analyses weight the
-- analysed episodes back to these (inverse probability of censoring, censoring.py) and
-- report a composite outcome that counts going home alive (composite.py).
--
-- Columns:
--   subject_id, encounter_id, index_time, exposed            as analytic_cohort.sql
--   the pre-index covariates of the adjustment set           as analytic_cohort.sql (same
--                                                            sources; never post-index)
--   outcome_ca_corrected_mmol_l, outcome_hours_from_index   index_outcome (null if missing)
--   outcome_observed      TRUE when the primary outcome was measured (= step 10 passed)
--   outcome_missing_reason, for an unobserved outcome, the first that applies:
--     'died'               died in hospital (encounters.died_in_hospital) and the stay ended
--                          before index + cfg.horizon_hours (hours, default 48)
--     'discharged_alive'   not died, and discharge_time before index + cfg.horizon_hours
--     'not_retested'       still in hospital at the horizon, but no corrected Ca in the
--                          outcome window
--   hours_to_discharge    discharge_time - index_time, hours (end of the stay either way)
--   outcome_corrected, corrected_or_discharged_alive: see the column comments below
-- The horizon itself is the cut-off, not the end of the window: a patient who leaves inside
-- the window without a draw was in hospital at the horizon and simply not re-tested.

CREATE OR REPLACE TABLE eligible_episodes AS
SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,                                       -- index_events
    x.exposed,                                          -- index_exposure
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
    c.thiazide_before_index,
    c.calcium_before_index,
    c.vitamin_d_analogue_before_index,
    -- severity proxies at index (null in every row when the source does not record them)
    sev.icu_at_index,                                   -- index_severity
    sev.vasopressor_at_index,
    o.outcome_ca_corrected_mmol_l,                      -- index_outcome
    o.outcome_hours_from_index,
    o.outcome_ca_corrected_mmol_l IS NOT NULL AS outcome_observed,
    CAST(CASE
        WHEN o.outcome_ca_corrected_mmol_l IS NOT NULL THEN NULL
        WHEN date_diff('second', i.index_time, e.discharge_time) / 3600.0
            < cfg.horizon_hours AND COALESCE(e.died_in_hospital, FALSE) THEN 'died'
        WHEN date_diff('second', i.index_time, e.discharge_time) / 3600.0
            < cfg.horizon_hours THEN 'discharged_alive'
        ELSE 'not_retested'
    END AS VARCHAR) AS outcome_missing_reason,
    -- as DOUBLE before dividing: a decimal division would keep 6 decimals on Spark only
    CAST(date_diff('second', i.index_time, e.discharge_time) AS DOUBLE) / 3600.0
        AS hours_to_discharge,
    -- corrected at the outcome: corrected Ca at or above cfg.ca_corrected_low_mmol_l
    -- (mmol/L, default 2.15, the hypocalcaemia threshold); null when not measured
    o.outcome_ca_corrected_mmol_l >= cfg.ca_corrected_low_mmol_l AS outcome_corrected,
    -- the composite of the sensitivity analysis (composite.py): corrected at the outcome, or
    -- discharged alive before the horizon (a patient sent home is taken as recovered);
    -- false for a death, a missing re-test or a measured Ca below the threshold
    COALESCE(o.outcome_ca_corrected_mmol_l >= cfg.ca_corrected_low_mmol_l, FALSE)
        OR (
            o.outcome_ca_corrected_mmol_l IS NULL
            AND NOT COALESCE(e.died_in_hospital, FALSE)
            AND date_diff('second', i.index_time, e.discharge_time) / 3600.0 < cfg.horizon_hours
        ) AS corrected_or_discharged_alive
FROM cohort_eligibility AS el
CROSS JOIN study_config AS cfg
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
-- the outcome step is the last eligibility step (cohort_eligibility.sql): an episode failing
-- only it is eligible with its outcome unobserved
WHERE el.first_failed_step IS NULL
    OR el.first_failed_step = (SELECT MAX(step_order) FROM eligibility_steps);
