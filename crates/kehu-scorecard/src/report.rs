//! Self-contained HTML model report with inline SVG charts (no scripts, no
//! external resources). Labels are Chinese first, then English.
//!
//! Every headline figure is also in a `data-metric` / `data-sample` attribute
//! so that tests and tools can read them back exactly.

use crate::binning::BinRule;
use crate::model::Model;
use crate::validation::{SampleMetrics, Validation};
use std::fmt::Write;

const COLORS: [&str; 4] = ["#1f6fb2", "#d9534f", "#2e9b57", "#8e44ad"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn f4(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.4}")
    }
}

/// A line chart on the unit square; `series` = (name, points in [0,1]²).
fn line_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> String {
    let (w, h, m) = (420.0, 320.0, 48.0);
    let (pw, ph) = (w - m - 16.0, h - m - 28.0);
    let x = |v: f64| m + v * pw;
    let y = |v: f64| 20.0 + (1.0 - v) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{}" y="20" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>"##,
        m
    );
    for i in 0..=5 {
        let t = i as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="20" x2="{:.1}" y2="{:.1}" stroke="#eee"/><line x1="{m}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
            x(t),
            x(t),
            20.0 + ph,
            y(t),
            m + pw,
            y(t)
        );
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{t:.1}</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{t:.1}</text>"##,
            x(t),
            20.0 + ph + 13.0,
            m - 4.0,
            y(t) + 3.0
        );
    }
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
            x(0.0),
            y(0.0),
            x(1.0),
            y(1.0)
        );
    }
    for (k, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.8" points="{}"/>"#,
            path.join(" ")
        );
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{c}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            m + pw - 130.0,
            y(0.0) - 14.0 - 14.0 * k as f64,
            m + pw - 116.0,
            y(0.0) - 5.0 - 14.0 * k as f64,
            esc(name)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
        m + pw / 2.0,
        h - 4.0,
        esc(xlabel)
    );
    let _ = write!(
        s,
        r#"<text x="12" y="{:.1}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {:.1})">{}</text>"#,
        20.0 + ph / 2.0,
        20.0 + ph / 2.0,
        esc(ylabel)
    );
    s.push_str("</svg>");
    s
}

/// Score distribution: share of events and of non-events per score bin.
fn histogram_chart(title: &str, m: &SampleMetrics) -> String {
    let hgm = &m.score_histogram;
    let (w, h, left) = (520.0, 300.0, 48.0);
    let (pw, ph) = (w - left - 16.0, h - 70.0);
    let te = hgm.events.iter().sum::<usize>().max(1) as f64;
    let tn = hgm.non_events.iter().sum::<usize>().max(1) as f64;
    let shares: Vec<(f64, f64)> = hgm
        .events
        .iter()
        .zip(&hgm.non_events)
        .map(|(&e, &n)| (e as f64 / te, n as f64 / tn))
        .collect();
    let top = shares
        .iter()
        .map(|&(a, b)| a.max(b))
        .fold(0.0, f64::max)
        .max(1e-9);
    let nb = shares.len().max(1) as f64;
    let bw = pw / nb;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{left}" y="20" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>"##
    );
    for (i, &(e, n)) in shares.iter().enumerate() {
        let x0 = left + i as f64 * bw;
        let hn = n / top * ph;
        let he = e / top * ph;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2e9b57" opacity="0.75"><title>non-events {:.1}%</title></rect>"##,
            x0 + 1.0,
            20.0 + ph - hn,
            bw / 2.0 - 1.0,
            hn,
            n * 100.0
        );
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d9534f" opacity="0.75"><title>events {:.1}%</title></rect>"##,
            x0 + bw / 2.0,
            20.0 + ph - he,
            bw / 2.0 - 1.0,
            he,
            e * 100.0
        );
    }
    for i in (0..hgm.edges.len()).step_by(4) {
        let x0 = left + i as f64 * bw;
        let _ = write!(
            s,
            r#"<text x="{x0:.1}" y="{:.1}" font-size="10" text-anchor="middle">{:.0}</text>"#,
            20.0 + ph + 13.0,
            hgm.edges[i]
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{:.0}%</text>"#,
        left - 4.0,
        24.0,
        top * 100.0
    );
    let _ = write!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#2e9b57"/><text x="{:.1}" y="{:.1}" font-size="11">好 non-event ({})</text>"##,
        left + 8.0,
        26.0,
        left + 22.0,
        35.0,
        esc(&m.name)
    );
    let _ = write!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#d9534f"/><text x="{:.1}" y="{:.1}" font-size="11">坏 event</text>"##,
        left + 8.0,
        42.0,
        left + 22.0,
        51.0
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">总分 total score</text>"#,
        left + pw / 2.0,
        h - 26.0
    );
    s.push_str("</svg>");
    s
}

