-- hypocalcaemia_pth_status: was parathyroid hormone raised, as it should be, during each
-- hypocalcaemia episode, before any magnesium was given?
--
-- Reads:  hypocalcaemia_episodes, lab_harmonised (pth, status = 'used'), encounters,
--         mg_repletion, unit_conversions, analyte_bounds, study_config.
-- Writes: hypocalcaemia_pth_status (one row per hypocalcaemia_episodes row).
--
-- The PTH: a used PTH of the same stay drawn during the episode [episode_start,
-- episode_end] or at most cfg.pth_window_hours (hours, default 24) before its start or
-- after its end, AND strictly before the stay's first given Mg dose (mg_repletion; linked to
-- the stay, or unlinked and given between its admit and discharge times, as in
-- index_exposure.sql; a dose charted at the PTH's minute counts as before it, as a dose at
-- index makes a prevalent user). PTH rises within minutes of IV Mg in Mg-deficient
-- patients (clinical.md), so a PTH drawn after Mg says what Mg did, not whether the
-- glands were suppressed: it never decides the status. If several: one drawn during the
-- episode first, then the one nearest the nadir, then the earlier, then the lower.
-- Threshold: cfg.pth_upper_ng_l (ng/L = pg/mL, default 65: clinical.md upper limit of
-- intact PTH) in pmol/L, by the unit_conversions factor of PTH ng/L (0.106) and rounded to
-- PTH's reporting precision (analyte_bounds, 1 dp): 65 ng/L is 6.9 pmol/L. A PTH at the
-- upper limit is not raised (65 pg/mL is stored as 6.9 pmol/L, not above 6.9).
-- pth_status:
--   'appropriately_raised'           PTH > upper limit: the glands answer the low calcium
--   'inappropriately_normal_or_low'  PTH <= upper limit while calcium is low: functional
--                                    hypoparathyroidism (what Mg deficiency causes)
--   'measured_only_after_mg'         PTHs in the window, but none before the first Mg
--                                    (pth columns null: none is used)
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

first_mg AS (
    SELECT
        s.encounter_id,
        MIN(r.time) AS first_mg_time
    FROM encounters AS s
    INNER JOIN mg_repletion AS r
        ON r.subject_id = s.subject_id
        AND (
            r.encounter_id = s.encounter_id
            OR (r.encounter_id IS NULL AND r.time >= s.admit_time AND r.time <= s.discharge_time)
        )
    GROUP BY s.encounter_id
),

pth_in_window AS (
    SELECT
        e.subject_id,
        e.encounter_id,
        e.episode_start,
        e.nadir_time,
        p.time AS pth_time,
        p.pth_pmol_l,
        p.time >= e.episode_start AND p.time <= e.episode_end AS pth_during_episode,
        (m.first_mg_time IS NULL OR p.time < m.first_mg_time) AS pth_before_mg
    FROM hypocalcaemia_episodes AS e
    INNER JOIN pth AS p
        ON p.subject_id = e.subject_id
        AND p.encounter_id = e.encounter_id
    LEFT JOIN first_mg AS m
        ON m.encounter_id = e.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE date_diff('second', p.time, e.episode_start) / 3600.0 <= cfg.pth_window_hours
        AND date_diff('second', e.episode_end, p.time) / 3600.0 <= cfg.pth_window_hours
),

pth_after_mg_only AS (
    SELECT subject_id, encounter_id, episode_start
    FROM pth_in_window
    GROUP BY subject_id, encounter_id, episode_start
    HAVING MAX(CASE WHEN pth_before_mg THEN 1 ELSE 0 END) = 0
),

pth_near_episode AS (
    SELECT
        w.subject_id,
        w.encounter_id,
        w.episode_start,
        w.pth_time,
        w.pth_pmol_l,
        w.pth_during_episode,
        ROW_NUMBER() OVER (
            PARTITION BY w.subject_id, w.encounter_id, w.episode_start
            ORDER BY
                CASE WHEN w.pth_during_episode THEN 0 ELSE 1 END,
                abs(date_diff('second', w.nadir_time, w.pth_time)),
                w.pth_time,
                w.pth_pmol_l
        ) AS preference_rank
    FROM pth_in_window AS w
    WHERE w.pth_before_mg
)

SELECT
    e.subject_id,
    e.encounter_id,
    e.episode_start,
    e.episode_end,
    e.nadir_value_mmol_l,
    e.calcium_measure,
    CASE
        WHEN p.pth_time IS NOT NULL AND p.pth_pmol_l > u.pth_upper_pmol_l
            THEN 'appropriately_raised'
        WHEN p.pth_time IS NOT NULL THEN 'inappropriately_normal_or_low'
        WHEN a.encounter_id IS NOT NULL THEN 'measured_only_after_mg'
        ELSE 'not_measured'
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
    AND p.preference_rank = 1
LEFT JOIN pth_after_mg_only AS a
    ON a.subject_id = e.subject_id
    AND a.encounter_id = e.encounter_id
    AND a.episode_start = e.episode_start;
