-- Orphan-code candidates (sql/sources/common/orphan_codes.sql aggregates them): every
-- Observation and MedicationAdministration with its first LOINC (else first) coding or
-- RxNorm code and its text or display, whether a code list knows it, and what it was mapped to.
CREATE OR REPLACE TEMP VIEW orphan_candidates AS
SELECT
    'fhir' AS source_kind,
    'Observation' AS source_table,
    'lab' AS domain,
    coalesce(first_code, 'text:' || lower(display)) AS code,
    display,
    unit,
    value,
    encounter_id,
    analyte IS NOT NULL AS listed,
    CASE WHEN skip_reason IS NULL THEN analyte END AS canonical
FROM fhir_lab_rows
UNION ALL
SELECT
    'fhir', 'MedicationAdministration', 'drug',
    source_code,
    display,
    dose_unit,
    dose,
    encounter_id,
    listed,
    CASE WHEN skip_reason IS NULL THEN ingredient END
FROM (SELECT *, unnest(coalesce(ingredients, [CAST(NULL AS VARCHAR)])) AS ingredient
      FROM fhir_drug_rows);
