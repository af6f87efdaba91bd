-- person → persons. Sex from gender_concept_id (omop_gender.csv: 8507 M, 8532 F, else U).
CREATE OR REPLACE TEMP VIEW omop_person_rows AS
SELECT
    CAST(p.person_id AS VARCHAR) AS subject_id,
    coalesce(g.sex, 'U') AS sex,
    TRY_CAST(p.year_of_birth AS INTEGER) AS year_of_birth,
    CASE
        WHEN p.person_id IS NULL THEN 'person_id missing'
        WHEN count(*) OVER (PARTITION BY p.person_id) > 1 THEN 'person_id repeated'
    END AS skip_reason
FROM src_person AS p
LEFT JOIN ref_omop_gender AS g ON g.gender_concept_id = CAST(p.gender_concept_id AS VARCHAR);
