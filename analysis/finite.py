"""Numbers made safe for results.json, which must be strict JSON.

A statistic that could not be computed (NaN) or diverged (±inf) is written as ``null``, never
as a number. This module imports nothing from mgca, so the estimation code and the run
folder writer (``mgca.run.outputs``) can both use it without an import cycle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or ±inf replaced by ``None``, for JSON.

    Dicts, lists and tuples are cleaned recursively (a tuple becomes a list, as JSON has no
    tuple). A numpy scalar or one-element array (e.g. a statsmodels p-value) becomes the plain
    Python number it holds, keeping ints as ints. Anything else is returned unchanged.

    >>> finite_or_none({"se": float("nan"), "n": np.int64(3), "ci": (1.5, float("inf"))})
    {'se': None, 'n': 3, 'ci': [1.5, None]}
    """
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.size == 1):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
