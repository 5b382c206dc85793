//! Hand-written SVG line charts: axes with ticks and labels, lines, a legend, optional second
//! y axis and vertical markers (phase boundaries). No plotting crate and no script, so a chart is
//! a few kilobytes of text that renders the same on GitHub, in a browser and on paper.
//!
//! Colours come from classes in an embedded `<style>` with a `prefers-color-scheme: dark`
//! variant, so standalone files and inline charts both follow the reader's theme.

use std::fmt::Write as _;

use super::escape::html as esc;

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 62.0;
const RIGHT_PAD: f64 = 62.0;
const TOP: f64 = 34.0;
const PLOT_H: f64 = 190.0;

/// Line colours (colour-blind-friendly Okabe–Ito order); series beyond them cycle with dashes.
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8E6C00", "#7F7F7F",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Left,
    Right,
}

#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    /// (x, y); NaN y values break the line (no data in that bucket).
    pub points: Vec<(f64, f64)>,
    pub axis: Axis,
    pub dashed: bool,
}

/// How tick values are printed.
#[derive(Debug, Clone, Copy)]
pub enum Ticks {
    /// Plain numbers with the unit suffix.
    Number(&'static str),
    /// Seconds as `1m30s`.
    Seconds,
    /// x = −log10(1 − q): 0 → p0, 1 → p90, 2 → p99, 3 → p99.9.
    Nines,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y2_label: Option<String>,
    pub x_ticks: Ticks,
    pub y_ticks: Ticks,
    pub y2_ticks: Ticks,
    pub lines: Vec<Line>,
    /// Vertical markers: (x, label), e.g. where each phase starts.
    pub markers: Vec<(f64, String)>,
    /// The x axis's extent when several charts must share one (the run's time axis), else the
    /// data's own.
    pub x_range: Option<(f64, f64)>,
}

/// Legend entries per row, and the longest name that fits one of them; a chart with a longer
/// name gets one entry per row, names cut at [`LEGEND_WIDE`] characters (the whole name in the
/// entry's tooltip).
const LEGEND_PER_ROW: usize = 4;
/// A chart title longer than this would run past the chart's width: cut (whole in its tooltip).
const TITLE_CHARS: usize = 95;
/// An axis title longer than this would run past the plot's height (rotated): cut.
const Y_LABEL_CHARS: usize = 30;
const LEGEND_NARROW: usize = 22;
const LEGEND_WIDE: usize = 100;

/// Cuts `s` to `n` characters with an ellipsis.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `n` of them.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo.min(0.0), lo.max(1.0)];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| raw <= *s)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let mut out = Vec::new();
    let mut v = start;
    // Bounded: at most n + 3 ticks whatever the floating-point rounding.
    while out.len() < n + 3 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        if v >= hi {
            break;
        }
        v += step;
    }
    out
}

fn fmt_tick(v: f64, t: Ticks) -> String {
    match t {
        Ticks::Number(unit) => {
            let s = if v.abs() >= 10_000.0 {
                format!("{:.0}k", v / 1000.0)
            } else if v.fract().abs() < 1e-9 {
                format!("{v:.0}")
            } else if v.abs() < 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.1}")
            };
            format!("{s}{unit}")
        }
        Ticks::Seconds => {
            let s = v.round() as i64;
            if s.abs() < 60 {
                format!("{s}s")
            } else if s % 60 == 0 {
                format!("{}m", s / 60)
            } else {
                format!("{}m{}s", s / 60, s % 60)
            }
        }
        Ticks::Nines => {
            let q = 100.0 * (1.0 - 10f64.powf(-v));
            let s = format!("{q:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("p{s}")
        }
    }
}

