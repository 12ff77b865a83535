#!/usr/bin/env python3
"""Short jobs through Suanwang into Slurm against the same jobs through `sbatch`, back to back
(issue 16, BENCHMARKS.md).

Needs the Slurm of `scripts/slurm.sh start` (SLURM_CONF set) and a release build
(`cargo build --release -p suanwang`). For each path it submits N one-CPU jobs that print the
time they started (`date +%s.%N`, the same machine's clock), one at a time as fast as the path
takes them, and waits until all have ended:

- sbatch: `sbatch --parsable -c 1 --mem=100M -t 1 --wrap 'date +%s.%N'`, one call per job;
- platform: `POST /api/v1/jobs` with the same job (1 CPU, 100 MiB, no cards) to a fresh
  `suanwang serve --federation examples/federations/slurm-local.toml` (SQLite in a temporary
  directory) with one `suanwang agent --backend slurm` at its default settings (or `--poll-s`,
  and the pool's `--handoff-pct`). The tenant's
  request rate is raised to 1,000/s (the default, 10/s, would cap submissions below Slurm's).

Submit→start is the job's own start time minus the moment the client began its submission.
Throughput is N over the time from the first submission to the moment every job was seen ended
(by `squeue`, or by the platform). Then, one job alone, five times per path: submit→start.

  scripts/slurm-vs-platform.py --jobs 500
  SUANWANG_AGENT_LOG=info scripts/slurm-vs-platform.py --jobs 500   # keeps the agent's log
  scripts/slurm-vs-platform.py --jobs 500 --slurmrestd               # the agent through slurmrestd
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SUANWANG_BIN") or os.path.join(ROOT, "target", "release", "suanwang")
ADMIN = "sw_bench_admin"
COMMAND = "date +%s.%N"


def sbatch_path(n, out_dir, name):
    submitted, ids = [], []
    t0 = time.time()
    for _ in range(n):
        submitted.append(time.time())
        out = subprocess.run(["sbatch", "--parsable", "-J", name, "-c", "1", "--mem=100M", "-t", "1",
                              "-o", os.path.join(out_dir, "%j.out"), "--wrap", COMMAND],
                             check=True, capture_output=True, text=True).stdout
        ids.append(out.strip().split(";")[0])
    while subprocess.run(["squeue", "-h", "-n", name], capture_output=True, text=True).stdout.strip():
        time.sleep(0.25)
    done = time.time()
    latencies = []
    for submit, job in zip(submitted, ids):
        with open(os.path.join(out_dir, f"{job}.out")) as f:
            latencies.append(float(f.read().split()[0]) - submit)
    return n / (done - t0), latencies


class Platform:
    def __init__(self, work, agent_args, handoff_pct):
        self.work = work
        self.port = 18000 + os.getpid() % 1000
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SUANWANG_ADMIN_TOKEN=ADMIN, SUANWANG_LOG="warn")
        federation = os.path.join(work, "federation.toml")
        with open(os.path.join(ROOT, "examples/federations/slurm-local.toml")) as f:
            text = f.read()
        if handoff_pct is not None:
            text = text.replace('backend = "slurm"', f'backend = "slurm"\nhandoff_pct = {handoff_pct}')
        with open(federation, "w") as f:
            f.write(text)
        self.server = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", os.path.join(work, "data"),
             "--federation", federation],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
        self.wait(lambda: self.call("GET", "/healthz", None, None), "the server answers")
        provider = self.cli(["token", "create", "--role", "provider", "--pool", "slurm-local"])
        self.cli(["tenant", "create", "bench"])
        self.tenant = self.cli(["token", "create", "--tenant", "bench"])
        tenant_id = [t for t in self.call("GET", "/api/v1/tenants", ADMIN, None) if t["name"] == "bench"][0]["id"]
        self.call("POST", f"/api/v1/tenants/{tenant_id}/quotas", ADMIN, {"requests_per_s": 1000})
        self.agent = subprocess.Popen(
            [BIN, "agent", "--server", self.url, "--token", provider, "--backend", "slurm",
             "--slurm-output-dir", os.path.join(work, "out"), *agent_args],
            env=dict(os.environ, SUANWANG_LOG=os.environ.get("SUANWANG_AGENT_LOG", "warn")), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "agent.log"), "w"))
        self.wait(lambda: self.call("GET", "/api/v1/pools/slurm-local", self.tenant, None)["healthy"], "the pool is healthy")

    def cli(self, args):
        out = subprocess.run([BIN, *args], env=dict(os.environ, SUANWANG_TOKEN=ADMIN, SUANWANG_SERVER=self.url),
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def call(self, method, path, token, body):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": "Bearer " + token} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            if e.code >= 500:
                sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")
            raise

    def wait(self, ready, what, timeout_s=60):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                if ready():
                    return
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass
            time.sleep(0.1)
        sys.exit(f"timed out waiting until {what}")

    def run(self, n):
        submitted = {}
        t0 = time.time()
        for i in range(n):
            at = time.time()
            job = self.call("POST", "/api/v1/jobs", self.tenant,
                            {"name": f"bench-{i}", "command": ["sh", "-c", COMMAND], "cpu_milli": 1000,
                             "memory_mib": 100, "accelerators": 0})
            submitted[job["id"]] = at
        remaining = set(submitted)
        while remaining:
            page = self.call("GET", "/api/v1/jobs?state=succeeded,failed,cancelled&order=desc&limit=1000", self.tenant, None)
            for job in page["jobs"] if isinstance(page, dict) else page:
                if job["state"] != "succeeded" and job["id"] in remaining:
                    sys.exit(f"job {job['id']} {job['state']}")
                remaining.discard(job["id"])
            time.sleep(0.25)
        done = time.time()
        latencies = []
        for job, at in submitted.items():
            logs = self.call("GET", f"/api/v1/jobs/{job}/logs", self.tenant, None)
            text = "".join(chunk for _, chunk in logs["chunks"])
            latencies.append(float(text.split()[0]) - at)
        return n / (done - t0), latencies

    def stop(self):
        for p in (self.agent, self.server):
            p.terminate()
            p.wait()


def summary(name, rate, latencies):
    print(f"{name}: {len(latencies)} jobs, {rate:.2f} jobs/s, submit→start median {statistics.median(latencies):.2f} s "
          f"(p90 {sorted(latencies)[int(len(latencies) * 0.9)]:.2f} s, max {max(latencies):.2f} s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--alone", type=int, default=5, help="single jobs per path")
    parser.add_argument("--poll-s", type=int, help="the agent's --poll-s (default: its own default)")
    parser.add_argument("--handoff-pct", type=int, help="the pool's handoff_pct (default: the backend's)")
    parser.add_argument("--slurmrestd", action="store_true",
                        help="the agent goes through slurmrestd (SUANWANG_SLURMRESTD and SUANWANG_SLURMRESTD_TOKEN, "
                             "as scripts/slurm.sh start prints them; the token's user is root)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="suanwang-bench-")
    os.makedirs(os.path.join(work, "sbatch"))
    agent_args = [] if args.poll_s is None else ["--poll-s", str(args.poll_s)]
    if args.slurmrestd:
        agent_args += ["--slurmrestd", os.environ["SUANWANG_SLURMRESTD"], "--slurmrestd-token-file",
                       os.environ["SUANWANG_SLURMRESTD_TOKEN"], "--slurmrestd-user", "root"]
    platform = Platform(work, agent_args, args.handoff_pct)
    try:
        direct_rate, direct = sbatch_path(args.jobs, os.path.join(work, "sbatch"), f"swdirect-{os.getpid()}")
        summary("sbatch  ", direct_rate, direct)
        platform_rate, through = platform.run(args.jobs)
        summary("platform", platform_rate, through)
        alone_direct = [sbatch_path(1, os.path.join(work, "sbatch"), f"swalone-{os.getpid()}")[1][0] for _ in range(args.alone)]
        alone_platform = [platform.run(1)[1][0] for _ in range(args.alone)]
        print(f"one job alone, median of {args.alone}: sbatch {statistics.median(alone_direct):.2f} s, "
              f"platform {statistics.median(alone_platform):.2f} s")
        print(f"ratios: throughput {platform_rate / direct_rate:.2f}× (≥ 0.8), "
              f"median submit→start {statistics.median(through) / statistics.median(direct):.2f}× (≤ 2), "
              f"one job {statistics.median(alone_platform) / statistics.median(alone_direct):.2f}× (≤ 1.5)")
    except BaseException:
        print(f"logs kept in {work}", file=sys.stderr)
        platform.stop()
        raise
    platform.stop()
    if os.environ.get("SUANWANG_AGENT_LOG"):
        print(f"the agent's log: {work}/agent.log", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


main()
