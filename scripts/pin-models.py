#!/usr/bin/env python3
"""Model-pinned variants of an openb task list (issue 20): a share of the GPU tasks gets a
`gpu_spec`, as the FGD paper's GPU-type-constrained workloads do. The shared traces hold no such
file, so they are made here, from a seed, and never committed.

For each task that asks for GPUs, with probability SHARE, `gpu_spec` becomes one model (two
times in three) or two models (one time in three, joined by `|`), drawn without replacement with
weights equal to each model's GPUs in the node list, so pinned demand follows supply
(`--models uniform`: each model alike, which pins much more demand on the scarce models). Tasks that
already have a `gpu_spec` and CPU-only tasks are left as they are. Same input, share and seed:
the same output, byte for byte (Python's `random.Random(seed)`).

  scripts/pin-models.py --nodes ../shared/traces/alibaba-gpu-v2023/openb_node_list_gpu_node.csv \\
      --tasks ../shared/traces/alibaba-gpu-v2023/openb_pod_list_default.csv --share 0.2 --seed 1 \\
      > /tmp/openb_pod_list_gpuspec20.csv

`scripts/pinned-workloads.sh DIR` makes the five variants the issue names (5, 10, 20, 25 and
33 % pinned, seed 1) from `openb_pod_list_default.csv`.
"""
import argparse
import csv
import random
import sys


def model_weights(nodes_path):
    weights = {}
    with open(nodes_path, newline="") as f:
        for row in csv.DictReader(f):
            gpus = int(row["gpu"])
            if gpus > 0 and row["model"]:
                weights[row["model"]] = weights.get(row["model"], 0) + gpus
    if not weights:
        sys.exit(f"{nodes_path}: no GPU node")
    return sorted(weights.items())


def draw(rng, weights, count):
    chosen = []
    pool = list(weights)
    for _ in range(min(count, len(pool))):
        total = sum(w for _, w in pool)
        pick = rng.uniform(0, total)
        acc = 0
        for i, (model, w) in enumerate(pool):
            acc += w
            if pick <= acc:
                chosen.append(model)
                del pool[i]
                break
    return sorted(chosen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", required=True)
    parser.add_argument("--tasks", required=True)
    parser.add_argument("--share", type=float, required=True, help="share of GPU tasks to pin, 0..1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", choices=["by-gpus", "uniform"], default="by-gpus",
                        help="how models are drawn: weighted by their GPUs in the node list (default), or "
                             "each model alike (pins more demand on scarce models)")
    args = parser.parse_args()
    if not 0.0 <= args.share <= 1.0:
        parser.error("--share is between 0 and 1")
    weights = model_weights(args.nodes)
    if args.models == "uniform":
        weights = [(model, 1) for model, _ in weights]
    rng = random.Random(args.seed)
    with open(args.tasks, newline="") as f:
        reader = csv.DictReader(f)
        if "gpu_spec" not in reader.fieldnames:
            parser.error(f"{args.tasks}: no gpu_spec column")
        writer = csv.DictWriter(sys.stdout, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        pinned = gpu_tasks = 0
        for row in reader:
            # One draw per row whatever it is, so a task's fate depends only on its position.
            roll, two = rng.random(), rng.random() < 1 / 3
            if int(row["num_gpu"]) > 0:
                gpu_tasks += 1
                if not row["gpu_spec"] and roll < args.share:
                    row["gpu_spec"] = "|".join(draw(rng, weights, 2 if two else 1))
                    pinned += 1
            writer.writerow(row)
    print(f"pinned {pinned} of {gpu_tasks} GPU tasks ({100 * pinned / max(gpu_tasks, 1):.1f} %)", file=sys.stderr)


main()
