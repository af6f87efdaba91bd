-- cohort_eligibility: the eligibility criteria as data, and the first one each stay fails.
--
-- Reads:  encounters, lab_harmonised, calcium_corrected, index_events, index_exposure,
--         index_severity, index_covariates, index_outcome, study_config.
-- Writes: eligibility_steps (step_order, step, exclusion_reason: the attrition steps),
--         cohort_eligibility (one row per encounter: first_failed_step, exclusion_reason;
--         both null for an analysed episode).
--
-- Steps, applied in order; a stay is counted under the first one it fails only:
--   1 encounters in source
--   2 at least one used Mg and one classifiable Ca result in the stay: a used ionized Ca or
--     a total Ca corrected with an albumin of the look-back (index_events.sql hierarchy)
--   3 an index event (index_events: concurrent hypoMg + hypoCa)
--   4 adult: encounters.age_years >= cfg.min_age_years (years, default 18); unknown age fails
--   5 no obstetric MgSO4 in the stay up to index + cfg.grace_hours (hours, default 6)
--     (index_exposure.obstetric_mg_by_grace; MgSO4 given for another indication)
--   6 no citrate-CRRT calcium in the stay up to index + cfg.grace_hours
--     (index_exposure.crrt_citrate_by_grace; a patient on CRRT charted as its calcium
--     replacement).
--   7 no dialysis (haemodialysis, CRRT, peritoneal) started in the stay up to index +
--     cfg.grace_hours (index_severity.dialysis_by_grace; care_events 'dialysis', only where
--     the source records it: dialysate sets calcium and magnesium, not the Mg dose)
--   8 no Mg repletion at or before index in the stay (index_exposure.prior_mg_repletion)
--   9 baseline creatinine in [index - cfg.baseline_lookback_hours, index]
--  10 outcome corrected Ca within cfg.horizon_hours +/- cfg.outcome_tolerance_hours
--     = analysed episodes (with cfg.index_on_ionized_calcium_only, the ionized-only
--     sensitivity cohort: an ionized Ca in that window instead)

CREATE OR REPLACE TABLE eligibility_steps AS
SELECT
    CAST(step_order AS INTEGER) AS step_order,
    CAST(step AS VARCHAR) AS step,
    CAST(exclusion_reason AS VARCHAR) AS exclusion_reason
FROM (
    VALUES
        (1, 'encounters in source', NULL),
        (2, 'with a used Mg and an ionized or albumin-corrected Ca result',
            'no used Mg result, or no ionized Ca and no total Ca with an albumin within '
            || 'albumin_lookback_hours before it, in the stay'),
        (3, 'with concurrent hypoMg and hypoCa (index event)',
            'no low Mg and low ionized or corrected Ca drawn within concurrent_window_hours'),
        (4, 'adults', 'age below min_age_years or unknown'),
        (5, 'no obstetric MgSO4 by the end of the grace period',
            'obstetric MgSO4 (seizure prophylaxis) given in the stay at or before index + '
            || 'grace_hours'),
        (6, 'no citrate-CRRT calcium by the end of the grace period',
            'calcium replacement of citrate CRRT given in the stay at or before index + '
            || 'grace_hours (on CRRT)'),
        (7, 'no dialysis by the end of the grace period',
            'dialysis (haemodialysis, CRRT or peritoneal) started in the stay at or before '
            || 'index + grace_hours'),
        (8, 'no Mg repletion at or before index',
            'Mg given at or before index in the stay (prevalent user)'),
        (9, 'baseline creatinine available',
            'no creatinine within baseline_lookback_hours before index'),
        (10, 'analysed episodes (outcome measured)',
            'no corrected Ca within horizon_hours +/- outcome_tolerance_hours '
            || '(discharged, died or not re-tested)')
) AS steps (step_order, step, exclusion_reason);

CREATE OR REPLACE TABLE cohort_eligibility AS
WITH
stays_with_mg AS (
    SELECT DISTINCT encounter_id
    FROM lab_harmonised
    WHERE analyte = 'magnesium' AND status = 'used'
),

stays_with_classifiable_ca AS (
    SELECT encounter_id
    FROM calcium_corrected
    WHERE ca_corrected_mmol_l IS NOT NULL

    UNION

    SELECT encounter_id
    FROM lab_harmonised
    WHERE analyte = 'calcium_ionized' AND status = 'used'
),

first_failure AS (
    SELECT
        e.subject_id,
        e.encounter_id,
        CASE
            WHEN mg.encounter_id IS NULL OR ca.encounter_id IS NULL THEN 2
            WHEN i.encounter_id IS NULL THEN 3
            WHEN e.age_years IS NULL OR e.age_years < cfg.min_age_years THEN 4
            WHEN x.obstetric_mg_by_grace THEN 5
            WHEN x.crrt_citrate_by_grace THEN 6
            WHEN sev.dialysis_by_grace THEN 7
            WHEN x.prior_mg_repletion THEN 8
            WHEN cov.baseline_creatinine_umol_l IS NULL THEN 9
            -- the ionized-only cohort needs the ionized outcome instead
            WHEN cfg.index_on_ionized_calcium_only AND o.outcome_ca_ionized_mmol_l IS NULL
                THEN 10
            WHEN NOT cfg.index_on_ionized_calcium_only
                AND o.outcome_ca_corrected_mmol_l IS NULL THEN 10
        END AS first_failed_step
    FROM encounters AS e
    CROSS JOIN study_config AS cfg
    LEFT JOIN stays_with_mg AS mg
        ON mg.encounter_id = e.encounter_id
    LEFT JOIN stays_with_classifiable_ca AS ca
        ON ca.encounter_id = e.encounter_id
    LEFT JOIN index_events AS i
        ON i.encounter_id = e.encounter_id
    LEFT JOIN index_exposure AS x
        ON x.encounter_id = e.encounter_id
    LEFT JOIN index_severity AS sev
        ON sev.encounter_id = e.encounter_id
    LEFT JOIN index_covariates AS cov
        ON cov.encounter_id = e.encounter_id
    LEFT JOIN index_outcome AS o
        ON o.encounter_id = e.encounter_id
)

SELECT
    f.subject_id,
    f.encounter_id,
    CAST(f.first_failed_step AS INTEGER) AS first_failed_step,
    s.exclusion_reason
FROM first_failure AS f
LEFT JOIN eligibility_steps AS s
    ON s.step_order = f.first_failed_step;
