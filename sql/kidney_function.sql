-- index_kidney_function: baseline kidney function of each analysed episode, for the
-- sensitivity analysis that excludes advanced kidney disease (albumin-corrected calcium
-- agrees poorly with ionized calcium there, clinical.md).
--
-- Reads:  analytic_cohort, egfr_ckd_epi_2021 (reference CSV: coefficients per sex),
--         unit_conversions (creatinine mg/dL -> umol/L factor, 88.4), study_config.
-- Writes: index_kidney_function (subject_id, encounter_id, index_time,
--         baseline_creatinine_umol_l DOUBLE, egfr_ml_min_1_73m2 DOUBLE,
--         advanced_ckd BOOLEAN).
--
-- eGFR by the race-free CKD-EPI 2021 creatinine equation (Inker LA et al. N Engl J Med
-- 2021;385:1737-49), mL/min/1.73 m2:
--   intercept (142) x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x sex factor
--   Scr serum creatinine in mg/dL (umol/L / 88.4); k = 0.7 (female), 0.9 (male) mg/dL;
--   a = -0.241 (female), -0.302 (male); sex factor 1.012 (female), 1 (male); age in years.
-- The coefficients are data (sql/reference/egfr_ckd_epi_2021.csv), not literals here.
-- Null when creatinine or age is unknown or sex is 'U' (no coefficients).
-- advanced_ckd: eGFR < cfg.advanced_ckd_egfr_ml_min_1_73m2 (mL/min/1.73 m2, default 30 =
-- KDIGO G4-G5); null when eGFR is null.

CREATE OR REPLACE TABLE index_kidney_function AS
WITH
creatinine_factor AS (
    SELECT factor_to_si AS umol_l_per_mg_dl
    FROM unit_conversions
    WHERE analyte = 'creatinine' AND unit = 'mg/dl'
),

inputs AS (
    SELECT
        a.subject_id,
        a.encounter_id,
        a.index_time,
        a.baseline_creatinine_umol_l,
        a.baseline_creatinine_umol_l / f.umol_l_per_mg_dl AS scr_mg_dl,
        a.age_years,
        k.kappa_mg_dl,
        k.alpha,
        k.sex_factor,
        k.intercept,
        k.exponent_above_kappa,
        k.age_factor_per_year
    FROM analytic_cohort AS a
    CROSS JOIN creatinine_factor AS f
    LEFT JOIN egfr_ckd_epi_2021 AS k
        ON k.sex = a.sex
),

egfr AS (
    SELECT
        i.*,
        CASE
            WHEN i.scr_mg_dl > 0 AND i.age_years IS NOT NULL AND i.kappa_mg_dl IS NOT NULL THEN
                i.intercept
                * power(least(i.scr_mg_dl / i.kappa_mg_dl, 1), i.alpha)
                * power(greatest(i.scr_mg_dl / i.kappa_mg_dl, 1), i.exponent_above_kappa)
                * power(i.age_factor_per_year, i.age_years)
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