/// Horizontal bars of WoE per bin.
fn woe_chart(name: &str, labels: &[String], woe: &[f64]) -> String {
    let n = labels.len().max(1);
    let (w, row) = (560.0, 20.0);
    let h = 16.0 + row * n as f64;
    let (lx, pw) = (220.0, 320.0);
    let mx = woe.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-9);
    let zero = lx + pw / 2.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="WoE {}"><title>WoE: {}</title>"#,
        esc(name),
        esc(name)
    );
    let _ = write!(
        s,
        r##"<line x1="{zero}" y1="4" x2="{zero}" y2="{:.1}" stroke="#555"/>"##,
        h - 4.0
    );
    for (i, (l, &v)) in labels.iter().zip(woe).enumerate() {
        let y0 = 8.0 + i as f64 * row;
        let len = v.abs() / mx * (pw / 2.0 - 40.0);
        let (x0, c) = if v >= 0.0 {
            (zero, "#d9534f")
        } else {
            (zero - len, "#2e9b57")
        };
        let lab: String = l.chars().take(34).collect();
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"#,
            lx - 6.0,
            y0 + 11.0,
            esc(&lab)
        );
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{y0:.1}" width="{len:.1}" height="{:.1}" fill="{c}"/>"#,
            row - 6.0
        );
        let tx = if v >= 0.0 {
            zero + len + 3.0
        } else {
            zero - len - 3.0
        };
        let anchor = if v >= 0.0 { "start" } else { "end" };
        let _ = write!(
            s,
            r#"<text x="{tx:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}">{v:.3}</text>"#,
            y0 + 11.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Renders the model report. The page is self-contained: inline CSS and SVG only.
pub fn report_html(model: &Model, v: &Validation) -> String {
    let mut h = String::new();
    let t = &model.training;
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>模型报告 Model report – {}</title><style>
body{{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;margin:24px;color:#222;max-width:1200px}}
h1{{font-size:22px}}h2{{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}}h3{{font-size:15px;margin-bottom:4px}}
table{{border-collapse:collapse;margin:8px 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f3f5f8}}
td.l,th.l{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:16px}}.warn{{color:#a94442}}.muted{{color:#777;font-size:12px}}
</style></head><body>"#,
        esc(&model.name)
    );
    let _ = write!(
        h,
        "<h1>评分卡模型报告 Scorecard model report: {}</h1>",
        esc(&model.name)
    );
    let _ = write!(
        h,
        r#"<p>目标 target <b>{}</b>，事件 event = <b>{}</b>，非事件 non-event = <b>{}</b>；训练数据 training data: {} ({} rows, {} events, {:.2}%).</p>"#,
        esc(&t.target),
        esc(&t.event),
        esc(&t.non_event),
        esc(&t.source),
        t.rows,
        t.events,
        100.0 * t.events as f64 / t.rows.max(1) as f64
    );
    if !v.note.is_empty() {
        let _ = write!(h, r#"<p class="muted">{}</p>"#, esc(&v.note));
    }
    // Summary
    h.push_str("<h2>模型表现 Performance</h2><table><tr><th class=l>样本 sample</th><th>行数 rows</th><th>事件 events</th><th>AUC</th><th>KS</th><th>Gini</th><th>Brier</th><th>平均分 mean score</th></tr>");
    for s in &v.samples {
        let n = esc(&s.name);
        let _ = write!(
            h,
            r#"<tr><td class=l>{n}</td><td data-metric="rows" data-sample="{n}">{}</td><td data-metric="events" data-sample="{n}">{}</td><td data-metric="auc" data-sample="{n}">{}</td><td data-metric="ks" data-sample="{n}">{}</td><td data-metric="gini" data-sample="{n}">{}</td><td>{}</td><td>{:.1}</td></tr>"#,
            s.rows,
            s.events,
            f4(s.auc),
            f4(s.ks),
            f4(s.gini),
            f4(s.brier),
            s.mean_score
        );
    }
    h.push_str("</table>");
    if let Some(p) = &v.psi {
        let (a, b) = (
            v.samples.first().map(|s| s.name.as_str()).unwrap_or(""),
            v.samples.get(1).map(|s| s.name.as_str()).unwrap_or(""),
        );
        let verdict = if p.psi < 0.1 {
            "稳定 stable (< 0.1)"
        } else if p.psi < 0.25 {
            "轻微变化 some shift (0.1–0.25)"
        } else {
            "显著变化 significant shift (≥ 0.25)"
        };
        let _ = write!(
            h,
            r#"<p>评分稳定性 PSI of the total score, {} vs {}: <b data-metric="psi">{}</b> — {}</p>"#,
            esc(b),
            esc(a),
            f4(p.psi),
            verdict
        );
        h.push_str("<table><tr><th>下界 lower</th><th>上界 upper</th><th>期望 expected %</th><th>实际 actual %</th><th>贡献 contribution</th></tr>");
        for bin in &p.bins {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.4}</td></tr>",
                bin.lower
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or("-inf".into()),
                bin.upper
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or("+inf".into()),
                bin.expected_share * 100.0,
                bin.actual_share * 100.0,
                bin.contribution
            );
        }
        h.push_str("</table>");
    }
    // Charts
    h.push_str(r#"<h2>ROC 与 KS 曲线 ROC and KS curves</h2><div class="charts">"#);
    let roc: Vec<(String, Vec<(f64, f64)>)> = v
        .samples
        .iter()
        .map(|s| (format!("{} AUC {:.3}", s.name, s.auc), s.roc.clone()))
        .collect();
    h.push_str(&line_chart(
        "ROC 曲线 ROC curve",
        "假正率 false positive rate",
        "真正率 true positive rate",
        &roc,
        true,
    ));
    for s in &v.samples {
        let series = vec![
            (
                "累计坏 cum. events".to_string(),
                s.ks_curve
                    .iter()
                    .map(|p| (p.population_share, p.cum_event_share))
                    .collect(),
            ),
            (
                "累计好 cum. non-events".to_string(),
                s.ks_curve
                    .iter()
                    .map(|p| (p.population_share, p.cum_non_event_share))
                    .collect(),
            ),
            (
                format!("KS {:.3}", s.ks),
                s.ks_curve
                    .iter()
                    .map(|p| {
                        (
                            p.population_share,
                            p.cum_event_share - p.cum_non_event_share,
                        )
                    })
                    .collect(),
            ),
        ];
        h.push_str(&line_chart(
            &format!("KS 曲线 KS curve – {}", s.name),
            "人群占比 population share (riskiest first)",
            "累计占比 cumulative share",
            &series,
            false,
        ));
    }
    h.push_str("</div><h2>分数分布 Score distribution (好 vs 坏 non-events vs events)</h2><div class=\"charts\">");
    for s in &v.samples {
        h.push_str(&histogram_chart(
            &format!("分数分布 score distribution – {}", s.name),
            s,
        ));
    }
    h.push_str("</div>");
    // Gains
    for s in &v.samples {
        let _ = write!(h, "<h3>分组提升表 Gains / lift by decile – {}</h3><table><tr><th>组 decile</th><th>行数 rows</th><th>事件 events</th><th>事件率 event rate</th><th>累计坏占比 cum. events %</th><th>累计好占比 cum. non-events %</th><th>提升 lift</th><th>累计提升 cum. lift</th><th>KS</th><th>P(event) range</th></tr>", esc(&s.name));
        for g in &s.gains {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{:.3}–{:.3}</td></tr>",
                g.group, g.rows, g.events, g.event_rate * 100.0, g.cum_event_share * 100.0, g.cum_non_event_share * 100.0, g.lift, g.cum_lift, g.ks, g.min_risk, g.max_risk
            );
        }
        h.push_str("</table>");
        let _ = write!(h, "<h3>校准 Calibration – {}</h3><table><tr><th>组 group</th><th>行数 rows</th><th>平均预测 mean predicted</th><th>实际事件率 observed rate</th></tr>", esc(&s.name));
        for c in &s.calibration {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                c.group, c.rows, c.mean_predicted, c.observed_rate
            );
        }
        h.push_str("</table>");
    }
    // Model
    let sc = &model.scaling;
    let _ = write!(
        h,
        r#"<h2>评分卡 Scorecard</h2><p>分数 score = offset − factor·ln(odds of event) ；基础分 base score {} at odds {}:1 (non-event : event), PDO {}；factor = {:.4}，offset = {:.4}，截距 intercept {:.4} (SE {:.4})，基础分点 base points <b>{}</b>{}.</p>"#,
        sc.base_score,
        sc.base_odds,
        sc.pdo,
        sc.factor,
        sc.offset,
        model.intercept,
        model.intercept_std_error,
        sc.base_points,
        if sc.rounded {
            "（取整 rounded）"
        } else {
            ""
        }
    );
    h.push_str("<table><tr><th class=l>变量 variable</th><th>IV</th><th>系数 coefficient</th><th>标准误 SE</th><th>p 值 p-value</th><th class=l>分箱方法 binning</th></tr>");
    for mv in &model.variables {
        let wrong = if mv.coefficient < 0.0 {
            " class=warn"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{:.4}</td><td{wrong}>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td class=l>{}</td></tr>",
            esc(&mv.binning.name),
            mv.binning.iv,
            mv.coefficient,
            mv.std_error,
            mv.p_value,
            esc(&mv.binning.method)
        );
    }
    h.push_str("</table>");
    if !model.warnings.is_empty() {
        h.push_str("<h3 class=warn>警告 Warnings</h3><ul>");
        for w in &model.warnings {
            let _ = write!(h, "<li class=warn>{}</li>", esc(w));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>变量分箱 Bins, WoE and points per variable</h2><p class=muted>WoE = ln(事件占比 event% / 非事件占比 non-event%)，正值表示风险高于平均 (positive = riskier than average)；分值 points = −factor·coefficient·WoE.</p>");
    for mv in &model.variables {
        let b = &mv.binning;
        let _ = write!(
            h,
            "<h3>{} <span class=muted>IV {:.4}</span></h3>",
            esc(&b.name),
            b.iv
        );
        if let Some(m) = &b.manual {
            let _ = write!(
                h,
                "<p class=muted>人工调整 manual bins by {} on {}: {}</p>",
                esc(&m.who),
                esc(&m.when),
                esc(&m.why)
            );
        }
        h.push_str(r#"<div class="charts"><table><tr><th class=l>分箱 bin</th><th>行数 rows</th><th>事件 events</th><th>事件率 rate</th><th>WoE</th><th>IV</th><th>分值 points</th></tr>"#);
        let mut labels = Vec::new();
        let mut woes = Vec::new();
        for (bin, p) in b.bins.iter().zip(&mv.points) {
            if bin.count == 0 && matches!(bin.rule, BinRule::Missing) {
                // keep empty missing bins in the table (they score 0) but not in the chart
            } else {
                labels.push(bin.label.clone());
                woes.push(bin.woe);
            }
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
                esc(&bin.label),
                bin.count,
                bin.events,
                bin.event_rate * 100.0,
                bin.woe,
                bin.iv,
                p
            );
        }
        h.push_str("</table>");
        h.push_str(&woe_chart(&b.name, &labels, &woes));
        h.push_str("</div>");
    }
    h.push_str("<h2>候选变量 Candidate variables</h2><table><tr><th class=l>变量 variable</th><th class=l>类型 kind</th><th>IV</th><th>分箱数 bins</th><th>缺失率 missing</th><th class=l>结果 status</th></tr>");
    for c in &model.candidates {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td class=l>{}</td></tr>",
            esc(&c.name),
            c.kind.map(|k| format!("{k:?}").to_lowercase()).unwrap_or_default(),
            c.iv.map(f4).unwrap_or_default(),
            c.bins,
            c.missing_share * 100.0,
            esc(&c.status)
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        r#"<p class=muted>kehu-scorecard {} · model format {} v{}</p></body></html>"#,
        env!("CARGO_PKG_VERSION"),
        model.format,
        model.format_version
    );
    h
}
