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
--
-- Cost (this step reads every lab row, so its cost grows with the whole extract): every
-- lab row goes through one sort only, each subject's rows on their own (one window
-- partitioned by subject_id). That sort numbers the rows and, because its order
-- starts with the duplicate key, puts the copies of a repeated result next to each other, so
-- a LAG over the same window finds them; unit inference works on the distinct
-- (analyte, value) pairs of unit-less rows, which depends on nothing else. No intermediate
-- result over all lab rows is read twice, so none has to be kept (or spilled) whole.

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
        SELECT DISTINCT subject_id, time FROM lab_results WHERE encounter_id IS NULL
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

-- lab_row_id: rows numbered subject by subject (a window partitioned by subject, which
-- sorts each subject's rows on its own and runs in parallel on any engine) plus the count of
-- lab rows of the subjects before it in subject_id order; the same numbers as one ROW_NUMBER
-- over all labs in that order, without sorting every lab row in a single pass (on Spark: in
-- a single task).
subject_row_offsets AS (
    SELECT
        subject_id,
        COALESCE(
            SUM(n_rows) OVER (
                ORDER BY subject_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) AS rows_before
    FROM (SELECT subject_id, COUNT(*) AS n_rows FROM lab_results GROUP BY subject_id) AS s
),

-- The order starts with the duplicate key (encounter, time, analyte, value, unit), so the
-- copies of a repeated result are neighbours, the kept copy first: the one the source
-- linked to its stay before one attached by time, then by unit spelling and source code.
-- The remaining columns make the order total over the source columns.
-- A row is a copy when the row before it has the same key (NULLs equal, as in GROUP BY).
numbered AS (
    SELECT
        r.*,
        CAST(
            o.rows_before
            + ROW_NUMBER() OVER subject_rows
            AS BIGINT
        ) AS lab_row_id,
        COALESCE(
            LAG(r.time) OVER subject_rows = r.time
            AND LAG(r.analyte) OVER subject_rows = r.analyte
            AND LAG(r.encounter_id) OVER subject_rows IS NOT DISTINCT FROM r.encounter_id
            AND LAG(r.value) OVER subject_rows IS NOT DISTINCT FROM r.value
            AND LAG(r.unit_normalised) OVER subject_rows IS NOT DISTINCT FROM r.unit_normalised,
            FALSE
        ) AS repeats_previous_row
    FROM resolved AS r
    INNER JOIN subject_row_offsets AS o
        ON o.subject_id = r.subject_id
    WINDOW subject_rows AS (
        PARTITION BY r.subject_id
        ORDER BY
            r.time, r.analyte, r.encounter_id, r.value, r.unit_normalised,
            r.encounter_assigned_by_time, r.unit, r.source_code, r.source_encounter_id
    )
),

-- Unit inference (only when cfg.infer_missing_units): a missing unit's reading depends on
-- the analyte and the value alone, so each distinct (analyte, value) of a unit-less row with
-- a numeric value is read once in each accepted unit of its analyte.
unitless_values AS (
    SELECT DISTINCT l.analyte, l.value
    FROM lab_results AS l
    CROSS JOIN study_config AS cfg
    WHERE cfg.infer_missing_units
        AND (l.unit IS NULL OR trim(l.unit) = '')
        AND l.value IS NOT NULL
        AND NOT isnan(l.value)
),

inferred_readings AS (
    SELECT
        v.analyte,
        v.value,
        uc.unit AS read_as_unit,
        uc.si_unit,
        uc.factor_to_si,
        round(v.value * uc.factor_to_si, 6) AS value_si_unrounded,
        round(
            round(round(v.value * uc.factor_to_si, 6) * power(10, b.reporting_decimals), 6), 0
        ) / power(10, b.reporting_decimals) AS value_si,
        b.plausible_low,
        b.plausible_high
    FROM unitless_values AS v
    INNER JOIN analyte_bounds AS b
        ON b.analyte = v.analyte
    INNER JOIN unit_conversions AS uc
        ON uc.analyte = v.analyte
),

plausible_inferred_readings AS (
    SELECT
        r.*,
        ROW_NUMBER() OVER (
            PARTITION BY r.analyte, r.value
            ORDER BY
                CASE WHEN r.read_as_unit = lower(r.si_unit) THEN 0 ELSE 1 END,
                r.read_as_unit
        ) AS spelling_rank
    FROM inferred_readings AS r
    WHERE r.value_si >= r.plausible_low
        AND r.value_si <= r.plausible_high
),

-- values plausible in no accepted unit (0) or in one (1) or several
inferred_unit_counts AS (
    SELECT
        v.analyte,
        v.value,
        COUNT(DISTINCT p.factor_to_si) AS n_plausible_units
    FROM unitless_values AS v
    LEFT JOIN plausible_inferred_readings AS p
        ON p.analyte = v.analyte
        AND p.value = v.value
    GROUP BY v.analyte, v.value
),

inferred_choice AS (
    SELECT p.analyte, p.value, p.read_as_unit, p.si_unit, p.factor_to_si,
        p.value_si_unrounded, p.value_si
    FROM plausible_inferred_readings AS p
    INNER JOIN inferred_unit_counts AS c
        ON c.analyte = p.analyte
        AND c.value = p.value
    WHERE c.n_plausible_units = 1 AND p.spelling_rank = 1
),

-- a reported unit is read as given: one lookup of (analyte, unit) per row, joined to the
-- small reference tables (no join of the lab rows with themselves)
as_reported AS (
    SELECT
        n.*,
        b.analyte IS NOT NULL AS analyte_known,
        b.plausible_low,
        b.plausible_high,
        b.reporting_decimals,
        uc.si_unit AS reported_si_unit,
        uc.factor_to_si AS reported_factor_to_si
    FROM numbered AS n
    LEFT JOIN analyte_bounds AS b
        ON b.analyte = n.analyte
    LEFT JOIN unit_conversions AS uc
        ON uc.analyte = n.analyte
        AND uc.unit = n.unit_normalised
        AND NOT n.unit_missing
        AND b.analyte IS NOT NULL
        AND n.value IS NOT NULL
        AND NOT isnan(n.value)
),

converted AS (
    SELECT
        a.*,
        CASE
            WHEN a.reported_factor_to_si IS NOT NULL
                THEN round(a.value * a.reported_factor_to_si, 6)
            ELSE ic.value_si_unrounded
        END AS value_si_unrounded,
        CASE
            WHEN a.reported_factor_to_si IS NOT NULL
                THEN round(
                    round(
                        round(a.value * a.reported_factor_to_si, 6)
                        * power(10, a.reporting_decimals),
                        6
                    ),
                    0
                ) / power(10, a.reporting_decimals)
            ELSE ic.value_si
        END AS value_si,
        COALESCE(a.reported_si_unit, ic.si_unit) AS unit_si,
        COALESCE(a.reported_factor_to_si, ic.factor_to_si) AS factor_to_si,
        ic.analyte IS NOT NULL AS unit_inferred,
        ic.read_as_unit AS inferred_unit,
        CASE
            WHEN NOT a.analyte_known OR a.value IS NULL OR isnan(a.value) THEN NULL
            WHEN ic.analyte IS NOT NULL THEN 'inferred'
            WHEN a.reported_factor_to_si IS NOT NULL THEN 'as_reported'
            WHEN NOT a.unit_missing THEN 'not_accepted'
            WHEN NOT cfg.infer_missing_units THEN 'missing'
            WHEN iuc.n_plausible_units = 0 THEN 'missing_implausible'
            ELSE 'missing_ambiguous'
        END AS unit_check
    FROM as_reported AS a
    CROSS JOIN study_config AS cfg
    LEFT JOIN inferred_choice AS ic
        ON a.unit_missing
        AND ic.analyte = a.analyte
        AND ic.value = a.value
    LEFT JOIN inferred_unit_counts AS iuc
        ON a.unit_missing
        AND iuc.analyte = a.analyte
        AND iuc.value = a.value
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
        WHEN repeats_previous_row THEN 'duplicate'
        ELSE 'used'
    END AS status
FROM converted;
