-- Every OMOP source row read, mapped or skipped by reason (source_rows.parquet).
SELECT 'omop' AS source_kind, 'person' AS source_table, CASE WHEN skip_reason IS NULL THEN 'persons' END AS canonical_table,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END AS status,
       skip_reason AS reason, count(*) AS n_rows
FROM omop_person_rows GROUP BY ALL
UNION ALL
SELECT 'omop', 'visit_occurrence',
       CASE WHEN skip_reason IS NULL THEN 'encounters' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END, skip_reason, count(*)
FROM omop_visit_rows GROUP BY ALL
UNION ALL
SELECT 'omop', 'measurement',
       CASE WHEN skip_reason IS NULL THEN 'lab_results' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END, skip_reason, count(*)
FROM omop_lab_rows GROUP BY ALL
UNION ALL
-- a mapped drug whose ingredient was not found through concept_ancestor says how it was found;
-- a carrier fluid that kept another ingredient says which it lost
SELECT 'omop', 'drug_exposure',
       CASE WHEN skip_reason IS NULL THEN 'medication_administrations' END,
       CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END,
       coalesce(skip_reason, carrier_note,
                CASE WHEN ingredient_route <> 'concept_ancestor'
                     THEN 'ingredient found by ' || ingredient_route END),
       count(*)
FROM omop_drug_rows GROUP BY ALL
