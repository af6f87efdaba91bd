-- data_quality: what the pipeline read, quarantined, converted and could not use.
--
-- Reads:  persons, encounters, lab_results, medication_administrations, lab_harmonised,
--         calcium_corrected, calcium_status, hypocalcaemia_pth_status,
--         medication_harmonised, mg_repletion, calcium_supplementation, unit_conversions.
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
--   unit_inferred:<unit>             lab rows per analyte without a unit, read in <unit> by
--                                    the opt-in inference rule (cfg.infer_missing_units)
--   unit_check:<check>               lab rows per analyte whose unit was not simply as
--                                    reported: inferred, or why it is unknown_unit
--                                    ('missing' with inference off, 'missing_ambiguous',
--                                    'missing_implausible', 'not_accepted')
--   reporting_precision_rounding     numeric lab rows per analyte whose SI value changed when
--                                    rounded to the reporting precision
--   no_albumin_in_lookback           used total Ca with no used albumin of the stay drawn at or
--                                    before it within albumin_lookback_hours (not correctable;
--                                    not used unless an ionized Ca stands for it)
--   calcium_measure:<measure>        calcium_status rows by the measure used ('ionized',
--                                    'corrected', 'total_uncorrected': a flagged fallback)
--   pth_status:<status>              hypocalcaemia episodes by PTH status ('not_measured',
--                                    'measured_only_after_mg': no PTH before the first Mg)
--   discharge_before_admit           encounters whose discharge_time < admit_time
--   not_given                        administrations recorded as ordered but not given
--   unknown_ingredient               ingredient not in sql/reference/ingredients.csv
--   unknown_dose_unit                known ingredient, dose_unit missing or not a dose unit
--   elemental_dose_unknown           given Mg doses (table mg_repletion) and Ca doses (table
--                                    calcium_supplementation) whose elemental amount is unknown

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

unit_check_descriptions AS (
    SELECT *
    FROM (
        VALUES
            ('inferred', 'used: no unit reported, read in the one accepted unit in which '
                || 'the value is plausible (infer_missing_units = true)'),
            ('missing', 'quarantined as unknown_unit: no unit reported '
                || '(infer_missing_units = false)'),
            ('missing_ambiguous', 'quarantined as unknown_unit: no unit reported and the '
                || 'value is plausible in more than one accepted unit'),
            ('missing_implausible', 'quarantined as unknown_unit: no unit reported and the '
                || 'value is plausible in no accepted unit'),
            ('not_accepted', 'quarantined as unknown_unit: unit not in unit_conversions '
                || 'for the analyte')
    ) AS d (unit_check, description)
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
    SELECT 'lab_results', 'unit_inferred:' || h.inferred_unit, h.analyte, MAX(t.n_rows),
        COUNT(*),
        MAX('no unit reported; the value is plausible only in ' || h.inferred_unit
            || ': read in it (infer_missing_units = true)')
    FROM lab_harmonised AS h
    INNER JOIN lab_rows_per_analyte AS t
        ON t.analyte = h.analyte
    WHERE h.unit_inferred
    GROUP BY h.analyte, h.inferred_unit

    UNION ALL
    SELECT 'lab_results', 'unit_check:' || h.unit_check, h.analyte, MAX(t.n_rows), COUNT(*),
        MAX(d.description)
    FROM lab_harmonised AS h
    INNER JOIN lab_rows_per_analyte AS t
        ON t.analyte = h.analyte
    LEFT JOIN unit_check_descriptions AS d
        ON d.unit_check = h.unit_check
    WHERE h.unit_check <> 'as_reported'
    GROUP BY h.analyte, h.unit_check

    UNION ALL
    SELECT 'lab_results', 'reporting_precision_rounding', h.analyte, COUNT(*),
        SUM(CASE WHEN h.value_si <> h.value_si_unrounded THEN 1 ELSE 0 END),
        'numeric lab rows whose SI value changed when rounded to the reporting precision '
        || '(analyte_bounds.reporting_decimals) before any threshold'
    FROM lab_harmonised AS h
    WHERE h.value_si IS NOT NULL
    GROUP BY h.analyte

    UNION ALL
    SELECT 'calcium_corrected', 'no_albumin_in_lookback', 'calcium_total', COUNT(*),
        SUM(CASE WHEN ca_corrected_mmol_l IS NULL THEN 1 ELSE 0 END),
        'used total Ca without a used albumin of the stay drawn at or before it within '
        || 'albumin_lookback_hours: not correctable, never read as low or normal'
    FROM calcium_corrected

    UNION ALL
    SELECT 'calcium_status', 'calcium_measure:' || s.calcium_measure, NULL, MAX(t.n_rows),
        COUNT(*),
        MAX(CASE s.calcium_measure
            WHEN 'ionized' THEN 'calcium draw times whose best measure is an ionized Ca'
            WHEN 'corrected' THEN 'calcium draw times read as albumin-corrected total Ca'
            ELSE 'calcium draw times with a total Ca but no albumin: uncorrected, flagged'
        END)
    FROM calcium_status AS s
    CROSS JOIN (SELECT COUNT(*) AS n_rows FROM calcium_status) AS t
    GROUP BY s.calcium_measure

    UNION ALL
    SELECT 'hypocalcaemia_pth_status', 'pth_status:' || p.pth_status, NULL, MAX(t.n_rows),
        COUNT(*),
        MAX(CASE p.pth_status
            WHEN 'not_measured' THEN 'hypocalcaemia episodes without a PTH in the window'
            WHEN 'measured_only_after_mg'
                THEN 'hypocalcaemia episodes whose PTHs in the window were all drawn after '
                || 'the first Mg dose (not used)'
            ELSE 'hypocalcaemia episodes with a PTH: ' || p.pth_status
        END)
    FROM hypocalcaemia_pth_status AS p
    CROSS JOIN (SELECT COUNT(*) AS n_rows FROM hypocalcaemia_pth_status) AS t
    GROUP BY p.pth_status

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

    UNION ALL
    SELECT 'calcium_supplementation', 'elemental_dose_unknown', ingredient, COUNT(*),
        SUM(CASE WHEN elemental_ca_mmol IS NULL THEN 1 ELSE 0 END),
        'given Ca doses without a usable dose or unit: counted as given, amount unknown'
    FROM calcium_supplementation
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
