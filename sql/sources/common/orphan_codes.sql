-- Orphan-code diagnostics (as OHDSI CohortDiagnostics' orphan concepts): source codes that
-- look like a study analyte or drug but are not in the code lists, so their rows fed nothing.
-- Reads the view orphan_candidates that sql/sources/<kind>/orphan_codes.sql defines (one row
-- per lab or drug source row: source_kind, source_table, domain 'lab'|'drug', code, display,
-- unit, value, encounter_id, listed = the code is in a code list, canonical = the analyte or
-- ingredient the row was mapped to, NULL when not mapped) and three reference files of
-- sql/reference/sources/:
--   orphan_patterns.csv          a regular expression on the lower-case display and code
--                                (matched_by 'name');
--   lab_codes_left_out.csv       codes known and left out on purpose, each with why
--                                (matched_by 'left_out_list' when no name rule matched);
--   orphan_value_signatures.csv  for a nameless lab code (no display: MEDS 'LAB//itemid' or
--                                'LOINC/…', a CSV code without text) that neither matched:
--                                its most frequent unit matches the signature's unit pattern
--                                and its 5th-95th value percentiles lie inside the signature's
--                                plausible range (matched_by 'unit_value'; a possible match,
--                                one row per signature it fits).
-- One row per unlisted code and look-alike: rows, stays, the stays that have no mapped row of
-- the look-alike's analytes or ingredients (what mapping the code would add), the most
-- frequent unit, the 5th/50th/95th value percentiles (aggregates only), matched_by and, for a
-- code of lab_codes_left_out.csv, left_out_why.
-- Rules are matched on the distinct (code, display) pairs, not row by row, and only the rows of
-- matched codes are read again for the aggregates: an extract with millions of rows of one
-- unlisted code stays within the engine's memory limit.
WITH unlisted_rows AS NOT MATERIALIZED (
    SELECT c.*,
           -- 'LOINC:19072-8 (OMOP 1)', 'LOINC/19072-8', 'LOINC:19072-8': the code's LOINC part
           nullif(regexp_extract(c.code, 'LOINC[:/]([0-9]{1,6}-[0-9])', 1), '') AS loinc_code
    FROM orphan_candidates AS c
    WHERE NOT c.listed
),
unlisted_names AS (
    SELECT source_kind, source_table, domain, code, display, min(loinc_code) AS loinc_code
    FROM unlisted_rows
    GROUP BY source_kind, source_table, domain, code, display
),
by_name AS (
    SELECT n.source_kind, n.source_table, n.domain, n.code, n.display, p.looks_like,
           'name' AS matched_by
    FROM unlisted_names AS n
    JOIN ref_orphan_patterns AS p
        ON p.domain = n.domain
        AND regexp_matches(lower(coalesce(n.display, '') || ' ' || coalesce(n.code, '')),
                           p.pattern)
),
named_codes AS (
    SELECT DISTINCT source_kind, source_table, domain, code FROM by_name
),
by_left_out AS (
    SELECT n.source_kind, n.source_table, n.domain, n.code, n.display,
           lo.analyte AS looks_like, 'left_out_list' AS matched_by
    FROM unlisted_names AS n
    JOIN ref_lab_codes_left_out AS lo ON lo.vocabulary = 'LOINC' AND lo.code = n.loinc_code
    WHERE n.domain = 'lab'
      AND NOT EXISTS (SELECT 1 FROM named_codes AS nc
                      WHERE nc.source_kind = n.source_kind AND nc.source_table = n.source_table
                        AND nc.domain = n.domain AND nc.code = n.code)
),
nameless_codes AS (
    SELECT source_kind, source_table, domain, code,
           lower(replace(mode(unit), ' ', '')) AS unit,
           quantile_cont(value, 0.05) AS value_p05,
           quantile_cont(value, 0.95) AS value_p95
    FROM unlisted_rows AS u
    WHERE domain = 'lab' AND nullif(trim(coalesce(display, '')), '') IS NULL
      AND (loinc_code IS NULL
           OR loinc_code NOT IN (SELECT code FROM ref_lab_codes_left_out))
    GROUP BY ALL
),
by_value AS (
    SELECT n.source_kind, n.source_table, n.domain, n.code, n.display,
           s.analyte AS looks_like, 'unit_value' AS matched_by
    FROM unlisted_names AS n
    JOIN nameless_codes AS v
        ON v.source_kind = n.source_kind AND v.source_table = n.source_table
        AND v.domain = n.domain AND v.code = n.code
    JOIN ref_orphan_value_signatures AS s
        ON regexp_matches(coalesce(v.unit, ''), s.unit_pattern)
        AND v.value_p05 >= TRY_CAST(s.value_low AS DOUBLE)
        AND v.value_p95 <= TRY_CAST(s.value_high AS DOUBLE)
    WHERE NOT EXISTS (SELECT 1 FROM named_codes AS nc
                      WHERE nc.source_kind = n.source_kind AND nc.source_table = n.source_table
                        AND nc.domain = n.domain AND nc.code = n.code)
),
matches AS (
    SELECT DISTINCT * FROM (
        SELECT * FROM by_name
        UNION ALL SELECT * FROM by_left_out
        UNION ALL SELECT * FROM by_value
    )
),
unlisted AS (
    SELECT u.*, m.looks_like, m.matched_by
    FROM unlisted_rows AS u
    JOIN matches AS m
        ON m.source_kind = u.source_kind AND m.source_table = u.source_table
        AND m.domain = u.domain AND m.code = u.code
        AND m.display IS NOT DISTINCT FROM u.display
),
-- the analytes or ingredients each look-alike stands for: the name rules' targets, and the
-- analyte itself for a left-out code or a value signature
look_alike_targets AS (
    SELECT domain, looks_like, unnest(string_split(targets, ';')) AS canonical
    FROM ref_orphan_patterns
    UNION
    SELECT 'lab', analyte, analyte FROM ref_orphan_value_signatures
    UNION
    SELECT 'lab', analyte, analyte FROM ref_lab_codes_left_out
),
covered AS (
    SELECT DISTINCT c.encounter_id, c.domain, t.looks_like
    FROM orphan_candidates AS c
    JOIN look_alike_targets AS t ON t.domain = c.domain AND t.canonical = c.canonical
    WHERE c.canonical IS NOT NULL AND c.encounter_id IS NOT NULL
)
SELECT
    u.source_kind,
    u.source_table,
    u.domain,
    u.looks_like,
    u.code,
    min(u.display) AS display,
    mode(u.unit) AS unit,
    count(*) AS n_rows,
    count(DISTINCT u.encounter_id) AS n_stays,
    count(DISTINCT u.encounter_id) FILTER (WHERE cv.encounter_id IS NULL) AS n_stays_added,
    quantile_cont(u.value, 0.05) AS value_p05,
    quantile_cont(u.value, 0.50) AS value_p50,
    quantile_cont(u.value, 0.95) AS value_p95,
    min(u.matched_by) AS matched_by,
    min(lo.why) AS left_out_why
FROM unlisted AS u
LEFT JOIN covered AS cv
    ON cv.encounter_id = u.encounter_id AND cv.domain = u.domain AND cv.looks_like = u.looks_like
LEFT JOIN ref_lab_codes_left_out AS lo
    ON u.domain = 'lab' AND lo.vocabulary = 'LOINC' AND lo.code = u.loinc_code
GROUP BY u.source_kind, u.source_table, u.domain, u.looks_like, u.code
ORDER BY u.domain, u.looks_like, n_rows DESC, u.code
