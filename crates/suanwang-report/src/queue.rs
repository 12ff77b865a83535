//! The HTML report of `suanwang simulate queue`: JCT distribution per policy, queue length and
//! utilisation over time, and per-pool use.

use suanwang_model::federation::Federation;
use suanwang_sim::queue::{self, QueueRun};

use crate::html::{escape, page};
use crate::svg::{LineChart, Series};

/// Points kept on a JCT distribution curve.
const CDF_POINTS_MAX: usize = 400;

/// What the report needs of one policy's run.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySeries {
    /// Policy name.
    pub policy: String,
    /// (JCT seconds, cumulative share %) points.
    pub jct_cdf: Vec<(f64, f64)>,
    /// (hours, jobs waiting).
    pub queue: Vec<(f64, f64)>,
    /// (hours, % of accelerator capacity allocated).
    pub utilization: Vec<(f64, f64)>,
    /// (pool, accelerator-hours, utilisation %, jobs started).
    pub pools: Vec<(String, f64, f64, u64)>,
    /// Mean and p99 JCT, seconds; mean queueing delay.
    pub headline: (f64, f64, f64),
}

impl PolicySeries {
    /// Extracts the series from a run.
    pub fn new(policy: String, run: &QueueRun, federation: &Federation) -> Self {
        let mut jct: Vec<f64> =
            run.jobs.iter().filter_map(|o| o.end_s.map(|e| (e - o.submit_s).max(1) as f64)).collect();
        jct.sort_by(f64::total_cmp);
        let n = jct.len();
        let step = n.div_ceil(CDF_POINTS_MAX).max(1);
        let mut jct_cdf: Vec<(f64, f64)> =
            jct.iter().enumerate().step_by(step).map(|(i, &v)| (v, (i + 1) as f64 * 100.0 / n as f64)).collect();
        if let Some(&last) = jct.last() {
            jct_cdf.push((last, 100.0));
        }
        let queue = run.series.iter().map(|s| (s.t_s as f64 / 3600.0, s.queued as f64)).collect();
        let utilization = run.series.iter().map(|s| (s.t_s as f64 / 3600.0, s.utilization_pct)).collect();
        let pools = federation
            .pools()
            .map(|(id, p)| {
                let (milli_s, started) = run.pool_use[id.index()];
                let capacity = run.pool_capacity[id.index()];
                let util = if capacity == 0 || run.makespan_s == 0 {
                    0.0
                } else {
                    milli_s as f64 * 100.0 / (capacity as f64 * run.makespan_s as f64)
                };
                (p.name.clone(), milli_s as f64 / 1000.0 / 3600.0, util, started)
            })
            .collect();
        let used: u128 = run.pool_use.iter().map(|u| u.0).sum();
        let s = queue::summarise(&run.jobs, run.makespan_s, used, run.pool_capacity.iter().sum());
        PolicySeries {
            policy,
            jct_cdf,
            queue,
            utilization,
            pools,
            headline: (s.jct_s_mean, s.jct_s_p99, s.queue_s_mean),
        }
    }
}

/// The page.
pub fn queue_report(title: &str, policies: &[PolicySeries]) -> String {
    let lines = |f: fn(&PolicySeries) -> &Vec<(f64, f64)>| -> Vec<Series> {
        policies.iter().map(|p| Series { name: p.policy.clone(), points: f(p).clone() }).collect()
    };
    let charts = [
        LineChart::new(
            "Job completion time, cumulative",
            "JCT (seconds, log scale)",
            "% of jobs finished within",
            lines(|p| &p.jct_cdf),
        )
        .log_x(),
        LineChart::new("Jobs waiting", "hours since the first submission", "jobs in the queue", lines(|p| &p.queue)),
        LineChart::new(
            "Accelerator utilisation",
            "hours since the first submission",
            "% of capacity allocated",
            lines(|p| &p.utilization),
        ),
    ];
    let mut summary = String::new();
    for p in policies {
        summary += &format!(
            "<tr><th scope=\"row\">{}</th><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>\n",
            escape(&p.policy),
            p.headline.0 / 3600.0,
            p.headline.1 / 3600.0,
            p.headline.2 / 3600.0
        );
    }
    let mut pools = String::new();
    for p in policies {
        for (name, hours, util, started) in &p.pools {
            pools += &format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{started}</td><td>{hours:.1}</td><td>{util:.1}</td></tr>\n",
                escape(&p.policy),
                escape(name)
            );
        }
    }
    let body = format!(
        "<h1>Queue simulation</h1>\n<p>{}</p>\n<h2>Summary</h2>\n<table>\n<thead><tr><th scope=\"col\">policy</th><th scope=\"col\">mean JCT (h)</th>\
         <th scope=\"col\">p99 JCT (h)</th><th scope=\"col\">mean queueing delay (h)</th></tr></thead>\n<tbody>\n{summary}</tbody>\n</table>\n\
         <h2>Charts</h2>\n{}\n<h2>Per-pool use</h2>\n<table>\n<thead><tr><th scope=\"col\">policy</th><th scope=\"col\">pool</th>\
         <th scope=\"col\">jobs started</th><th scope=\"col\">accelerator-hours</th><th scope=\"col\">utilisation %</th></tr></thead>\n<tbody>\n{pools}</tbody>\n</table>\n",
        escape(title),
        charts.iter().map(|c| format!("<figure>{}</figure>\n", c.render())).collect::<String>()
    );
    page("Suanwang queue simulation", &body)
}
