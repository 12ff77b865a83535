#!/usr/bin/env python3
"""Reproduce the FGD paper (ATC'23) on every workload of its published results, and compare.

Usage: scripts/reproduce-fgd.py [TRACES_DIR] [--seeds 42..51] [--binary target/release/suanwang]

Runs `suanwang simulate placement --policy all --format json` on each workload listed in
TRACES_DIR/results/fgd_unallocated.csv (default TRACES_DIR: ../shared/traces) and prints two
Markdown tables: our unallocated% at arrived 100 next to the published one for the six baselines,
and frag-plus next to our fgd, with allocation at arrived 90. Build the binary first
(`cargo build --release`). The traces are read in place, never copied.
"""
import argparse
import csv
import json
import pathlib
import statistics
import subprocess
import sys

PAPER_NAMES = {
    "01-Random": "random",
    "02-DotProd": "dot-product",
    "03-GpuClustering": "gpu-clustering",
    "04-GpuPacking": "gpu-packing",
    "05-BestFit": "best-fit",
    "06-FGD": "fgd",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="?", default="../shared/traces")
    parser.add_argument("--seeds", default="42..51")
    parser.add_argument("--binary", default="target/release/suanwang")
    args = parser.parse_args()
    traces = pathlib.Path(args.traces)
    published = {}
    with open(traces / "results" / "fgd_unallocated.csv") as f:
        for row in csv.DictReader(f):
            published[(row["workload"], PAPER_NAMES[row["policy"]])] = float(row["median_unalloc_at_100"])
    workloads = sorted({w for w, _ in published}, key=lambda w: (w != "openb_pod_list_default", w))
    nodes = traces / "alibaba-gpu-v2023" / "openb_node_list_gpu_node.csv"
    ours = {}
    for workload in workloads:
        tasks = traces / "alibaba-gpu-v2023" / f"{workload}.csv"
        out = subprocess.run(
            [args.binary, "simulate", "placement", "--nodes", str(nodes), "--tasks", str(tasks),
             "--policy", "all", "--seeds", args.seeds, "--format", "json"],
            check=True, capture_output=True, text=True,
        )
        for result in json.loads(out.stdout):
            ours[(workload, result["policy"])] = result["summary"]
        print(f"ran {workload}", file=sys.stderr)

    baselines = list(PAPER_NAMES.values())
    print("Unallocated % at arrived 100, ours / published (difference):\n")
    print("| workload | " + " | ".join(baselines) + " |")
    print("|---|" + "---|" * len(baselines))
    worst = 0.0
    for w in workloads:
        cells = []
        for p in baselines:
            mine, theirs = ours[(w, p)]["unallocated_pct_at_arrived_100"], published[(w, p)]
            worst = max(worst, abs(mine - theirs))
            cells.append(f"{mine:.2f} / {theirs:.2f} ({mine - theirs:+.2f})")
        print(f"| {w.removeprefix('openb_pod_list_')} | " + " | ".join(cells) + " |")
    print(f"\nLargest difference from the published figure: {worst:.2f} points.\n")

    print("frag-plus against our fgd (same seeds, same protocol):\n")
    print("| workload | fgd unalloc% @100 | frag-plus unalloc% @100 | difference | fgd alloc% @90 | frag-plus alloc% @90 |")
    print("|---|---|---|---|---|---|")
    diffs = []
    for w in workloads:
        f, g = ours[(w, "fgd")], ours[(w, "frag-plus")]
        d = g["unallocated_pct_at_arrived_100"] - f["unallocated_pct_at_arrived_100"]
        diffs.append(d)
        print(f"| {w.removeprefix('openb_pod_list_')} | {f['unallocated_pct_at_arrived_100']:.2f} | "
              f"{g['unallocated_pct_at_arrived_100']:.2f} | {d:+.2f} | {f['allocated_pct_at_arrived_90']:.2f} | "
              f"{g['allocated_pct_at_arrived_90']:.2f} |")
    print(f"\nMean difference {statistics.mean(diffs):+.3f} points; worst {max(diffs):+.2f}; "
          f"better on {sum(d < 0 for d in diffs)} of {len(diffs)} workloads.")


if __name__ == "__main__":
    main()
