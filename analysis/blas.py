"""How many threads the linear algebra (numpy's BLAS, e.g. OpenBLAS) of the model stage uses.

The models are many small problems: designs of a few thousand to a few hundred thousand rows
by 5-40 columns, fitted hundreds of times (bootstrap replicates, negative controls, refits).
A multi-threaded BLAS splits each small product over its threads and spins them between
calls; on a machine whose cores are busy (DuckDB, other processes) every call then waits for
a descheduled thread. Measured on a derived 1e6-lab-row database (2 cores): one product of
the per-protocol design (18,273 x 30) by a vector took 17 ms wall with 2 BLAS threads on a
busy machine and 0.4 ms with one; the whole model stage ``fit_all`` + sensitivity took 27.4 s
wall (34.3 CPU s) with 2 threads on a quiet machine and 20.1 s (20.4 CPU s) with one.

One thread changes only the order of floating-point sums inside BLAS: every estimate and
interval of results.json agreed to 2.4e-7 relative or closer at 1e6 (most to 1e-9).
DuckDB's own threads (``engine.duckdb_threads``) are not affected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

MODEL_BLAS_THREADS = 1
"""BLAS threads while models are fitted (see the module docstring for why one)."""

P = ParamSpec("P")
R = TypeVar("R")


def model_blas_threads(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with :data:`MODEL_BLAS_THREADS` BLAS threads; the previous limit comes
    back when it returns or raises (threadpoolctl's context manager)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=MODEL_BLAS_THREADS, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper
