-- persons: every subject with at least one row; sex from GENDER codes, year of birth from
-- MEDS_BIRTH (U / NULL when absent).
SELECT
    subject_id,
    CASE
        WHEN bool_or(role = 'sex_f') AND NOT bool_or(role = 'sex_m') THEN 'F'
        WHEN bool_or(role = 'sex_m') AND NOT bool_or(role = 'sex_f') THEN 'M'
        ELSE 'U'
    END AS sex,
    CAST(year(min(time) FILTER (WHERE role = 'birth')) AS INTEGER) AS year_of_birth
FROM meds_rows
WHERE subject_id IS NOT NULL
GROUP BY subject_id
