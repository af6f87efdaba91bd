-- stage_emar: one streaming pass over hosp/emar (one row per eMAR event).
--
-- Reads:  src_emar, ref_mimic_medications (sql/reference/sources/mimic_medications.csv),
--         ref_orphan_patterns, ref_carrier_fluids.
-- Writes: one staged row per emar row; rows whose medication name (trimmed, lower case) is in
--         the code list keep what the mapping needs; an unlisted name that looks like a study
--         drug (orphan_patterns.csv) keeps its name, stay and subject for the orphan-code
--         diagnostics; an unlisted carrier fluid (carrier_fluids.csv: Lactated Ringer's,
--         Plasma-Lyte) keeps its name, so source_rows counts it under its own reason; every
--         other row only the flag.
SELECT
    k.medication IS NOT NULL AS listed,
    CASE WHEN k.medication IS NOT NULL THEN CAST(e.emar_id AS VARCHAR) END AS emar_id,
    CASE WHEN k.medication IS NOT NULL OR lk.domain IS NOT NULL
         THEN CAST(e.subject_id AS VARCHAR) END AS subject_id,
    CASE WHEN k.medication IS NOT NULL OR lk.domain IS NOT NULL
         THEN CAST(e.hadm_id AS VARCHAR) END AS hadm_id,
    CASE WHEN k.medication IS NOT NULL THEN CAST(e.charttime AS VARCHAR) END AS charttime,
    CASE WHEN k.medication IS NOT NULL THEN k.medication
         WHEN lk.domain IS NOT NULL
              OR regexp_matches(lower(CAST(e.medication AS VARCHAR)), carrier.pattern)
             THEN lower(trim(CAST(e.medication AS VARCHAR))) END
        AS medication,
    CASE WHEN k.medication IS NOT NULL THEN trim(CAST(e.event_txt AS VARCHAR)) END AS event_txt
FROM src_emar AS e
LEFT JOIN ref_mimic_medications AS k
    ON k.medication = lower(trim(CAST(e.medication AS VARCHAR)))
CROSS JOIN (SELECT string_agg(pattern, '|') AS pattern FROM ref_orphan_patterns
            WHERE domain = 'drug') AS drug_pattern
CROSS JOIN (SELECT string_agg(pattern, '|') AS pattern FROM ref_carrier_fluids) AS carrier
LEFT JOIN (SELECT 'drug' AS domain) AS lk
    ON k.medication IS NULL
    AND regexp_matches(lower(CAST(e.medication AS VARCHAR)), drug_pattern.pattern)
