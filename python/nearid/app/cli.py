"""The ``nearid`` command line (also ``python -m nearid``).

    nearid decompose --demo planar -m 16 --report out/      # report.json and PNG plots (with the m-sweep)
    nearid decompose --map net.json -m 32 --schedule balanced  # summary only; --sweep adds the m-sweep
    nearid decompose --demo planar -m 16 --certify         # certified bounds per layer beside the measured
    nearid certify --map net.json --quantity deviation      # certified lower and upper Lipschitz bounds
    nearid lipschitz X.npy Y.npy --reduce max --top-k 3
    nearid bench                                            # kernels beside NumPy/SciPy
    nearid demo                                             # the README's main job

Errors are one line on standard error and a non-zero exit status: 2 for bad
arguments or files, 1 for a computation that failed (for example an
inversion that did not converge), 130 after Ctrl-C. ``--json`` output is
strict JSON: inf and NaN are written as null and listed under
``"non_finite"`` by their path (see :mod:`nearid._json`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _json, schedules

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A bad argument or input file (exit status 2)."""


def _parse_floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{name} must be comma-separated numbers, e.g. 0.1,-0.2; got {text!r}") from None


def _parse_ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{name} must be comma-separated integers, e.g. 4,8,16; got {text!r}") from None
    if any(v < 1 for v in values):
        raise UsageError(f"{name} must be positive; got {text!r}")
    return values


def _load_map(path: str) -> Any:
    from .. import io

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"map file {path} does not exist")
    if file.suffix == ".json":
        try:
            spec = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise UsageError(f"map file {path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise UsageError(f"map file {path} nests deeper than the JSON reader allows; maps may nest at most "
                             f"{io.MAX_NESTING} levels") from None
        try:
            return io.map_from_json(spec)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"map file {path}: {exc}") from None
    if file.suffix == ".npz":
        try:
            return io.load_map(file)
        except (TypeError, ValueError, KeyError) as exc:
            raise UsageError(f"map file {path}: {exc}") from None
    raise UsageError(f"map file {path} must be .json or .npz (see `nearid decompose --help`)")


#: The first bytes of every .npy file (NumPy's binary format).
NPY_MAGIC = b"\x93NUMPY"


def _load_points(path: str, name: str) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{name} file {path} does not exist")
    with open(file, "rb") as handle:
        head = handle.read(len(NPY_MAGIC))
    if head.startswith(b"PK"):
        raise UsageError(f"{name} file {path} is an .npz archive (several arrays); give one .npy array, written "
                         "by numpy.save")
    if head != NPY_MAGIC:
        raise UsageError(
            f"{name} file {path} is not a .npy file (NumPy's binary array format, written by numpy.save); for a "
            f"CSV or text file convert it first: python -c \"import numpy as np; "
            f"np.save('{Path(path).stem}.npy', np.loadtxt('{path}', delimiter=','))\""
        )
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{name} file {path} is not a readable .npy array: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"{name} file {path} holds several arrays; give one .npy array")
    return array


def _map_of(args: argparse.Namespace) -> Any:
    """The map of --map FILE or --demo NAME (exactly one)."""
    from . import demo

    if (args.map is None) == (args.demo is None):
        raise UsageError("give exactly one of --map FILE and --demo NAME")
    if args.demo is not None:
        return demo.planar_map() if args.demo == "planar" else demo.resnet_map()
    return _load_map(args.map)


def _add_map_source(p: argparse.ArgumentParser) -> None:
    """--map FILE | --demo NAME, as _map_of reads them."""
    source = p.add_mutually_exclusive_group()
    source.add_argument("--map", metavar="FILE", help="map spec, .json or .npz (nearid.io.save_map)")
    source.add_argument("--demo", choices=("planar", "resnet"), help="a built-in map (planar: 2-D, resnet: 4-D)")


