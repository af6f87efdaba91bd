-- Orphan-code candidates (sql/sources/common/orphan_codes.sql aggregates them): every lab and
-- medication row of the extract with its analyte or ingredient text as written, whether it was
-- recognised, and what it was mapped to. A row without encounter_id is counted under its
-- subject (the pseudo-stay it would get).
CREATE OR REPLACE TEMP VIEW orphan_candidates AS
SELECT
    'csv' AS source_kind,
    'labs' AS source_table,
    'lab' AS domain,
    source_code AS code,
    substr(source_code, 9) AS display,
    unit,
    value,
    coalesce(encounter_id, 'subject:' || subject_id) AS encounter_id,
    coalesce(skip_reason, '') <> 'analyte not recognised' AS listed,
    CASE WHEN skip_reason IS NULL THEN analyte END AS canonical
FROM long_labs_classified
UNION ALL
SELECT
    'csv', 'medications', 'drug',
    source_code,
    replace(substr(source_code, 9), '_', ' '),
    dose_unit,
    dose,
    coalesce(encounter_id, 'subject:' || subject_id),
    coalesce(skip_reason, '') <> 'ingredient not in ingredients.csv',
    CASE WHEN skip_reason IS NULL THEN ingredient END
FROM long_medications_classified;
