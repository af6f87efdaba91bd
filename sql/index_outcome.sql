-- index_outcome: the primary outcome, corrected calcium at the fixed horizon after time zero.
--
-- Reads:  index_events, calcium_corrected (non-null ca_corrected_mmol_l), study_config.
-- Writes: index_outcome (one row per index event; outcome columns null when none measured).
--
-- Outcome: the corrected calcium of the same stay drawn nearest to
-- index_time + cfg.horizon_hours (hours, default 48) and at most cfg.outcome_tolerance_hours
-- (default 12) from it, both ends included; on a tie in distance the earlier draw wins (then
-- the lower value). A fixed horizon with a tolerance, rather than "the next result", keeps
-- informative re-testing (labs re-checked sooner when abnormal) from choosing the time.
-- No result in the window (discharged, died or not re-tested) leaves the outcome null.

CREATE OR REPLACE TABLE index_outcome AS
WITH
calcium_after_index AS (
    SELECT
        i.encounter_id,
        c.ca_corrected_mmol_l,
        date_diff('second', i.index_time, c.time) / 3600.0 AS hours_from_index
    FROM index_events AS i
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = i.subject_id
        AND c.encounter_id = i.encounter_id
    WHERE c.ca_corrected_mmol_l IS NOT NULL
),

in_window AS (
    SELECT
        a.*,
        ROW_NUMBER() OVER (
            PARTITION BY a.encounter_id
            ORDER BY
                abs(a.hours_from_index - cfg.horizon_hours),
                a.hours_from_index,
                a.ca_corrected_mmol_l
        ) AS nearness_rank
    FROM calcium_after_index AS a
    CROSS JOIN study_config AS cfg
    WHERE abs(a.hours_from_index - cfg.horizon_hours) <= cfg.outcome_tolerance_hours
)

SELECT
    i.subject_id,
    i.encounter_id,
    i.index_time,
    w.ca_corrected_mmol_l AS outcome_ca_corrected_mmol_l,
    w.hours_from_index AS outcome_hours_from_index
FROM index_events AS i
LEFT JOIN in_window AS w
    ON w.encounter_id = i.encounter_id
    AND w.nearness_rank = 1;
