"""Optional progress bars (the ``progress`` extra installs tqdm).

A bar appears only when asked for, when tqdm is installed and when standard
error is a terminal; otherwise every helper here is silent and costs nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def enabled(requested: bool) -> bool:
    if not requested or not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def bar(total: float, description: str, requested: bool, unit: str = "it") -> Any:
    """A tqdm bar, or None."""
    if not enabled(requested):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, leave=False)


def iterate(items: Iterable[T], description: str, requested: bool, total: int | None = None) -> Iterator[T]:
    """`items`, with a bar when enabled."""
    if not enabled(requested):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=description, total=total, leave=False)


def fraction_callback(
    total: float, description: str, requested: bool, unit: str = "it"
) -> tuple[Callable[[float], None] | None, Any]:
    """(callback(fraction), bar) for the C++ progress hook, or (None, None)."""
    progress_bar = bar(total, description, requested, unit)
    if progress_bar is None:
        return None, None

    def update(fraction: float) -> None:
        progress_bar.update(max(0.0, fraction * total - progress_bar.n))

    return update, progress_bar
