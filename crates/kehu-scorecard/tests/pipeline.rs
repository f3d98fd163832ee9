//! End-to-end behaviour on small generated data: errors, overrides, scoring files.

use kehu_scorecard::{
    train, BinOverride, Column, Dataset, DegeneratePolicy, Error, Model, TrainConfig,
};

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

fn synthetic(n: usize) -> Dataset {
    let mut s = 1u64;
    let (mut a, mut b, mut c, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let x1 = lcg(&mut s) * 10.0;
        let x2 = if lcg(&mut s) < 0.1 {
            f64::NAN
        } else {
            lcg(&mut s)
        };
        let cat = ["A", "B", "C", "D"][(lcg(&mut s) * 4.0) as usize];
        let logit = -2.0
            + 0.3 * x1
            + if x2.is_nan() { 1.0 } else { -x2 }
            + if cat == "D" { 1.0 } else { 0.0 };
        y.push((lcg(&mut s) < 1.0 / (1.0 + (-logit).exp())) as u8);
        a.push(x1);
        b.push(x2);
        c.push(Some(cat));
    }
    Dataset::from_columns(
        "y",
        y,
        vec![
            Column::numeric("x1", a),
            Column::numeric("x2", b),
            Column::categorical("cat", &c),
        ],
    )
    .unwrap()
}

#[test]
fn trains_scores_and_round_trips() {
    let ds = synthetic(5000);
    let m = train(&ds, &TrainConfig::default(), &mut |_| {}).unwrap();
    assert_eq!(m.variables.len(), 3);
    for v in &m.variables {
        assert!(v.coefficient > 0.0, "{} {}", v.binning.name, v.coefficient);
        // points fall as WoE (risk) rises
        let mut pairs: Vec<(f64, f64)> = v
            .binning
            .bins
            .iter()
            .zip(&v.points)
            .filter(|(b, _)| b.count > 0)
            .map(|(b, p)| (b.woe, *p))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].1 >= w[1].1));
    }
    let x2 = &m
        .variables
        .iter()
        .find(|v| v.binning.name == "x2")
        .unwrap()
        .binning;
    let missing = x2
        .bins
        .iter()
        .find(|b| matches!(b.rule, kehu_scorecard::BinRule::Missing))
        .unwrap();
    assert!(
        missing.count > 300 && missing.woe > 0.0,
        "missing values carry risk here"
    );
    let back = Model::from_json(&m.to_json().unwrap()).unwrap();
    assert_eq!(back, m);
    // higher score = lower P(event)
    let s = m.score_dataset(&ds).unwrap();
    let mut idx: Vec<usize> = (0..ds.n_rows()).collect();
    idx.sort_by(|&a, &b| s.total[a].total_cmp(&s.total[b]));
    let low = &idx[..500];
    let high = &idx[idx.len() - 500..];
    let rate =
        |ix: &[usize]| ix.iter().map(|&i| ds.target[i] as f64).sum::<f64>() / ix.len() as f64;
    assert!(rate(low) > 2.0 * rate(high));
    // unknown format versions are refused
    let j = m
        .to_json()
        .unwrap()
        .replace("\"format_version\": 1", "\"format_version\": 99");
    assert!(Model::from_json(&j).is_err());
}

#[test]
fn manual_override_is_used_and_recorded() {
    let ds = synthetic(3000);
    let mut cfg = TrainConfig::default();
    cfg.overrides.push(BinOverride {
        variable: "x1".into(),
        cuts: Some(vec![2.5, 5.0, 7.5]),
        groups: None,
        who: "王分析师".into(),
        why: "policy bands".into(),
        when: "2026-12-01".into(),
    });
    cfg.overrides.push(BinOverride {
        variable: "cat".into(),
        cuts: None,
        groups: Some(vec![vec!["A".into(), "B".into()], vec!["D".into()]]),
        who: "王分析师".into(),
        why: "merge A/B".into(),
        when: "2026-12-01".into(),
    });
    let m = train(&ds, &cfg, &mut |_| {}).unwrap();
    let x1 = &m
        .variables
        .iter()
        .find(|v| v.binning.name == "x1")
        .unwrap()
        .binning;
    assert_eq!(x1.method, "manual");
    assert_eq!(x1.manual.as_ref().unwrap().who, "王分析师");
    let ranges: Vec<String> = x1.bins.iter().map(|b| b.label.clone()).collect();
    assert_eq!(
        &ranges[..4],
        &["[-inf, 2.5)", "[2.5, 5)", "[5, 7.5)", "[7.5, +inf)"]
    );
    let cat = &m
        .variables
        .iter()
        .find(|v| v.binning.name == "cat")
        .unwrap()
        .binning;
    assert_eq!(cat.bin_of_level(Some("A")), cat.bin_of_level(Some("B")));
    assert_ne!(cat.bin_of_level(Some("C")), cat.bin_of_level(Some("D")));
    assert!(
        cat.bin_of_level(Some("C")).is_some(),
        "unlisted levels form their own group"
    );
    let html = kehu_scorecard::report_html(
        &m,
        &kehu_scorecard::validate(&m, &[("train", &ds)]).unwrap(),
    );
    assert!(html.contains("王分析师"));
}

