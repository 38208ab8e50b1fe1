"""``python -m nearid``: the command line (see :mod:`nearid.app.cli`)."""

from .app.cli import entry_point

entry_point()
