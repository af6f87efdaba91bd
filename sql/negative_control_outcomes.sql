-- negative_control_outcomes: the values the negative-control analyses put in place of the
-- primary outcome (README "Methods: negative controls"): serum sodium and serum albumin at
-- the primary horizon, and corrected calcium in a window BEFORE time zero (the placebo
-- window). Magnesium given in the grace period cannot move any of them, so an estimated
-- "effect" on them measures the design's systematic error.
--
-- Reads:  index_events, lab_harmonised (sodium, albumin; status = 'used'),
--         calcium_corrected (non-null ca_corrected_mmol_l), study_config.
-- Writes: negative_control_outcomes (one row per index event; a value is null when nothing
--         was measured in its window).
--
-- Windows, picked exactly as index_outcome.sql picks the primary outcome: the result of the
-- same stay drawn nearest to the target time and at most cfg.outcome_tolerance_hours
-- (hours, default 12) from it, both ends included; on a tie in distance the earlier draw
-- wins (then the lower value).
--   outcome_sodium_mmol_l   sodium (mmol/L) nearest to index_time + cfg.horizon_hours
--                           (hours, default 48).
--   outcome_albumin_g_l     albumin (g/L) nearest to index_time + cfg.horizon_hours.
--   placebo_ca_corrected_mmol_l, placebo_hours_from_index
--                           corrected Ca (mmol/L) nearest to index_time -
--                           cfg.placebo_hours_before_index (hours, default 24), and only
--                           draws strictly before index_time (a negative hours_from_index):
--                           Mg decided after time zero cannot have acted on it.

CREATE OR REPLACE TABLE negative_control_outcomes AS
WITH
candidates AS (
    SELECT
        i.encounter_id,
        h.analyte AS measure,
        h.value_si AS value,
        date_diff('second', i.index_time, h.time) / 3600.0 AS hours_from_index,
        CAST(cfg.horizon_hours AS DOUBLE) AS target_hours
    FROM index_events AS i
    INNER JOIN lab_harmonised AS h
        ON h.subject_id = i.subject_id
        AND h.encounter_id = i.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE h.status = 'used' AND h.analyte IN ('sodium', 'albumin')

    UNION ALL

    SELECT
        i.encounter_id,
        'placebo_calcium' AS measure,
        c.ca_corrected_mmol_l AS value,
        date_diff('second', i.index_time, c.time) / 3600.0 AS hours_from_index,
        -CAST(cfg.placebo_hours_before_index AS DOUBLE) AS target_hours
    FROM index_events AS i
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = i.subject_id
        AND c.encounter_id = i.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE c.ca_corrected_mmol_l IS NOT NULL AND c.time < i.index_time
),

nearest AS (
    SELECT
        c.*,
        ROW_NUMBER() OVER (
            PARTITION BY c.encounter_id, c.measure
            ORDER BY abs(c.hours_from_index - c.target_hours), c.hours_from_index, c.value
        ) AS nearness_rank
    FROM candidates AS c
    CROSS JOIN study_config AS cfg
    WHERE abs(c.hours_from_index - c.target_hours) <= cfg.outcome_tolerance_hours
)

SELECT
    i.encounter_id,
    na.value AS outcome_sodium_mmol_l,
    alb.value AS outcome_albumin_g_l,
    pc.value AS placebo_ca_corrected_mmol_l,
    pc.hours_from_index AS placebo_hours_from_index
FROM index_events AS i
LEFT JOIN nearest AS na
    ON na.encounter_id = i.encounter_id AND na.measure = 'sodium' AND na.nearness_rank = 1
LEFT JOIN nearest AS alb
    ON alb.encounter_id = i.encounter_id AND alb.measure = 'albumin' AND alb.nearness_rank = 1
LEFT JOIN nearest AS pc
    ON pc.encounter_id = i.encounter_id
    AND pc.measure = 'placebo_calcium'
    AND pc.nearness_rank = 1;
