//! Charts drawn on the server as inline SVG: bar, donut, line and funnel. No script, no
//! external file: kehu runs offline in bank networks. Every chart carries `<title>` and
//! `<desc>` (named by `aria-labelledby`), and is followed by its numbers as a small table,
//! the text alternative for screen readers and for anyone who wants the figures.
//!
//! Values are exact integers (fen, counts); floating point only places shapes.

use std::fmt::Write;

/// One value with its label and how it is shown (`¥1,234`, `56`, …).
#[derive(Debug, Clone)]
pub struct Datum {
    pub label: String,
    pub value: i64,
    pub shown: String,
}

impl Datum {
    pub fn new(label: impl Into<String>, value: i64, shown: impl Into<String>) -> Datum {
        Datum {
            label: label.into(),
            value,
            shown: shown.into(),
        }
    }
}

/// What every chart needs besides its data: an id unique on the page, a title, a
/// one-sentence description, and the header of the data table.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
    pub label_header: &'a str,
    pub value_header: &'a str,
}

const PALETTE: [&str; 8] = [
    "#2f6fb0", "#e0892b", "#3a9a5b", "#c8453c", "#7d5ba6", "#8c6d3f", "#d16fa9", "#6b7280",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Escapes text for XML and HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn open(f: &Frame, w: u32, h: u32) -> String {
    let id = esc(f.id);
    format!(
        "<figure class=\"chart\" id=\"{id}\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         width=\"100%\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" font-size=\"12\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        esc(f.title),
        esc(f.desc)
    )
}

fn close(f: &Frame, rows: &[(String, String)]) -> String {
    let mut o = String::from("</svg>");
    let _ = write!(
        o,
        "<figcaption>{}</figcaption><details class=\"chart-data\"><summary>{}</summary><table><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(f.title),
        esc(f.value_header),
        esc(f.label_header),
        esc(f.value_header)
    );
    for (l, v) in rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(l),
            esc(v)
        );
    }
    o.push_str("</tbody></table></details></figure>");
    o
}

fn rows_of(data: &[Datum]) -> Vec<(String, String)> {
    data.iter()
        .map(|d| (d.label.clone(), d.shown.clone()))
        .collect()
}

/// Horizontal bars (long Chinese labels stay readable). Negative values draw as zero
/// length; their number is still shown.
pub fn bar(f: &Frame, data: &[Datum]) -> String {
    let row_h = 28u32;
    let (w, label_w, value_w) = (560u32, 130f64, 120f64);
    let h = row_h * data.len().max(1) as u32 + 8;
    let max = data.iter().map(|d| d.value).max().unwrap_or(0).max(1) as f64;
    let mut o = open(f, w, h);
    let span = w as f64 - label_w - value_w;
    for (i, d) in data.iter().enumerate() {
        let y = 4 + i as u32 * row_h;
        let len = (d.value.max(0) as f64 / max * span).max(if d.value > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            o,
            "<g><text x=\"{:.0}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\
             <rect x=\"{label_w}\" y=\"{}\" width=\"{len:.1}\" height=\"{}\" fill=\"{}\" rx=\"2\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{}\" dominant-baseline=\"middle\">{}</text></g>",
            label_w - 8.0,
            y + row_h / 2,
            esc(&d.label),
            y + 4,
            row_h - 8,
            color(i),
            esc(&d.label),
            esc(&d.shown),
            label_w + len + 6.0,
            y + row_h / 2,
            esc(&d.shown)
        );
    }
    o.push_str(&close(f, &rows_of(data)));
    o
}

