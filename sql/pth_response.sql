-- index_pth_response: parathyroid hormone before and after time zero, one row per analysed
-- episode, for the secondary analysis "PTH response after Mg repletion" (where measured).
--
-- Reads:  analytic_cohort, lab_harmonised (pth, status = 'used'), study_config.
-- Writes: index_pth_response (subject_id, encounter_id, index_time,
--         baseline_pth_pmol_l DOUBLE, followup_pth_pmol_l DOUBLE,
--         followup_pth_hours_from_index DOUBLE); PTH in pmol/L (lab_harmonised SI).
--
-- baseline_pth_pmol_l: the last used PTH of the stay in [index - cfg.pth_window_hours, index]
--   (hours, default 24; the window hypocalcaemia_pth_status uses). It is always drawn
--   before any Mg: an analysed episode had no Mg at or before index (cohort_eligibility.sql
--   step 7), so the PTH status before treatment comes from this value, never from a PTH
--   drawn later in the episode.
-- followup_pth_pmol_l: the first used PTH of the stay in
--   (index + cfg.grace_hours, index + cfg.pth_response_hours] (hours, defaults 6 and 72):
--   after exposure is decided (clinical.md: PTH rises within minutes of IV Mg in
--   Mg-deficient patients, so any later PTH reflects the exposure). Null when not measured.
-- Ties at the same time: the lower value (identical rows otherwise), so re-runs agree.

CREATE OR REPLACE TABLE index_pth_response AS
WITH
pth AS (
    SELECT
        a.encounter_id,
        date_diff('second', a.index_time, l.time) / 3600.0 AS hours_from_index,
        l.value_si AS pth_pmol_l
    FROM analytic_cohort AS a
    INNER JOIN lab_harmonised AS l
        ON l.subject_id = a.subject_id
        AND l.encounter_id = a.encounter_id
    WHERE l.analyte = 'pth'
        AND l.status = 'used'
),

baseline AS (
    SELECT
        p.encounter_id,
        p.pth_pmol_l,
        ROW_NUMBER() OVER (
            PARTITION BY p.encounter_id ORDER BY p.hours_from_index DESC, p.pth_pmol_l
        ) AS rn
    FROM pth AS p
    CROSS JOIN study_config AS cfg
    WHERE p.hours_from_index BETWEEN -cfg.pth_window_hours AND 0
),

followup AS (
    SELECT
        p.encounter_id,
        p.pth_pmol_l,
        p.hours_from_index,
        ROW_NUMBER() OVER (
            PARTITION BY p.encounter_id ORDER BY p.hours_from_index, p.pth_pmol_l
        ) AS rn
    FROM pth AS p
    CROSS JOIN study_config AS cfg
    WHERE p.hours_from_index > cfg.grace_hours
        AND p.hours_from_index <= cfg.pth_response_hours
)

SELECT
    a.subject_id,
    a.encounter_id,
    a.index_time,
    b.pth_pmol_l AS baseline_pth_pmol_l,
    f.pth_pmol_l AS followup_pth_pmol_l,
    f.hours_from_index AS followup_pth_hours_from_index
FROM analytic_cohort AS a
LEFT JOIN baseline AS b
    ON b.encounter_id = a.encounter_id AND b.rn = 1
LEFT JOIN followup AS f
    ON f.encounter_id = a.encounter_id AND f.rn = 1;
