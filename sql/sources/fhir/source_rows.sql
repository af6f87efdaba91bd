-- Every FHIR resource read, mapped or skipped by reason (source_rows.parquet).
SELECT 'fhir' AS source_kind, 'Patient' AS source_table,
       CASE WHEN skip_reason IS NULL THEN 'persons' END AS canonical_table,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END AS status,
       skip_reason AS reason, count(*) AS n_rows
FROM fhir_person_rows GROUP BY ALL
UNION ALL
SELECT 'fhir', 'Encounter', CASE WHEN skip_reason IS NULL THEN 'encounters' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END, skip_reason, count(*)
FROM fhir_encounter_rows GROUP BY ALL
UNION ALL
SELECT 'fhir', 'Observation', CASE WHEN skip_reason IS NULL THEN 'lab_results' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END, skip_reason, count(*)
FROM fhir_lab_rows GROUP BY ALL
UNION ALL
SELECT 'fhir', 'MedicationAdministration',
       CASE WHEN skip_reason IS NULL THEN 'medication_administrations' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END, skip_reason, count(*)
FROM fhir_drug_rows GROUP BY ALL
