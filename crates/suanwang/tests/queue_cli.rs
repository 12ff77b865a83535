//! Black-box tests of `suanwang simulate queue` and `suanwang trace convert`.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn suanwang(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_suanwang"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

const TRACE: &str = "tests/fixtures/philly-small.csv";
const FEDERATION: &str = "tests/fixtures/small-federation.toml";

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("suanwang-queue-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn queue(trace: &str, format: &str, extra: &[&str]) -> Run {
    let mut args = vec!["simulate", "queue", "--trace", trace, "--trace-format", format, "--federation", FEDERATION];
    args.extend_from_slice(extra);
    suanwang(&args)
}

#[test]
fn json_has_the_documented_shape_for_every_policy() {
    let run = queue(TRACE, "philly", &["--policy", "all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results: Value = serde_json::from_str(&run.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 10);
    for result in results {
        let summary = &result["summary"];
        for key in [
            "jobs",
            "jct_s_mean",
            "jct_s_p50",
            "jct_s_p99",
            "queue_s_mean",
            "queue_s_p50",
            "makespan_s",
            "utilization_pct",
            "cost_fen_total",
            "energy_kwh_total",
            "jobs_preempted",
            "jobs_failed_over",
        ] {
            assert!(summary[key].is_number(), "{} lacks {key}", result["policy"]);
        }
        assert_eq!(summary["jobs"], 60, "every job finishes under {}", result["policy"]);
        assert!(
            summary["jct_s_mean"].as_f64().unwrap() >= summary["duration_s_mean"].as_f64().unwrap() - 1e-6,
            "JCT ≥ no-queueing bound"
        );
        assert_eq!(result["pools"].as_array().unwrap().len(), 2);
        assert_eq!(result["tenants"].as_array().unwrap().len(), 3);
    }
    let one = queue(TRACE, "philly", &["--format", "json"]);
    let value: Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(value["policy"], "las+backfill", "without --policy the default runs");
    assert_eq!(queue(TRACE, "philly", &["--format", "json"]).stdout, one.stdout, "deterministic");
}

#[test]
fn converting_to_jsonl_keeps_the_simulation_the_same() {
    let jsonl = scratch("philly-small.jsonl", "");
    let convert = suanwang(&[
        "trace",
        "convert",
        "--trace",
        TRACE,
        "--trace-format",
        "philly",
        "--output",
        jsonl.to_str().unwrap(),
    ]);
    assert_eq!(convert.code, 0, "{}", convert.stderr);
    assert!(convert.stderr.contains("60 jobs converted"));
    let from_csv = queue(TRACE, "philly", &["--policy", "fifo,las+backfill", "--format", "json"]);
    let from_jsonl = queue(jsonl.to_str().unwrap(), "jsonl", &["--policy", "fifo,las+backfill", "--format", "json"]);
    assert_eq!(from_csv.stdout, from_jsonl.stdout);
}

#[test]
fn explanations_and_reports_are_written() {
    let explain = scratch("why.jsonl", "");
    let report = scratch("queue.html", "");
    let run = queue(
        TRACE,
        "philly",
        &["--policy", "fifo,drf", "--explain", explain.to_str().unwrap(), "--report", report.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Value> =
        std::fs::read_to_string(&explain).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 120, "one line per start per policy");
    let first = &lines[0];
    assert_eq!(first["policy"], "fifo");
    assert!(first["reason"].as_str().unwrap().starts_with("cheap: cheapest of 2 pools"), "{first}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("Per-pool use") && !html.contains("<script"));
}

#[test]
fn an_outage_fails_jobs_over() {
    let run = queue(TRACE, "philly", &["--policy", "fifo+backfill", "--format", "json", "--outage", "cheap:3600:7200"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(value["summary"]["jobs_failed_over"].as_u64().unwrap() > 0);
    assert_eq!(value["summary"]["jobs"], 60);
}

fn bad_input(args: &[&str], fragments: &[&str]) {
    let run = suanwang(args);
    assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    for fragment in fragments {
        assert!(run.stderr.contains(fragment), "{args:?}: stderr lacks {fragment:?}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let bad = scratch(
        "bad.csv",
        "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-01 08:00:00,60,1,60,a\n2017-10-01 08:01:00,sixty,1,60,a\n2017-10-01 08:02:00,60,1,60,a\n",
    );
    let bad = bad.to_str().unwrap();
    bad_input(
        &["simulate", "queue", "--trace", bad, "--trace-format", "philly", "--federation", FEDERATION],
        &["error[invalid_value]", "bad.csv:3:2 (duration)"],
    );
    // With --skip-bad-lines it runs and says what it skipped.
    let run = queue(bad, "philly", &["--skip-bad-lines"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("skipped 1 malformed lines") && run.stderr.contains("bad.csv:3:2"), "{}", run.stderr);
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
            "--policy",
            "lifo",
        ],
        &["unknown queue policy \"lifo\""],
    );
    bad_input(
        &["simulate", "queue", "--trace", TRACE, "--trace-format", "csv", "--federation", FEDERATION],
        &["invalid value 'csv'"],
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
            "--outage",
            "nowhere:1:2",
        ],
        &["unknown pool \"nowhere\""],
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
            "--outage",
            "cheap:1",
        ],
        &["expected POOL:START_S:DURATION_S"],
    );
    let no_pools = scratch(
        "no-pools.toml",
        "name = \"empty\"\n[[site]]\nname = \"a\"\ncity = \"A\"\nregion = \"R\"\nlatitude_deg = 0.0\nlongitude_deg = 0.0\n",
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            no_pools.to_str().unwrap(),
        ],
        &["error[empty_federation]", "the federation has no pools"],
    );
    bad_input(
        &["simulate", "queue", "--trace", "missing.csv", "--trace-format", "philly", "--federation", FEDERATION],
        &["error[file_not_found]"],
    );
    // A job no pool can run fails and is counted; a trace of nothing else is refused.
    let one_big = scratch(
        "one-big.csv",
        "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-01 08:00:00,60,4096,60,a\n2017-10-01 08:01:00,60,1,60,a\n",
    );
    let run = queue(one_big.to_str().unwrap(), "philly", &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["jobs_unschedulable"], 1, "{json}");
    assert!(json["unschedulable"][0]["reason"].as_str().is_some_and(|r| r.contains("even when empty")), "{json}");
    let all_big = scratch(
        "all-big.csv",
        "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-01 08:00:00,60,4096,60,a\n2017-10-01 08:01:00,60,4096,60,a\n",
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            all_big.to_str().unwrap(),
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
        ],
        &["error[no_runnable_job]", "can run any of the 2 jobs; for example"],
    );
    let unknown_site = scratch(
        "site.jsonl",
        "{\"id\":\"a\",\"tenant\":\"t\",\"submit_s\":0,\"duration_s\":5,\"gpus_per_task\":1,\"dataset\":{\"site\":\"mars\",\"size_bytes\":1}}\n",
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            unknown_site.to_str().unwrap(),
            "--trace-format",
            "jsonl",
            "--federation",
            FEDERATION,
        ],
        &["site.jsonl:1: unknown site \"mars\""],
    );
}

#[test]
fn a_job_that_can_never_fit_is_reported_not_queued_forever() {
    let trace = scratch(
        "huge.jsonl",
        "{\"id\":\"ok\",\"tenant\":\"t\",\"submit_s\":0,\"duration_s\":5,\"gpus_per_task\":1}\n\
         {\"id\":\"huge\",\"tenant\":\"t\",\"submit_s\":1,\"duration_s\":5,\"tasks\":9,\"gpus_per_task\":8}\n\
         {\"id\":\"elsewhere\",\"tenant\":\"t\",\"submit_s\":2,\"duration_s\":5,\"gpus_per_task\":1,\"residency_region\":\"R9\"}\n",
    );
    let run = queue(trace.to_str().unwrap(), "jsonl", &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["summary"]["jobs"], 1);
    assert_eq!(value["summary"]["jobs_unschedulable"], 2);
    let reasons: Vec<String> =
        value["unschedulable"].as_array().unwrap().iter().map(|u| format!("{}: {}", u["job"], u["reason"])).collect();
    assert!(reasons[0].contains("huge") && reasons[0].contains("room for 4 of the gang's 9 tasks"), "{reasons:?}");
    assert!(reasons[1].contains("outside residency region R9"), "{reasons:?}");
}

#[test]
fn on_the_philly_trace_the_default_beats_fifo_by_more_than_half() {
    let philly = std::env::var_os("SUANWANG_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"))
        .join("philly/philly.csv");
    if !philly.is_file() {
        assert!(
            std::env::var_os("SUANWANG_REQUIRE_TRACES").is_none(),
            "SUANWANG_REQUIRE_TRACES is set but the Philly trace is not at {}",
            philly.display()
        );
        eprintln!("SKIPPED: the Philly trace is not at ../shared/traces (set SUANWANG_TRACES to its folder)");
        return;
    }
    let run = suanwang(&[
        "simulate",
        "queue",
        "--trace",
        philly.to_str().unwrap(),
        "--trace-format",
        "philly",
        "--federation",
        "../../examples/federations/philly.toml",
        "--policy",
        "fifo,las+backfill",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results: Value = serde_json::from_str(&run.stdout).unwrap();
    let jct = |i: usize| results[i]["summary"]["jct_s_mean"].as_f64().unwrap();
    assert_eq!(results[0]["summary"]["jobs"], 82_247);
    assert!(jct(1) <= 0.45 * jct(0), "default {} vs fifo {}", jct(1), jct(0));
}

#[test]
fn frameworks_limit_accelerators_through_the_adaptation_matrix() {
    let trace = scratch(
        "frameworks.jsonl",
        "{\"id\":\"jax\",\"tenant\":\"t\",\"submit_s\":0,\"duration_s\":60,\"gpus_per_task\":8,\"framework\":\"jax\"}\n\
         {\"id\":\"ms\",\"tenant\":\"t\",\"submit_s\":0,\"duration_s\":60,\"gpus_per_task\":8,\"framework\":\"MindSpore\"}\n",
    );
    let explain = scratch("frameworks-why.jsonl", "");
    let args = [
        "simulate",
        "queue",
        "--trace",
        trace.to_str().unwrap(),
        "--trace-format",
        "jsonl",
        "--federation",
        "../../examples/federations/greater-bay-area.toml",
        "--explain",
        explain.to_str().unwrap(),
    ];
    let run = suanwang(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&explain).unwrap();
    let pool_of = |job: &str| {
        let line: Value =
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["job"] == job).unwrap();
        line["reason"].as_str().unwrap().split(':').next().unwrap().to_owned()
    };
    let federation =
        suanwang(&["federation", "show", "../../examples/federations/greater-bay-area.toml", "--format", "json"]);
    let federation: Value = serde_json::from_str(&federation.stdout).unwrap();
    let models_of = |pool: &str| -> Vec<String> {
        let pool = federation["pools"].as_array().unwrap().iter().find(|p| p["name"] == pool).unwrap();
        pool["accelerators"].as_object().unwrap().keys().cloned().collect()
    };
    const NVIDIA: [&str; 6] = ["A100-SXM4-80GB", "A800-SXM4-80GB", "H100-SXM5-80GB", "H800-SXM5-80GB", "H20", "T4"];
    let jax_pool = pool_of("jax");
    assert!(models_of(&jax_pool).iter().all(|m| NVIDIA.contains(&m.as_str())), "jax needs CUDA, got {jax_pool}");
    let ms_pool = pool_of("ms");
    assert!(
        models_of(&ms_pool).iter().all(|m| NVIDIA.contains(&m.as_str()) || m.starts_with("Ascend")),
        "mindspore needs CANN or CUDA, got {ms_pool}"
    );
    assert!(!pool_of("jax").contains("ascend") && ms_pool != "songshanhu-mlu");
    let unknown = scratch(
        "unknown-framework.jsonl",
        "{\"id\":\"x\",\"tenant\":\"t\",\"submit_s\":0,\"duration_s\":60,\"gpus_per_task\":1,\"framework\":\"caffe\"}\n",
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            unknown.to_str().unwrap(),
            "--trace-format",
            "jsonl",
            "--federation",
            FEDERATION,
        ],
        &["unknown-framework.jsonl:1: unknown framework \"caffe\"", "known frameworks: cuda, jax, mindspore"],
    );
}

