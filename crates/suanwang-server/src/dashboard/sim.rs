//! The simulations page: the form that runs a trace through the queue simulator (the control
//! plane's `sims`), the runs so far, and the chosen run's report with its charts.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use suanwang_control::Control;
use suanwang_control::sims::{EXAMPLES, RunView, list, trace_files};
use suanwang_report::svg::{LineChart, Series};

use super::i18n::M;
use super::pages::{api_form, field, table};
use super::{Viewer, escape, ok, time, yuan};

/// `GET /ui/simulations`: the form, the runs, and the newest run's report.
pub async fn page(
    State(ctl): State<Control>,
    viewer: Viewer,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Response> {
    let runs = ok(&viewer, list(&ctl, &viewer.caller))?;
    let files = trace_files(ctl.config.traces_dir.as_deref());
    let f = "sim";
    let mut federations =
        format!("<option value=\"this\">{} ({})</option>", viewer.t(M::ThisFederation), escape(&ctl.federation.name));
    for (name, _) in EXAMPLES {
        let _ = write!(federations, "<option>{name}</option>");
    }
    let mut traces = format!("<option value=\"\">{}</option>", viewer.t(M::UploadedFile));
    for file in &files {
        let _ = write!(traces, "<option>{}</option>", escape(file));
    }
    let mut formats = String::from("<option value=\"\">auto</option>");
    for name in ["jsonl", "philly", "openb", "swf"] {
        let _ = write!(formats, "<option>{name}</option>");
    }
    let select = |name: &str, label: &str, options: &str| {
        format!(
            "<div class=\"field\"><label for=\"{f}-{name}\">{}</label><select id=\"{f}-{name}\" name=\"{name}\" aria-describedby=\"{f}-{name}-error\">{options}</select>\
             <span class=\"field-error\" id=\"{f}-{name}-error\" data-field=\"{name}\"></span></div>",
            escape(label)
        )
    };
    let mut fields = select("federation", viewer.t(M::Federation), &federations);
    fields += &select("trace_file", viewer.t(M::Trace), &traces);
    fields += &format!(
        "<div class=\"field\"><label for=\"{f}-upload\">{}</label><input id=\"{f}-upload\" type=\"file\" data-file-into=\"trace\" \
         accept=\".jsonl,.csv,.swf,.txt\" aria-describedby=\"{f}-trace-error\"><span class=\"field-error\" id=\"{f}-trace-error\" data-field=\"trace\"></span></div>",
        viewer.t(M::UploadTrace)
    );
    fields += &select("trace_format", viewer.t(M::TraceFormat), &formats);
    fields += &field(f, "policy", viewer.t(M::Policy), "text", "drf+backfill", "");
    let form = api_form(f, "POST", "/api/v1/simulations", "go:/ui/simulations?run={id}", &fields, viewer.t(M::Run));

    let mut rows = String::new();
    for r in &runs {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/simulations?run={id}\">{id}</a></td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}%</td><td>{}</td></tr>",
            time(r.at_ms),
            escape(&r.trace),
            escape(&r.federation),
            escape(&r.policy),
            r.jobs,
            r.jct_h_mean,
            r.jct_h_p99,
            r.wait_h_mean,
            r.utilisation_pct,
            yuan(i128::from(r.cost_fen)),
            id = r.id,
        );
    }
    let chosen =
        query.ok().and_then(|q| q.0.run).and_then(|id| runs.iter().find(|r| r.id == id)).or_else(|| runs.first());
    let report = chosen.map(|r| report(r, &viewer)).unwrap_or_default();
    let runs_table = table(
        &viewer,
        &[
            M::Id,
            M::Time,
            M::Trace,
            M::Federation,
            M::Policy,
            M::Jobs,
            M::MeanJct,
            M::P99Jct,
            M::MeanWait,
            M::Utilisation,
            M::Cost,
        ],
        &rows,
        M::NoRuns,
    );
    let body = format!(
        "<p>{intro}</p>{form}<section aria-labelledby=\"h-runs\"><h2 id=\"h-runs\">{runs_h}</h2>{runs_table}</section>{report}",
        intro = viewer.t(M::SimIntro),
        runs_h = viewer.t(M::Runs),
    );
    Ok(viewer.page(M::Simulations, &body))
}

/// Query of `GET /ui/simulations`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    run: Option<u64>,
}

fn report(run: &RunView, viewer: &Viewer) -> String {
    let Some(s) = &run.series else { return String::new() };
    let one = |points: &Vec<(f64, f64)>| vec![Series { name: run.policy.clone(), points: points.clone() }];
    let hours = if viewer.lang == super::i18n::Lang::Zh { "小时" } else { "hours" };
    let charts = [
        LineChart::new(viewer.t(M::JctCdf), "JCT (s, log)", viewer.t(M::JobsFinishedWithin), one(&s.jct_cdf)).log_x(),
        LineChart::new(viewer.t(M::QueueOverTime), hours, viewer.t(M::JobsWaiting), one(&s.queue)),
        LineChart::new(viewer.t(M::UtilisationOverTime), hours, viewer.t(M::PercentAllocated), one(&s.utilization)),
    ];
    let mut pools = String::new();
    for (name, card_hours, util, started) in &s.pools {
        let _ = write!(
            pools,
            "<tr><th scope=\"row\">{}</th><td>{started}</td><td>{card_hours:.1}</td><td>{util:.1}%</td></tr>",
            escape(name)
        );
    }
    let pools = table(viewer, &[M::Pool, M::Jobs, M::CardHours, M::Utilisation], &pools, M::Nothing);
    format!(
        "<section aria-labelledby=\"h-report\" id=\"report\"><h2 id=\"h-report\">{} {} · {} · {}</h2>{}{pools}</section>",
        viewer.t(M::Report),
        run.id,
        escape(&run.trace),
        escape(&run.policy),
        charts.iter().map(|c| format!("<figure>{}</figure>", c.render())).collect::<String>(),
    )
}
