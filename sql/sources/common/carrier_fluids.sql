-- Carrier fluids (sql/reference/sources/carrier_fluids.csv, table ref_carrier_fluids):
-- crystalloids that contain a study salt only as an electrolyte of the solution (Lactated
-- Ringer's carries calcium chloride, Plasma-Lyte magnesium chloride, both potassium chloride
-- at 4-5 mmol/L, which is not the potassium repletion of the negative-control exposure). A drug whose name
-- matches a carrier's pattern (a regular expression on the lower-case name) loses that carried
-- ingredient: it is never calcium co-treatment or Mg exposure. The adapters count such rows
-- by reason in source_rows (a row left with no ingredient is skipped as 'carrier fluid: …'),
-- so nothing is dropped silently.

-- the carrier key of a drug name ('lactated_ringers'), NULL for any other drug
CREATE OR REPLACE TEMP MACRO carrier_fluid(drug_name) AS (
    SELECT min(f.carrier) FROM ref_carrier_fluids AS f
    WHERE regexp_matches(lower(coalesce(drug_name, '')), f.pattern)
);

-- the ingredients a carrier-fluid name carries (empty list for any other drug)
CREATE OR REPLACE TEMP MACRO carrier_ingredients(drug_name) AS (
    SELECT coalesce(list(DISTINCT f.carries ORDER BY f.carries), []) FROM ref_carrier_fluids AS f
    WHERE regexp_matches(lower(coalesce(drug_name, '')), f.pattern)
);

-- ingredients without the carried ones (carrier_ingredients of the name); NULL when none is left
CREATE OR REPLACE TEMP MACRO without_carried(ingredients, carried) AS
    nullif(list_filter(ingredients, lambda x: NOT list_contains(carried, x)), []);

-- the reason a carrier-fluid row gives in source_rows ('carrier fluid: Lactated Ringer's /
-- Hartmann's (its calcium chloride and potassium chloride are not supplements)'; one carried
-- salt reads 'its … is not a supplement'); NULL for any other drug
CREATE OR REPLACE TEMP MACRO carrier_reason(drug_name) AS (
    SELECT 'carrier fluid: ' || min(f.label) || ' (its '
           || string_agg(DISTINCT replace(f.carries, '_', ' '), ' and '
                         ORDER BY replace(f.carries, '_', ' '))
           || CASE WHEN count(DISTINCT f.carries) = 1 THEN ' is not a supplement)'
                   ELSE ' are not supplements)' END
    FROM ref_carrier_fluids AS f
    WHERE regexp_matches(lower(coalesce(drug_name, '')), f.pattern)
);
