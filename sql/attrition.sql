-- attrition: how many stays remain after each eligibility step, and why the others left.
--
-- Reads:  eligibility_steps, cohort_eligibility, analytic_cohort.
-- Writes: attrition (step_order INTEGER, step VARCHAR, n_remaining BIGINT, n_excluded BIGINT,
--         exclusion_reason VARCHAR).
--
-- Steps 1-10 come from eligibility_steps (criteria and thresholds: cohort_eligibility.sql).
-- Each excluded stay is counted once, under the first step it fails, so
-- n_remaining(k) = n_remaining(k - 1) - n_excluded(k), and step 10 is the analysed episodes.
-- The two steps after the last one (11 and 12) split the analysed episodes into exposed and
-- unexposed (n_remaining only; n_excluded and exclusion_reason null); their numbers follow
-- the last eligibility step, so adding a step never makes two steps share a number.

CREATE OR REPLACE TABLE attrition AS
WITH
eligibility_counts AS (
    SELECT
        s.step_order,
        s.step,
        SUM(CASE
            WHEN e.encounter_id IS NOT NULL
                AND (e.first_failed_step IS NULL OR e.first_failed_step > s.step_order)
                THEN 1 ELSE 0
        END) AS n_remaining,
        SUM(CASE WHEN e.first_failed_step = s.step_order THEN 1 ELSE 0 END) AS n_excluded,
        s.exclusion_reason
    FROM eligibility_steps AS s
    LEFT JOIN cohort_eligibility AS e
        ON 1 = 1
    GROUP BY s.step_order, s.step, s.exclusion_reason
),

last_step AS (
    SELECT MAX(step_order) AS step_order FROM eligibility_steps
),

exposure_split AS (
    SELECT
        l.step_order + s.step_offset AS step_order,
        s.step,
        SUM(CASE WHEN c.exposed = s.exposed THEN 1 ELSE 0 END) AS n_remaining,
        CAST(NULL AS BIGINT) AS n_excluded,
        CAST(NULL AS VARCHAR) AS exclusion_reason
    FROM (
        VALUES
            (1, 'analysed episodes: exposed (Mg given within grace_hours of index)', TRUE),
            (2, 'analysed episodes: unexposed', FALSE)
    ) AS s (step_offset, step, exposed)
    CROSS JOIN last_step AS l
    LEFT JOIN analytic_cohort AS c
        ON 1 = 1
    GROUP BY l.step_order + s.step_offset, s.step
)

SELECT
    CAST(step_order AS INTEGER) AS step_order,
    CAST(step AS VARCHAR) AS step,
    CAST(n_remaining AS BIGINT) AS n_remaining,
    CAST(n_excluded AS BIGINT) AS n_excluded,
    CAST(exclusion_reason AS VARCHAR) AS exclusion_reason
FROM eligibility_counts

UNION ALL

SELECT
    CAST(step_order AS INTEGER),
    CAST(step AS VARCHAR),
    CAST(n_remaining AS BIGINT),
    n_excluded,
    exclusion_reason
FROM exposure_split;
