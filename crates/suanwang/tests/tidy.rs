//! Repository rules, checked as tests (after rust-analyzer's `tidy`): every module says what it
//! is for, the pure crates stay pure, and our crates depend on each other only in the direction
//! ARCHITECTURE.md draws.

#![allow(clippy::unwrap_used, reason = "a test that cannot read the repository should fail loudly")]

use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Our crates and the ones each may depend on (normal dependencies, not dev-dependencies).
const LAYERS: &[(&str, &[&str])] = &[
    ("suanwang-model", &[]),
    ("suanwang-placement", &["suanwang-model"]),
    ("suanwang-formats", &["suanwang-model"]),
    ("suanwang-sched", &["suanwang-model", "suanwang-placement"]),
    ("suanwang-ledger", &[]),
    ("suanwang-market", &[]),
    ("suanwang-billing", &["suanwang-ledger", "suanwang-market"]),
    ("suanwang-store", &["suanwang-model"]),
    ("suanwang-api", &["suanwang-model", "suanwang-formats", "suanwang-billing"]),
    ("suanwang-client", &["suanwang-api", "suanwang-formats", "suanwang-billing"]),
    (
        "suanwang-sim",
        &[
            "suanwang-model",
            "suanwang-placement",
            "suanwang-sched",
            "suanwang-formats",
            "suanwang-ledger",
            "suanwang-market",
            "suanwang-billing",
        ],
    ),
    ("suanwang-report", &["suanwang-model", "suanwang-sim"]),
    ("suanwang-agent", &["suanwang-api", "suanwang-client"]),
    (
        "suanwang-control",
        &[
            "suanwang-model",
            "suanwang-placement",
            "suanwang-sched",
            "suanwang-sim",
            "suanwang-formats",
            "suanwang-report",
            "suanwang-ledger",
            "suanwang-market",
            "suanwang-billing",
            "suanwang-store",
            "suanwang-api",
            "suanwang-agent",
        ],
    ),
    (
        "suanwang-server",
        &[
            "suanwang-model",
            "suanwang-sched",
            "suanwang-sim",
            "suanwang-formats",
            "suanwang-report",
            "suanwang-billing",
            "suanwang-api",
            "suanwang-control",
        ],
    ),
    (
        "suanwang",
        &[
            "suanwang-model",
            "suanwang-placement",
            "suanwang-sched",
            "suanwang-sim",
            "suanwang-formats",
            "suanwang-report",
            "suanwang-store",
            "suanwang-agent",
            "suanwang-server",
            "suanwang-control",
            "suanwang-api",
            "suanwang-client",
            "suanwang-ledger",
            "suanwang-market",
            "suanwang-billing",
        ],
    ),
];

/// Crates that must not touch the outside world.
const PURE: &[&str] = &[
    "suanwang-model",
    "suanwang-placement",
    "suanwang-sched",
    "suanwang-sim",
    "suanwang-formats",
    "suanwang-report",
    "suanwang-ledger",
    "suanwang-market",
    "suanwang-billing",
];

const IMPURE_PATTERNS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::env",
    "SystemTime",
    "Instant::now",
    "println!",
    "eprintln!",
    "tokio",
];

#[test]
fn every_crate_is_known_and_depends_only_downwards() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{name}\"")), "crate folder {name} must be named as its crate");
        let Some(&(_, allowed)) = LAYERS.iter().find(|(crate_name, _)| *crate_name == name) else {
            panic!("crate {name} is not in the layer table of tidy.rs (and ARCHITECTURE.md)");
        };
        let dependencies = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        for line in dependencies.lines() {
            let dependency = line.split(['.', ' ', '=']).next().unwrap_or("");
            if dependency.starts_with("suanwang") {
                assert!(allowed.contains(&dependency), "{name} must not depend on {dependency}");
            }
        }
        found.push(name);
    }
    assert_eq!(found.len(), LAYERS.len(), "every layer names an existing crate");
}

#[test]
fn pure_crates_do_no_io() {
    for name in PURE {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(name).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Only production code: test modules may read fixtures.
            let production = without_test_items(&text);
            for pattern in IMPURE_PATTERNS {
                assert!(!production.contains(pattern), "{} uses {pattern}; {name} must stay pure", file.display());
            }
        }
    }
}

/// The text with every `#[cfg(test)]` item (up to its matching closing brace) cut out.
fn without_test_items(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(open) = after.find(['{', ';']) else { return out };
        if after.as_bytes()[open] == b';' {
            rest = &after[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn test_items_are_cut_out_and_nothing_else() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests { fn b() { std::fs::read(1); } }\nfn c() { std::fs::read(2); }\n#[cfg(test)]\nmod t;\n";
    let production = without_test_items(text);
    assert!(production.contains("fn a()") && production.contains("read(2)"));
    assert!(!production.contains("read(1)") && !production.contains("mod t;"));
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&crates_dir(), &mut files);
    for file in files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "src")) {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.starts_with("//!"), "{} must start with a //! module doc", file.display());
    }
}

/// Untyped JSON (`serde_json::Value`, `json!`) in production code, and where it is allowed:
/// a job travels typed (`suanwang_api::jobs::JobRequest`) from the API through the store and the
/// agent protocol to the pool. The exceptions are where JSON is the subject itself.
const UNTYPED_JSON_ALLOWED: &[(&str, &str)] = &[
    // `dataset` is a name or an object; the variant is chosen by looking.
    ("suanwang-api/src/jobs.rs", "DatasetField's untagged choice"),
    // slurmrestd's own JSON (an external API with many versions): read into the Slurm
    // backend's types one job at a time, so one odd job is an error of its own.
    ("suanwang-agent/src/slurm/rest.rs", "slurmrestd's JSON"),
    // The text rule walks every string of any request body, before it is read as its type.
    ("suanwang-api/src/text.rs", "checking every string of a body"),
    // Query strings are built from any serialisable query type.
    ("suanwang-client/src/lib.rs", "query strings"),
    // An application's parameters and the fields laid over its template are partial by nature;
    // the expanded body is read as a JobRequest before anything else sees it.
    ("suanwang-control/src/jobs.rs", "template submissions"),
    ("suanwang-formats/src/apps.rs", "template expansion"),
    ("suanwang-server/src/api.rs", "the submit body, before it is known to be a template or a job"),
    ("suanwang-server/src/openapi.rs", "the OpenAPI document"),
    ("suanwang/src/client_cmd.rs", "template flags over a template"),
    ("suanwang/src/serve_cmd.rs", "`audit verify`'s one-line answer"),
];

#[test]
fn jobs_travel_typed() {
    let mut files = Vec::new();
    rust_files(&crates_dir(), &mut files);
    for file in files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "src")) {
        let text = std::fs::read_to_string(file).unwrap();
        let production = without_test_items(&text);
        let untyped = ["serde_json::Value", "serde_json::Map", "json!(", "Value::Object"]
            .iter()
            .any(|pattern| production.contains(pattern))
            || production.contains("use serde_json::{") && production.contains("Value");
        let path = file.to_string_lossy().replace('\\', "/");
        let allowed = UNTYPED_JSON_ALLOWED.iter().any(|(suffix, _)| path.ends_with(suffix));
        assert!(
            !untyped || allowed,
            "{path} uses untyped JSON; use the types of suanwang-api (or add it to UNTYPED_JSON_ALLOWED with the reason)"
        );
    }
}
