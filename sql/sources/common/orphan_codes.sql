-- Orphan-code diagnostics (as OHDSI CohortDiagnostics' orphan concepts): source codes that
-- look like a study analyte or drug but are not in the code lists, so their rows fed nothing.
-- Reads the view orphan_candidates that sql/sources/<kind>/orphan_codes.sql defines (one row
-- per lab or drug source row: source_kind, source_table, domain 'lab'|'drug', code, display,
-- unit, value, encounter_id, listed = the code is in a code list, canonical = the analyte or
-- ingredient the row was mapped to, NULL when not mapped) and the look-alike rules of
-- sql/reference/sources/orphan_patterns.csv (a regular expression on the lower-case display
-- and code). One row per unlisted code and look-alike: rows, stays, the stays that have no
-- mapped row of the look-alike's analytes or ingredients (what mapping the code would add),
-- the most frequent unit and the 5th/50th/95th value percentiles (aggregates only).
WITH unlisted AS (
    SELECT c.*, p.looks_like
    FROM orphan_candidates AS c
    JOIN ref_orphan_patterns AS p
        ON p.domain = c.domain
        AND regexp_matches(lower(coalesce(c.display, '') || ' ' || coalesce(c.code, '')),
                           p.pattern)
    WHERE NOT c.listed
),
covered AS (
    SELECT DISTINCT c.encounter_id, c.domain, p.looks_like
    FROM orphan_candidates AS c
    JOIN ref_orphan_patterns AS p
        ON p.domain = c.domain AND list_contains(string_split(p.targets, ';'), c.canonical)
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
    quantile_cont(u.value, 0.95) AS value_p95
FROM unlisted AS u
LEFT JOIN covered AS cv
    ON cv.encounter_id = u.encounter_id AND cv.domain = u.domain AND cv.looks_like = u.looks_like
GROUP BY u.source_kind, u.source_table, u.domain, u.looks_like, u.code
ORDER BY u.domain, u.looks_like, n_rows DESC, u.code