/// A donut of shares of a whole, with a legend; only positive values take part.
pub fn donut(f: &Frame, data: &[Datum], center: &str) -> String {
    let (w, h) = (560u32, 220u32);
    let (cx, cy, r, inner) = (110.0f64, 110.0f64, 95.0f64, 58.0f64);
    let total: i64 = data.iter().map(|d| d.value.max(0)).sum();
    let mut o = open(f, w, h);
    if total > 0 {
        let mut a0 = -std::f64::consts::FRAC_PI_2;
        for (i, d) in data.iter().enumerate().filter(|(_, d)| d.value > 0) {
            let share = d.value as f64 / total as f64;
            let title = format!("{}: {} ({:.1}%)", d.label, d.shown, share * 100.0);
            if share >= 0.9999 {
                let _ = write!(
                    o,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{:.1}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1}\"><title>{}</title></circle>",
                    (r + inner) / 2.0,
                    color(i),
                    r - inner,
                    esc(&title)
                );
                break;
            }
            let a1 = a0 + share * std::f64::consts::TAU;
            let large = if a1 - a0 > std::f64::consts::PI { 1 } else { 0 };
            let p = |a: f64, rr: f64| (cx + rr * a.cos(), cy + rr * a.sin());
            let (x0, y0) = p(a0, r);
            let (x1, y1) = p(a1, r);
            let (x2, y2) = p(a1, inner);
            let (x3, y3) = p(a0, inner);
            let _ = write!(
                o,
                "<path d=\"M{x0:.2} {y0:.2} A{r} {r} 0 {large} 1 {x1:.2} {y1:.2} L{x2:.2} {y2:.2} A{inner} {inner} 0 {large} 0 {x3:.2} {y3:.2} Z\" fill=\"{}\"><title>{}</title></path>",
                color(i),
                esc(&title)
            );
            a0 = a1;
        }
    } else {
        let _ = write!(o, "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{:.1}\" fill=\"none\" stroke=\"#ddd\" stroke-width=\"{:.1}\"/>", (r + inner) / 2.0, r - inner);
    }
    let _ = write!(
        o,
        "<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" dominant-baseline=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        esc(center)
    );
    for (i, d) in data.iter().enumerate() {
        let y = 24 + i as u32 * 24;
        let pct = if total > 0 && d.value > 0 {
            format!(" · {:.1}%", d.value as f64 / total as f64 * 100.0)
        } else {
            String::new()
        };
        let _ = write!(
            o,
            "<rect x=\"240\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"260\" y=\"{}\" dominant-baseline=\"middle\">{} {}{}</text>",
            y - 6,
            color(i),
            y,
            esc(&d.label),
            esc(&d.shown),
            pct
        );
    }
    o.push_str(&close(f, &rows_of(data)));
    o
}

/// The smallest 1, 2, 2.5 or 5 × 10^k at or above `v` (v > 0), so gridlines fall on
/// round numbers.
pub fn nice_ceiling(v: i64) -> i64 {
    let mut base = 1i64;
    while base.saturating_mul(10) <= v {
        base *= 10;
    }
    for m in [1, 2, 5, 10] {
        let c = base.saturating_mul(m);
        if c >= v {
            // Four gridlines: keep quarters whole.
            return if c % 4 == 0 || c < 4 {
                c
            } else {
                base.saturating_mul(m) / 4 * 4 + 4
            };
        }
    }
    v
}

/// One or more series over the same x labels, each a polyline with points.
pub fn line(
    f: &Frame,
    x: &[String],
    series: &[(String, Vec<i64>)],
    axis: &dyn Fn(i64) -> String,
) -> String {
    let (w, h) = (560u32, 240u32);
    let (left, right, top, bottom) = (70.0f64, 10.0f64, 28.0f64, 28.0f64);
    let max = nice_ceiling(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1),
    );
    let min = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .min()
        .unwrap_or(0)
        .min(0);
    let span_y = (max - min) as f64;
    let n = x.len().max(2);
    let px = |i: usize| left + (w as f64 - left - right) * i as f64 / (n - 1) as f64;
    let py = |v: i64| top + (h as f64 - top - bottom) * (1.0 - (v - min) as f64 / span_y);
    let mut o = open(f, w, h);
    for k in 0..=4 {
        let v = min + (max - min) * k / 4;
        let y = py(v);
        let _ = write!(
            o,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/><text x=\"{}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#555\">{}</text>",
            w as f64 - right,
            left - 6.0,
            esc(&axis(v))
        );
    }
    for (i, l) in x.iter().enumerate() {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            px(i),
            h - 8,
            esc(l)
        );
    }
    for (s, (name, vals)) in series.iter().enumerate() {
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", px(i), py(*v)))
            .collect();
        let _ = write!(
            o,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            pts.join(" "),
            color(s)
        );
        for (i, v) in vals.iter().enumerate() {
            let _ = write!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{} {}: {}</title></circle>",
                px(i),
                py(*v),
                color(s),
                esc(name),
                esc(x.get(i).map(String::as_str).unwrap_or("")),
                esc(&axis(*v))
            );
        }
        let _ = write!(
            o,
            "<rect x=\"{}\" y=\"6\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"10\" dominant-baseline=\"middle\">{}</text>",
            left + s as f64 * 120.0,
            color(s),
            left + s as f64 * 120.0 + 16.0,
            esc(name)
        );
    }
    let mut rows = Vec::new();
    for (i, l) in x.iter().enumerate() {
        let vals: Vec<String> = series
            .iter()
            .map(|(name, v)| format!("{name} {}", v.get(i).map(|v| axis(*v)).unwrap_or_default()))
            .collect();
        rows.push((l.clone(), vals.join(" · ")));
    }
    o.push_str(&close(f, &rows));
    o
}

