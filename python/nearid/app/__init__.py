"""The application built on the nearid library: what the ``nearid`` command runs.

- ``cli``: the command line (``nearid``, ``python -m nearid``);
- ``report``: a decomposition's report directory (report.json and the plots);
- ``demo``: the README's main job (``nearid demo``, ``examples/main_job.py``);
- ``bench``: the NumPy baselines, benchmark sizes (``CASES``) and the timer
  (``best_time``) shared by ``nearid bench``, ``bench/`` and the main job.

The library (everything in :mod:`nearid` outside this subpackage) never
imports it, so the application can change without touching the library.
"""
