"""Print nearid-vs-baseline speed ratios from a pytest-benchmark JSON file.

    pytest bench --benchmark-enable --benchmark-json=bench.json
    python bench/report.py bench.json

Each group pairs one nearid benchmark with its NumPy/SciPy baseline, timed in
the same run; the ratio is baseline median time / nearid median time (> 1:
nearid is faster).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def load(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def ratios(path: str) -> list[tuple[str, float, float, float]]:
    data = load(path)
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][bench["extra_info"]["impl"]] = bench["stats"]["median"]
    rows = []
    for group, times in sorted(groups.items()):
        if "nearid" in times and "baseline" in times:
            rows.append((group, times["nearid"], times["baseline"], times["baseline"] / times["nearid"]))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    print(f"{'benchmark':70s} {'nearid':>10s} {'baseline':>10s} {'ratio':>7s}")
    for group, ours, theirs, ratio in ratios(argv[1]):
        print(f"{group:70s} {ours * 1e3:8.2f}ms {theirs * 1e3:8.2f}ms {ratio:6.2f}x")
    for bench in load(argv[1])["benchmarks"]:
        info = bench["extra_info"]
        if "pairs_per_second" in info:
            line = f"{bench['group']}: {info['pairs_per_second'] / 1e6:.0f} M pairs/s"
            if "gflops" in info:
                line += (f", {info['gflops']:.1f} GFLOP/s = {info['gflops'] / info['dgemm_gflops']:.0%} of "
                         f"measured dgemm ({info['dgemm_gflops']:.1f} GFLOP/s)")
            if "extra_mb" in info:
                line += f", {info['extra_mb']:.1f} MB extra peak memory, {info['seconds']:.2f} s"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
