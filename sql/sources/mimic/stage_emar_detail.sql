-- stage_emar_detail: one streaming pass over hosp/emar_detail (several rows per eMAR event:
-- a parent row, parent_field_ordinal empty, and one row per product component, 1.1, 1.2 ...).
--
-- Reads:  src_emar_detail, stage_emar.
-- Writes: one staged row per emar_detail row; rows of a listed eMAR event keep the dose, unit
--         and route, every other row only the flag.
WITH listed_events AS (
    SELECT DISTINCT emar_id FROM stage_emar WHERE listed AND emar_id IS NOT NULL
)
SELECT
    w.emar_id IS NOT NULL AS listed,
    w.emar_id,
    CASE WHEN w.emar_id IS NOT NULL THEN CAST(d.parent_field_ordinal AS VARCHAR) END
        AS parent_field_ordinal,
    CASE WHEN w.emar_id IS NOT NULL THEN CAST(d.dose_given AS VARCHAR) END AS dose_given,
    CASE WHEN w.emar_id IS NOT NULL THEN CAST(d.dose_given_unit AS VARCHAR) END AS dose_given_unit,
    CASE WHEN w.emar_id IS NOT NULL THEN CAST(d.route AS VARCHAR) END AS route
FROM src_emar_detail AS d
LEFT JOIN listed_events AS w
    ON w.emar_id = CAST(d.emar_id AS VARCHAR)
