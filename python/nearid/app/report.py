"""Reports of a decomposition: report.json and PNG plots (optional extra ``plot``).

:func:`build_report` decomposes a map, measures every layer, checks the
composition against the map and sweeps m over several schedules;
:func:`write_report` writes ``report.json`` and, when matplotlib is
installed, three plots:

- ``deviations.png``: each layer's measured deviation beside the bound,
  labelled "proven bound" or "estimated bound (sample constants)";
- ``sweep.png`` (when a sweep was run): the largest deviation against m for
  the uniform, theorem and balanced schedules on log axes, with reference
  lines of slope -1 (O(1/m)) and of log m / m through the first point;
- ``grid.png`` (2-D maps): a grid of the ball deformed layer by layer.

Layers are numbered from 1 as in the paper (h_1..h_m, then F_1..F_m').
report.json is strict JSON: inf and NaN are written as null and listed
under ``"non_finite"`` (see :mod:`nearid._json`). Files are written through
temporary files and renamed, so a report directory never holds a partial
file.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _json, _progress, bounds, schedules
from .._files import atomic_write
from ..decompose import Decomposition, decompose
from ..errors import NearidWarning
from ..io import map_to_json
from ..maps import Map

__all__ = ["REPORT_KEYS", "build_report", "write_report", "plots_available", "summary"]

#: Top-level keys of report.json.
REPORT_KEYS = ("versions", "settings", "map", "decomposition", "constants", "bounds", "deviations",
               "composition_error", "sweep", "certificate", "timings", "plots")

#: The schedules the m-sweep compares: every named one but "geometric", which shares
#: "theorem"'s form a_i = (1 - c)^(m - i) and differs only in how c is chosen.
SWEEP_SCHEDULES = tuple(name for name in schedules.NAMES if name != "geometric")


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
    sweep: Sequence[int] = (),
    n_check: int = 2000,
    map_description: dict[str, Any] | None = None,
    progress: bool = False,
    constants: dict[str, float] | None = None,
    certify: bool = False,
    certify_rtol: float = 0.01,
    certify_seconds: float | None = None,
) -> tuple[dict[str, Any], Decomposition]:
    """Decompose `h`, measure it, and return (report dict, decomposition).

    The report holds the settings (seed, samples, method), the map's full
    parameters (null for maps nearid cannot write, e.g. FromCallable), the
    scales, the constants, the bounds with their status ("proven" or
    "estimated"), per-layer measured deviations (``method``, ``n_samples``
    points), the composition error (whole composition, layers one by one and
    the inverse against h on ``n_check`` points of the ball), timings and
    versions. With a non-empty ``sweep`` (the command line's default is
    4, 8, 16, 32, 64), it also decomposes and measures h for each of
    those values of m with the uniform, theorem and balanced schedules (the
    slow part: 3 len(sweep) decompositions); the sweep's own warnings about
    vacuous bounds are not raised, its bounds are recorded instead. With
    `certify`, it also holds ``"certificate"``: the certified epsilon_bound,
    alpha and M brackets and a lower and upper bound per layer
    (:meth:`nearid.Decomposition.certify`).
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dec = decompose(h, m, radius=radius, center=center, schedule=schedule, linear_layers=linear_layers,
                    constants=constants, n_samples=n_samples, seed=seed)
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

    sweep_report: dict[str, Any] | None = None
    if len(sweep):
        start = time.perf_counter()
        sweep = [int(size) for size in sweep]
        sweep_report = {"m": sweep, "method": method}
        sweep_report.update({name: [] for name in SWEEP_SCHEDULES})
        sweep_report.update({f"{name}_bound": [] for name in SWEEP_SCHEDULES})
        jobs = [(name, size) for name in SWEEP_SCHEDULES for size in sweep]
        for name, size in _progress.iterate(jobs, "sweep over m", progress, total=len(jobs)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NearidWarning)
                trial = decompose(h, size, radius=radius, center=center, schedule=name, constants=constants,
                                  n_samples=n_samples, seed=seed)
                measured = trial.lipschitz(n_samples=n_samples, method=method, seed=seed).max_nonlinear
            sweep_report[name].append(measured)
            sweep_report[f"{name}_bound"].append(trial.epsilon_bound)
        sweep_report["bound_status"] = dec.bound_status
        timings["sweep_s"] = time.perf_counter() - start

    certificate: dict[str, Any] | None = None
    if certify:
        start = time.perf_counter()
        cert = dec.certify(rtol=certify_rtol, max_seconds=certify_seconds, n_samples=n_samples, seed=seed)
        timings["certify_s"] = time.perf_counter() - start
        certificate = {
            "epsilon_bound": cert.epsilon_bound,
            "status": cert.status,
            "epsilon_bounds": dict(cert.epsilon_bounds),
            "alpha": [cert.alpha.lower, cert.alpha.upper],
            "M": [cert.M.lower, cert.M.upper],
            "lower": cert.lower.tolist(),
            "upper": cert.upper.tolist(),
            "witnesses": [c_.witness.tolist() for c_ in cert.layers],
            "rtol": certify_rtol,
        }

    c = dec.constants
    try:
        spec: Any = map_to_json(h)
    except (TypeError, ValueError):
        spec = None  # FromCallable and other maps without a file format
    report = {
        "versions": _versions(),
        "settings": {"seed": seed, "n_samples": n_samples, "method": method, "n_check": n_check,
                     "inversion": {"method": dec.inversion.method, "tol": dec.inversion.tol}},
        "map": dict(map_description or {}, type=type(h).__name__, dim=h.dim, spec=spec),
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
        "bounds": {
            "epsilon_bound": dec.epsilon_bound,
            "status": dec.bound_status,
            "label": bounds.STATUS_LABELS[dec.bound_status],
            "kind": dec.bound_kind,
            **dec.epsilon_bounds,
            "statuses": dict(dec.bound_statuses),
            "linear_bound": dec.linear_bound,
        },
        "deviations": {
            "method": method,
            "n_samples": n_samples,
            "layer_names": [f"h_{i}" for i in range(1, dec.m + 1)]
            + [f"F_{i}" for i in range(1, len(dec.linear_factors) + 1)],
            "nonlinear": deviations.nonlinear.tolist(),
            "linear": deviations.linear.tolist(),
            "max_nonlinear": deviations.max_nonlinear,
            "above_bound": [f"h_{i}" for i in deviations.exceeds_bound],
        },
        "composition_error": {
            "n_points": n_check,
            "whole_vs_h": float(np.abs(dec(X) - expected).max() / scale),
            "layers_vs_h": float(np.abs(Z - expected).max() / scale),
            "inverse_vs_x": float(np.abs(inverse - X).max()),
        },
        "sweep": sweep_report,
        "certificate": certificate,
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
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"report directory {directory} exists and is not a directory; give a directory path")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if plots and plots_available():
        written += _plots(report, dec, directory)
    report = dict(report, plots=list(written))

    text = _json.dumps(report) + "\n"

    def dump(path: str) -> None:
        with open(path, "w") as handle:
            handle.write(text)

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

    save(_deviations_figure(plt, report, dec), "deviations.png")
    if report["sweep"] is not None:
        save(_sweep_figure(plt, report), "sweep.png")
    if dec.dim == 2:
        save(_grid_figure(plt, dec), "grid.png")
    return written


