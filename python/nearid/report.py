"""Reports of a decomposition: report.json and PNG plots (optional extra ``plot``).

:func:`build_report` decomposes a map, measures every layer, checks the
composition against the map and sweeps m over several schedules;
:func:`write_report` writes ``report.json`` and, when matplotlib is
installed, three plots:

- ``deviations.png``: each layer's measured deviation beside the proven bound;
- ``sweep.png``: the largest deviation against m for the uniform, theorem and
  balanced schedules on log axes, with O(1/m) and O(log m / m) reference lines;
- ``grid.png`` (2-D maps): a grid of the ball deformed layer by layer.

Files are written through temporary files and renamed, so a report
directory never holds a partial file.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _progress, bounds
from .io import atomic_write
from .decompose import Decomposition, decompose
from .maps import Map

__all__ = ["REPORT_KEYS", "build_report", "write_report", "plots_available", "summary"]

#: Top-level keys of report.json.
REPORT_KEYS = ("versions", "map", "decomposition", "constants", "bounds", "deviations", "composition_error",
               "sweep", "timings", "plots")

SWEEP_SCHEDULES = ("uniform", "theorem", "balanced")


def plots_available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _versions() -> dict[str, Any]:
    import nearid

    return {
        "nearid": nearid.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_variant": nearid.cpu_variant,
        "threads": nearid.get_num_threads(),
        "openmp": nearid.has_openmp,
    }


def build_report(
    h: Map,
    m: int,
    radius: float = 1.0,
    center: Any = None,
    schedule: str = "uniform",
    linear_layers: int | None = None,
    method: str = "jacobian",
    n_samples: int = 2000,
    seed: int = 0,
    sweep: Sequence[int] = (4, 8, 16, 32, 64),
    n_check: int = 2000,
    map_description: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Decomposition]:
    """Decompose `h`, measure it, and return (report dict, decomposition).

    The report holds the scales, constants, proven bounds, per-layer measured
    deviations (``method``, ``n_samples`` points), the composition error
    (whole composition, layers one by one and the inverse against h on
    ``n_check`` points of the ball), the sweep over ``sweep`` values of m for
    the uniform, theorem and balanced schedules, timings and versions.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dec = decompose(h, m, radius=radius, center=center, schedule=schedule, linear_layers=linear_layers,
                    n_samples=n_samples, seed=seed)
    timings["decompose_s"] = time.perf_counter() - start

    start = time.perf_counter()
    deviations = dec.lipschitz(n_samples=n_samples, method=method, seed=seed)
    timings["lipschitz_s"] = time.perf_counter() - start

    X = bounds.sample_ball(np.random.default_rng(seed + 2), n_check, h.dim, dec.radius) + dec.center
    expected = h(X)
    scale = float(np.abs(expected).max())
    start = time.perf_counter()
    Z = X
    for layer in _progress.iterate(dec.layers, "layers", progress):
        Z = layer(Z)
    timings["layers_s"] = time.perf_counter() - start
    start = time.perf_counter()
    inverse = dec.inverse(expected)
    timings["inverse_s"] = time.perf_counter() - start

    start = time.perf_counter()
    sweep_values: dict[str, list[float]] = {name: [] for name in SWEEP_SCHEDULES}
    jobs = [(name, size) for name in SWEEP_SCHEDULES for size in sweep]
    for name, size in _progress.iterate(jobs, "sweep over m", progress, total=len(jobs)):
        trial = decompose(h, size, radius=radius, center=center, schedule=name, n_samples=n_samples, seed=seed)
        sweep_values[name].append(trial.lipschitz(n_samples=n_samples, method=method, seed=seed).max_nonlinear)
    timings["sweep_s"] = time.perf_counter() - start

    c = dec.constants
    report = {
        "versions": _versions(),
        "map": dict(map_description or {}, type=type(h).__name__, dim=h.dim),
        "decomposition": {
            "m": dec.m,
            "linear_layers": len(dec.linear_factors),
            "radius": dec.radius,
            "center": dec.center.tolist(),
            "schedule": dec.schedule,
            "rate": dec.rate,
            "scales": dec.scales.tolist(),
        },
        "constants": c.as_dict(),
        "bounds": {"epsilon_bound": dec.epsilon_bound, **dec.epsilon_bounds, "linear_bound": dec.linear_bound},
        "deviations": {
            "method": method,
            "n_samples": n_samples,
            "nonlinear": deviations.nonlinear.tolist(),
            "linear": deviations.linear.tolist(),
            "max_nonlinear": deviations.max_nonlinear,
        },
        "composition_error": {
            "n_points": n_check,
            "whole_vs_h": float(np.abs(dec(X) - expected).max() / scale),
            "layers_vs_h": float(np.abs(Z - expected).max() / scale),
            "inverse_vs_x": float(np.abs(inverse - X).max()),
        },
        "sweep": {"m": list(sweep), "method": method, **{k: v for k, v in sweep_values.items()}},
        "timings": timings,
        "plots": [],
    }
    return report, dec


def write_report(report: dict[str, Any], dec: Decomposition, directory: Any, plots: bool = True) -> list[str]:
    """Write report.json (and PNG plots when `plots` and matplotlib allow) into `directory`.

    Returns
    -------
    list of str
        The files written, report.json last.
    """
    directory = Path(os.fspath(directory))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if plots and plots_available():
        written += _plots(report, dec, directory)
    report = dict(report, plots=list(written))

    def dump(path: str) -> None:
        with open(path, "w") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")

    atomic_write(directory / "report.json", dump)
    return written + ["report.json"]


