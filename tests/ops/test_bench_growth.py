"""The benchmark's cost-growth verdict (bench/run.py ``growth_lines``) judges the step between
the two largest sizes against n log n, so cheap small sizes cannot hide a step that spills."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_run() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))  # bench/run.py imports its sibling pandas_reference
    try:
        spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def _runs(*pairs: tuple[int, float]) -> list[dict[str, float]]:
    return [{"lab_rows": n, "total_s": s} for n, s in pairs]


def test_a_top_step_worse_than_n_log_n_is_reported_even_when_small_sizes_are_flat(
    bench_run: ModuleType,
) -> None:
    # 1e5 -> 1e7 nearly flat (fixed costs), then 1e7 -> 1e8 grows 14x: k = 1.15 > 1.06 + 0.05.
    lines = bench_run.growth_lines(_runs((10**5, 1.2), (10**6, 3.3), (10**7, 25.0), (10**8, 357)))
    verdict = lines[-1]
    assert "largest step 1e+07->1e+08: k=1.15" in verdict
    assert verdict.endswith("WORSE than n log n")
    assert "1e+05->1e+06 k=0.44" in lines[1]


def test_linear_growth_passes(bench_run: ModuleType) -> None:
    lines = bench_run.growth_lines(_runs((10**7, 23.7), (10**8, 259.8)))
    assert lines[-1].endswith("no worse than n log n")
    assert "k=1.04" in lines[-1]


def test_cpu_seconds_get_their_own_exponent_when_recorded(bench_run: ModuleType) -> None:
    runs = [
        {"lab_rows": 10**7, "total_s": 31.7, "total_cpu_s": 43.4},
        {"lab_rows": 10**8, "total_s": 259.8, "total_cpu_s": 500.4},
    ]
    cpu_line = [line for line in bench_run.growth_lines(runs) if line.startswith("CPU")]
    assert cpu_line == ["CPU seconds (all threads) 43.4 -> 500.4: k=1.06 over the largest step"]


def test_one_size_gives_no_exponent(bench_run: ModuleType) -> None:
    assert len(bench_run.growth_lines(_runs((10**7, 23.7)))) == 1
