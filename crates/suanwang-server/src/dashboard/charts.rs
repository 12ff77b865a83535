//! The dashboard's drawings, as SVG made on the server: line charts through
//! `suanwang_report::svg` and the map of sites drawn here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use suanwang_model::federation::Federation;
use suanwang_report::svg::{LineChart, Series};

use super::i18n::M;
use super::{Viewer, escape};
use suanwang_control::history::Sample;

/// Utilisation and queue length over the samples, x in minutes before `now_ms`.
pub fn history_charts(samples: &[Sample], viewer: &Viewer, now_ms: i64) -> (String, String) {
    if samples.len() < 2 {
        return (format!("<p class=\"empty\">{}</p>", viewer.t(M::NoHistoryYet)), String::new());
    }
    let minutes = |at: i64| -((now_ms - at) as f64 / 60_000.0);
    let util: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.cards_milli > 0)
        .map(|s| (minutes(s.at_ms), s.allocated_milli as f64 * 100.0 / s.cards_milli as f64))
        .collect();
    let queue: Vec<(f64, f64)> = samples.iter().map(|s| (minutes(s.at_ms), s.queued as f64)).collect();
    let x = viewer.t(M::MinutesAgo);
    let u = LineChart::new(
        viewer.t(M::UtilisationOverTime),
        x,
        viewer.t(M::PercentAllocated),
        vec![Series { name: viewer.t(M::Cards).to_owned(), points: util }],
    );
    let q = LineChart::new(
        viewer.t(M::QueueOverTime),
        x,
        viewer.t(M::JobsWaiting),
        vec![Series { name: viewer.t(M::Queued).to_owned(), points: queue }],
    );
    (format!("<figure>{}</figure>", u.render()), format!("<figure>{}</figure>", q.render()))
}

/// One auction's time and clearing prices (model, region, window start, end, fen per card-hour).
pub type Cleared = (i64, Vec<(String, String, u64, u64, i64)>);

/// Clearing prices per (model, region) over the auctions (newest first in `auctions`).
pub fn clearing_chart(auctions: &[Cleared], viewer: &Viewer, now_ms: i64) -> String {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (at, prices) in auctions.iter().rev() {
        for (model, region, _, _, fen) in prices {
            let hours = -((now_ms - at) as f64 / 3_600_000.0);
            series.entry(format!("{model} · {region}")).or_default().push((hours, *fen as f64 / 100.0));
        }
    }
    if series.values().map(Vec::len).sum::<usize>() == 0 {
        return format!("<p class=\"empty\">{}</p>", viewer.t(M::NoAuctions));
    }
    let chart = LineChart::new(
        viewer.t(M::ClearingPrices),
        viewer.t(M::AuctionsAgo),
        viewer.t(M::YuanPerCardHour),
        series.into_iter().map(|(name, points)| Series { name, points }).collect(),
    );
    format!("<figure>{}</figure>", chart.render())
}

/// Budget left at the end of each month of the programme's year (paid subsidy by invoice
/// period), from the full budget at month 0.
pub fn burn_down(
    budget_fen: u64,
    year: i64,
    paid_by_period: &BTreeMap<String, u64>,
    viewer: &Viewer,
    now_ms: i64,
) -> String {
    let mut left = budget_fen;
    let mut points = vec![(0.0, budget_fen as f64 / 100.0)];
    let this_month = suanwang_billing::rating::period(now_ms);
    for month in 1..=12 {
        let period = format!("{year:04}-{month:02}");
        if period > this_month {
            break;
        }
        left = left.saturating_sub(paid_by_period.get(&period).copied().unwrap_or(0));
        points.push((f64::from(month), left as f64 / 100.0));
    }
    let chart = LineChart::new(
        viewer.t(M::BurnDown),
        &format!("{} ({year})", viewer.t(M::MonthOfYear)),
        viewer.t(M::YuanLeft),
        vec![Series { name: viewer.t(M::YuanLeft).to_owned(), points }],
    );
    chart.render()
}

/// One-way fibre reach per millisecond, km (light in glass, about 200,000 km/s).
const KM_PER_MS: f64 = 200.0;

