-- lab_harmonised: every row of lab_results exactly once, in SI units at the laboratory's
-- reporting precision, with a status.
--
-- Reads:  lab_results, encounters, unit_conversions, analyte_bounds (sql/reference/*.csv),
--         study_config.
-- Writes: lab_harmonised (one row per lab_results row).
--
-- Units: the reported unit is normalised (trimmed, lower case, spaces removed, µ/μ -> u) and
-- looked up in unit_conversions for the row's analyte (creatinine: umol/L, µmol/L, μmol/L and
-- micromol/L are one unit). value_si_unrounded = value x factor_to_si, rounded to 6 decimals
-- (1e-6, far below assay resolution) only to remove binary floating-point noise.
-- Reporting precision: value_si is value_si_unrounded rounded, half away from zero, to
-- analyte_bounds.reporting_decimals (Mg, total and ionized Ca, phosphate 2 dp; K and PTH
-- 1 dp; albumin, creatinine, sodium, vitamin D 0 dp: common SI laboratory reporting), so
-- that every threshold sees the number a clinician reads: Mg 1.7 mg/dL is 0.69938 mmol/L
-- unrounded but is reported 0.70 mmol/L, at the lower limit and not low; 1.6 mg/dL is 0.66.
-- The rounding scales by 10^decimals and rounds the scaled value to 6 decimals first, so a
-- binary 1.00499999999 read as 1.005 still goes up to 1.01.
-- Missing unit (null or blank): quarantined as unknown_unit, unless
-- cfg.infer_missing_units (default false) is true. Then every accepted unit of the analyte
-- is tried; if the value is plausible (analyte_bounds, after rounding) in exactly one of
-- them (spellings of one unit, such as pg/mL and ng/L for PTH, count once) it is read in
-- that unit, unit_inferred = true and inferred_unit names it (the SI spelling when it is
-- the SI unit); plausible in none or in several: unknown_unit. A unit that is given but
-- not listed for the analyte is never guessed. unit_check says which case a row is
-- ('as_reported', 'inferred', 'missing', 'missing_ambiguous', 'missing_implausible',
-- 'not_accepted'; null for rows without a numeric value or of an unknown analyte).
-- Plausibility: analyte_bounds.plausible_low/high (inclusive, SI units; sources in the CSV).
--
-- status is 'used' or the first quarantine reason that applies, in this order:
--   unknown_analyte      analyte not listed in analyte_bounds
--   missing_value        value is null or NaN
--   unknown_unit         unit missing (and not inferred) or not in unit_conversions
--   implausible_value    value_si outside [plausible_low, plausible_high]
--   unknown_encounter    encounter_id given but no such encounter of this subject
--   no_encounter         encounter_id null and time inside none of the subject's stays
--   ambiguous_encounter  encounter_id null and time inside more than one (overlapping) stay
--   duplicate            same subject, encounter, time, analyte, value and unit as a row
--                        kept before it (a row linked by the source is kept before one
--                        attached by time)
-- A lab with a null encounter_id whose time falls inside exactly one of the subject's stays
-- [admit_time, discharge_time] is attached to that stay: encounter_assigned_by_time = true.
-- lab_row_id numbers the rows in a fixed order of their source columns (rows identical in
-- every column are interchangeable), so later steps can refer to one row.

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
            AS unit_normalised,
        unit IS NULL OR trim(unit) = '' AS unit_missing
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

numbered AS (
    SELECT
        r.*,
        ROW_NUMBER() OVER (
            ORDER BY
                r.subject_id, r.time, r.analyte, r.source_encounter_id, r.value, r.unit,
                r.source_code
        ) AS lab_row_id
    FROM resolved AS r
),

-- every way of reading a numeric value in SI units: in its own unit, or (missing unit and
-- cfg.infer_missing_units) in each accepted unit of its analyte
readings AS (
    SELECT
        n.lab_row_id,
        uc.unit AS read_as_unit,
        uc.si_unit,
        uc.factor_to_si,
        n.unit_missing AS by_inference,
        round(n.value * uc.factor_to_si, 6) AS value_si_unrounded,
        round(
            round(round(n.value * uc.factor_to_si, 6) * power(10, b.reporting_decimals), 6), 0
        ) / power(10, b.reporting_decimals) AS value_si,
        b.plausible_low,
        b.plausible_high
    FROM numbered AS n
    INNER JOIN analyte_bounds AS b
        ON b.analyte = n.analyte
    INNER JOIN unit_conversions AS uc
        ON uc.analyte = n.analyte
    CROSS JOIN study_config AS cfg
    WHERE n.value IS NOT NULL
        AND NOT isnan(n.value)
        AND (uc.unit = n.unit_normalised OR (n.unit_missing AND cfg.infer_missing_units))
),

plausible_inferred_readings AS (
    SELECT
        r.*,
        ROW_NUMBER() OVER (
            PARTITION BY r.lab_row_id
            ORDER BY
                CASE WHEN r.read_as_unit = lower(r.si_unit) THEN 0 ELSE 1 END,
                r.read_as_unit
        ) AS spelling_rank
    FROM readings AS r
    WHERE r.by_inference
        AND r.value_si >= r.plausible_low
        AND r.value_si <= r.plausible_high
),

-- rows whose value is plausible in no accepted unit (0) or in one (1) or several
inferred_unit_counts AS (
    SELECT
        n.lab_row_id,
        COUNT(DISTINCT p.factor_to_si) AS n_plausible_units
    FROM numbered AS n
    LEFT JOIN plausible_inferred_readings AS p
        ON p.lab_row_id = n.lab_row_id
    WHERE n.unit_missing
    GROUP BY n.lab_row_id
),

chosen_readings AS (
    SELECT lab_row_id, read_as_unit, si_unit, factor_to_si, by_inference,
        value_si_unrounded, value_si, plausible_low, plausible_high
    FROM readings
    WHERE NOT by_inference

    UNION ALL

    SELECT p.lab_row_id, p.read_as_unit, p.si_unit, p.factor_to_si, p.by_inference,
        p.value_si_unrounded, p.value_si, p.plausible_low, p.plausible_high
    FROM plausible_inferred_readings AS p
    INNER JOIN inferred_unit_counts AS c
        ON c.lab_row_id = p.lab_row_id
    WHERE c.n_plausible_units = 1 AND p.spelling_rank = 1
),

converted AS (
    SELECT
        n.*,
        cr.value_si_unrounded,
        cr.value_si,
        cr.si_unit AS unit_si,
        cr.factor_to_si,
        COALESCE(cr.by_inference, FALSE) AS unit_inferred,
        CASE WHEN cr.by_inference THEN cr.read_as_unit END AS inferred_unit,
        CASE
            WHEN b.analyte IS NULL OR n.value IS NULL OR isnan(n.value) THEN NULL
            WHEN cr.by_inference THEN 'inferred'
            WHEN cr.lab_row_id IS NOT NULL THEN 'as_reported'
            WHEN NOT n.unit_missing THEN 'not_accepted'
            WHEN NOT cfg.infer_missing_units THEN 'missing'
            WHEN ic.n_plausible_units = 0 THEN 'missing_implausible'
            ELSE 'missing_ambiguous'
        END AS unit_check,
        b.analyte IS NOT NULL AS analyte_known,
        b.plausible_low,
        b.plausible_high
    FROM numbered AS n
    CROSS JOIN study_config AS cfg
    LEFT JOIN chosen_readings AS cr
        ON cr.lab_row_id = n.lab_row_id
    LEFT JOIN inferred_unit_counts AS ic
        ON ic.lab_row_id = n.lab_row_id
    LEFT JOIN analyte_bounds AS b
        ON b.analyte = n.analyte
),

-- the first copy of a repeated result is kept; rows that tie on every column are
-- interchangeable, and the lowest lab_row_id makes the choice the same on every run
ranked AS (
    SELECT
        c.*,
        ROW_NUMBER() OVER (
            PARTITION BY
                c.subject_id, c.encounter_id, c.time, c.analyte, c.value, c.unit_normalised
            ORDER BY c.encounter_assigned_by_time, c.unit, c.source_code, c.lab_row_id
        ) AS copy_number
    FROM converted AS c
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
    value_si_unrounded,
    unit_inferred,
    inferred_unit,
    unit_check,
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