def _deviations_figure(plt: Any, report: dict[str, Any], dec: Decomposition) -> Any:
    """Per-layer deviations beside the bounds, numbered from 1 as in the paper."""
    deviations, bound = report["deviations"], report["bounds"]
    nonlinear, linear = np.array(deviations["nonlinear"], dtype=float), np.array(deviations["linear"], dtype=float)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    index = np.arange(1, nonlinear.size + 1)
    axes.semilogy(index, nonlinear, "o-", ms=3,
                  label=f"measured, nonlinear layers h_i ({deviations['method']}; a lower estimate)")
    if linear.size:
        axes.semilogy(np.arange(nonlinear.size + 1, nonlinear.size + linear.size + 1), linear, "s-", ms=3,
                      label="measured, Hardt-Ma factors F_i")
        axes.axhline(bound["linear_bound"], color="C1", ls=":", label="proven bound on the factors")
    axes.axhline(bound["epsilon_bound"], color="C0", ls="--", label=f"{bound['label']}, {dec.schedule} schedule")
    certificate = report.get("certificate")
    if certificate is not None:
        every = np.arange(1, len(certificate["lower"]) + 1)
        axes.fill_between(every, certificate["lower"], certificate["upper"], step="mid", color="C2", alpha=0.3,
                          label="certified: attained lower to rigorous upper bound, per layer")
        axes.axhline(certificate["epsilon_bound"], color="C2", ls="-", lw=1,
                     label=f"certified bound on max ||h_i - Id||_Lip ({certificate['epsilon_bound']:.3g})")
    axes.set_xlabel(f"layer: h_1..h_{nonlinear.size}" + (f", then F_1..F_{linear.size}" if linear.size else ""))
    axes.set_ylabel(r"$\|h_i - \mathrm{Id}\|_{\mathrm{Lip}}$")
    axes.set_title(f"Layer deviations, m = {dec.m}, d = {dec.dim}")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    return figure


