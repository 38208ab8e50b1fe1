"""Print nearid beside its strongest peer from a pytest-benchmark JSON file.

    pytest bench --benchmark-enable --benchmark-json=bench.json
    python bench/report.py bench.json

Each group times one nearid kernel and the peers a user would pick instead
(NumPy/SciPy, JAX, PyTorch, scikit-learn), in the same run. Times are
pytest-benchmark minimums (the least disturbed run on a shared machine); a
ratio is peer time / nearid time (> 1: nearid is faster). The strongest peer
is the fastest one; its error is max |peer - nearid| over the answer, and
"inexact" marks tools that trade accuracy for speed. Groups that pair nearid
with a baseline (the same work without what nearid adds) print as overheads.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def load(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def groups(path: str) -> dict[str, dict]:
    """Per group: 'nearid' (min time), 'baseline' (min time) and 'peers', a list of
    (name, min time, max_abs_error or None, exact), fastest first."""
    out: dict[str, dict] = defaultdict(lambda: {"peers": []})
    for bench in load(path)["benchmarks"]:
        info, best = bench["extra_info"], bench["stats"]["min"]
        entry = out[bench["group"]]
        if info["impl"] == "peer":
            entry["peers"].append((info["peer"], best, info.get("max_abs_error"), info.get("exact", True)))
        elif info["impl"] in ("nearid", "baseline") and info["impl"] not in entry:
            entry[info["impl"]] = best
        else:  # further nearid variants (other methods) are listed beside the peers
            entry["peers"].append((info.get("variant", bench["name"]), best, info.get("max_abs_error"), True))
    for entry in out.values():
        entry["peers"].sort(key=lambda p: p[1])
    return dict(sorted(out.items()))


def strongest(path: str) -> list[tuple[str, float, str, float, float, float | None, bool]]:
    """(group, nearid time, strongest peer, its time, ratio, its error, exact) per group with peers."""
    rows = []
    for group, entry in groups(path).items():
        peers = [p for p in entry["peers"] if not p[0].startswith("nearid")]
        if "nearid" in entry and peers:
            name, best, error, exact = peers[0]
            rows.append((group, entry["nearid"], name, best, best / entry["nearid"], error, exact))
    return rows


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def error_text(error: float | None, exact: bool) -> str:
    text = "-" if error is None else f"{error:.1e}"
    return text if exact else text + " (inexact)"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    path = argv[1]
    print(f"{'kernel':72s} {'nearid':>12s}  {'strongest peer':24s} {'peer':>12s} {'ratio':>8s}  error")
    for group, ours, name, theirs, ratio, error, exact in strongest(path):
        print(f"{group:72s} {ms(ours)}  {name:24s} {ms(theirs)} {ratio:7.2f}x  {error_text(error, exact)}")
    print("\nEvery peer (min time, peer / nearid, max |peer - nearid|):")
    for group, entry in groups(path).items():
        if not entry["peers"]:
            continue
        ours = entry.get("nearid")
        print(f"  {group}" + (f": nearid {ms(ours).strip()}" if ours else ""))
        for name, best, error, exact in entry["peers"]:
            ratio = f"{best / ours:7.2f}x" if ours else ""
            print(f"    {name:30s} {ms(best)} {ratio}  {error_text(error, exact)}")
    overheads = [(g, e["nearid"], e["baseline"]) for g, e in groups(path).items() if "nearid" in e and "baseline" in e]
    if overheads:
        print("\nOverheads (nearid / baseline, the same work without what nearid adds):")
        for group, ours, theirs in overheads:
            print(f"  {group:70s} {ms(ours)} {ms(theirs)} {ours / theirs:6.2f}x")
    accuracy = [(b["group"], b["extra_info"].get("peer") or b["extra_info"].get("variant") or "nearid",
                 b["extra_info"]["float32_error_eps"]) for b in load(path)["benchmarks"]
                if "float32_error_eps" in b["extra_info"]]
    if accuracy:
        print("\nfloat32 accuracy (worst row-relative error against the float64 evaluation, in float32 eps):")
        for group, name, error in sorted(accuracy):
            print(f"  {group:60s} {name:36s} {error:10.2f}")
    for bench in load(path)["benchmarks"]:
        info = bench["extra_info"]
        if "pairs_per_second" in info:
            line = f"{bench['group']}: {info['pairs_per_second'] / 1e6:.0f} M pairs/s"
            if "gflops" in info:
                line += (f", {info['gflops']:.1f} GFLOP/s = {info['gflops'] / info['dgemm_gflops']:.0%} of "
                         f"measured dgemm ({info['dgemm_gflops']:.1f} GFLOP/s)")
            if "extra_mb" in info:
                line += f", {info['extra_mb']:.1f} MB extra peak memory, {info['seconds']:.2f} s"
            print(line)
        if info.get("certificate"):
            print(f"{bench['group']}: {info['lower']:.6g} <= value <= {info['upper']:.6g} (gap {info['gap']:.2%}, "
                  f"{info['stopped']}) in {info['seconds']:.2f} s, {info['boxes']} boxes; naive certified bound "
                  f"{info['naive']:.6g} = {info['naive'] / info['upper']:.2f}x the upper; sample estimate "
                  f"{info['sample']:.6g}, upper / sample = {info['upper'] / info['sample']:.3f}")
        if info.get("decomposition_certificate"):
            print(f"{bench['group']}: certified epsilon_bound {info['epsilon_bound']:.6g} (x m = "
                  f"{info['eps_times_m']:.4f}), layers' upper / lower <= {info['worst_ratio']:.3f}, measured max "
                  f"{info['measured']:.6g}, estimated bound {info['estimated_bound']:.6g}, {info['seconds']:.1f} s")
        if "iterations_mean" in info:
            print(f"{bench['group']} [{info.get('variant', bench['name'])}]: iterations per point mean "
                  f"{info['iterations_mean']:.2f}, max {info['iterations_max']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