#[test]
fn drf_weights_shift_waiting_between_tenants() {
    let run = |extra: &[&str]| -> Value {
        let mut args = vec!["--policy", "drf+backfill", "--format", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&queue(TRACE, "philly", &args).stdout).unwrap()
    };
    let queue_of = |v: &Value, tenant: &str| {
        v["tenants"].as_array().unwrap().iter().find(|t| t["tenant"] == tenant).unwrap()["queue_s_mean"]
            .as_f64()
            .unwrap()
    };
    let equal = run(&[]);
    let favoured = run(&["--tenant-weight", "vc-a=4"]);
    assert!(queue_of(&favoured, "vc-a") < queue_of(&equal, "vc-a"), "a heavier tenant waits less");
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
            "--tenant-weight",
            "nobody=2",
        ],
        &["no tenant \"nobody\" in the trace; tenants are: vc-a, vc-b, vc-c"],
    );
    bad_input(
        &[
            "simulate",
            "queue",
            "--trace",
            TRACE,
            "--trace-format",
            "philly",
            "--federation",
            FEDERATION,
            "--tenant-weight",
            "vc-a=0",
        ],
        &["expected TENANT=WEIGHT with a positive weight"],
    );
}

fn program_dir(name: &str, budget_fen: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("suanwang-programs-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "id = \"{name}\"\nname = \"Test\"\nissuer = \"A city\"\nfiscal_year = 2026\nbudget_fen = {budget_fen}\n\
         firm_cap_fen = 100000000\n[subsidy]\ndefault_ratio_bps = 3000\n"
    );
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    dir
}