/// The sites on an equirectangular projection: circles by cards, links with their latency,
/// and dashed 1/3/5 ms reach rings around the hub (the first site).
pub fn site_map(federation: &Federation, viewer: &Viewer) -> String {
    const W: f64 = 760.0;
    const H: f64 = 460.0;
    const PAD: f64 = 60.0;
    let sites = federation.sites();
    if sites.is_empty() {
        return String::new();
    }
    let capacity = federation.capacity();
    let lat0 = sites.iter().map(|s| s.latitude_deg).sum::<f64>() / sites.len() as f64;
    let kx = lat0.to_radians().cos();
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for s in sites {
        x_lo = x_lo.min(s.longitude_deg * kx);
        x_hi = x_hi.max(s.longitude_deg * kx);
        y_lo = y_lo.min(s.latitude_deg);
        y_hi = y_hi.max(s.latitude_deg);
    }
    let (x_span, y_span) = ((x_hi - x_lo).max(0.05), (y_hi - y_lo).max(0.05));
    let scale = ((W - 2.0 * PAD) / x_span).min((H - 2.0 * PAD) / y_span);
    // Centre the drawing in the frame.
    let (x_off, y_off) = ((W - x_span * scale) / 2.0, (H - y_span * scale) / 2.0);
    let px = |lon: f64| x_off + (lon * kx - x_lo) * scale;
    let py = |lat: f64| H - y_off - (lat - y_lo) * scale;
    let km_per_deg = 111.2;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"map-title\" \
         font-family=\"sans-serif\" font-size=\"11\"><title id=\"map-title\">{}</title>\
         <rect width=\"{W}\" height=\"{H}\" fill=\"#f7f9fb\"/>",
        escape(viewer.t(M::MapTitle))
    );
    let hub = &sites[0];
    for ms in [1.0, 3.0, 5.0] {
        let r = ms * KM_PER_MS / km_per_deg * scale;
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"none\" stroke=\"#0072B2\" stroke-dasharray=\"5 4\" opacity=\"0.6\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#0072B2\">{ms} ms</text>",
            px(hub.longitude_deg),
            py(hub.latitude_deg),
            px(hub.longitude_deg) + 4.0,
            py(hub.latitude_deg) - r - 3.0,
        );
    }
    for link in federation.network().links() {
        let (a, b) = (federation.site(link.a), federation.site(link.b));
        let (x1, y1, x2, y2) = (px(a.longitude_deg), py(a.latitude_deg), px(b.longitude_deg), py(b.latitude_deg));
        let ms = f64::from(link.latency_us) / 1000.0;
        let colour = if ms <= 1.0 {
            "#009E73"
        } else if ms <= 3.0 {
            "#E69F00"
        } else {
            "#D55E00"
        };
        let _ = write!(
            svg,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" stroke-width=\"1.2\" opacity=\"0.7\">\
             <title>{} – {}: {ms} ms</title></line>",
            escape(&a.name),
            escape(&b.name)
        );
    }
    let max_cards = capacity.by_site.iter().map(|r| r.cards).max().unwrap_or(1).max(1) as f64;
    // Biggest sites first, so their circles sit underneath and their names win a crowded spot;
    // a name that would overlap one already written is left to the circle's tooltip (and the
    // table below the map).
    let mut order: Vec<usize> = (0..sites.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(capacity.by_site[i].cards));
    let mut labels: Vec<(f64, f64, f64, f64)> = Vec::new();
    for i in order {
        let s = &sites[i];
        let cards = capacity.by_site[i].cards;
        let r = 4.0 + 18.0 * (cards as f64 / max_cards).sqrt();
        let (x, y) = (px(s.longitude_deg), py(s.latitude_deg));
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"#CC79A7\" fill-opacity=\"0.55\" stroke=\"#6b2f57\">\
             <title>{} ({}): {cards}</title></circle>",
            escape(&s.name),
            escape(&s.city),
        );
        let (lx, ly) = (x + r + 2.0, y + 4.0);
        let width = 6.2 * s.name.chars().count() as f64;
        let bbox = (lx, ly - 10.0, lx + width, ly + 2.0);
        let overlaps = labels.iter().any(|b| bbox.0 < b.2 && b.0 < bbox.2 && bbox.1 < b.3 && b.1 < bbox.3);
        if !overlaps {
            labels.push(bbox);
            let _ = write!(svg, "<text x=\"{lx:.1}\" y=\"{ly:.1}\" fill=\"#222\">{}</text>", escape(&s.name));
        }
    }
    svg += "</svg>";
    svg
}
