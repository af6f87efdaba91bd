-- index_covariates: baseline laboratory values and drug exposure before time zero.
--
-- Reads:  index_events, lab_harmonised (status = 'used'), medication_harmonised,
--         study_config.
-- Writes: index_covariates (one row per index event).
--
-- Laboratory baselines (any used result of the same subject, whichever stay it belongs to):
--   baseline_creatinine_umol_l, baseline_potassium_mmol_l, baseline_phosphate_mmol_l:
--   the last value drawn in [index_time - cfg.baseline_lookback_hours, index_time]
--   (hours, default 24; both ends included; ties at one time: the lower value).
--   baseline_ca_ionized_mmol_l: the last used ionized Ca drawn in
--   [index_time - cfg.ionized_window_hours, index_time] (default 1 h; ties: the lower value).
-- Drugs (given = true only; role from ingredients.csv; same subject, any stay):
--   ppi_before_index, loop_diuretic_before_index, thiazide_before_index (thiazide and
--   thiazide-like), vitamin_d_analogue_before_index (calcitriol, alfacalcidol, ...),
--   nephrotoxic_drug_before_index (role mg_wasting: cisplatin, aminoglycosides,
--   amphotericin B, calcineurin inhibitors):
--       any dose in [index_time - cfg.drug_lookback_hours, index_time) (default 168 h);
--   calcium_before_index: any calcium supplement in
--       [index_time - cfg.calcium_lookback_hours, index_time) (default 24 h, the cohort
--       contract's window).
-- All windows end before index: these are pre-treatment covariates only.

CREATE OR REPLACE TABLE index_covariates AS
WITH
baseline_labs AS (
    SELECT
        i.encounter_id,
        h.analyte,
        h.value_si,
        ROW_NUMBER() OVER (
            PARTITION BY i.encounter_id, h.analyte ORDER BY h.time DESC, h.value_si
        ) AS recency_rank
    FROM index_events AS i
    INNER JOIN lab_harmonised AS h
        ON h.subject_id = i.subject_id
        AND h.time <= i.index_time
    CROSS JOIN study_config AS cfg
    WHERE h.status = 'used'
        AND h.analyte IN ('creatinine', 'potassium', 'phosphate')
        AND date_diff('second', h.time, i.index_time) / 3600.0 <= cfg.baseline_lookback_hours
),

last_baseline AS (
    SELECT
        encounter_id,
        MAX(CASE WHEN analyte = 'creatinine' THEN value_si END) AS baseline_creatinine_umol_l,
        MAX(CASE WHEN analyte = 'potassium' THEN value_si END) AS baseline_potassium_mmol_l,
        MAX(CASE WHEN analyte = 'phosphate' THEN value_si END) AS baseline_phosphate_mmol_l
    FROM baseline_labs
    WHERE recency_rank = 1
    GROUP BY encounter_id
),

baseline_ionized AS (
    SELECT
        i.encounter_id,
        h.value_si AS baseline_ca_ionized_mmol_l,
        ROW_NUMBER() OVER (
            PARTITION BY i.encounter_id ORDER BY h.time DESC, h.value_si
        ) AS recency_rank
    FROM index_events AS i
    INNER JOIN lab_harmonised AS h
        ON h.subject_id = i.subject_id
        AND h.time <= i.index_time
    CROSS JOIN study_config AS cfg
    WHERE h.status = 'used'
        AND h.analyte = 'calcium_ionized'
        AND date_diff('second', h.time, i.index_time) / 3600.0 <= cfg.ionized_window_hours
),

drugs_before AS (
    SELECT
        i.encounter_id,
        m.role,
        date_diff('second', m.time, i.index_time) / 3600.0 AS hours_before_index
    FROM index_events AS i
    INNER JOIN medication_harmonised AS m
        ON m.subject_id = i.subject_id
        AND m.time < i.index_time
    WHERE m.given
        AND m.role IN (
            'ppi', 'loop_diuretic', 'thiazide', 'vitamin_d_analogue', 'mg_wasting',
            'calcium_supplement'
        )
),

drug_flags AS (
    SELECT
        d.encounter_id,
        MAX(CASE
            WHEN d.role = 'ppi' AND d.hours_before_index <= cfg.drug_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS ppi_before_index,
        MAX(CASE
            WHEN d.role = 'loop_diuretic' AND d.hours_before_index <= cfg.drug_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS loop_diuretic_before_index,
        MAX(CASE
            WHEN d.role = 'thiazide' AND d.hours_before_index <= cfg.drug_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS thiazide_before_index,
        MAX(CASE
            WHEN d.role = 'mg_wasting' AND d.hours_before_index <= cfg.drug_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS nephrotoxic_drug_before_index,
        MAX(CASE
            WHEN d.role = 'vitamin_d_analogue'
                AND d.hours_before_index <= cfg.drug_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS vitamin_d_analogue_before_index,
        MAX(CASE
            WHEN d.role = 'calcium_supplement'
                AND d.hours_before_index <= cfg.calcium_lookback_hours
                THEN 1 ELSE 0
        END) = 1 AS calcium_before_index
    FROM drugs_before AS d
    CROSS JOIN study_config AS cfg
    GROUP BY d.encounter_id
)

SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,
    b.baseline_creatinine_umol_l,
    b.baseline_potassium_mmol_l,
    b.baseline_phosphate_mmol_l,
    COALESCE(d.ppi_before_index, FALSE) AS ppi_before_index,
    COALESCE(d.loop_diuretic_before_index, FALSE) AS loop_diuretic_before_index,
    COALESCE(d.calcium_before_index, FALSE) AS calcium_before_index,
    COALESCE(d.thiazide_before_index, FALSE) AS thiazide_before_index,
    COALESCE(d.nephrotoxic_drug_before_index, FALSE) AS nephrotoxic_drug_before_index,
    COALESCE(d.vitamin_d_analogue_before_index, FALSE) AS vitamin_d_analogue_before_index,
    bi.baseline_ca_ionized_mmol_l
FROM index_events AS i
LEFT JOIN last_baseline AS b
    ON b.encounter_id = i.encounter_id
LEFT JOIN baseline_ionized AS bi
    ON bi.encounter_id = i.encounter_id
    AND bi.recency_rank = 1
LEFT JOIN drug_flags AS d
    ON d.encounter_id = i.encounter_id;
