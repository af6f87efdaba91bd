-- data_quality: what the pipeline read, quarantined, converted and could not use.
--
-- Reads:  persons, encounters, lab_results, medication_administrations, lab_harmonised,
--         calcium_corrected, medication_harmonised, mg_repletion, unit_conversions.
-- Writes: data_quality (table_name, check_name, analyte, n_rows, n_flagged, detail): one row
--         per (table, check, analyte); n_rows is the denominator the check looked at,
--         n_flagged the rows it counted. For medication checks, analyte holds the ingredient.
--
-- Checks (no thresholds here: statuses and conversions come from lab_harmonised.sql,
-- calcium_corrected.sql and medication_harmonised.sql):
--   rows_read                        rows loaded per canonical table
--   status:<status>                  lab rows per analyte by lab_harmonised.status; over all
--                                    statuses they add up to rows_read of lab_results
--   encounter_assigned_by_time       lab rows without encounter_id attached to a stay by time
--   unit_conversion:<unit>           lab rows per analyte converted from each source unit
--   missing_albumin                  used total Ca with no albumin in the window (not correctable)
--   discharge_before_admit           encounters whose discharge_time < admit_time
--   not_given                        administrations recorded as ordered but not given
--   unknown_ingredient               ingredient not in sql/reference/ingredients.csv
--   unknown_dose_unit                known ingredient, dose_unit missing or not a dose unit
--   elemental_dose_unknown           given Mg doses whose elemental amount is unknown

CREATE OR REPLACE TABLE data_quality AS
WITH
status_descriptions AS (
    SELECT *
    FROM (
        VALUES
            ('used', 'used by the pipeline'),
            ('unknown_analyte', 'quarantined: analyte not in analyte_bounds'),
            ('missing_value', 'quarantined: no numeric value'),
            ('unknown_unit', 'quarantined: unit missing or not in unit_conversions'),
            ('implausible_value', 'quarantined: outside analyte_bounds after conversion'),
            ('unknown_encounter', 'quarantined: encounter_id not a stay of this subject'),
            ('no_encounter', 'quarantined: no encounter_id and time inside none of the stays'),
            ('ambiguous_encounter',
                'quarantined: no encounter_id and time inside several overlapping stays'),
            ('duplicate', 'quarantined: repeat of an identical result (one copy kept)')
    ) AS d (status, description)
),

lab_rows_per_analyte AS (
    SELECT analyte, COUNT(*) AS n_rows
    FROM lab_harmonised
    GROUP BY analyte
),

checks AS (
    SELECT 'persons' AS table_name, 'rows_read' AS check_name, CAST(NULL AS VARCHAR) AS analyte,
        COUNT(*) AS n_rows, 0 AS n_flagged, 'rows loaded from persons.parquet' AS detail
    FROM persons
    UNION ALL
    SELECT 'encounters', 'rows_read', NULL, COUNT(*), 0, 'rows loaded from encounters.parquet'
    FROM encounters
    UNION ALL
    SELECT 'lab_results', 'rows_read', NULL, COUNT(*), 0, 'rows loaded from lab_results.parquet'
    FROM lab_results
    UNION ALL
    SELECT 'medication_administrations', 'rows_read', NULL, COUNT(*), 0,
        'rows loaded from medication_administrations.parquet'
    FROM medication_administrations

    UNION ALL
    SELECT 'lab_results', 'status:' || h.status, h.analyte, MAX(t.n_rows), COUNT(*),
        MAX(COALESCE(d.description, h.status))
    FROM lab_harmonised AS h
    INNER JOIN lab_rows_per_analyte AS t
        ON t.analyte = h.analyte
    LEFT JOIN status_descriptions AS d
        ON d.status = h.status
    GROUP BY h.analyte, h.status

    UNION ALL
    SELECT 'lab_results', 'encounter_assigned_by_time', h.analyte, COUNT(*),
        SUM(CASE WHEN h.encounter_assigned_by_time THEN 1 ELSE 0 END),
        'lab rows without encounter_id attached to the one stay containing their time'
    FROM lab_harmonised AS h
    GROUP BY h.analyte

    UNION ALL
    SELECT 'lab_results', 'unit_conversion:' || h.unit_normalised, h.analyte, MAX(t.n_rows),
        COUNT(*),
        MAX(h.unit_normalised || ' -> ' || uc.si_unit || ' x ' || CAST(uc.factor_to_si AS VARCHAR))
    FROM lab_harmonised AS h
    INNER JOIN lab_rows_per_analyte AS t
        ON t.analyte = h.analyte
    INNER JOIN unit_conversions AS uc
        ON uc.analyte = h.analyte
        AND uc.unit = h.unit_normalised
    WHERE h.value_si IS NOT NULL
    GROUP BY h.analyte, h.unit_normalised

    UNION ALL
    SELECT 'calcium_corrected', 'missing_albumin', 'calcium_total', COUNT(*),
        SUM(CASE WHEN ca_corrected_mmol_l IS NULL THEN 1 ELSE 0 END),
        'used total Ca without a used albumin of the stay within albumin_window_hours: '
        || 'not correctable, not used'
    FROM calcium_corrected

    UNION ALL
    SELECT 'encounters', 'discharge_before_admit', NULL, COUNT(*),
        SUM(CASE WHEN discharge_time < admit_time THEN 1 ELSE 0 END),
        'stays whose discharge_time is before admit_time'
    FROM encounters

    UNION ALL
    SELECT 'medication_administrations', 'not_given', ingredient, COUNT(*),
        SUM(CASE WHEN given THEN 0 ELSE 1 END),
        'ordered or scheduled but not given: never exposure'
    FROM medication_harmonised
    GROUP BY ingredient

    UNION ALL
    SELECT 'medication_administrations', 'unknown_ingredient', ingredient, COUNT(*), COUNT(*),
        'ingredient not in reference/ingredients.csv: ignored'
    FROM medication_harmonised
    WHERE role IS NULL
    GROUP BY ingredient

    UNION ALL
    SELECT 'medication_administrations', 'unknown_dose_unit', ingredient, COUNT(*),
        SUM(CASE WHEN dose_unit_known THEN 0 ELSE 1 END),
        'dose_unit missing or not a dose unit in reference/unit_conversions.csv'
    FROM medication_harmonised
    WHERE role IS NOT NULL
    GROUP BY ingredient

    UNION ALL
    SELECT 'mg_repletion', 'elemental_dose_unknown', ingredient, COUNT(*),
        SUM(CASE WHEN elemental_mg_mmol IS NULL THEN 1 ELSE 0 END),
        'given Mg doses without a usable dose or unit: exposure counted, amount unknown'
    FROM mg_repletion
    GROUP BY ingredient
)

SELECT
    CAST(table_name AS VARCHAR) AS table_name,
    CAST(check_name AS VARCHAR) AS check_name,
    CAST(analyte AS VARCHAR) AS analyte,
    CAST(n_rows AS BIGINT) AS n_rows,
    CAST(COALESCE(n_flagged, 0) AS BIGINT) AS n_flagged,
    CAST(detail AS VARCHAR) AS detail
FROM checks;
