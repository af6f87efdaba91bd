"""The model stage runs with one BLAS thread and gives the limit back afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mgca.analysis.blas import MODEL_BLAS_THREADS, model_blas_threads


def _blas_threads() -> list[int]:
    return [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_models_see_one_blas_thread_and_the_limit_comes_back() -> None:
    if not _blas_threads():
        pytest.skip("numpy here links no BLAS threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        seen: list[int] = []

        @model_blas_threads
        def fit(x: np.ndarray) -> float:
            seen.extend(_blas_threads())
            return float(np.linalg.solve(x.T @ x, x.T @ np.ones(len(x)))[0])

        x = np.random.default_rng(0).normal(size=(200, 3))
        assert np.isfinite(fit(x))
        assert seen and all(n == MODEL_BLAS_THREADS for n in seen)
        assert _blas_threads() == before


def test_the_limit_comes_back_when_a_model_raises() -> None:
    if not _blas_threads():
        pytest.skip("numpy here links no BLAS threadpoolctl can see")
    before = _blas_threads()

    @model_blas_threads
    def broken() -> None:
        raise np.linalg.LinAlgError("singular")

    with pytest.raises(np.linalg.LinAlgError):
        broken()
    assert _blas_threads() == before