#[test]
fn voucher_programmes_pay_their_share_and_the_ledger_balances() {
    for (budget, exhausted) in [(1_000_000_000_000u64, false), (50_000, true)] {
        let dir = program_dir(if exhausted { "tight" } else { "ample" }, budget);
        let run = queue(TRACE, "philly", &["--format", "json", "--programs", dir.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let result: Value = serde_json::from_str(&run.stdout).unwrap();
        let money = &result["money"];
        let cost = money["cost_fen"].as_u64().unwrap();
        assert_eq!(cost as i64, result["summary"]["cost_fen_total"].as_i64().unwrap(), "one rating rule");
        let subsidy = money["subsidy_fen"].as_u64().unwrap();
        assert_eq!(subsidy + money["tenant_share_fen"].as_u64().unwrap(), cost);
        assert_eq!(money["ledger_balanced"], true);
        let program = &money["programs"][0];
        let paid = program["paid_fen"].as_u64().unwrap();
        assert_eq!(paid, subsidy);
        assert!(paid > 0 && paid + program["reserved_fen"].as_u64().unwrap() <= budget, "{money}");
        if exhausted {
            assert!(program["refused"]["budget_or_cap_used_up"].as_u64().unwrap() > 0, "{money}");
            assert!(program["left_fen"].as_u64().unwrap() < 1_000, "{money}");
        } else {
            // 30% of every line, floored per line.
            assert!(paid <= cost * 3 / 10 && paid + 10_000 > cost * 3 / 10, "{money}");
        }
    }
}

#[test]
fn bad_programmes_are_a_clear_error() {
    let missing = queue(TRACE, "philly", &["--programs", "/nonexistent/programs"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("programs_unreadable"), "{}", missing.stderr);
    let dir = std::env::temp_dir().join(format!("suanwang-programs-{}-bad", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.toml"), "id = \"Bad Id\"\n").unwrap();
    let bad = queue(TRACE, "philly", &["--programs", dir.to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("invalid_program") && bad.stderr.contains("bad.toml"), "{}", bad.stderr);
}
