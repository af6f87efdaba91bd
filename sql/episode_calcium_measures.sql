-- episode_calcium_measures: which calcium measure defined the index and the primary outcome,
-- counted over eligible index events and analysed episodes (aggregate only, no ids).
--
-- Reads:  index_events, index_outcome, cohort_eligibility, eligibility_steps.
-- Writes: episode_calcium_measures (role VARCHAR 'index' | 'outcome', calcium_measure
--         VARCHAR, n_eligible_index_events BIGINT, n_analysed BIGINT): one row per role and
--         measure, zero counts included, so the table always has the same six rows.
--
-- role 'index': index_events.index_calcium_measure ('ionized',
-- 'corrected_same_day_albumin', 'corrected_lookback_albumin'; index_events.sql hierarchy).
-- role 'outcome': index_outcome.outcome_calcium_measure ('corrected_same_day_albumin',
-- 'corrected_lookback_albumin'), or 'not_measured' when no corrected Ca was drawn within
-- horizon_hours +/- outcome_tolerance_hours (those leave at the last attrition step).
-- n_eligible_index_events: index events that pass every eligibility step before the last
-- (the outcome step) of eligibility_steps; n_analysed: those that pass it too (the
-- analysed episodes). Small counts are suppressed where the table leaves private/
-- (mgca.analysis.disclosure), never here.

CREATE OR REPLACE TABLE episode_calcium_measures AS
WITH
measures AS (
    SELECT *
    FROM (
        VALUES
            (1, 'index', 'ionized'),
            (2, 'index', 'corrected_same_day_albumin'),
            (3, 'index', 'corrected_lookback_albumin'),
            (4, 'outcome', 'corrected_same_day_albumin'),
            (5, 'outcome', 'corrected_lookback_albumin'),
            (6, 'outcome', 'not_measured')
    ) AS m (measure_order, role, calcium_measure)
),

outcome_step AS (
    SELECT MAX(step_order) AS step_order FROM eligibility_steps
),

eligible AS (
    SELECT
        i.index_calcium_measure,
        COALESCE(o.outcome_calcium_measure, 'not_measured') AS outcome_calcium_measure,
        CASE WHEN el.first_failed_step IS NULL THEN 1 ELSE 0 END AS analysed
    FROM index_events AS i
    INNER JOIN cohort_eligibility AS el
        ON el.encounter_id = i.encounter_id
    CROSS JOIN outcome_step AS s
    LEFT JOIN index_outcome AS o
        ON o.encounter_id = i.encounter_id
    WHERE el.first_failed_step IS NULL OR el.first_failed_step = s.step_order
),

episode_measures AS (
    SELECT 'index' AS role, index_calcium_measure AS calcium_measure, analysed
    FROM eligible

    UNION ALL

    SELECT 'outcome' AS role, outcome_calcium_measure AS calcium_measure, analysed
    FROM eligible
)

SELECT
    CAST(m.role AS VARCHAR) AS role,
    CAST(m.calcium_measure AS VARCHAR) AS calcium_measure,
    CAST(COUNT(e.analysed) AS BIGINT) AS n_eligible_index_events,
    CAST(COALESCE(SUM(e.analysed), 0) AS BIGINT) AS n_analysed
FROM measures AS m
LEFT JOIN episode_measures AS e
    ON e.role = m.role
    AND e.calcium_measure = m.calcium_measure
GROUP BY m.measure_order, m.role, m.calcium_measure;
