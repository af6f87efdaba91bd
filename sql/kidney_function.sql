-- index_kidney_function: baseline kidney function of each analysed episode, for the
-- sensitivity analysis that excludes advanced kidney disease (albumin-corrected calcium
-- agrees poorly with ionized calcium there, clinical.md).
--
-- Reads:  analytic_cohort, study_config.
-- Writes: index_kidney_function (subject_id, encounter_id, index_time,
--         baseline_creatinine_umol_l DOUBLE, egfr_ml_min_1_73m2 DOUBLE,
--         advanced_ckd BOOLEAN).
--
-- eGFR by the race-free CKD-EPI 2021 creatinine equation (Inker LA et al. N Engl J Med
-- 2021;385:1737-49), mL/min/1.73 m2:
--   142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female]
--   Scr serum creatinine in mg/dL (umol/L / 88.4, clinical.md); k = 0.7 (female),
--   0.9 (male); a = -0.241 (female), -0.302 (male); age in years.
-- These are the equation's constants, not study thresholds. Null when creatinine, age or
-- sex ('U') is unknown. advanced_ckd: eGFR < cfg.advanced_ckd_egfr_ml_min_1_73m2
-- (mL/min/1.73 m2, default 30 = KDIGO G4-G5); null when eGFR is null.

CREATE OR REPLACE TABLE index_kidney_function AS
WITH
inputs AS (
    SELECT
        a.subject_id,
        a.encounter_id,
        a.index_time,
        a.baseline_creatinine_umol_l,
        a.baseline_creatinine_umol_l / 88.4 AS scr_mg_dl,
        a.age_years,
        CASE a.sex WHEN 'F' THEN 0.7 WHEN 'M' THEN 0.9 END AS kappa,
        CASE a.sex WHEN 'F' THEN -0.241 WHEN 'M' THEN -0.302 END AS alpha,
        CASE a.sex WHEN 'F' THEN 1.012 WHEN 'M' THEN 1.0 END AS sex_factor
    FROM analytic_cohort AS a
),

egfr AS (
    SELECT
        i.*,
        CASE
            WHEN i.scr_mg_dl > 0 AND i.age_years IS NOT NULL AND i.kappa IS NOT NULL THEN
                142.0
                * power(least(i.scr_mg_dl / i.kappa, 1.0), i.alpha)
                * power(greatest(i.scr_mg_dl / i.kappa, 1.0), -1.200)
                * power(0.9938, i.age_years)
                * i.sex_factor
        END AS egfr_ml_min_1_73m2
    FROM inputs AS i
)

SELECT
    g.subject_id,
    g.encounter_id,
    g.index_time,
    g.baseline_creatinine_umol_l,
    g.egfr_ml_min_1_73m2,
    g.egfr_ml_min_1_73m2 < cfg.advanced_ckd_egfr_ml_min_1_73m2 AS advanced_ckd
FROM egfr AS g
CROSS JOIN study_config AS cfg;
