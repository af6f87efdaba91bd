-- Orphan-code candidates (sql/sources/common/orphan_codes.sql aggregates them): every
-- labevents row with its itemid and hosp/d_labitems label (and fluid), and every eMAR event
-- with its medication name, whether the code list knows it, and what it was mapped to. Only
-- unlisted itemids whose label, and unlisted medication names that look like a study analyte
-- or drug keep their stay and value in the staged files (stage_labevents.sql,
-- stage_emar.sql), so without hosp/d_labitems no lab itemid can be an orphan.
CREATE OR REPLACE TEMP VIEW mimic_d_labitems AS
SELECT trim(CAST(itemid AS VARCHAR)) AS itemid, min(CAST(label AS VARCHAR)) AS label,
       min(CAST(fluid AS VARCHAR)) AS fluid
FROM src_d_labitems GROUP BY 1;

CREATE OR REPLACE TEMP VIEW orphan_candidates AS
SELECT
    'mimic' AS source_kind,
    'hosp/labevents' AS source_table,
    'lab' AS domain,
    c.source_code AS code,
    d.label || coalesce(' (' || d.fluid || ')', '') AS display,
    c.unit,
    c.value,
    c.encounter_id,
    coalesce(c.skip_reason, '') <> 'itemid not in code list' AS listed,
    CASE WHEN c.skip_reason IS NULL THEN c.analyte END AS canonical
FROM mimic_labs_classified AS c
LEFT JOIN mimic_d_labitems AS d ON 'MIMIC-IV:' || d.itemid = c.source_code
UNION ALL
SELECT
    'mimic', 'hosp/emar', 'drug',
    source_code,
    substr(source_code, length('MIMIC-IV:emar:') + 1),
    dose_unit,
    dose,
    encounter_id,
    coalesce(skip_reason, '') <> 'medication not in code list',
    CASE WHEN skip_reason IS NULL THEN ingredient END
FROM mimic_emar_classified;
