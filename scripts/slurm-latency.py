#!/usr/bin/env python3
"""Submit-to-start latency through Suanwang into Slurm (issue 7, BENCHMARKS.md).

Needs a running `suanwang serve --federation examples/federations/slurm-local.toml` with an agent
(`suanwang agent --backend slurm`), and a tenant token. Submits N jobs one at a time through the
API; each job prints the time it started (`date +%s%N`, same machine clock). The latency is that
time minus the job's `created_at` (when the API accepted it). Prints every latency and the median.

  scripts/slurm-latency.py --server http://127.0.0.1:18111 --token "$TENANT" --jobs 20
"""
import argparse, json, statistics, sys, time, urllib.request
from datetime import datetime


def call(server, token, method, path, body=None):
    request = urllib.request.Request(server + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    latencies = []
    for i in range(args.jobs):
        job = call(args.server, args.token, "POST", "/api/v1/jobs",
                   {"name": f"latency-{i}", "command": ["sh", "-c", "date +%s%N"], "cpu_milli": 1000,
                    "memory_mib": 64, "accelerators": 1})
        deadline = time.time() + 120
        while True:
            state = call(args.server, args.token, "GET", f"/api/v1/jobs/{job['id']}")["state"]
            if state in ("succeeded", "failed", "cancelled"):
                break
            if time.time() > deadline:
                sys.exit(f"job {job['id']} did not end")
            time.sleep(0.2)
        if state != "succeeded":
            sys.exit(f"job {job['id']} {state}")
        logs = call(args.server, args.token, "GET", f"/api/v1/jobs/{job['id']}/logs")
        text = "".join(chunk for _, chunk in logs["chunks"])
        started_ns = int(text.split()[0])
        created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00")).timestamp()
        latency = started_ns / 1e9 - created
        latencies.append(latency)
        print(f"job {job['id']}: {latency * 1000:.0f} ms")
    print(f"median of {len(latencies)}: {statistics.median(latencies) * 1000:.0f} ms "
          f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f})")


main()