def command_decompose(args: argparse.Namespace) -> int:
    from . import demo, report

    h = _map_of(args)
    if args.demo is not None:
        center = (demo.PLANAR_CENTER.tolist() if args.demo == "planar" else None) if args.center is None else None
        description: dict[str, Any] = {"source": f"demo:{args.demo}"}
    else:
        center = None
        description = {"source": str(args.map)}
    if args.center is not None:
        center = _parse_floats(args.center, "--center")
    if args.report is not None and Path(args.report).exists() and not Path(args.report).is_dir():
        raise UsageError(f"--report {args.report} is an existing file; give a directory (it is created if missing)")
    if args.no_sweep and args.sweep is not None:
        raise UsageError("give at most one of --sweep and --no-sweep")
    if args.sweep is not None:
        sweep = _parse_ints(args.sweep, "--sweep")
    elif args.report is not None and not args.no_sweep:
        sweep = list(DEFAULT_SWEEP)
    else:
        sweep = []
    constants = {name: value for name, value in (("alpha", args.alpha), ("M", args.M)) if value is not None}
    try:
        result, dec = report.build_report(
            h, args.m, radius=args.radius, center=center, schedule=args.schedule,
            linear_layers=args.linear_layers, method=args.method, n_samples=args.samples, seed=args.seed,
            sweep=sweep, map_description=description, progress=not args.quiet, constants=constants or None,
            certify=args.certify, certify_rtol=args.rtol, certify_seconds=args.max_seconds,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.report is not None:
        plots = not args.no_plots
        if plots and not report.plots_available():
            print("nearid: note: plots need matplotlib (pip install 'nearid[plot]'); writing report.json only",
                  file=sys.stderr)
        written = report.write_report(result, dec, args.report, plots=plots)
        result["plots"] = [w for w in written if w.endswith(".png")]
    if args.json:
        print(_json.dumps(result))
    elif not args.quiet:
        print(report.summary(result))
        if args.report is not None:
            print(f"wrote {', '.join(written)} to {args.report}")
    return 0


def command_certify(args: argparse.Namespace) -> int:
    from ..certification import certify

    f = _map_of(args)
    center = None if args.center is None else _parse_floats(args.center, "--center")
    try:
        c = certify(f, radius=args.radius, center=center, quantity=args.quantity, rtol=args.rtol,
                    max_seconds=args.max_seconds, progress=not args.quiet)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    out = {
        "quantity": c.quantity,
        "lower": c.lower,
        "upper": c.upper,
        "gap": c.gap,
        "converged": c.converged,
        "stopped": c.stopped,
        "witness": c.witness.tolist(),
        "direction": None if c.direction is None else c.direction.tolist(),
        "radius": c.radius,
        "center": c.center.tolist(),
        "boxes": c.boxes,
        "seconds": c.seconds,
    }
    if args.json:
        print(_json.dumps(out))
    else:
        print(repr(c))
    return 0


def command_lipschitz(args: argparse.Namespace) -> int:
    from ..lipschitz import pairwise_lipschitz

    X = _load_points(args.X, "X")
    Y = _load_points(args.Y, "Y")
    start = time.perf_counter()
    try:
        result = pairwise_lipschitz(X, Y, reduce=args.reduce, on_duplicate=args.on_duplicate, top_k=args.top_k,
                                    progress=not args.quiet)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - start
    out = {
        "reduce": result.reduce,
        "value": result.value,
        "pair": list(result.pair) if result.pair else None,
        "top": [list(t) for t in result.top],
        "pairs_evaluated": result.pairs_evaluated,
        "duplicates_skipped": result.duplicates_skipped,
        "seconds": seconds,
    }
    if args.json:
        print(_json.dumps(out))
    else:
        print(f"{args.reduce} ratio ||Y_j - Y_k|| / ||X_j - X_k|| = {result.value:.17g} at pair {result.pair}")
        for value, j, k in result.top[1:]:
            print(f"  next: {value:.17g} at ({j}, {k})")
        print(f"{result.pairs_evaluated} pairs in {seconds:.3f} s "
              f"({result.pairs_evaluated / max(seconds, 1e-9) / 1e6:.0f} M pairs/s)")
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from . import bench

    rows = bench.run(full=args.full, progress=not args.quiet)
    if args.json:
        print(_json.dumps(rows))
    else:
        print(bench.table(rows))
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from . import demo

    demo.main()
    return 0


#: The values of m of ``--sweep`` without a list (and of --report's sweep).
DEFAULT_SWEEP = (4, 8, 16, 32, 64)


def parser() -> argparse.ArgumentParser:
    from .. import __version__

    # Every option's help ends with its default.
    formatter = argparse.ArgumentDefaultsHelpFormatter
    top = argparse.ArgumentParser(
        prog="nearid",
        description="Deep compositions of near-identity maps: decompose, measure, benchmark.",
        formatter_class=formatter,
    )
    top.add_argument("--version", action="version", version=f"nearid {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser(
        "decompose", help="decompose a map into near-identity layers and report on it", formatter_class=formatter,
        description="Decompose a map (a JSON/NPZ spec of a ResidualNet, ResidualBlock, Affine or Chain, or a "
                    "built-in demo map) into m near-identity layers; print a summary, or write report.json and "
                    "PNG plots with --report DIR. The bound is labelled 'proven' only when --alpha and --M give "
                    "the constants; otherwise they are sample estimates and so is the bound. JSON spec: "
                    "{\"type\": \"ResidualNet\", \"blocks\": [{\"A\": "
                    "[[...]], \"B\": [[...]], \"bias\": [...], \"shift\": [...], \"activation\": \"tanh\"}]}, "
                    "{\"type\": \"Affine\", \"W\": [[...]], \"b\": [...]}, {\"type\": \"Chain\", \"maps\": [...]}.")
    _add_map_source(p)
    p.add_argument("-m", type=int, default=16, help="nonlinear layers")
    p.add_argument("--radius", type=float, default=1.0, help="radius of the ball")
    p.add_argument("--center", metavar="X1,X2,...",
                   help="centre of the ball (None: the origin; the planar demo's is 0.2,-0.1)")
    p.add_argument("--schedule", default="uniform", choices=schedules.NAMES, help="scales a_i of the layers")
    p.add_argument("--linear-layers", type=int, default=None, help="Hardt-Ma factors (None: m)")
    p.add_argument("--alpha", type=float, default=None,
                   help="a known Lipschitz constant of Dh~ on the ball (None: estimated from samples)")
    p.add_argument("--M", type=float, default=None, dest="M",
                   help="a known Lipschitz constant of h~^-1 on h~(ball) (None: estimated from samples)")
    p.add_argument("--method", default="jacobian", choices=("jacobian", "pairwise"),
                   help="how layer deviations are measured (both give lower estimates; jacobian is tighter)")
    p.add_argument("--samples", type=int, default=2000, help="sample points for constants and deviations")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample points")
    p.add_argument("--sweep", nargs="?", metavar="M,M,...", const=",".join(map(str, DEFAULT_SWEEP)), default=None,
                   help="run the deviation-vs-m sweep (slow: 3 decompositions per m) over these m; with --report it "
                        f"runs over {','.join(map(str, DEFAULT_SWEEP))} unless --no-sweep (None: no sweep)")
    p.add_argument("--no-sweep", action="store_true", help="with --report, skip the sweep (no sweep.png)")
    p.add_argument("--report", metavar="DIR", help="write report.json and PNG plots into DIR (created if missing)")
    p.add_argument("--no-plots", action="store_true", help="with --report, write report.json only")
    p.add_argument("--certify", action="store_true",
                   help="also certify: rigorous upper and attained lower bounds per layer, certified alpha, M and "
                        "epsilon_bound (in the summary, report.json and the deviations plot)")
    p.add_argument("--rtol", type=float, default=0.01, help="with --certify, the gap each search aims at")
    p.add_argument("--max-seconds", type=float, default=None, help="with --certify, a time budget (None: none)")
    p.add_argument("--json", action="store_true", help="print the report as strict JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no summary")
    p.set_defaults(run=command_decompose)

    from ..certification import QUANTITIES

    p = commands.add_parser(
        "certify", help="certified lower and upper bounds on a Lipschitz constant of a map on a ball",
        description="Bracket a Lipschitz quantity of a map (a JSON/NPZ spec as for decompose, or a demo map) on "
                    "the ball ||x - center|| <= radius: the upper bound is rigorous (interval arithmetic with "
                    "outward rounding), the lower bound is attained at the printed witness.",
        formatter_class=formatter)
    _add_map_source(p)
    p.add_argument("--quantity", default="lipschitz", choices=QUANTITIES,
                   help="Lip f, Lip (f - Id), Lip Df or Lip f^-1")
    p.add_argument("--radius", type=float, default=1.0, help="radius of the ball")
    p.add_argument("--center", metavar="X1,X2,...", help="centre of the ball (None: the origin)")
    p.add_argument("--rtol", type=float, default=0.01, help="stop when upper <= (1 + rtol) lower")
    p.add_argument("--max-seconds", type=float, default=None, help="time limit (None: none)")
    p.add_argument("--json", action="store_true", help="print the certificate as strict JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=command_certify)

    p = commands.add_parser(
        "lipschitz", help="exact max (or min) pairwise ratio ||Y_j - Y_k|| / ||X_j - X_k||",
        description="Exact extreme ratio over all pairs of rows of two .npy arrays of the same number of rows.",
        formatter_class=formatter)
    p.add_argument("X", help=".npy array (n, dx), written by numpy.save")
    p.add_argument("Y", help=".npy array (n, dy), written by numpy.save")
    p.add_argument("--reduce", default="max", choices=("max", "min"), help="largest or smallest ratio")
    p.add_argument("--on-duplicate", default="inf", choices=("inf", "raise"),
                   help="pairs with X_j = X_k but Y_j != Y_k: an infinite ratio, or an error")
    p.add_argument("--top-k", type=int, default=1, help="how many of the best pairs to report")
    p.add_argument("--json", action="store_true", help="print the result as strict JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=command_lipschitz)

    p = commands.add_parser(
        "bench", help="time the kernels beside NumPy/SciPy baselines",
        description="Time nearid's kernels beside the NumPy/SciPy code a user would write, in this process, and "
                    "print the ratios (baseline time / nearid time). --full uses the README's sizes.",
        formatter_class=formatter)
    p.add_argument("--full", action="store_true", help="the README's problem sizes (slower)")
    p.add_argument("--json", action="store_true", help="print the rows as strict JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=command_bench)

    p = commands.add_parser("demo", help="run the main job (the README's example)",
                            description="Run nearid's main job: evaluate, decompose, invert, with timings.",
                            formatter_class=formatter)
    p.set_defaults(run=command_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from ..errors import ConvergenceError

    arguments = parser().parse_args(argv)
    try:
        return int(arguments.run(arguments))
    except UsageError as exc:
        print(f"nearid: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConvergenceError as exc:
        print(f"nearid: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("nearid: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError, TypeError) as exc:
        print(f"nearid: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
