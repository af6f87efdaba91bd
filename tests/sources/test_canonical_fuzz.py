"""Fuzz the canonical loader (mgca.engine.database.load_canonical) with hypothesis.

Random canonical folders (columns dropped, extra columns, each column written with a random
Arrow type: text, integers beyond INTEGER, floats with NaN/inf, booleans, naive or
time-zone-aware timestamps, dates, all-null) either load, or raise CanonicalSchemaError whose
message names the file and a column. No other exception type ever escapes.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgca.engine.database import CANONICAL_TABLES, CanonicalSchemaError, load_canonical

N_ROWS = 4

VALUES = {
    "string": (pa.string(), st.one_of(st.none(), st.text(max_size=6))),
    "int64": (pa.int64(), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
    "int32": (pa.int32(), st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1))),
    "float": (pa.float64(), st.one_of(st.none(), st.floats(allow_nan=True))),
    "bool": (pa.bool_(), st.one_of(st.none(), st.booleans())),
    "timestamp": (
        pa.timestamp("us"),
        st.one_of(st.none(), st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1))),
    ),
    "timestamp_tz": (
        pa.timestamp("us", tz="UTC"),
        st.one_of(
            st.none(),
            st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
        ),
    ),
    "date": (pa.date32(), st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2100, 1, 1)))),
    "null": (pa.null(), st.none()),
}
NATURAL = {
    "VARCHAR": "string",
    "INTEGER": "int32",
    "DOUBLE": "float",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "bool",
}


@st.composite
def column_arrays(draw: st.DrawFn, canonical_type: str) -> pa.Array:
    # Half the time the contract's own type (so deeper checks are reached), else anything.
    kind = draw(st.sampled_from([NATURAL[canonical_type]] * 8 + sorted(VALUES)))
    arrow_type, values = VALUES[kind]
    return pa.array(draw(st.lists(values, min_size=N_ROWS, max_size=N_ROWS)), type=arrow_type)


@st.composite
def canonical_folders(draw: st.DrawFn) -> dict[str, pa.Table]:
    tables = {}
    for table, columns in CANONICAL_TABLES.items():
        arrays = {}
        for column in columns:
            if draw(st.integers(0, 9)) == 0:  # drop the column one time in ten
                continue
            arrays[column.name] = draw(column_arrays(column.type))
        if draw(st.booleans()):
            arrays["extra_" + draw(st.sampled_from(["note", "site", "value2"]))] = pa.array(
                ["x"] * N_ROWS
            )
        tables[table] = pa.table(arrays) if arrays else pa.table({"unrelated": [1] * N_ROWS})
    return tables


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canonical_folders())
def test_load_canonical_loads_or_names_file_and_column(tables: dict[str, pa.Table]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, table in tables.items():
            pq.write_table(table, folder / f"{name}.parquet")
        con = duckdb.connect()
        try:
            counts = load_canonical(con, folder)
        except CanonicalSchemaError as exc:
            message = str(exc)
            assert re.search(r"\w+\.parquet", message), message
            assert re.search(r"column '\w+'", message), message
            assert "Fix:" in message, message
            return
        finally:
            con.close()
    assert counts == {name: N_ROWS for name in CANONICAL_TABLES}
