-- Orphan-code candidates (sql/sources/common/orphan_codes.sql aggregates them): every lab-
-- and medication-role row (meds_codes.csv) with its code, the name inside it (the medication
-- of MEDICATION//<name>//<event>; MEDS lab codes carry no name, so only their code text can
-- look like an analyte), whether a code list knows it, and what it was mapped to. A row
-- without hadm_id is counted under its subject.
CREATE OR REPLACE TEMP VIEW orphan_candidates AS
SELECT
    'meds' AS source_kind,
    'data' AS source_table,
    CASE WHEN role = 'medication' THEN 'drug' ELSE 'lab' END AS domain,
    CASE WHEN starts_with(code, 'MEDICATION//') THEN 'MEDICATION//' || part2
         WHEN starts_with(code, 'LAB//') THEN 'LAB//' || part2
         ELSE code END AS code,
    CASE WHEN starts_with(code, 'MEDICATION//') THEN part2 END AS display,
    coalesce(unit, CASE WHEN starts_with(code, 'LAB//') THEN nullif(part3, '') END) AS unit,
    numeric_value AS value,
    coalesce(hadm_id, 'subject:' || subject_id) AS encounter_id,
    coalesce(skip_reason, '') NOT IN ('lab code not in code list',
                                      'medication code not in code list') AS listed,
    CASE WHEN skip_reason IS NULL THEN coalesce(analyte, ingredient) END AS canonical
FROM meds_classified
WHERE role IN ('lab', 'medication');