def _plots(report: dict[str, Any], dec: Decomposition, directory: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    written = []

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        atomic_write(directory / name, lambda path: figure.savefig(path, format="png", dpi=120))
        plt.close(figure)
        written.append(name)

    # 1. Per-layer deviations beside the proven bounds.
    deviations = report["deviations"]
    nonlinear, linear = np.array(deviations["nonlinear"]), np.array(deviations["linear"])
    figure, axes = plt.subplots(figsize=(8, 4.5))
    index = np.arange(1, nonlinear.size + 1)
    axes.semilogy(index, nonlinear, "o-", ms=3, label=f"measured, nonlinear layers ({deviations['method']})")
    if linear.size:
        axes.semilogy(np.arange(nonlinear.size + 1, nonlinear.size + linear.size + 1), linear, "s-", ms=3,
                      label="measured, Hardt-Ma factors")
        axes.axhline(report["bounds"]["linear_bound"], color="C1", ls=":", label="bound on the factors")
    axes.axhline(report["bounds"]["epsilon_bound"], color="C0", ls="--",
                 label=f"proven bound ({dec.schedule} schedule)")
    axes.set_xlabel("layer")
    axes.set_ylabel(r"$\|h_i - \mathrm{Id}\|_{\mathrm{Lip}}$")
    axes.set_title(f"Layer deviations, m = {dec.m}, d = {dec.dim}")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    save(figure, "deviations.png")

    # 2. Largest deviation against m, with O(1/m) and O(log m / m) references.
    sweep = report["sweep"]
    ms = np.array(sweep["m"], dtype=float)
    figure, axes = plt.subplots(figsize=(7, 5))
    for name, marker in zip(SWEEP_SCHEDULES, "os^"):
        axes.loglog(ms, sweep[name], marker + "-", label=name)
    anchor_uniform = sweep["uniform"][0] * ms[0]
    axes.loglog(ms, anchor_uniform / ms, "k--", lw=1, label="O(1/m)")
    anchor_theorem = sweep["theorem"][0] * ms[0] / np.log(2 * ms[0])
    axes.loglog(ms, anchor_theorem * np.log(2 * ms) / ms, "k:", lw=1, label="O(log m / m)")
    axes.set_xlabel("m (nonlinear layers)")
    axes.set_ylabel(r"$\max_i \|h_i - \mathrm{Id}\|_{\mathrm{Lip}}$")
    axes.set_title("Largest layer deviation against depth")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    save(figure, "sweep.png")

    # 3. A grid deformed layer by layer (2-D maps).
    if dec.dim == 2:
        save(_grid_figure(plt, dec), "grid.png")
    return written


def _grid_figure(plt: Any, dec: Decomposition) -> Any:
    """Grid lines of the ball around x0, pushed through the first i layers for a few i."""
    R = dec.radius
    t = np.linspace(-1.0, 1.0, 201)
    lines = []
    for c in np.linspace(-1.0, 1.0, 11):
        for line in (np.column_stack([t, np.full_like(t, c)]), np.column_stack([np.full_like(t, c), t])):
            inside = np.linalg.norm(line, axis=1) <= 1.0
            if inside.sum() > 1:
                lines.append(R * line[inside])
    angle = np.linspace(0, 2 * np.pi, 400)
    lines.append(R * np.column_stack([np.cos(angle), np.sin(angle)]))
    stages = sorted({0, max(1, dec.m // 4), max(1, dec.m // 2), dec.m, len(dec.layers)})
    figure, axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.4))
    for ax, stage in zip(np.atleast_1d(axes), stages):
        for U in lines:
            if stage == 0:
                P = U + dec.center
            elif stage <= dec.m:
                P = dec.g(stage)(U)  # layers 1..stage telescope to g_stage(x - x0)
            else:
                P = dec[:stage](U + dec.center)
            ax.plot(P[:, 0], P[:, 1], lw=0.6, color="C0")
        title = "input ball" if stage == 0 else (
            f"after layer {stage}" + (" (= h~)" if stage == dec.m else "") if stage <= dec.m else "after all (= h)")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    figure.suptitle(f"The ball pushed through the layers (m = {dec.m} nonlinear + {len(dec.linear)} linear)")
    return figure


def summary(report: dict[str, Any]) -> str:
    """A few lines summarising a report, for the command line."""
    d, b, e = report["decomposition"], report["bounds"], report["composition_error"]
    c = report["constants"]
    lines = [
        f"decomposed a {report['map']['type']} in d = {report['map']['dim']}: m = {d['m']} nonlinear layers "
        f"({d['schedule']} schedule) + {d['linear_layers']} Hardt-Ma factors, ball radius {d['radius']} "
        f"around {np.round(d['center'], 6).tolist()}",
        f"constants: alpha = {c['alpha']:.6g}, M = {c['M']:.6g}, R = {c['R']:.6g}, L = {c['L']:.6g}, B = {c['B']:.6g}"
        + (f" (estimated: {', '.join(c['estimated'])})" if c["estimated"] else ""),
        f"proven bound on max ||h_i - Id||_Lip: {b['epsilon_bound']:.6g}; measured max "
        f"{report['deviations']['max_nonlinear']:.6g} ({report['deviations']['method']})",
        f"composition error vs h: whole {e['whole_vs_h']:.2e}, layers one by one {e['layers_vs_h']:.2e}; "
        f"inverse {e['inverse_vs_x']:.2e} ({e['n_points']} points)",
    ]
    return "\n".join(lines)

