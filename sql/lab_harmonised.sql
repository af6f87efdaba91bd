-- lab_harmonised: every row of lab_results exactly once, in SI units, with a status.
--
-- Reads:  lab_results, encounters, unit_conversions, analyte_bounds (sql/reference/*.csv).
-- Writes: lab_harmonised (one row per lab_results row).
--
-- Units: the reported unit is normalised (trimmed, lower case, spaces removed, µ/μ -> u) and
-- looked up in unit_conversions for the row's analyte; value_si = value x factor_to_si,
-- rounded to 6 decimals (1e-6 mmol/L, far below assay resolution) only to remove binary
-- floating-point noise. A unit that is missing or not listed for the analyte is never guessed.
-- Plausibility: analyte_bounds.plausible_low/high (inclusive, SI units; sources in the CSV).
--
-- status is 'used' or the first quarantine reason that applies, in this order:
--   unknown_analyte      analyte not listed in analyte_bounds
--   missing_value        value is null or NaN
--   unknown_unit         unit missing or not in unit_conversions for the analyte
--   implausible_value    value_si outside [plausible_low, plausible_high]
--   unknown_encounter    encounter_id given but no such encounter of this subject
--   no_encounter         encounter_id null and time inside none of the subject's stays
--   ambiguous_encounter  encounter_id null and time inside more than one (overlapping) stay
--   duplicate            same subject, encounter, time, analyte, value and unit as a row
--                        kept before it (a row linked by the source is kept before one
--                        attached by time)
-- A lab with a null encounter_id whose time falls inside exactly one of the subject's stays
-- [admit_time, discharge_time] is attached to that stay: encounter_assigned_by_time = true.
-- lab_row_id numbers the rows in a fixed order (rows identical in every column are
-- interchangeable), so later steps can refer to one row.

CREATE OR REPLACE TABLE lab_harmonised AS
WITH
labs AS (
    SELECT
        subject_id,
        encounter_id AS source_encounter_id,
        time,
        analyte,
        value,
        unit,
        source_code,
        replace(replace(replace(lower(trim(unit)), ' ', ''), 'µ', 'u'), 'μ', 'u')
            AS unit_normalised
    FROM lab_results
),

-- stays whose [admit, discharge] contain the time of a lab the source left unlinked
unlinked_time_matches AS (
    SELECT
        u.subject_id,
        u.time,
        COUNT(*) AS n_stays,
        MIN(e.encounter_id) AS encounter_id
    FROM (
        SELECT DISTINCT subject_id, time FROM labs WHERE source_encounter_id IS NULL
    ) AS u
    INNER JOIN encounters AS e
        ON e.subject_id = u.subject_id
        AND u.time >= e.admit_time
        AND u.time <= e.discharge_time
    GROUP BY u.subject_id, u.time
),

resolved AS (
    SELECT
        l.*,
        CASE
            WHEN l.source_encounter_id IS NOT NULL THEN l.source_encounter_id
            WHEN m.n_stays = 1 THEN m.encounter_id
        END AS encounter_id,
        (l.source_encounter_id IS NULL AND COALESCE(m.n_stays, 0) = 1)
            AS encounter_assigned_by_time,
        m.n_stays AS n_stays_containing_time,
        (linked.encounter_id IS NOT NULL) AS linked_encounter_exists
    FROM labs AS l
    LEFT JOIN unlinked_time_matches AS m
        ON l.source_encounter_id IS NULL
        AND m.subject_id = l.subject_id
        AND m.time = l.time
    LEFT JOIN encounters AS linked
        ON linked.encounter_id = l.source_encounter_id
        AND linked.subject_id = l.subject_id
),

converted AS (
    SELECT
        r.*,
        CASE WHEN NOT isnan(r.value) THEN round(r.value * uc.factor_to_si, 6) END AS value_si,
        uc.si_unit AS unit_si,
        uc.factor_to_si,
        b.analyte IS NOT NULL AS analyte_known,
        b.plausible_low,
        b.plausible_high
    FROM resolved AS r
    LEFT JOIN unit_conversions AS uc
        ON uc.analyte = r.analyte
        AND uc.unit = r.unit_normalised
    LEFT JOIN analyte_bounds AS b
        ON b.analyte = r.analyte
),

numbered AS (
    SELECT
        c.*,
        ROW_NUMBER() OVER (
            ORDER BY
                c.subject_id, c.time, c.analyte, c.source_encounter_id, c.value, c.unit,
                c.source_code
        ) AS lab_row_id
    FROM converted AS c
),

-- the first copy of a repeated result is kept; rows that tie on every column are
-- interchangeable, and the lowest lab_row_id makes the choice the same on every run
ranked AS (
    SELECT
        n.*,
        ROW_NUMBER() OVER (
            PARTITION BY
                n.subject_id, n.encounter_id, n.time, n.analyte, n.value, n.unit_normalised
            ORDER BY n.encounter_assigned_by_time, n.unit, n.source_code, n.lab_row_id
        ) AS copy_number
    FROM numbered AS n
)

SELECT
    lab_row_id,
    subject_id,
    encounter_id,
    encounter_assigned_by_time,
    time,
    analyte,
    value,
    unit,
    unit_normalised,
    value_si,
    unit_si,
    source_code,
    CASE
        WHEN NOT analyte_known THEN 'unknown_analyte'
        WHEN value IS NULL OR isnan(value) THEN 'missing_value'
        WHEN factor_to_si IS NULL THEN 'unknown_unit'
        WHEN value_si < plausible_low OR value_si > plausible_high THEN 'implausible_value'
        WHEN source_encounter_id IS NOT NULL AND NOT linked_encounter_exists
            THEN 'unknown_encounter'
        WHEN source_encounter_id IS NULL AND n_stays_containing_time IS NULL
            THEN 'no_encounter'
        WHEN source_encounter_id IS NULL AND n_stays_containing_time > 1
            THEN 'ambiguous_encounter'
        WHEN copy_number > 1 THEN 'duplicate'
        ELSE 'used'
    END AS status
FROM ranked;
