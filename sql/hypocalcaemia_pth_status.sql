-- hypocalcaemia_pth_status: was parathyroid hormone raised, as it should be, during each
-- hypocalcaemia episode?
--
-- Reads:  hypocalcaemia_episodes, lab_harmonised (pth, status = 'used'), unit_conversions,
--         analyte_bounds, study_config.
-- Writes: hypocalcaemia_pth_status (one row per hypocalcaemia_episodes row).
--
-- The PTH: a used PTH of the same stay drawn during the episode [episode_start,
-- episode_end] or at most cfg.pth_window_hours (hours, default 24) before its start or
-- after its end. If several: one drawn during the episode first, then the one nearest the
-- nadir, then the earlier, then the lower.
-- Threshold: cfg.pth_upper_ng_l (ng/L = pg/mL, default 65: clinical.md upper limit of
-- intact PTH) in pmol/L, by the unit_conversions factor of PTH ng/L (0.106) and rounded to
-- PTH's reporting precision (analyte_bounds, 1 dp): 65 ng/L is 6.9 pmol/L. A PTH at the
-- upper limit is not raised (65 pg/mL is stored as 6.9 pmol/L, not above 6.9).
-- pth_status:
--   'appropriately_raised'           PTH > upper limit: the glands answer the low calcium
--   'inappropriately_normal_or_low'  PTH <= upper limit while calcium is low: functional
--                                    hypoparathyroidism (what Mg deficiency causes)
--   'not_measured'                   no PTH in the window (pth columns null)

CREATE OR REPLACE TABLE hypocalcaemia_pth_status AS
WITH
pth_upper AS (
    SELECT
        round(
            round(cfg.pth_upper_ng_l * uc.factor_to_si * power(10, b.reporting_decimals), 6), 0
        ) / power(10, b.reporting_decimals) AS pth_upper_pmol_l
    FROM study_config AS cfg
    INNER JOIN unit_conversions AS uc
        ON uc.analyte = 'pth'
        AND uc.unit = 'ng/l'
    INNER JOIN analyte_bounds AS b
        ON b.analyte = 'pth'
),

pth AS (
    SELECT subject_id, encounter_id, time, value_si AS pth_pmol_l
    FROM lab_harmonised
    WHERE analyte = 'pth' AND status = 'used'
),

pth_near_episode AS (
    SELECT
        e.subject_id,
        e.encounter_id,
        e.episode_start,
        p.time AS pth_time,
        p.pth_pmol_l,
        p.time >= e.episode_start AND p.time <= e.episode_end AS pth_during_episode,
        ROW_NUMBER() OVER (
            PARTITION BY e.subject_id, e.encounter_id, e.episode_start
            ORDER BY
                CASE WHEN p.time >= e.episode_start AND p.time <= e.episode_end THEN 0 ELSE 1 END,
                abs(date_diff('second', e.nadir_time, p.time)),
                p.time,
                p.pth_pmol_l
        ) AS preference_rank
    FROM hypocalcaemia_episodes AS e
    INNER JOIN pth AS p
        ON p.subject_id = e.subject_id
        AND p.encounter_id = e.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', p.time, e.episode_start) / 3600.0 <= cfg.pth_window_hours
        AND date_diff('second', e.episode_end, p.time) / 3600.0 <= cfg.pth_window_hours
)

SELECT
    e.subject_id,
    e.encounter_id,
    e.episode_start,
    e.episode_end,
    e.nadir_value_mmol_l,
    e.calcium_measure,
    CASE
        WHEN p.pth_time IS NULL THEN 'not_measured'
        WHEN p.pth_pmol_l > u.pth_upper_pmol_l THEN 'appropriately_raised'
        ELSE 'inappropriately_normal_or_low'
    END AS pth_status,
    p.pth_time,
    p.pth_pmol_l,
    p.pth_during_episode,
    u.pth_upper_pmol_l
FROM hypocalcaemia_episodes AS e
CROSS JOIN pth_upper AS u
LEFT JOIN pth_near_episode AS p
    ON p.subject_id = e.subject_id
    AND p.encounter_id = e.encounter_id
    AND p.episode_start = e.episode_start
    AND p.preference_rank = 1;
