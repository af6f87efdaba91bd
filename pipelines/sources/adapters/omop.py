"""OMOP CDM v5.3/5.4 → canonical tables (``mgca run --source omop --path LOCATION``).

LOCATION is one of

- a DuckDB file (``*.duckdb``/``*.db``), attached read-only; tables found in any schema
  (``main`` first, then ``cdm``, then alphabetical);
- a folder of CSV (comma or tab separated, as the header row shows; optionally gzipped) or
  Parquet files named after the tables (``measurement.csv``, ``MEASUREMENT.csv``,
  ``measurement.parquet`` or a folder ``measurement/`` of Parquet parts);
- a PostgreSQL database URL ``postgresql://user@host:port/dbname`` (password best given by
  ``PGPASSWORD`` or ``~/.pgpass``; a password in the URL is never logged). The needed columns are
  streamed with ``COPY … TO STDOUT`` into CSV files in the run's private folder (DuckDB's
  postgres extension is downloaded at run time, which offline sites cannot do), then read like
  a folder.

Tables read: ``person``, ``visit_occurrence``, ``measurement``, ``drug_exposure``, ``concept``
(required); ``concept_ancestor``, ``concept_relationship`` and ``death`` (optional: a warning
when missing). Expected
columns are listed in ``sql/reference/sources/omop_columns.csv``; the mapping is
``sql/sources/omop/``, run in the order of :data:`SQL_FILES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig
from mgca.sources.adapters import AdapterResult, Log
from mgca.sources.adapters.common import (
    export_canonical,
    load_reference,
    reference_rows,
    run_sql_files,
)
from mgca.sources.credentials import redact_url
from mgca.sources.csv_reader import csv_reader_sql, header_delimiter, sql_literal
from mgca.sources.resolve import SourceError

KIND = "omop"

REQUIRED_TABLES = ("person", "visit_occurrence", "measurement", "drug_exposure", "concept")
OPTIONAL_TABLES = ("concept_ancestor", "concept_relationship", "death")
OPTIONAL_TABLE_WHY = {
    "concept_ancestor": "drugs are matched to ingredients through concept_relationship and "
    "concept names only (clinical drugs and brands below an ingredient may be missed)",
    "concept_relationship": "drugs missing from concept_ancestor are matched to ingredients "
    "by concept name only",
    "death": "died_in_hospital is left unknown",
}
# sql/sources/omop/<name>.sql in run order; they define the views of VIEWS.
SQL_FILES = (
    "common/carrier_fluids",
    "concept_maps",
    "person_rows",
    "visit_rows",
    "measurement_rows",
    "drug_exposure_rows",
    "source_rows",
    "orphan_codes",
)
# Code lists the mapping joins (tables ref_<stem>).
REFERENCE_STEMS = (
    "lab_codes",
    "ingredients",
    "omop_drug_relationships",
    "orphan_patterns",
    "drug_route_codes",
    "omop_drug_types",
    "omop_visit_types",
    "omop_gender",
    "carrier_fluids",
)
# canonical table → the view of sql/sources/omop/ holding its rows (with skip_reason)
VIEWS = {
    "persons": "omop_person_rows",
    "encounters": "omop_visit_rows",
    "lab_results": "omop_lab_rows",
    "medication_administrations": "omop_medication_rows",
}
_URL = re.compile(r"^(postgres(?:ql)?):/+", re.IGNORECASE)
_DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")


def _columns_spec() -> dict[str, list[tuple[str, bool, str]]]:
    """table → [(column, required, expected)] from omop_columns.csv."""
    spec: dict[str, list[tuple[str, bool, str]]] = {}
    for row in reference_rows("omop_columns"):
        spec.setdefault(row["table_name"], []).append(
            (row["column_name"], row["required"] == "true", row["expected"])
        )
    return spec


def as_url(path: Path | str) -> str | None:
    """The PostgreSQL URL in ``path`` (a Path collapses ``//``; restore it), else None."""
    text = str(path)
    match = _URL.match(text)
    return _URL.sub(lambda m: m.group(1) + "://", text) if match else None


# --- where each table is -------------------------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    """How to read one OMOP table: a DuckDB relation expression and a name for messages."""

    relation: str  # SQL FROM expression
    label: str  # e.g. 'measurement.csv' or 'cdm.measurement' (never a full path)
    columns: dict[str, str]  # lower-case name → name as stored


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    rel = con.execute(f"SELECT * FROM {relation} LIMIT 0")
    return {d[0].lower(): d[0] for d in rel.description}


def _folder_tables(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, TableRef]:
    refs: dict[str, TableRef] = {}
    entries = {p.name.lower(): p for p in folder.iterdir()}
    for table in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        for suffix in _DATA_SUFFIXES:
            entry = entries.get(table + suffix)
            if entry is not None and entry.is_file():
                if suffix == ".parquet":
                    relation = f"read_parquet({sql_literal(str(entry))})"
                else:
                    relation = csv_reader_sql(entry, header_delimiter(entry))
                break
        else:
            entry = entries.get(table)
            if entry is None or not entry.is_dir():
                continue
            relation = f"read_parquet({sql_literal(str(entry / '*.parquet'))})"
        try:
            columns = _describe(con, relation)
        except duckdb.Error as exc:
            raise SourceError(
                f"{entry.name}: cannot be read as an OMOP {table} table ({exc}). Fix: export it "
                "as CSV with a header row, or as Parquet."
            ) from exc
        refs[table] = TableRef(relation, entry.name, columns)
    return refs


def _duckdb_tables(con: duckdb.DuckDBPyConnection, file: Path) -> dict[str, TableRef]:
    try:
        con.execute(f"ATTACH {sql_literal(str(file))} AS omop_src (READ_ONLY)")
    except duckdb.Error as exc:
        raise SourceError(
            f"{file.name}: cannot be opened as a DuckDB database ({exc}). Fix: give an OMOP CDM "
            "DuckDB file, a folder of CSV/Parquet tables, or a postgresql:// URL."
        ) from exc
    found = con.execute(
        "SELECT lower(table_name), schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = 'omop_src' ORDER BY CASE schema_name WHEN 'main' THEN 0 "
        "WHEN 'cdm' THEN 1 ELSE 2 END, schema_name"
    ).fetchall()
    refs: dict[str, TableRef] = {}
    for lower, schema, name in found:
        if lower in refs or lower not in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
            continue
        relation = f'omop_src."{schema}"."{name}"'
        refs[lower] = TableRef(relation, f"{file.name}:{schema}.{name}", _describe(con, relation))
    return refs


def _postgres_tables(url: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """table → (schema, name, {lower column: column}) for the OMOP tables of a database."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as pg:
            rows = pg.execute(
                "SELECT lower(c.table_name), c.table_schema, c.table_name, c.column_name "
                "FROM information_schema.columns AS c "
                "WHERE lower(c.table_name) = ANY(%s) "
                "ORDER BY (c.table_schema = ANY(current_schemas(false))) DESC, "
                "c.table_schema, c.ordinal_position",
                [list((*REQUIRED_TABLES, *OPTIONAL_TABLES))],
            ).fetchall()
    except psycopg.Error as exc:
        raise SourceError(
            f"{redact_url(url)}: cannot connect to PostgreSQL ({str(exc).strip()}). Fix: check "
            "host, port, database and user; give the password by PGPASSWORD or ~/.pgpass."
        ) from exc
    tables: dict[str, tuple[str, str, dict[str, str]]] = {}
    for lower, schema, name, column in rows:
        entry = tables.setdefault(lower, (schema, name, {}))
        if entry[0] == schema and entry[1] == name:
            entry[2][column.lower()] = column
    return tables


def _check_columns(
    tables: dict[str, dict[str, str]], labels: dict[str, str], where: str
) -> list[str]:
    """Raise on a missing required table or column; return warnings for unusable optional
    tables (missing, or lacking a column: they are then ignored, and dropped from ``tables``)."""
    missing_tables = [t for t in REQUIRED_TABLES if t not in tables]
    if missing_tables:
        raise SourceError(
            f"{where}: OMOP table(s) {', '.join(missing_tables)} not found; expected the CDM "
            f"tables {', '.join(REQUIRED_TABLES)} (and optionally {', '.join(OPTIONAL_TABLES)}). "
            "Fix: point --path at the CDM (DuckDB file, folder of <table>.csv/.parquet, or "
            "postgresql:// URL)."
        )
    problems, warnings = [], []
    for table, columns in _columns_spec().items():
        if table not in tables:
            warnings.append(f"OMOP table {table} not found in {where}: {OPTIONAL_TABLE_WHY[table]}")
            continue
        for column, required, expected in columns:
            if required and column not in tables[table]:
                message = (
                    f"{labels[table]}: column '{column}' is missing; expected {expected} "
                    f"(OMOP CDM v5.3/5.4 {table}.{column})"
                )
                if table in OPTIONAL_TABLES:
                    warnings.append(f"{message}; table ignored: {OPTIONAL_TABLE_WHY[table]}")
                    del tables[table]
                    break
                problems.append(message)
    if problems:
        raise SourceError(
            "OMOP input does not match CDM v5.3/5.4:\n  "
            + "\n  ".join(problems)
            + "\nFix: export the tables with their CDM column names."
        )
    return warnings


def _local_tables(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, TableRef]:
    if not path.exists():
        raise SourceError(
            f"--path {path} does not exist; give an OMOP CDM DuckDB file, a folder of "
            "<table>.csv/.parquet files, or a postgresql:// URL"
        )
    return _folder_tables(con, path) if path.is_dir() else _duckdb_tables(con, path)


def check(path: Path) -> None:
    """Fail fast: the location opens, the required tables and their columns are present."""
    url = as_url(path)
    if url is not None:
        pg = _postgres_tables(url)
        _check_columns(
            {t: cols for t, (_, _, cols) in pg.items()},
            {t: f"{s}.{n}" for t, (s, n, _) in pg.items()},
            redact_url(url),
        )
        return
    con = duckdb.connect()
    try:
        refs = _local_tables(con, Path(path))
        _check_columns(
            {t: r.columns for t, r in refs.items()},
            {t: r.label for t, r in refs.items()},
            Path(path).name,
        )
    finally:
        con.close()


# --- PostgreSQL: stream the needed columns into CSV files ----------------------------------


def extract_postgres(url: str, folder: Path, log: Log) -> None:
    """COPY each OMOP table's needed columns to ``folder/<table>.csv`` (streamed in chunks).

    ``concept`` is cut down on the server to the rows the mapping and the orphan-code
    diagnostics can use (LOINC codes of the lab list, every concept measured or given, all UCUM
    units, route codes, the ingredient concepts found by RxNorm code or name);
    ``concept_ancestor`` to descendants of those ingredients; ``concept_relationship`` to the
    hops into them and the hops between drugs out of a drug given.
    """
    import psycopg
    from psycopg import sql

    tables = _postgres_tables(url)
    usable = {t: cols for t, (_, _, cols) in tables.items()}
    _check_columns(usable, {t: f"{s}.{n}" for t, (s, n, _) in tables.items()}, redact_url(url))
    tables = {t: v for t, v in tables.items() if t in usable}
    spec = _columns_spec()
    labs = [r["code"] for r in reference_rows("lab_codes") if r["vocabulary"] == "LOINC"]
    routes = [r["code"] for r in reference_rows("drug_route_codes")]
    ingredients = reference_rows("ingredients")
    rx = [r["rxnorm"] for r in ingredients if r["rxnorm"]]
    names = [r["ingredient"].replace("_", " ") for r in ingredients]
    standard_ids = [int(r["omop_concept_id"]) for r in ingredients if r["omop_concept_id"]]
    between = [
        r["relationship_id"]
        for r in reference_rows("omop_drug_relationships")
        if r["hop"] == "between_drugs"
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url, connect_timeout=10) as pg:
        for table, (schema, name, present) in tables.items():
            wanted = [c for c, _, _ in spec[table] if c in present]
            select = sql.SQL("SELECT {cols} FROM {tbl}").format(
                cols=sql.SQL(", ").join(
                    sql.SQL("{} AS {}").format(sql.Identifier(present[c]), sql.Identifier(c))
                    for c in wanted
                ),
                tbl=sql.Identifier(schema, name),
            )
            params: list = []
            mschema, mname, _ = tables["measurement"]
            dschema, dname, dcols = tables["drug_exposure"]
            cschema, cname, _ = tables["concept"]
            used_drugs = sql.SQL("SELECT DISTINCT {col} FROM {t}").format(
                col=sql.Identifier(dcols["drug_concept_id"]), t=sql.Identifier(dschema, dname)
            )
            ingredient_ids = sql.SQL(
                "SELECT concept_id FROM {c} WHERE vocabulary_id IN ('RxNorm', 'RxNorm Extension') "
                "AND (concept_code = ANY(%s) OR lower(concept_name) = ANY(%s)"
                " OR concept_id = ANY(%s))"
            ).format(c=sql.Identifier(cschema, cname))
            if table == "concept":
                # the listed LOINC codes, every concept measured or given (their names feed the
                # ingredient name fallback and the orphan-code diagnostics), units, routes and
                # the ingredient concepts
                select += sql.SQL(
                    " WHERE (vocabulary_id = 'LOINC' AND concept_code = ANY(%s))"
                    " OR vocabulary_id = 'UCUM' OR concept_code = ANY(%s)"
                    " OR concept_id IN (SELECT DISTINCT {mcol} FROM {m})"
                    " OR concept_id IN ({used_drugs}) OR concept_id IN ({ingredients})"
                ).format(
                    mcol=sql.Identifier(tables["measurement"][2]["measurement_concept_id"]),
                    m=sql.Identifier(mschema, mname),
                    used_drugs=used_drugs,
                    ingredients=ingredient_ids,
                )
                params = [labs, routes, rx, names, standard_ids]
            elif table == "concept_ancestor":
                select += sql.SQL(" WHERE ancestor_concept_id IN ({ingredients})").format(
                    ingredients=ingredient_ids
                )
                params = [rx, names, standard_ids]
            elif table == "concept_relationship":
                # the hop into an ingredient, and the hop between drugs out of a drug given
                select += sql.SQL(
                    " WHERE concept_id_2 IN ({ingredients})"
                    " OR (relationship_id = ANY(%s) AND concept_id_1 IN ({used_drugs}))"
                ).format(ingredients=ingredient_ids, used_drugs=used_drugs)
                params = [rx, names, standard_ids, between]
            copy = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(select)
            out = folder / f"{table}.csv"
            with (
                psycopg.ClientCursor(pg) as cur,
                open(out, "wb") as fh,
                cur.copy(cur.mogrify(copy, params) if params else copy) as stream,
            ):
                for chunk in stream:
                    fh.write(chunk)
            log(f"omop: streamed {schema}.{name} from PostgreSQL ({out.stat().st_size:,} bytes)")


# --- mapping ---------------------------------------------------------------------------------


def _bind(con: duckdb.DuckDBPyConnection, refs: dict[str, TableRef]) -> None:
    """Create ``src_<table>`` views with every listed column in lower case (NULL if absent)."""
    for table, columns in _columns_spec().items():
        ref = refs.get(table)
        if ref is None:
            cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c, _, _ in columns)
            con.execute(f"CREATE OR REPLACE TEMP VIEW src_{table} AS SELECT {cols} WHERE false")
            continue
        cols = ", ".join(
            f'"{ref.columns[c]}" AS {c}' if c in ref.columns else f"CAST(NULL AS VARCHAR) AS {c}"
            for c, _, _ in columns
        )
        con.execute(f"CREATE OR REPLACE TEMP VIEW src_{table} AS SELECT {cols} FROM {ref.relation}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE omop_options AS SELECT ? AS has_concept_ancestor, "
        "? AS has_concept_relationship, ? AS has_death",
        ["concept_ancestor" in refs, "concept_relationship" in refs, "death" in refs],
    )


def to_canonical(path: Path, target: Path, config: MgcaConfig, log: Log) -> AdapterResult:
    """Map an OMOP CDM onto the canonical tables in ``target`` (streamed by DuckDB)."""
    url = as_url(path)
    if url is not None:
        local = target.parent / "omop_extract"
        extract_postgres(url, local, log)
        where = redact_url(url)
    else:
        local = Path(path)
        where = local.name
    con = duckdb.connect(config={"temp_directory": str(target.parent / "duckdb_tmp")})
    try:
        refs = _local_tables(con, local)
        usable = {t: r.columns for t, r in refs.items()}
        warnings = _check_columns(usable, {t: r.label for t, r in refs.items()}, where)
        _bind(con, {t: r for t, r in refs.items() if t in usable})
        load_reference(con, REFERENCE_STEMS)
        run_sql_files(con, KIND, SQL_FILES, target, log)
        written = export_canonical(con, VIEWS, target)
        n_lab_rows = con.execute("SELECT count(*) FROM src_measurement").fetchone()[0]
    except duckdb.Error as exc:
        raise SourceError(
            f"{where}: OMOP tables could not be mapped ({exc}). Fix: check the column types "
            "against the OMOP CDM v5.3/5.4 specification."
        ) from exc
    finally:
        con.close()
    log(
        "omop: mapped "
        + ", ".join(f"{table} {n:,}" for table, n in written.items())
        + f" (from {n_lab_rows:,} measurement rows)"
    )
    if local.is_dir():
        files = tuple(sorted(p for p in local.rglob("*") if p.is_file()))
    else:
        files = (local,)
    return AdapterResult(data_dir=target, input_files=files, warnings=tuple(warnings))