def _sweep_figure(plt: Any, report: dict[str, Any]) -> Any:
    """Largest deviation against m, ticks at the m used, reference slopes through the first point."""
    from matplotlib.ticker import FixedLocator, NullLocator

    sweep = report["sweep"]
    ms = np.array(sweep["m"], dtype=float)
    figure, axes = plt.subplots(figsize=(7, 5))
    for name, marker in zip(SWEEP_SCHEDULES, "os^"):
        axes.loglog(ms, sweep[name], marker + "-", label=f"{name} schedule")
    first = sweep["uniform"][0]
    axes.loglog(ms, first * ms[0] / ms, "k--", lw=1, label="slope -1: c / m through the first uniform point")
    first = sweep["theorem"][0]
    axes.loglog(ms, first * (np.log(2 * ms) / ms) / (np.log(2 * ms[0]) / ms[0]), "k:", lw=1,
                label="c log(2m) / m through the first theorem point")
    axes.xaxis.set_major_locator(FixedLocator([float(m) for m in ms]))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([str(int(m)) for m in ms])
    axes.set_xlabel("m (nonlinear layers)")
    axes.set_ylabel(r"measured $\max_i \|h_i - \mathrm{Id}\|_{\mathrm{Lip}}$" + f" ({sweep['method']})")
    axes.set_title(f"Largest measured layer deviation against depth ({sweep['method']})", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    return figure


def _grid_figure(plt: Any, dec: Decomposition) -> Any:
    """Grid lines of the ball around x0, pushed through the first i layers for a few i.

    The panels live in three coordinate systems, each labelled on its axes:
    the input x; after h_1..h_i (i <= m) the normalised coordinates
    u = g_i(x - x0) of h~; after every layer the output y = h(x).
    """
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
    figure, axes = plt.subplots(1, len(stages), figsize=(3.4 * len(stages), 3.8))
    for ax, stage in zip(np.atleast_1d(axes), stages):
        for U in lines:
            if stage == 0:
                P = U + dec.center
            elif stage <= dec.m:
                P = dec.g(stage)(U)  # layers 1..stage telescope to g_stage(x - x0)
            else:
                P = dec[:stage](U + dec.center)
            ax.plot(P[:, 0], P[:, 1], lw=0.6, color="C0")
        if stage == 0:
            title, axis = "input: the ball around x0", "x"
        elif stage <= dec.m:
            title = f"after h_1..h_{stage}" + (" (= h~)" if stage == dec.m else "")
            axis = "u"
        else:
            title, axis = f"after h_1..h_{dec.m}, F_1..F_{len(dec.linear)} (= h)", "y"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"${axis}_1$" + (" (normalised)" if axis == "u" else ""), fontsize=8)
        ax.set_ylabel(f"${axis}_2$", fontsize=8)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    figure.suptitle(f"The ball pushed through the layers (m = {dec.m} nonlinear + {len(dec.linear)} linear); "
                    "x: input, u: normalised coordinates of h~, y = h(x)", fontsize=9)
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
        f"{b['label']} on max ||h_i - Id||_Lip: {b['epsilon_bound']:.6g}; measured max "
        f"{report['deviations']['max_nonlinear']:.6g} ({report['deviations']['method']}, a lower estimate)"
        + (f"; ABOVE the bound at {', '.join(report['deviations']['above_bound'])}"
           if report["deviations"]["above_bound"] else ""),
        f"composition error vs h: whole {e['whole_vs_h']:.2e}, layers one by one {e['layers_vs_h']:.2e}; "
        f"inverse {e['inverse_vs_x']:.2e} ({e['n_points']} points)",
    ]
    certificate = report.get("certificate")
    if certificate is not None:
        m = d["m"]
        ratios = [u / lo for lo, u in zip(certificate["lower"][:m], certificate["upper"][:m]) if lo > 0]
        lines.append(
            f"certified bound on max ||h_i - Id||_Lip: {certificate['epsilon_bound']:.6g} ({certificate['status']}); "
            f"alpha in [{certificate['alpha'][0]:.6g}, {certificate['alpha'][1]:.6g}], "
            f"M in [{certificate['M'][0]:.6g}, {certificate['M'][1]:.6g}]; per layer upper / lower <= "
            f"{max(ratios, default=float('inf')):.4g}")
    return "\n".join(lines)

