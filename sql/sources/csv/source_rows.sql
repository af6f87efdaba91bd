-- source_rows: every row of the extract read, by file role, mapped or skipped (and why).
WITH counted AS (
    SELECT 'labs' AS source_table, 'lab_results' AS canonical_table, skip_reason, note
    FROM long_labs_classified
    UNION ALL
    SELECT 'medications', 'medication_administrations', skip_reason, note
    FROM long_medications_classified
    UNION ALL
    SELECT 'persons', 'persons', skip_reason, note FROM long_persons_classified
    UNION ALL
    SELECT 'encounters', 'encounters', skip_reason, note FROM long_encounters_classified
)
SELECT
    'csv' AS source_kind,
    source_table,
    CASE WHEN skip_reason IS NULL THEN canonical_table END AS canonical_table,
    CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END AS status,
    coalesce(skip_reason, note) AS reason,
    count(*) AS n_rows
FROM counted
GROUP BY ALL
ORDER BY source_table, status, reason
