"""Real Delta tables for the tests, written with delta-rs (``deltalake.write_deltalake``).

- :func:`write_canonical_delta`: one Delta table per canonical table from a canonical Parquet
  folder, with later commits that leave stale Parquet files in the folders (a rewrite-style
  DELETE of junk rows in ``lab_results``, partitioned by analyte, and an overwrite of
  ``encounters``), so a reader that lists the folder instead of the log reads wrong rows.
- :func:`add_deletion_vector`: commits a real deletion vector (inline, as the Delta protocol
  specifies: a RoaringBitmapArray, Z85-encoded) on one file of a table; delta-rs cannot write
  one itself, but reads this one (``DeltaTable.deletion_vectors``).
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

#: Value of the junk lab rows that a second commit deletes (a reader that sees them is wrong).
JUNK_VALUE = -999.0


def write_canonical_delta(parquet_dir: Path, out: Path) -> Path:
    """The canonical tables of ``parquet_dir`` as Delta tables ``out/<table>``; each table's
    current snapshot equals its Parquet file, while the folders also hold stale files."""
    out.mkdir(parents=True)
    persons = pq.read_table(parquet_dir / "persons.parquet")
    write_deltalake(out / "persons", persons)
    encounters = pq.read_table(parquet_dir / "encounters.parquet")
    write_deltalake(out / "encounters", encounters.slice(0, max(1, encounters.num_rows // 2)))
    write_deltalake(out / "encounters", encounters, mode="overwrite")
    labs = pq.read_table(parquet_dir / "lab_results.parquet")
    junk = labs.slice(0, 40)
    junk = junk.set_column(
        junk.schema.get_field_index("value"),
        junk.schema.field("value"),
        pa.array([JUNK_VALUE] * junk.num_rows, pa.float64()),
    )
    write_deltalake(out / "lab_results", pa.concat_tables([labs, junk]), partition_by=["analyte"])
    DeltaTable(out / "lab_results").delete(f"value = {JUNK_VALUE}")
    meds = pq.read_table(parquet_dir / "medication_administrations.parquet")
    write_deltalake(out / "medication_administrations", meds)
    return out


def parquet_rows_in_folder(table_dir: Path) -> int:
    """Rows in every Parquet file under ``table_dir`` (what a folder-listing reader sees)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in table_dir.rglob("*.parquet"))


def snapshot_rows(table_dir: Path) -> int:
    """Rows of the table's current snapshot, read by delta-rs itself."""
    return DeltaTable(table_dir).to_pyarrow_table().num_rows


def junk_rows(table: pa.Table) -> int:
    return int(pc.sum(pc.equal(table["value"], JUNK_VALUE)).as_py() or 0)


# ---------------------------------------------------------------------------------------------
# deletion vectors

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_ROARING_ARRAY_MAGIC = 1681511377  # Delta's RoaringBitmapArray "portable" format
_ROARING_NO_RUN_COOKIE = 12346  # 32-bit roaring serialisation, array containers only


def _z85(data: bytes) -> str:
    out = []
    for start in range(0, len(data), 4):
        value = int.from_bytes(data[start : start + 4], "big")
        chunk = []
        for _ in range(5):
            chunk.append(_Z85[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


def _deletion_vector_bytes(rows: list[int]) -> bytes:
    """Row indexes (< 65,536) as a serialized RoaringBitmapArray with one bitmap."""
    rows = sorted(rows)
    roaring = (
        struct.pack("<II", _ROARING_NO_RUN_COOKIE, 1)
        + struct.pack("<HH", 0, len(rows) - 1)  # container key, cardinality - 1
        + struct.pack("<I", 16)  # offset of the container's data
        + b"".join(struct.pack("<H", row) for row in rows)
    )
    return struct.pack("<iqi", _ROARING_ARRAY_MAGIC, 1, 0) + roaring


def add_deletion_vector(table_dir: Path, rows: list[int]) -> None:
    """Commit a deletion vector marking ``rows`` of the table's first file as deleted (the
    table must have the deletionVectors feature, e.g. written with
    ``configuration={"delta.enableDeletionVectors": "true"}``)."""
    table = DeltaTable(table_dir)
    log = table_dir / "_delta_log"
    last = max(log.glob("*.json"))
    add = next(
        action["add"]
        for action in (json.loads(line) for line in last.read_text().splitlines())
        if "add" in action
    )
    raw = _deletion_vector_bytes(rows)
    vector = {
        "storageType": "i",
        "pathOrInlineDv": _z85(raw + b"\0" * (-len(raw) % 4)),
        "sizeInBytes": len(raw),
        "cardinality": len(rows),
    }
    now = int(time.time() * 1000)
    actions = [
        {"commitInfo": {"timestamp": now, "operation": "DELETE", "operationParameters": {}}},
        {
            "remove": {
                "path": add["path"],
                "deletionTimestamp": now,
                "dataChange": True,
                "extendedFileMetadata": True,
                "partitionValues": add["partitionValues"],
                "size": add["size"],
            }
        },
        {"add": {**add, "deletionVector": vector, "dataChange": True}},
    ]
    commit = log / f"{table.version() + 1:020d}.json"
    commit.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