/// Steps of a funnel (view → detail → purchase): bars centred and narrowing, each with
/// its count and its rate from the step before.
pub fn funnel(f: &Frame, steps: &[Datum]) -> String {
    let step_h = 44u32;
    let (w, h) = (560u32, step_h * steps.len().max(1) as u32 + 8);
    let max = steps.first().map(|d| d.value).unwrap_or(0).max(1) as f64;
    let mut o = open(f, w, h);
    let mut rows = Vec::new();
    for (i, d) in steps.iter().enumerate() {
        let width = (d.value.max(0) as f64 / max * 360.0).max(2.0);
        let x = 100.0 + (360.0 - width) / 2.0;
        let y = 4 + i as u32 * step_h;
        let rate = match i.checked_sub(1).and_then(|p| steps.get(p)) {
            Some(prev) if prev.value > 0 => {
                format!(" ({:.1}%)", d.value as f64 / prev.value as f64 * 100.0)
            }
            _ => String::new(),
        };
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{}\" fill=\"{}\"><title>{}: {}{}</title></rect>\
             <text x=\"92\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\
             <text x=\"468\" y=\"{}\" dominant-baseline=\"middle\">{}{}</text>",
            step_h - 8,
            color(i),
            esc(&d.label),
            esc(&d.shown),
            rate,
            y + (step_h - 8) / 2,
            esc(&d.label),
            y + (step_h - 8) / 2,
            esc(&d.shown),
            rate
        );
        rows.push((d.label.clone(), format!("{}{rate}", d.shown)));
    }
    o.push_str(&close(f, &rows));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame<'static> {
        Frame {
            id: "c1",
            title: "资产分布 <按类别>",
            desc: "各类资产余额",
            label_header: "类别",
            value_header: "金额",
        }
    }

    fn data() -> Vec<Datum> {
        vec![
            Datum::new("活期存款", 300, "¥3"),
            Datum::new("基金", 100, "¥1"),
            Datum::new("理财 & 其他", 0, "¥0"),
        ]
    }

    fn well_formed(svg: &str) {
        // Balanced tags, escaped text, accessible name.
        for tag in ["svg", "figure", "title", "desc", "table", "details"] {
            let opens = svg.matches(&format!("<{tag}")).count();
            let closes = svg.matches(&format!("</{tag}>")).count();
            assert_eq!(opens, closes, "<{tag}> balanced in {svg}");
        }
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"c1-t c1-d\""));
        assert!(svg.contains("<title id=\"c1-t\">资产分布 &lt;按类别&gt;</title>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn bar_lengths_follow_values_and_text_alternative_lists_them() {
        let svg = bar(&frame(), &data());
        well_formed(&svg);
        assert!(
            svg.contains("width=\"310.0\""),
            "largest bar spans the plot: {svg}"
        );
        assert!(svg.contains("width=\"103.3\""), "a third of it: {svg}");
        assert!(svg.contains("width=\"0.0\""), "zero has no bar");
        assert!(svg.contains("<td>理财 &amp; 其他</td><td class=\"num\">¥0</td>"));
    }

    #[test]
    fn donut_shares_add_up() {
        let svg = donut(&frame(), &data(), "¥4");
        well_formed(&svg);
        assert_eq!(
            svg.matches("<path").count(),
            2,
            "one arc per positive share"
        );
        assert!(svg.contains("75.0%") && svg.contains("25.0%"));
        // A single share is a full ring, not a degenerate arc.
        let one = donut(&frame(), &data()[..1], "¥3");
        assert!(one.contains("<circle") && !one.contains("<path"));
        // Nothing to share: an empty ring, no division by zero.
        well_formed(&donut(&frame(), &[], "¥0"));
    }

    #[test]
    fn line_has_a_point_per_value_and_scales_to_the_maximum() {
        let x: Vec<String> = ["1月", "2月", "3月"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let svg = line(
            &frame(),
            &x,
            &[
                ("收入".into(), vec![0, 50, 100]),
                ("支出".into(), vec![10, 20, 30]),
            ],
            &|v| v.to_string(),
        );
        well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6);
        // The maximum sits on the top gridline (y = 28), the minimum on the bottom (212).
        assert!(svg.contains("550.0,28.0"), "{svg}");
        assert!(svg.contains("70.0,212.0"), "{svg}");
        assert!(svg.contains("<td>2月</td><td class=\"num\">收入 50 · 支出 20</td>"));
    }

    #[test]
    fn gridlines_fall_on_round_numbers() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(7), 12); // 10 is not divisible by 4: the next multiple
        assert_eq!(nice_ceiling(100), 100);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(5_972_800), 10_000_000);
        assert_eq!(nice_ceiling(1_500_000), 2_000_000);
    }

    #[test]
    fn funnel_shows_step_rates() {
        let steps = vec![
            Datum::new("浏览", 200, "200"),
            Datum::new("详情", 50, "50"),
            Datum::new("购买", 5, "5"),
        ];
        let svg = funnel(&frame(), &steps);
        well_formed(&svg);
        assert!(
            svg.contains("50 (25.0%)") && svg.contains("5 (10.0%)"),
            "{svg}"
        );
        assert!(svg.contains("width=\"360.0\""));
    }
}
