//! A small SVG line-chart renderer: axes with round ticks, grid lines, one polyline per series, a
//! legend, and a title; colours from the Okabe–Ito palette (readable with colour-blindness).

use std::fmt::Write;

use crate::html::escape;

/// Width and height of the drawing in SVG units.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 52.0;

/// Okabe–Ito colours, then a few more; series beyond these repeat with dashes.
const COLOURS: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999"];

/// The most points drawn per series (extra points are thinned evenly).
pub const POINTS_MAX: usize = 5_000;

/// One line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points in drawing order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    log_x: bool,
}

impl LineChart {
    /// A chart; axes are fitted to the data.
    pub fn new(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        LineChart {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            series,
            log_x: false,
        }
    }

    /// Draws the x axis on a log10 scale (points with x ≤ 0 are skipped), ticks at powers of ten.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// The chart as an `<svg>` element with a `<title>` for screen readers.
    pub fn render(&self) -> String {
        let log_x = self.log_x;
        let transform = |p: &(f64, f64)| if log_x { (p.0.log10(), p.1) } else { *p };
        let series: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter(|p| !log_x || p.0 > 0.0)
                    .map(transform)
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect()
            })
            .collect();
        let all: Vec<(f64, f64)> = series.iter().flatten().copied().collect();
        let (x_min, x_max) = bounds(all.iter().map(|p| p.0));
        let (y_min, y_max) = bounds(all.iter().map(|p| p.1));
        let x_ticks = if log_x {
            (x_min.floor() as i64..=x_max.ceil() as i64).map(|e| e as f64).collect()
        } else {
            ticks(x_min, x_max)
        };
        let x_ticks = if x_ticks.len() < 2 { vec![x_ticks[0], x_ticks[0] + 1.0] } else { x_ticks };
        let y_ticks = ticks(y_min, y_max);
        let (x_lo, x_hi) = (x_ticks[0], x_ticks[x_ticks.len() - 1]);
        let (y_lo, y_hi) = (y_ticks[0], y_ticks[y_ticks.len() - 1]);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
        let sy = |y: f64| TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h;

        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\
             <title>{}</title><rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>",
            escape(&self.title)
        );
        let _ = write!(
            svg,
            "<text x=\"{LEFT}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            escape(&self.title)
        );
        for &t in &y_ticks {
            let y = sy(t);
            let _ = write!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e3e3\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                label(t)
            );
        }
        for &t in &x_ticks {
            let x = sx(t);
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + plot_h,
                TOP + plot_h + 18.0,
                if log_x { power_label(t) } else { label(t) }
            );
        }
        let _ = write!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#555\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            LEFT + plot_w / 2.0,
            HEIGHT - 12.0,
            escape(&self.x_label),
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        for (i, (series, points)) in self.series.iter().zip(&series).enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let dash = if i >= COLOURS.len() { " stroke-dasharray=\"6 3\"" } else { "" };
            let step = points.len().div_ceil(POINTS_MAX).max(1);
            let path: Vec<String> =
                points.iter().step_by(step).map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{}</title></polyline>",
                path.join(" "),
                escape(&series.name)
            );
            let ly = TOP + 8.0 + i as f64 * 20.0;
            let lx = LEFT + plot_w + 14.0;
            let _ = write!(
                svg,
                "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        (true, true) => (lo - 1.0, hi + 1.0),
        _ => (0.0, 1.0),
    }
}

/// About seven round ticks (1, 2 or 5 × 10^k apart) covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 7.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let mut ticks = vec![first];
    while ticks.len() < 2 || (ticks[ticks.len() - 1] < hi - step * 1e-9 && ticks.len() < 50) {
        ticks.push(first + step * ticks.len() as f64);
    }
    ticks
}

/// 10^k for a log axis: 1, 10, 100, 1k, 10k, … (and 0.1, 0.01 below 1).
fn power_label(exponent: f64) -> String {
    let e = exponent.round() as i32;
    match e {
        i32::MIN..=-1 => format!("{}", 10f64.powi(e)),
        0..=2 => format!("{}", 10i64.pow(e as u32)),
        3..=5 => format!("{}k", 10i64.pow(e as u32 - 3)),
        _ => format!("{}M", 10i64.pow((e - 6).max(0) as u32)),
    }
}

fn label(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    if rounded == rounded.trunc() { format!("{}", rounded as i64) } else { format!("{rounded}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(ticks(1.0, 130.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0]);
        assert_eq!(ticks(80.0, 100.0), vec![80.0, 85.0, 90.0, 95.0, 100.0]);
        assert_eq!(ticks(0.0, 120.0).last(), Some(&120.0));
        let t = ticks(0.013, 0.047);
        assert!(t[0] <= 0.013 && *t.last().unwrap() >= 0.047, "{t:?}");
    }

    #[test]
    fn charts_render_every_series_and_survive_odd_data() {
        let chart = LineChart::new(
            "t",
            "x",
            "y",
            vec![
                Series { name: "a".to_owned(), points: vec![(0.0, 1.0), (1.0, 2.0)] },
                Series { name: "b<".to_owned(), points: vec![(0.0, f64::NAN), (1.0, 3.0)] },
                Series { name: "empty".to_owned(), points: vec![] },
            ],
        );
        let svg = chart.render();
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("b&lt;"));
        assert!(!svg.contains("NaN"));
        let log = LineChart::new(
            "t",
            "x",
            "y",
            vec![Series { name: "a".to_owned(), points: vec![(0.0, 1.0), (10.0, 2.0), (10_000.0, 3.0)] }],
        )
        .log_x()
        .render();
        assert!(log.contains(">10k<") && log.contains(">10<"), "{log}");
        let empty = LineChart::new("t", "x", "y", vec![]).render();
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>"));
    }
}
