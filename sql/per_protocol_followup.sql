-- per_protocol_followup: the follow-up of each analysed episode in fixed intervals from time
-- zero to its outcome draw, for the per-protocol (clone-censor-weight) analysis; and the two
-- clones of each episode with where each leaves its strategy.
--
-- Reads:  analytic_cohort, encounters, mg_repletion, lab_harmonised (magnesium, status =
--         'used'), calcium_corrected (non-null ca_corrected_mmol_l), study_config.
-- Writes: per_protocol_followup (private: one row per analysed episode and interval in which
--         it is still at risk of starting Mg),
--         per_protocol_clones (episode: two rows per analysed episode, one per strategy).
--
-- Strategies (clones made at time zero, index_time; both share the episode's history):
--   'mg_within_grace'   Mg started in (index_time, index_time + cfg.grace_hours] (hours,
--                       default 6: the same grace period as the exposure of
--                       index_exposure.sql); usual care after that. The clone leaves its
--                       strategy (is censored) at the grace period's end when no Mg was
--                       given in it; it never deviates afterwards.
--   'no_mg_to_outcome'  no Mg from time zero until the primary outcome draw. The clone is
--                       censored at the first Mg dose in (index_time, outcome draw).
-- Mg doses: given Mg (mg_repletion) linked to the stay, or unlinked and given between its
-- admit and discharge times (as in index_exposure.sql), strictly after index_time and
-- strictly before the outcome draw (a dose charted at the draw's minute cannot have changed
-- it, as in post_grace_deviations.sql).
--
-- Intervals: interval k (k = 1, 2, ...) is (index_time + (k - 1) * w, index_time + k * w]
-- with w = cfg.per_protocol_interval_hours (hours, default 2; config.py requires
-- cfg.grace_hours to be a whole number of intervals, so the grace period ends on an interval
-- boundary). The last interval ends at the outcome draw (outcome_hours_from_index, 36-60 h
-- at the default 48 +/- 12 h): an interval starting at or after the draw is not made.
-- Interval numbers come from a 1-1000 digit table (config.py caps the number of intervals of
-- the longest outcome window at 1000).
--
-- per_protocol_followup: rows only while no Mg has been given in (index_time, interval
-- start] (the risk set of the initiation model whose probabilities weight both clones):
--   interval_number, interval_start_hours, interval_end_hours (hours from index);
--   in_grace (the interval ends at or before index + cfg.grace_hours),
--   last_grace_interval (it ends exactly there: where the 'mg_within_grace' clone is
--   censored if Mg has not started);
--   mg_started: a Mg dose was given in the interval (and before the outcome draw);
--   latest_mg_mmol_l, latest_ca_corrected_mmol_l: the stay's latest used Mg (mmol/L) and
--   albumin-corrected Ca (mmol/L) drawn at or before the interval start (the re-checks a
--   clinician has seen when deciding in the interval; at k = 1 the index values), ties at
--   one time: the lower value; null when the stay has none by then;
--   latest_mg_hours_from_index: when that Mg was drawn (hours from index, negative before
--   index), so a model can tell a fresh result, which prompts a decision, from an old one.
-- per_protocol_clones: clone ('mg_within_grace' | 'no_mg_to_outcome'), follows_strategy
-- (uncensored at the outcome draw), censored_at_hours (hours from index where the clone
-- leaves its strategy; null when it follows it), mg_start_interval (interval_number of the
-- episode's first Mg dose before the outcome draw; null when none).

CREATE OR REPLACE TABLE per_protocol_followup AS
WITH
digits AS (
    SELECT d FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS t (d)
),

numbers AS (
    SELECT a.d + 10 * (b.d + 10 * c.d) + 1 AS k
    FROM digits AS a
    CROSS JOIN digits AS b
    CROSS JOIN digits AS c
),

intervals AS (
    SELECT
        co.subject_id,
        co.encounter_id,
        co.index_time,
        n.k AS interval_number,
        CAST((n.k - 1) * cfg.per_protocol_interval_hours AS DOUBLE) AS interval_start_hours,
        least(
            CAST(n.k * cfg.per_protocol_interval_hours AS DOUBLE), co.outcome_hours_from_index
        ) AS interval_end_hours,
        n.k * cfg.per_protocol_interval_hours <= cfg.grace_hours AS in_grace,
        n.k * cfg.per_protocol_interval_hours = cfg.grace_hours AS last_grace_interval
    FROM analytic_cohort AS co
    CROSS JOIN study_config AS cfg
    INNER JOIN numbers AS n
        ON (n.k - 1) * cfg.per_protocol_interval_hours < co.outcome_hours_from_index
    WHERE co.outcome_hours_from_index IS NOT NULL
),

doses AS (
    SELECT
        co.encounter_id,
        date_diff('second', co.index_time, r.time) / 3600.0 AS hours_from_index
    FROM analytic_cohort AS co
    INNER JOIN encounters AS e
        ON e.encounter_id = co.encounter_id
    INNER JOIN mg_repletion AS r
        ON r.subject_id = co.subject_id
        AND (
            r.encounter_id = co.encounter_id
            OR (r.encounter_id IS NULL AND r.time >= e.admit_time AND r.time <= e.discharge_time)
        )
    WHERE r.time > co.index_time
        AND date_diff('second', co.index_time, r.time) / 3600.0 < co.outcome_hours_from_index
),

first_dose AS (
    SELECT encounter_id, MIN(hours_from_index) AS first_mg_hours
    FROM doses
    GROUP BY encounter_id
),

at_risk AS (
    SELECT
        iv.*,
        fd.first_mg_hours IS NOT NULL
            AND fd.first_mg_hours > iv.interval_start_hours
            AND fd.first_mg_hours <= iv.interval_end_hours AS mg_started
    FROM intervals AS iv
    LEFT JOIN first_dose AS fd
        ON fd.encounter_id = iv.encounter_id
    WHERE fd.first_mg_hours IS NULL OR fd.first_mg_hours > iv.interval_start_hours
),

rechecks AS (
    SELECT encounter_id, 'magnesium' AS measure, time, value_si AS value_mmol_l
    FROM lab_harmonised
    WHERE analyte = 'magnesium' AND status = 'used' AND value_si IS NOT NULL

    UNION ALL

    SELECT encounter_id, 'corrected' AS measure, time, ca_corrected_mmol_l AS value_mmol_l
    FROM calcium_corrected
    WHERE ca_corrected_mmol_l IS NOT NULL
),

latest AS (
    SELECT
        ar.encounter_id,
        ar.interval_number,
        rc.measure,
        rc.value_mmol_l,
        date_diff('second', ar.index_time, rc.time) / 3600.0 AS hours_from_index,
        ROW_NUMBER() OVER (
            PARTITION BY ar.encounter_id, ar.interval_number, rc.measure
            ORDER BY rc.time DESC, rc.value_mmol_l
        ) AS recency_rank
    FROM at_risk AS ar
    INNER JOIN rechecks AS rc
        ON rc.encounter_id = ar.encounter_id
        AND date_diff('second', ar.index_time, rc.time) / 3600.0 <= ar.interval_start_hours
)

SELECT
    ar.subject_id,
    ar.encounter_id,
    ar.index_time,
    CAST(ar.interval_number AS INTEGER) AS interval_number,
    ar.interval_start_hours,
    ar.interval_end_hours,
    ar.in_grace,
    ar.last_grace_interval,
    ar.mg_started,
    lm.value_mmol_l AS latest_mg_mmol_l,
    lm.hours_from_index AS latest_mg_hours_from_index,
    lc.value_mmol_l AS latest_ca_corrected_mmol_l
FROM at_risk AS ar
LEFT JOIN latest AS lm
    ON lm.encounter_id = ar.encounter_id
    AND lm.interval_number = ar.interval_number
    AND lm.measure = 'magnesium'
    AND lm.recency_rank = 1
LEFT JOIN latest AS lc
    ON lc.encounter_id = ar.encounter_id
    AND lc.interval_number = ar.interval_number
    AND lc.measure = 'corrected'
    AND lc.recency_rank = 1;

CREATE OR REPLACE TABLE per_protocol_clones AS
WITH
starts AS (
    SELECT encounter_id, MIN(interval_number) AS mg_start_interval
    FROM per_protocol_followup
    WHERE mg_started
    GROUP BY encounter_id
),

first_dose AS (
    SELECT
        co.encounter_id,
        MIN(date_diff('second', co.index_time, r.time) / 3600.0) AS first_mg_hours
    FROM analytic_cohort AS co
    INNER JOIN encounters AS e
        ON e.encounter_id = co.encounter_id
    INNER JOIN mg_repletion AS r
        ON r.subject_id = co.subject_id
        AND (
            r.encounter_id = co.encounter_id
            OR (r.encounter_id IS NULL AND r.time >= e.admit_time AND r.time <= e.discharge_time)
        )
    WHERE r.time > co.index_time
        AND date_diff('second', co.index_time, r.time) / 3600.0 < co.outcome_hours_from_index
    GROUP BY co.encounter_id
),

clones AS (
    SELECT clone FROM (VALUES ('mg_within_grace'), ('no_mg_to_outcome')) AS t (clone)
)

SELECT
    co.subject_id,
    co.encounter_id,
    co.index_time,
    CAST(cl.clone AS VARCHAR) AS clone,
    CASE
        WHEN cl.clone = 'mg_within_grace'
            THEN fd.first_mg_hours IS NOT NULL AND fd.first_mg_hours <= cfg.grace_hours
        ELSE fd.first_mg_hours IS NULL
    END AS follows_strategy,
    CASE
        WHEN cl.clone = 'mg_within_grace'
            AND (fd.first_mg_hours IS NULL OR fd.first_mg_hours > cfg.grace_hours)
            THEN CAST(cfg.grace_hours AS DOUBLE)
        WHEN cl.clone = 'no_mg_to_outcome' THEN fd.first_mg_hours
    END AS censored_at_hours,
    CAST(s.mg_start_interval AS INTEGER) AS mg_start_interval
FROM analytic_cohort AS co
CROSS JOIN clones AS cl
CROSS JOIN study_config AS cfg
LEFT JOIN first_dose AS fd
    ON fd.encounter_id = co.encounter_id
LEFT JOIN starts AS s
    ON s.encounter_id = co.encounter_id
WHERE co.outcome_hours_from_index IS NOT NULL;
