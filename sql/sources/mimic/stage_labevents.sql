-- stage_labevents: one streaming pass over hosp/labevents (100+ million rows in MIMIC-IV).
--
-- Reads:  src_labevents (the distributed file, every column as text or as typed in Parquet),
--         ref_mimic_lab_items (sql/reference/sources/mimic_lab_items.csv), src_d_labitems
--         (hosp/d_labitems; empty when absent) and ref_orphan_patterns.
-- Writes: one staged Parquet row per labevents row. Rows whose itemid is in the code list keep
--         the columns the mapping needs; rows of an unlisted itemid whose d_labitems label looks
--         like a study analyte (orphan_patterns.csv) keep stay, value and unit for the
--         orphan-code diagnostics; every other row keeps only its itemid, so it can be counted
--         without a second pass over the gzip file.
WITH lookalike AS (
    SELECT DISTINCT trim(CAST(d.itemid AS VARCHAR)) AS itemid
    FROM src_d_labitems AS d
    JOIN ref_orphan_patterns AS p
        ON p.domain = 'lab' AND regexp_matches(lower(CAST(d.label AS VARCHAR)), p.pattern)
)
SELECT
    trim(CAST(l.itemid AS VARCHAR)) AS itemid,
    k.itemid IS NOT NULL AS listed,
    CASE WHEN k.itemid IS NOT NULL OR lk.itemid IS NOT NULL THEN CAST(l.subject_id AS VARCHAR)
    END AS subject_id,
    CASE WHEN k.itemid IS NOT NULL OR lk.itemid IS NOT NULL THEN CAST(l.hadm_id AS VARCHAR)
    END AS hadm_id,
    CASE WHEN k.itemid IS NOT NULL THEN CAST(l.charttime AS VARCHAR) END AS charttime,
    CASE WHEN k.itemid IS NOT NULL OR lk.itemid IS NOT NULL THEN CAST(l.valuenum AS VARCHAR)
    END AS valuenum,
    CASE WHEN k.itemid IS NOT NULL OR lk.itemid IS NOT NULL THEN CAST(l.valueuom AS VARCHAR)
    END AS valueuom
FROM src_labevents AS l
LEFT JOIN ref_mimic_lab_items AS k
    ON k.itemid = trim(CAST(l.itemid AS VARCHAR))
LEFT JOIN lookalike AS lk
    ON lk.itemid = trim(CAST(l.itemid AS VARCHAR)) AND k.itemid IS NULL
