//! Reports: self-contained HTML pages (no scripts, no network) with SVG charts.
//!
//! Charts are drawn by [`svg`], a small renderer of our own rather than a plotting crate: the
//! pages must work offline, be byte-for-byte deterministic, and the dashboard will reuse the same
//! charts; a line chart with axes and a legend is a hundred lines.

pub mod html;
pub mod queue;
pub mod svg;

use suanwang_sim::placement::PolicyResult;
use suanwang_sim::stats::round2;

use crate::html::escape;
use crate::svg::{LineChart, Series};

/// The HTML report of `suanwang simulate placement`: a summary table and, one line per policy,
/// allocation, unallocation and fragmentation against arrived%. `notes` are paragraphs under the
/// title (the tasks that fit no node, with examples).
pub fn placement_report(title: &str, notes: &[String], results: &[PolicyResult]) -> String {
    let series = |metric: fn(&suanwang_sim::placement::Bucket) -> f64, from: u32| -> Vec<Series> {
        results
            .iter()
            .map(|r| Series {
                name: r.policy.as_str().to_owned(),
                points: r
                    .buckets
                    .iter()
                    .filter(|b| b.arrived_pct >= from)
                    .map(|b| (f64::from(b.arrived_pct), metric(b)))
                    .collect(),
            })
            .collect()
    };
    let charts = [
        LineChart::new(
            "Allocated GPU vs arrived GPU",
            "arrived % of cluster GPU",
            "allocated %",
            series(|b| b.allocated_pct, 1),
        ),
        LineChart::new(
            "Unallocated GPU once the cluster is nearly full",
            "arrived % of cluster GPU",
            "unallocated %",
            series(|b| b.unallocated_pct(), 80),
        ),
        LineChart::new(
            "Fragmentation ratio",
            "arrived % of cluster GPU",
            "fragment % of idle GPU",
            series(|b| b.frag_ratio_pct, 1),
        ),
        LineChart::new(
            "Fragmentation amount",
            "arrived % of cluster GPU",
            "fragment % of cluster GPU",
            series(|b| b.frag_amount_pct, 1),
        ),
    ];
    let mut rows = String::new();
    for r in results {
        let s = &r.summary;
        let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{:.2}", round2(v)));
        let failed: Vec<f64> = r.per_seed.iter().map(|p| p.tasks_failed as f64).collect();
        let failed = suanwang_sim::stats::median(&failed).map_or_else(|| "–".to_owned(), |m| format!("{m:.0}"));
        let infeasible: Vec<f64> = r.per_seed.iter().map(|p| p.tasks_infeasible as f64).collect();
        let infeasible = suanwang_sim::stats::median(&infeasible).map_or_else(|| "–".to_owned(), |m| format!("{m:.0}"));
        rows += &format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(r.policy.as_str()),
            cell(s.unallocated_pct_at_arrived_100),
            cell(s.allocated_pct_at_arrived_90),
            cell(s.allocated_pct_mean_at_arrived_130),
            cell(s.frag_ratio_pct_at_arrived_90),
            failed,
            infeasible,
        );
    }
    let seeds =
        results.first().map(|r| r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let body = format!(
        "<h1>Placement simulation</h1>\n<p>{}</p>\n{}<p>Protocol of the FGD paper (ATC'23); seeds {}. Each bucket is the median over seeds.</p>\n\
         <h2>Summary</h2>\n<table>\n<thead><tr><th scope=\"col\">policy</th><th scope=\"col\">unallocated % at arrived 100</th>\
         <th scope=\"col\">allocated % at arrived 90</th><th scope=\"col\">mean allocated % at arrived 130</th>\
         <th scope=\"col\">fragmentation ratio % at arrived 90</th><th scope=\"col\">failed tasks (median)</th>\
         <th scope=\"col\">of which fit no node (median)</th></tr></thead>\n<tbody>\n{}</tbody>\n</table>\n\
         <h2>Charts</h2>\n{}",
        escape(title),
        notes.iter().map(|n| format!("<p>{}</p>\n", escape(n))).collect::<String>(),
        escape(&seeds),
        rows,
        charts.iter().map(|c| format!("<figure>{}</figure>\n", c.render())).collect::<String>()
    );
    html::page("Suanwang placement simulation", &body)
}

#[cfg(test)]
mod tests {
    use suanwang_placement::policy::PolicyName;
    use suanwang_sim::placement::{Bucket, PolicyResult, SeedSummary, Summary};

    use super::*;

    fn result(policy: PolicyName, shift: f64) -> PolicyResult {
        PolicyResult {
            policy,
            seeds: vec![1, 2],
            buckets: (1..=130)
                .map(|k| Bucket {
                    arrived_pct: k,
                    allocated_pct: f64::from(k).min(95.0 - shift),
                    frag_amount_pct: 1.0,
                    frag_ratio_pct: 10.0,
                })
                .collect(),
            per_seed: vec![SeedSummary {
                seed: 1,
                unallocated_pct_at_arrived_100: Some(5.0),
                tasks_tried: 10,
                tasks_failed: 2,
                tasks_infeasible: 1,
            }],
            summary: Summary {
                unallocated_pct_at_arrived_100: Some(5.0 + shift),
                allocated_pct_at_arrived_90: Some(90.0),
                allocated_pct_mean_at_arrived_130: Some(95.0),
                frag_ratio_pct_at_arrived_90: None,
            },
        }
    }

    #[test]
    fn the_report_is_self_contained_and_deterministic() {
        let results = [result(PolicyName::Fgd, 0.0), result(PolicyName::FragPlus, -0.5)];
        let notes = ["3 tasks fit no node: task <big>".to_owned()];
        let html = placement_report("a <test> & more", &notes, &results);
        assert_eq!(html, placement_report("a <test> & more", &notes, &results));
        assert!(html.contains("<p>3 tasks fit no node: task &lt;big&gt;</p>"));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("a &lt;test&gt; &amp; more"));
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains(">frag-plus<") && html.contains(">fgd<"));
        for banned in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(!html.contains(banned), "the report must not load anything ({banned})");
        }
        assert!(html.contains("<td>4.50</td>"), "summary cells are rounded to two decimals");
    }
}
