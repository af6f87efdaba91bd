-- index_calcium_fixed_looks: was calcium corrected at scheduled looks after index? One row
-- per eligible episode (eligible_episodes: primary outcome measured or not, so the analysis
-- can weight an episode with an unread look back rather than drop it), for the secondary
-- analysis "calcium corrected at the fixed looks" (the detection-bias-resistant counterpart
-- of "corrected within correction_window_hours").
--
-- Reads:  eligible_episodes, calcium_corrected (non-null ca_corrected_mmol_l), encounters,
--         study_config.
-- Writes: index_calcium_fixed_looks (subject_id, encounter_id, index_time,
--         n_looks INTEGER, n_looks_observed INTEGER, n_looks_normal INTEGER,
--         corrected_at_fixed_looks BOOLEAN).
--
-- Why fixed looks: "any draw at or above the threshold in the window" rewards more draws, and
-- the treated get extra post-dose re-checks, so correction looks likelier in them even where
-- Mg does nothing (detection bias). Here every episode has the same number of chances: one
-- value per look, whatever the number of draws.
-- Looks: every cfg.fixed_look_interval_hours (hours, default 24) after index up to
-- cfg.correction_window_hours (hours, default 72): looks at 24, 48 and 72 h.
-- The value at a look: the corrected Ca of the same stay drawn nearest to index + look, within
-- +/- cfg.fixed_look_tolerance_hours of it (hours, default 12: half the spacing of the looks,
-- so their windows do not overlap and a daily routine panel always falls in one), after the
-- grace period (more than cfg.grace_hours after index) and at or before discharge. Ties: the earlier draw, then the lower
-- value. More draws near a look change which draw is nearest, not whether the look counts.
-- A look is normal when that value is >= cfg.ca_corrected_low_mmol_l (mmol/L, default 2.15,
-- the lower reference limit).
-- corrected_at_fixed_looks: true when any look is normal and every look was observed; false
-- when every look was observed and none is normal; null when a look has no draw in its
-- window (complete looks only: an unobserved look could have been normal, and counting
-- partial follow-up would again give more chances to the more often tested).

CREATE OR REPLACE TABLE index_calcium_fixed_looks AS
WITH
looks AS (
    -- look numbers 1..10 as a portable counter (no generate_series on Spark); config.py
    -- keeps correction_window_hours / fixed_look_interval_hours at most 10
    SELECT CAST(n.look_number * cfg.fixed_look_interval_hours AS DOUBLE) AS look_hours
    FROM (
        VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)
    ) AS n (look_number)
    CROSS JOIN study_config AS cfg
    WHERE n.look_number * cfg.fixed_look_interval_hours <= cfg.correction_window_hours
),

draws AS (
    SELECT
        a.encounter_id,
        date_diff('second', a.index_time, c.time) / 3600.0 AS hours_from_index,
        c.ca_corrected_mmol_l
    FROM eligible_episodes AS a
    INNER JOIN encounters AS e
        ON e.encounter_id = a.encounter_id
    INNER JOIN calcium_corrected AS c
        ON c.subject_id = a.subject_id
        AND c.encounter_id = a.encounter_id
    CROSS JOIN study_config AS cfg
    WHERE c.ca_corrected_mmol_l IS NOT NULL
        AND date_diff('second', a.index_time, c.time) / 3600.0 > cfg.grace_hours
        AND c.time <= e.discharge_time
),

nearest AS (
    SELECT
        d.encounter_id,
        l.look_hours,
        d.ca_corrected_mmol_l,
        row_number() OVER (
            PARTITION BY d.encounter_id, l.look_hours
            ORDER BY abs(d.hours_from_index - l.look_hours), d.hours_from_index,
                d.ca_corrected_mmol_l
        ) AS rank_in_look
    FROM draws AS d
    INNER JOIN looks AS l
        ON TRUE
    CROSS JOIN study_config AS cfg
    WHERE abs(d.hours_from_index - l.look_hours) <= cfg.fixed_look_tolerance_hours
),

per_episode AS (
    SELECT
        n.encounter_id,
        COUNT(*) AS n_looks_observed,
        COUNT(*) FILTER (WHERE n.ca_corrected_mmol_l >= cfg.ca_corrected_low_mmol_l)
            AS n_looks_normal
    FROM nearest AS n
    CROSS JOIN study_config AS cfg
    WHERE n.rank_in_look = 1
    GROUP BY n.encounter_id
)

SELECT
    a.subject_id,
    a.encounter_id,
    a.index_time,
    CAST((SELECT COUNT(*) FROM looks) AS INTEGER) AS n_looks,
    CAST(COALESCE(p.n_looks_observed, 0) AS INTEGER) AS n_looks_observed,
    CAST(COALESCE(p.n_looks_normal, 0) AS INTEGER) AS n_looks_normal,
    CASE
        WHEN COALESCE(p.n_looks_observed, 0) < (SELECT COUNT(*) FROM looks) THEN NULL
        ELSE p.n_looks_normal > 0
    END AS corrected_at_fixed_looks
FROM eligible_episodes AS a
LEFT JOIN per_episode AS p
    ON p.encounter_id = a.encounter_id;
