-- source_rows: every MIMIC-IV row read, by source table, the canonical table it fed, and
-- whether it was mapped or skipped (reason = skip reason, or the note of a mapped row).
-- hosp/prescriptions are counted, all skipped: orders are not administrations.
WITH counted AS (
    SELECT 'hosp/patients' AS source_table, 'persons' AS canonical_table, skip_reason, note
    FROM mimic_persons_classified
    UNION ALL
    SELECT 'hosp/admissions', 'encounters', skip_reason, note FROM mimic_encounters_classified
    UNION ALL
    SELECT 'hosp/labevents', 'lab_results', skip_reason, note FROM mimic_labs_classified
    UNION ALL
    SELECT 'hosp/emar', 'medication_administrations', skip_reason, note
    FROM mimic_emar_classified
    UNION ALL
    SELECT 'hosp/emar_detail', 'medication_administrations', skip_reason, note
    FROM mimic_emar_detail_classified
    UNION ALL
    SELECT 'icu/inputevents', 'medication_administrations', skip_reason, note
    FROM mimic_inputs_classified
    UNION ALL
    SELECT 'icu/icustays', 'care_events', skip_reason, note FROM mimic_icustays_classified
    UNION ALL
    SELECT 'icu/procedureevents', 'care_events', skip_reason, note
    FROM mimic_procedures_classified
    UNION ALL
    SELECT
        'hosp/prescriptions', NULL,
        'order, not an administration (prescriptions never count as given)', NULL
    FROM src_prescriptions
)
SELECT
    'mimic' AS source_kind,
    source_table,
    CASE WHEN skip_reason IS NULL THEN canonical_table END AS canonical_table,
    CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END AS status,
    coalesce(skip_reason, note) AS reason,
    count(*) AS n_rows
FROM counted
GROUP BY ALL
ORDER BY source_table, status, reason