#[test]
fn bad_data_gives_clear_errors() {
    let ds = synthetic(400);
    let mut few = ds.clone();
    few.target = vec![0; 400];
    few.target[0] = 1;
    match train(&few, &TrainConfig::default(), &mut |_| {}) {
        Err(Error::TooFewEvents {
            found: 1,
            required: 20,
            ..
        }) => {}
        other => panic!("expected TooFewEvents, got {other:?}"),
    }
    let mut single = ds.clone();
    single
        .columns
        .push(Column::numeric("const", vec![3.0; 400]));
    single
        .columns
        .push(Column::numeric("empty", vec![f64::NAN; 400]));
    match train(&single, &TrainConfig::default(), &mut |_| {}) {
        Err(Error::SingleValuedColumn { column, .. }) => assert_eq!(column, "const"),
        other => panic!("expected SingleValuedColumn, got {other:?}"),
    }
    single.columns.remove(3);
    match train(&single, &TrainConfig::default(), &mut |_| {}) {
        Err(e @ Error::AllMissingColumn { .. }) => assert!(e.to_string().contains("empty")),
        other => panic!("expected AllMissingColumn, got {other:?}"),
    }
    single
        .columns
        .push(Column::numeric("const", vec![3.0; 400]));
    let cfg = TrainConfig {
        degenerate_columns: DegeneratePolicy::Drop,
        ..Default::default()
    };
    let m = train(&single, &cfg, &mut |_| {}).unwrap();
    assert!(m
        .candidates
        .iter()
        .any(|c| c.name == "empty" && c.status.contains("missing")));
    assert!(m
        .candidates
        .iter()
        .any(|c| c.name == "const" && c.status.contains("single")));
    let cfg = TrainConfig {
        exclude: vec!["nope".into()],
        ..Default::default()
    };
    assert!(matches!(
        train(&ds, &cfg, &mut |_| {}),
        Err(Error::MissingColumn { .. })
    ));
}

#[test]
fn score_csv_appends_columns_and_flags_text() {
    let ds = synthetic(2000);
    let m = train(&ds, &TrainConfig::default(), &mut |_| {}).unwrap();
    let dir = std::env::temp_dir().join(format!("kehu-scorecard-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    std::fs::write(&input, "id,x1,x2,cat\n1,1.5,0.2,A\n2,9.0,,D\n3,5,0.5,Z\n").unwrap();
    let out = dir.join("out.csv");
    let totals = m.score_csv(&input, &out, &mut |_| {}).unwrap();
    assert_eq!(totals.len(), 3);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,x1,x2,cat,score,p_event,points_x1,points_x2,points_cat"
    );
    let row2: Vec<&str> = lines.nth(1).unwrap().split(',').collect();
    assert_eq!(row2[0], "2");
    let pts: f64 = row2[6..].iter().map(|s| s.parse::<f64>().unwrap()).sum();
    assert_eq!(pts + m.scaling.base_points, row2[4].parse::<f64>().unwrap());
    assert!(
        totals[0] > totals[1],
        "row 2 is riskier (high x1, missing x2, cat D)"
    );
    std::fs::write(&input, "id,x1,x2,cat\n1,abc,0.2,A\n").unwrap();
    match m.score_csv(&input, &out, &mut |_| {}) {
        Err(Error::TextInNumeric {
            line: 2,
            column,
            value,
            ..
        }) => {
            assert_eq!(column, "x1");
            assert_eq!(value, "abc");
        }
        other => panic!("expected TextInNumeric, got {other:?}"),
    }
    std::fs::write(&input, "id,x2,cat\n1,0.2,A\n").unwrap();
    assert!(matches!(
        m.score_csv(&input, &out, &mut |_| {}),
        Err(Error::MissingColumn { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn numeric_scorer_matches_row_scoring() {
    let mut s = 9u64;
    let n = 4000;
    let x: Vec<f64> = (0..n)
        .map(|_| {
            if lcg(&mut s) < 0.05 {
                f64::NAN
            } else {
                lcg(&mut s) * 100.0
            }
        })
        .collect();
    let z: Vec<f64> = (0..n)
        .map(|_| {
            if lcg(&mut s) < 0.05 {
                -1.0
            } else {
                lcg(&mut s)
            }
        })
        .collect();
    let y: Vec<u8> = (0..n)
        .map(|i| {
            (lcg(&mut s)
                < if x[i].is_nan() { 0.5 } else { x[i] / 200.0 }
                    + if z[i] < 0.0 { 0.3 } else { 0.0 }) as u8
        })
        .collect();
    let ds = Dataset::from_columns(
        "y",
        y,
        vec![
            Column::numeric("x", x.clone()),
            Column::numeric("z", z.clone()),
        ],
    )
    .unwrap();
    let mut cfg = TrainConfig::default();
    cfg.binning.special_values = vec![-1.0];
    cfg.selection.min_iv = 0.0;
    let m = train(&ds, &cfg, &mut |_| {}).unwrap();
    let sc = m.numeric_scorer().unwrap();
    let names = m.variable_names();
    let cols: Vec<&[f64]> = names
        .iter()
        .map(|n| {
            if *n == "x" {
                x.as_slice()
            } else {
                z.as_slice()
            }
        })
        .collect();
    let mut out = vec![0.0; n];
    sc.score_columns(&cols, &mut out);
    let full = m.score_dataset(&ds).unwrap();
    assert_eq!(out, full.total);
    let zb = &m
        .variables
        .iter()
        .find(|v| v.binning.name == "z")
        .unwrap()
        .binning;
    assert!(zb.bins.iter().any(
        |b| matches!(b.rule, kehu_scorecard::BinRule::Special { value } if value == -1.0)
            && b.count > 100
    ));
}
