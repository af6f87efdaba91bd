-- Observation → lab_results: LOINC-coded (system http://loinc.org, code in lab_codes.csv),
-- status final/amended/corrected (fhir_statuses.csv). Value: valueQuantity.value (a result
-- without valueQuantity keeps a NULL value, counted by the core SQL as missing_value). Unit:
-- valueQuantity.code when its system is UCUM, else valueQuantity.unit as written (unknown
-- units are quarantined and counted by the core SQL). Time: effectiveDateTime, else
-- effectivePeriod.start, else issued is NOT used (the release time is not the draw time).
CREATE OR REPLACE TEMP VIEW fhir_observation AS
SELECT
    json ->> '$.id' AS id,
    json ->> '$.status' AS status,
    list_transform(
        list_filter(fhir_codings(json -> '$.code.coding'), lambda x: x.system = 'http://loinc.org'),
        lambda x: x.code) AS loinc_codes,
    fhir_codings(json -> '$.code.coding') AS codings,
    json ->> '$.code.text' AS code_text,
    fhir_ref(json ->> '$.subject.reference', 'Patient') AS subject_id,
    fhir_ref(json ->> '$.encounter.reference', 'Encounter') AS encounter_id,
    coalesce(fhir_time(json ->> '$.effectiveDateTime'),
             fhir_time(json ->> '$.effectivePeriod.start')) AS "time",
    TRY_CAST(json -> '$.valueQuantity.value' AS DOUBLE) AS value,
    CASE WHEN json ->> '$.valueQuantity.system' = 'http://unitsofmeasure.org'
         THEN coalesce(json ->> '$.valueQuantity.code', json ->> '$.valueQuantity.unit')
         ELSE json ->> '$.valueQuantity.unit' END AS unit
FROM fhir_observation_raw;

CREATE OR REPLACE TEMP VIEW fhir_lab_rows AS
WITH coded AS (
    SELECT o.*,
        (SELECT min(l.analyte) FROM ref_lab_codes AS l
         WHERE l.vocabulary = 'LOINC' AND list_contains(o.loinc_codes, l.code)) AS analyte,
        (SELECT min(l.code) FROM ref_lab_codes AS l
         WHERE l.vocabulary = 'LOINC' AND list_contains(o.loinc_codes, l.code)) AS loinc_code
    FROM fhir_observation AS o
)
SELECT
    subject_id, encounter_id, "time", analyte, value, unit,
    'LOINC:' || loinc_code AS source_code,
    CASE
        WHEN analyte IS NULL THEN 'Observation.code has no LOINC code of the list'
        WHEN fhir_status_skip('Observation', status) IS NOT NULL
            THEN fhir_status_skip('Observation', status)
        WHEN subject_id IS NULL THEN 'Observation.subject not a Patient reference'
        WHEN "time" IS NULL THEN 'Observation.effective[x] missing or partial'
    END AS skip_reason,
    -- for the orphan-code diagnostics (orphan_codes.sql)
    coalesce('LOINC:' || loinc_codes[1],
             codings[1].system || '|' || codings[1].code) AS first_code,
    coalesce(code_text, list_filter(list_transform(codings, lambda x: x.display),
                                    lambda d: d IS NOT NULL)[1]) AS display
FROM coded;
