-- persons: the persons file's rows, plus every subject seen elsewhere but not in it (sex 'U',
-- year of birth unknown), so no lab or dose loses its patient.
WITH listed AS (
    SELECT subject_id, sex, year_of_birth FROM long_persons_classified WHERE skip_reason IS NULL
),
seen AS (
    SELECT subject_id FROM long_encounters_classified WHERE skip_reason IS NULL
    UNION
    SELECT subject_id FROM long_labs_classified WHERE skip_reason IS NULL
    UNION
    SELECT subject_id FROM long_medications_classified WHERE skip_reason IS NULL
)
SELECT subject_id, sex, year_of_birth FROM listed
UNION ALL
SELECT s.subject_id, 'U', CAST(NULL AS INTEGER)
FROM seen AS s
WHERE s.subject_id NOT IN (SELECT subject_id FROM listed)
