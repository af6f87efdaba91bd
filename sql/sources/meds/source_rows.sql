-- source_rows: every MEDS row read, by the canonical table its role feeds, mapped or skipped.
SELECT
    'meds' AS source_kind,
    'data' AS source_table,
    CASE
        WHEN skip_reason IS NOT NULL THEN NULL
        WHEN role = 'lab' THEN 'lab_results'
        WHEN role = 'medication' THEN 'medication_administrations'
        WHEN role IN ('admission', 'discharge') THEN 'encounters'
        ELSE 'persons'
    END AS canonical_table,
    CASE WHEN skip_reason IS NULL THEN 'mapped' ELSE 'skipped' END AS status,
    coalesce(skip_reason, note) AS reason,
    count(*) AS n_rows
FROM meds_classified
GROUP BY ALL
ORDER BY canonical_table, status, reason
