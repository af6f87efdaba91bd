"""The current snapshot of a Delta table, resolved without Spark's Delta data source.

A Delta table is a folder of Parquet files plus a transaction log (``_delta_log/``) that says
which of those files make up each version. Reading the folder as plain Parquet is wrong: files
that later commits replaced or deleted are still there until VACUUM removes them. When Spark
has no ``delta`` data source (the delta-spark jars come from Maven, which many sites cannot
reach), :func:`read_snapshot` resolves the snapshot with delta-rs (the ``deltalake`` Python
package, from PyPI) into the exact list of active data files, their partition values and the
table schema; Spark then reads those files as Parquet (``mgca.engine.spark``).

That is only right when each active file, read whole, holds exactly the table's rows. It is
not when the table

- has deletion vectors on some files (rows deleted by marking them, not by rewriting),
- uses column mapping (the Parquet columns have physical names such as ``col-5f2…``), or
- uses any other reader feature outside :data:`PLAIN_PARQUET_READER_FEATURES`
  (e.g. ``typeWidening``: old files keep the narrower type).

:func:`read_snapshot` refuses those with :class:`DeltaInputError`, naming the table, the
feature and the fix. Partition columns are not stored in the data files: each file's values
come from the log and are returned with it, for the reader to add as columns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mgca.engine.database import CanonicalSchemaError

#: Reader features whose tables read correctly as plain Parquet from the active file list
#: (each only changes the log or adds a column type that the Parquet files carry themselves).
#: ``deletionVectors`` and ``columnMapping`` are listed because enabling them alone changes
#: nothing; :func:`unsupported_reasons` refuses a table that actually has a deletion vector
#: on a file or a column mapping mode other than ``none``.
PLAIN_PARQUET_READER_FEATURES = frozenset(
    {
        "timestampNtz",  # timestamps without time zone: a Parquet logical type
        "v2Checkpoint",  # checkpoint layout of the log; delta-rs reads it
        "vacuumProtocolCheck",  # VACUUM must check the protocol: no effect on reading
        "variantType",  # a column type; the canonical tables have no VARIANT columns
        "variantType-preview",
        "deletionVectors",  # refused below when any active file has one
        "columnMapping",  # refused below unless delta.columnMapping.mode is none
    }
)

#: Highest reader protocol version understood (3: reader features are listed by name).
MAX_READER_VERSION = 3

_FIX = (
    "Fix: put the delta-spark package on the Spark cluster (spark.jars.packages "
    "io.delta:delta-spark_2.13:<version> with its session extension), so Spark reads the "
    "table natively, or rewrite the table without it"
)


_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class DeltaInputError(CanonicalSchemaError):
    """A Delta table that cannot be read correctly without delta-spark (or at all)."""


@dataclass(frozen=True)
class DeltaFileGroup:
    """Active data files that share one set of partition values (none when unpartitioned)."""

    partition_values: tuple[tuple[str, Any], ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class DeltaSnapshot:
    """One version of a Delta table as plain Parquet files.

    ``paths`` in each group are ``location`` joined with the log's (URL-decoded) relative
    file paths, so Spark resolves them exactly as it resolves ``location`` itself.
    ``schema_fields`` is the table schema (Delta's JSON field objects, the same layout as a
    Spark ``StructField``), partition columns included.
    """

    location: str
    table_id: str
    version: int
    schema_fields: tuple[dict[str, Any], ...]
    partition_columns: tuple[str, ...]
    groups: tuple[DeltaFileGroup, ...]

    @property
    def n_files(self) -> int:
        return sum(len(group.paths) for group in self.groups)


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError as exc:
        from mgca.engine.spark import SparkUnavailableError

        raise SparkUnavailableError(
            "reading Delta tables without delta-spark needs the deltalake package: "
            "pip install 'mgca[spark]'"
        ) from exc
    return deltalake


def open_table(location: str, version: int | None = None) -> Any:
    """The ``deltalake.DeltaTable`` at ``location`` (at ``version``; default the latest).

    Raises :class:`DeltaInputError` naming the location when it is not a readable Delta table.
    """
    deltalake = _deltalake()
    try:
        return deltalake.DeltaTable(location, version=version)
    except Exception as exc:  # TableNotFoundError, DeltaError, OSError from the object store
        text = " ".join(_ANSI_COLOUR.sub("", str(exc)).split())  # object-store errors
        first = (text or type(exc).__name__)[:300]
        raise DeltaInputError(
            f"{location}: cannot be opened as a Delta table by delta-rs ({first}). Fix: check "
            "that <path>/<table>/_delta_log exists and that this machine can read it (for "
            "object stores, the cluster's credentials in its environment, e.g. "
            "AWS_ACCESS_KEY_ID or AZURE_STORAGE_ACCOUNT_KEY); if the table uses a feature "
            "delta-rs cannot read, put the delta-spark package on the Spark cluster. "
            "engine.spark_format: parquet reads <path>/<table>.parquet files instead."
        ) from exc


def unsupported_reasons(table: Any, location: str) -> list[str]:
    """Why the active files of ``table`` (a ``deltalake.DeltaTable``) read as plain Parquet
    would not give the table's rows; empty when they would."""
    protocol = table.protocol()
    reasons: list[str] = []
    if protocol.min_reader_version > MAX_READER_VERSION:
        reasons.append(
            f"{location}: Delta reader protocol version {protocol.min_reader_version} is newer "
            f"than this reader understands ({MAX_READER_VERSION}). {_FIX}."
        )
        return reasons
    features = set(protocol.reader_features or ())
    for feature in sorted(features - PLAIN_PARQUET_READER_FEATURES):
        reasons.append(
            f"{location}: the Delta table uses the reader feature '{feature}', which a plain "
            f"Parquet read of its files would get wrong. {_FIX} (drop the feature: ALTER "
            f"TABLE ... DROP FEATURE {feature})."
        )
    mode = (table.metadata().configuration or {}).get("delta.columnMapping.mode") or "none"
    if mode != "none":
        reasons.append(
            f"{location}: the Delta table uses column mapping (delta.columnMapping.mode = "
            f"{mode}): its Parquet files name columns by physical ids, not by the table's "
            f"column names. {_FIX} (a copy written with column mapping off, e.g. CREATE "
            "TABLE ... AS SELECT with delta.columnMapping.mode = 'none')."
        )
    if "deletionVectors" in features:
        with_vectors = _files_with_deletion_vectors(table)
        if with_vectors:
            reasons.append(
                f"{location}: the Delta table has deletion vectors on {with_vectors} active "
                "file(s): rows deleted by marking them, which a plain Parquet read would "
                f"bring back. {_FIX}: rewrite the marked files (REORG TABLE ... APPLY "
                "(PURGE) on Spark with Delta, or OPTIMIZE with deletion vectors off)."
            )
    return reasons


