"""``python -m nearid``: the command line (see :mod:`nearid.cli`)."""

from .cli import entry_point

entry_point()