fn range(lines: &[&Line], pick: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines {
        for p in &l.points {
            let v = pick(p);
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi <= lo {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    } else {
        (lo, hi)
    }
}

const STYLE: &str = "<style>\
.bg{fill:#fff}.ax{stroke:#555;stroke-width:1}.gr{stroke:#ddd;stroke-width:1}\
.tx{fill:#222;font:11px system-ui,-apple-system,'Segoe UI',sans-serif}.tt{font-weight:600;font-size:13px}\
.mk{stroke:#999;stroke-dasharray:3 3}.ln{fill:none;stroke-width:1.8;stroke-linejoin:round}\
@media (prefers-color-scheme:dark){.bg{fill:#161b22}.ax{stroke:#aaa}.gr{stroke:#30363d}.tx{fill:#ddd}.mk{stroke:#777}}\
</style>";

/// The chart as a standalone `<svg>` element (valid as a file and inline in HTML).
pub fn render(c: &Chart) -> String {
    let names: Vec<String> = c
        .lines
        .iter()
        .map(|l| {
            if l.axis == Axis::Right {
                format!("{} (right axis)", l.name)
            } else {
                l.name.clone()
            }
        })
        .collect();
    let per_row = if names.iter().any(|n| n.chars().count() > LEGEND_NARROW) {
        1
    } else {
        LEGEND_PER_ROW
    };
    let legend_rows = c.lines.len().div_ceil(per_row).max(1);
    let height = H + (legend_rows.saturating_sub(1)) as f64 * 16.0;
    let plot_w = W - LEFT - RIGHT_PAD;
    let left: Vec<&Line> = c.lines.iter().filter(|l| l.axis == Axis::Left).collect();
    let right: Vec<&Line> = c.lines.iter().filter(|l| l.axis == Axis::Right).collect();
    let (x0, x1) = c
        .x_range
        .unwrap_or_else(|| range(&c.lines.iter().collect::<Vec<_>>(), |p| p.0));
    let (_, y1) = range(&left, |p| p.1);
    let yt = nice_ticks(0.0, y1, 5);
    let ymax = yt.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let (_, r1) = range(&right, |p| p.1);
    let rt = nice_ticks(0.0, r1, 5);
    let rmax = rt.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let xt = match c.x_ticks {
        Ticks::Nines => (0..=x1.ceil().max(1.0) as usize).map(|v| v as f64).collect(),
        _ => nice_ticks(x0, x1, 8),
    };
    let (xa, xb) = (
        xt.first().copied().unwrap_or(x0).min(x0),
        xt.last().copied().unwrap_or(x1).max(x1),
    );
    let xspan = if xb > xa { xb - xa } else { 1.0 };
    let sx = |x: f64| LEFT + (x - xa) / xspan * plot_w;
    let sy = |y: f64, max: f64| TOP + PLOT_H - (y / max).clamp(0.0, 1.05) * PLOT_H;

    let mut s = String::with_capacity(8192);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\">{STYLE}<rect class=\"bg\" x=\"0\" y=\"0\" width=\"{W}\" height=\"{height}\"/>",
        esc(&c.title)
    );
    let _ = write!(
        s,
        "<text class=\"tx tt\" x=\"{LEFT}\" y=\"20\"><title>{}</title>{}</text>",
        esc(&c.title),
        esc(&cut(&c.title, TITLE_CHARS))
    );
    // Grid and left ticks.
    for v in &yt {
        let y = sy(*v, ymax);
        let _ = write!(
            s,
            "<line class=\"gr\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tx\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            esc(&fmt_tick(*v, c.y_ticks))
        );
    }
    if !right.is_empty() {
        for v in &rt {
            let y = sy(*v, rmax);
            let _ = write!(
                s,
                "<text class=\"tx\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT + plot_w + 6.0,
                y + 4.0,
                esc(&fmt_tick(*v, c.y2_ticks))
            );
        }
    }
    for v in &xt {
        let x = sx(*v);
        let _ = write!(
            s,
            "<line class=\"ax\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"tx\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            TOP + PLOT_H,
            TOP + PLOT_H + 4.0,
            TOP + PLOT_H + 16.0,
            esc(&fmt_tick(*v, c.x_ticks))
        );
    }
    for (x, label) in &c.markers {
        let px = sx(*x);
        let _ = write!(
            s,
            "<line class=\"mk\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/><text class=\"tx\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            TOP + PLOT_H,
            px + 3.0,
            TOP + 10.0,
            esc(label)
        );
    }
    // Axes and labels.
    let _ = write!(
        s,
        "<line class=\"ax\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{b:.1}\"/><line class=\"ax\" x1=\"{LEFT}\" x2=\"{r:.1}\" y1=\"{b:.1}\" y2=\"{b:.1}\"/>",
        b = TOP + PLOT_H,
        r = LEFT + plot_w
    );
    let _ = write!(
        s,
        "<text class=\"tx\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        TOP + PLOT_H + 32.0,
        esc(&c.x_label)
    );
    let _ = write!(
        s,
        "<text class=\"tx\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + PLOT_H / 2.0,
        esc(&cut(&c.y_label, Y_LABEL_CHARS))
    );
    if let (Some(l), false) = (&c.y2_label, right.is_empty()) {
        let _ = write!(
            s,
            "<text class=\"tx\" transform=\"translate({:.1} {:.1}) rotate(90)\" text-anchor=\"middle\">{}</text>",
            W - 10.0,
            TOP + PLOT_H / 2.0,
            esc(l)
        );
    }
    // Lines.
    for (i, l) in c.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let dash = if l.dashed || i >= PALETTE.len() {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let max = if l.axis == Axis::Left { ymax } else { rmax };
        let mut d = String::new();
        let mut pen_down = false;
        for (x, y) in &l.points {
            if !y.is_finite() || !x.is_finite() {
                pen_down = false;
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if pen_down { " L" } else { " M" },
                sx(*x),
                sy(*y, max)
            );
            pen_down = true;
        }
        if !d.is_empty() {
            let _ = write!(
                s,
                "<path class=\"ln\" stroke=\"{color}\"{dash} d=\"{}\"/>",
                d.trim_start()
            );
        }
    }
    // Legend: four entries a row, or one a row when a name is long.
    for (i, (l, name)) in c.lines.iter().zip(&names).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let dash = if l.dashed || i >= PALETTE.len() {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let x = LEFT + (i % per_row) as f64 * (plot_w / per_row as f64);
        let y = TOP + PLOT_H + 50.0 + (i / per_row) as f64 * 16.0;
        let shown = cut(name, if per_row == 1 { LEGEND_WIDE } else { LEGEND_NARROW });
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2.5\"{dash}/><text class=\"tx\" x=\"{:.1}\" y=\"{y:.1}\"><title>{}</title>{}</text>",
            x + 18.0,
            y - 4.0,
            y - 4.0,
            x + 22.0,
            esc(name),
            esc(&shown)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 9.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(0.0, 1234.0, 5);
        assert!(t.last().copied().unwrap_or(0.0) >= 1234.0, "{t:?}");
        assert_eq!(fmt_tick(2.0, Ticks::Nines), "p99");
        assert_eq!(fmt_tick(90.0, Ticks::Seconds), "1m30s");
    }

    #[test]
    fn escapes_names_and_survives_empty_data() {
        let c = Chart {
            title: "t<".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            y2_label: None,
            x_ticks: Ticks::Seconds,
            y_ticks: Ticks::Number("ms"),
            y2_ticks: Ticks::Number(""),
            lines: vec![Line {
                name: "<script>".into(),
                points: vec![],
                axis: Axis::Left,
                dashed: false,
            }],
            markers: vec![],
            x_range: None,
        };
        let s = render(&c);
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
    }
}

#[cfg(test)]
mod legend_tests {
    use super::*;

    fn chart(name: &str, range: Option<(f64, f64)>) -> Chart {
        Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "a very long axis title naming a server series with labels".into(),
            y2_label: None,
            x_ticks: Ticks::Seconds,
            y_ticks: Ticks::Number(""),
            y2_ticks: Ticks::Number(""),
            lines: vec![Line {
                name: name.into(),
                points: vec![(0.0, 1.0), (30.0, 2.0)],
                axis: Axis::Left,
                dashed: false,
            }],
            markers: vec![],
            x_range: range,
        }
    }

    #[test]
    fn long_names_get_a_row_and_a_tooltip_and_charts_can_share_an_axis() {
        let long = "target.stampede_target_service_busy_workers{service=\"php-fpm\"}";
        let svg = render(&chart(long, None));
        assert!(
            svg.contains("<title>target.stampede_target_service_busy_workers{service=&quot;php-fpm&quot;}</title>"),
            "{svg}"
        );
        assert!(
            !svg.contains("a very long axis title naming a server series with labels<"),
            "the axis title is cut"
        );
        // The last tick of the data's own axis is 30 s; of a shared 0-70 s axis, beyond 60 s.
        assert!(svg.contains(">30s<") && !svg.contains(">1m<"), "{svg}");
        let shared = render(&chart("p95", Some((0.0, 70.0))));
        assert!(shared.contains(">1m<"), "{shared}");
    }
}
