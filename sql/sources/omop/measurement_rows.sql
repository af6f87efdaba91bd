-- measurement → lab_results: rows whose measurement_concept_id is a LOINC code of
-- lab_codes.csv. The value is value_as_number (a non-numeric or empty value stays NULL and is
-- counted by the core SQL as missing_value); the unit is the UCUM code of unit_concept_id, else
-- unit_source_value as recorded (an unknown or missing unit is quarantined and counted by the
-- core SQL, never guessed here). Draw time: measurement_datetime, else measurement_date 00:00.
CREATE OR REPLACE TEMP VIEW omop_lab_rows AS
SELECT
    CAST(m.person_id AS VARCHAR) AS subject_id,
    CAST(m.visit_occurrence_id AS VARCHAR) AS encounter_id,
    coalesce(TRY_CAST(m.measurement_datetime AS TIMESTAMP),
             CAST(TRY_CAST(m.measurement_date AS DATE) AS TIMESTAMP)) AS "time",
    lc.analyte,
    TRY_CAST(m.value_as_number AS DOUBLE) AS value,
    coalesce(u.ucum_code, nullif(trim(CAST(m.unit_source_value AS VARCHAR)), '')) AS unit,
    'LOINC:' || lc.loinc_code AS source_code,
    CASE
        WHEN lc.analyte IS NULL THEN 'measurement_concept_id not in LOINC code list'
        WHEN m.person_id IS NULL THEN 'person_id missing'
        WHEN coalesce(TRY_CAST(m.measurement_datetime AS TIMESTAMP),
                      CAST(TRY_CAST(m.measurement_date AS DATE) AS TIMESTAMP)) IS NULL
            THEN 'measurement date missing or unparseable'
    END AS skip_reason,
    TRY_CAST(m.measurement_concept_id AS BIGINT) AS concept_id,
    nullif(trim(CAST(m.measurement_source_value AS VARCHAR)), '') AS source_value
FROM src_measurement AS m
LEFT JOIN omop_lab_concepts AS lc ON lc.concept_id = TRY_CAST(m.measurement_concept_id AS BIGINT)
LEFT JOIN omop_unit_concepts AS u ON u.concept_id = TRY_CAST(m.unit_concept_id AS BIGINT);