def _files_with_deletion_vectors(table: Any) -> int:
    import pyarrow as pa

    return pa.table(table.deletion_vectors()).num_rows


def _file_location(location: str, log_path: str) -> str:
    """Where Spark finds the data file ``log_path`` of an ``add`` action.

    The log stores paths as URL-encoded URIs, relative to the table root (or absolute, for
    shallow clones); the decoded relative path is appended to ``location`` as given.
    """
    path = unquote(log_path)
    if "://" in path or path.startswith(("/", "file:")):
        return path
    return f"{location.rstrip('/')}/{path}"


def _partition_value(value: Any) -> Any:
    """A partition value as text Spark can cast to the column's type exactly (naive
    timestamps and dates as ISO text, so no time zone ever applies); None stays None."""
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)


def read_snapshot(location: str, version: int | None = None) -> DeltaSnapshot:
    """The active data files of the Delta table at ``location`` (its latest version, or
    ``version``), grouped by partition values, with the schema.

    Raises :class:`DeltaInputError` when the table cannot be opened or uses a feature that a
    plain Parquet read of its files would get wrong (see :func:`unsupported_reasons`).
    """
    import pyarrow as pa

    table = open_table(location, version)
    reasons = unsupported_reasons(table, location)
    if reasons:
        raise DeltaInputError("\n  ".join(reasons))
    metadata = table.metadata()
    partition_columns = tuple(metadata.partition_columns or ())
    actions = pa.table(table.get_add_actions(flatten=False))
    has_partitions = bool(partition_columns) and "partition" in actions.column_names
    wanted = ["path", "partition"] if has_partitions else ["path"]
    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for action in actions.select(wanted).to_pylist():
        values = action.get("partition") or {}
        key = tuple((column, _partition_value(values.get(column))) for column in partition_columns)
        groups.setdefault(key, []).append(_file_location(location, action["path"]))
    return DeltaSnapshot(
        location=location,
        table_id=str(metadata.id),
        version=int(table.version()),
        schema_fields=tuple(json.loads(table.schema().to_json())["fields"]),
        partition_columns=partition_columns,
        groups=tuple(
            DeltaFileGroup(key, tuple(sorted(paths)))
            for key, paths in sorted(groups.items(), key=lambda item: json.dumps(item[0]))
        ),
    )


def snapshot_versions(locations: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """(table id, latest version) of each Delta table in ``locations`` (name → location).

    Opens only the log, not the data; a version of a Delta table never changes once written,
    so (id, version) names its content.
    """
    found: dict[str, tuple[str, int]] = {}
    for name, location in locations.items():
        table = open_table(location)
        found[name] = (str(table.metadata().id), int(table.version()))
    return found


def versions_fingerprint(versions: Mapping[str, tuple[str, int]]) -> str:
    """SHA-256 over each table's name, Delta table id and version (the input fingerprint of
    a Delta source: no data file is read)."""
    digest = hashlib.sha256(b"delta\0")
    for name in sorted(versions):
        table_id, version = versions[name]
        digest.update(f"{name}\0{table_id}\0{version}\0".encode())
    return digest.hexdigest()
