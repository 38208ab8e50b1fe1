"""Strict JSON for reports and command-line output.

JSON has no Infinity or NaN. nearid writes such values as null and lists
them, by their path in the document, under a top-level ``"non_finite"``
object (in each row, for a list of rows): ``{"constants.M": "inf", "deviations.nonlinear.3": "nan"}``. The
result parses with any strict JSON reader (``json.loads(...,
parse_constant=...)`` that refuses the non-standard constants).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["strict", "dumps"]


def strict(value: Any, path: str = "", found: dict[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    """(value with every non-finite float replaced by None, {path: "inf" | "-inf" | "nan"})."""
    found = {} if found is None else found
    if isinstance(value, float) and not math.isfinite(value):
        found[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None, found
    if isinstance(value, dict):
        return {k: strict(v, f"{path}.{k}" if path else str(k), found)[0] for k, v in value.items()}, found
    if isinstance(value, (list, tuple)):
        return [strict(v, f"{path}.{i}" if path else str(i), found)[0] for i, v in enumerate(value)], found
    return value, found


def dumps(document: dict[str, Any] | list[dict[str, Any]], indent: int | None = 2) -> str:
    """`document` as strict JSON. A dict gets a ``"non_finite"`` entry when any of its
    values was inf or NaN; a list of dicts (rows) gets one in each such row."""
    rows = document if isinstance(document, list) else [document]
    clean = []
    for row in rows:
        cleaned, found = strict(row)
        if found:
            cleaned["non_finite"] = found
        clean.append(cleaned)
    return json.dumps(clean if isinstance(document, list) else clean[0], indent=indent, allow_nan=False)
