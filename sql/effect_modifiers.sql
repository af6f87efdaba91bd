-- index_effect_modifiers: the pre-specified effect modifiers of the primary contrast, one row
-- per analysed episode, each known at or before time zero (index_time) except the route,
-- which describes the exposure itself. The seed's physiology predicts each of them:
-- Mg deficiency lowers calcium through PTH suppression and resistance, most below 0.5
-- mmol/L, and PTH/eGFR say whether the glands and the kidney can answer.
--
-- Reads:  analytic_cohort, ctcae_grades, hypocalcaemia_pth_status, index_kidney_function,
--         study_config.
-- Writes: index_effect_modifiers (subject_id, encounter_id, index_time,
--         baseline_mg_class VARCHAR, mg_route_class VARCHAR, pth_status_before_index
--         VARCHAR, egfr_class VARCHAR).
--
--   baseline_mg_class  'grade_2_or_worse': baseline (index) Mg < the CTCAE v5 grade-2 bound of
--                      hypomagnesaemia (ctcae_grades magnesium grade 2, 0.5 mmol/L: below it
--                      PTH secretion falls, clinical.md); 'grade_1': at or above it (and
--                      below study_config.mg_low_mmol_l, 0.70 mmol/L, by eligibility); null
--                      when baseline Mg is null.
--   mg_route_class     'iv' | 'oral' for exposed episodes given Mg by that route only in
--                      the grace period (analytic_cohort.mg_route_grace); 'none' for the
--                      unexposed; null for both routes or an unknown route. Not a baseline
--                      variable: the analysis compares each route with no Mg.
--   pth_status_before_index
--                      the pth_status of the hypocalcaemia episode (hypocalcaemia_pth_status,
--                      same stay, episode_start <= index_time <= episode_end) when its PTH
--                      was drawn at or before index_time: 'appropriately_raised' (PTH above
--                      the upper limit, 65 ng/L, as that table applies it) or
--                      'inappropriately_normal_or_low'; otherwise 'not_measured_before_index'
--                      (no PTH, or one drawn only after time zero: not a baseline variable).
--                      The status table already uses only PTHs drawn before any Mg.
--   egfr_class         'reduced' when eGFR (index_kidney_function, CKD-EPI 2021,
--                      mL/min/1.73 m2) < cfg.egfr_modifier_ml_min_1_73m2 (default 60: KDIGO
--                      G3a-G5, chronic kidney disease, where Mg and Ca handling change);
--                      'preserved' when at or above it; null when eGFR is null.

CREATE OR REPLACE TABLE index_effect_modifiers AS
WITH
mg_grade_2 AS (
    SELECT below_si AS mg_below_mmol_l
    FROM ctcae_grades
    WHERE measure = 'magnesium' AND grade = 2
),

pth_at_index AS (
    SELECT
        a.encounter_id,
        -- several hypocalcaemia episodes never overlap in one stay; MAX keeps one row anyway
        MAX(p.pth_status) AS pth_status
    FROM analytic_cohort AS a
    INNER JOIN hypocalcaemia_pth_status AS p
        ON p.subject_id = a.subject_id
        AND p.encounter_id = a.encounter_id
        AND p.episode_start <= a.index_time
        AND p.episode_end >= a.index_time
    WHERE p.pth_time IS NOT NULL
        AND p.pth_time <= a.index_time
    GROUP BY a.encounter_id
)

SELECT
    a.subject_id,
    a.encounter_id,
    a.index_time,
    CASE
        WHEN a.baseline_mg_mmol_l IS NULL THEN NULL
        WHEN a.baseline_mg_mmol_l < g.mg_below_mmol_l THEN 'grade_2_or_worse'
        ELSE 'grade_1'
    END AS baseline_mg_class,
    CASE
        WHEN NOT a.exposed THEN 'none'
        WHEN a.mg_route_grace IN ('iv', 'oral') THEN a.mg_route_grace
    END AS mg_route_class,
    COALESCE(p.pth_status, 'not_measured_before_index') AS pth_status_before_index,
    CASE
        WHEN k.egfr_ml_min_1_73m2 IS NULL THEN NULL
        WHEN k.egfr_ml_min_1_73m2 < cfg.egfr_modifier_ml_min_1_73m2 THEN 'reduced'
        ELSE 'preserved'
    END AS egfr_class
FROM analytic_cohort AS a
CROSS JOIN mg_grade_2 AS g
CROSS JOIN study_config AS cfg
LEFT JOIN pth_at_index AS p
    ON p.encounter_id = a.encounter_id
LEFT JOIN index_kidney_function AS k
    ON k.encounter_id = a.encounter_id;
