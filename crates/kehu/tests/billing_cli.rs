//! `kehu billing …` as an operator uses it.

use std::process::Command;

fn kehu(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("kehu-billing-cli-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir")
        .arg(&dir)
        .args(args)
        .env_remove("KEHU_DATABASE_URL")
        .envs(env.iter().copied())
        .output()
        .expect("run kehu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn penalty(class: &str, amount: &str, due: &str, paid: &str) -> (i32, String, String) {
    kehu(
        &[
            "billing", "penalty", "--type", class, "--amount", amount, "--due", due, "--paid", paid,
        ],
        &[],
    )
}

#[test]
fn penalty_prints_the_worked_examples() {
    // A few rows of the table in docs/billing.md.
    for (class, amount, due, paid, expected) in [
        ("residential", "123.45", "2026-03-01", "2026-06-09", "12.35"),
        ("residential", "100", "2026-01-10", "2026-01-15", "1.00"),
        ("residential", "100", "2026-01-10", "2026-01-10", "0.00"),
        (
            "non-residential",
            "10,000.00",
            "2025-12-25",
            "2026-01-04",
            "240.00",
        ),
        (
            "non-residential",
            "1000",
            "2024-12-31",
            "2026-01-01",
            "1098.00",
        ),
        (
            "important",
            "88888.88",
            "2026-11-30",
            "2027-01-15",
            "9511.11",
        ),
    ] {
        let (code, out, err) = penalty(class, amount, due, paid);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), expected, "{class} {amount} {due} {paid}: {err}");
    }
}

#[test]
fn penalty_rates_come_from_configuration_and_flags() {
    // Residential at 2‰ by configuration: ¥100 × 10 days = ¥2.00.
    let args = [
        "billing",
        "penalty",
        "--type",
        "residential",
        "--amount",
        "100",
        "--due",
        "2026-01-10",
        "--paid",
        "2026-01-20",
    ];
    let (code, out, err) = kehu(&args, &[("KEHU_BILLING__PENALTY__RESIDENTIAL_PPM", "2000")]);
    assert_eq!((code, out.trim()), (0, "2.00"), "{err}");
    // A contract rate of 0.5‰ on a non-residential bill: ¥10,000 × 10 days = ¥50.00.
    let (code, out, err) = kehu(
        &[
            "billing",
            "penalty",
            "--type",
            "non-residential",
            "--amount",
            "10000",
            "--due",
            "2025-12-25",
            "--paid",
            "2026-01-04",
            "--rate-per-mille",
            "0.5",
        ],
        &[],
    );
    assert_eq!((code, out.trim()), (0, "50.00"), "{err}");
}

#[test]
fn penalty_refuses_bad_input_with_the_flag_and_value() {
    let (code, _, err) = penalty("farm", "100", "2026-01-10", "2026-01-20");
    assert_ne!(code, 0);
    assert!(err.contains("--type") && err.contains("farm"), "{err}");
    let (code, _, err) = penalty("residential", "12.345", "2026-01-10", "2026-01-20");
    assert_ne!(code, 0);
    assert!(err.contains("--amount") && err.contains("12.345"), "{err}");
    let (code, _, err) = penalty("residential", "100", "2026-13-10", "2026-01-20");
    assert_ne!(code, 0);
    assert!(err.contains("--due") && err.contains("2026-13-10"), "{err}");
    let (code, _, err) = penalty("residential", "-5", "2026-01-10", "2026-01-20");
    assert_ne!(code, 0);
    assert!(err.contains("negative"), "{err}");
}

fn kehu_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEHU_DATABASE_URL")
        .output()
        .expect("run kehu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_supplier_bills_imports_and_reports() {
    let dir = std::env::temp_dir().join(format!("kehu-billing-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let (code, _, err) = kehu_in(
        &dir,
        &["billing", "demo", "--accounts", "20", "--seed", "5"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("accounts: 20"), "{err}");
    // The last demo period (the month before this one, China time) again: nothing billed
    // twice.
    use chrono::Datelike;
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let last = today.with_day(1).unwrap().pred_opt().unwrap();
    let period = format!("{:04}-{:02}", last.year(), last.month());
    let (code, out, err) = kehu_in(
        &dir,
        &["billing", "run", "--period", &period, "--only-clean"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"bills\":0") && !out.contains("\"already_billed\":0"),
        "{out}"
    );
    let (code, _, err) = kehu_in(&dir, &["billing", "run", "--period", "2026-13"]);
    assert_ne!(code, 0);
    assert!(err.contains("--period") && err.contains("2026-13"), "{err}");

    let (code, out, err) = kehu_in(
        &dir,
        &[
            "billing",
            "ageing",
            "--by",
            "class",
            "--as-of",
            "2027-06-30",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("class\tbills"), "{out}");
    let (code, _, err) = kehu_in(&dir, &["billing", "worklist", "--as-of", "2027-06-30"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("need a dunning step"), "{err}");
    let (code, out, err) = kehu_in(&dir, &["billing", "rebills"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("read_id\tmeter\taccount\tread_on\tperiod\tkwh_billed\tkwh_right"), "{out}");
    assert!(err.contains(&format!("{} billed reads changed after billing", out.lines().count() - 1)), "{err}");
    let (code, out, err) = kehu_in(&dir, &["billing", "deposits", "--as-of", "2027-06-30"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("account\tclass\tgrade\taverage_bill\trequired\theld\tshortfall\n"), "{out}");
    // Each line asks for what the grade calls for less what is held.
    let lines: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert!(!lines.is_empty(), "the demo's late payers hold too little: {err}");
    for l in &lines {
        let yuan = |s: &str| -> f64 { s.parse().unwrap() };
        assert!((yuan(l[4]) - yuan(l[5]) - yuan(l[6])).abs() < 0.001, "{l:?}");
    }
    assert!(err.contains(&format!("{} accounts to ask for a deposit", lines.len())), "{err}");
    let (code, out, _) = kehu_in(&dir, &["billing", "review"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("read_id\tmeter"), "{out}");
    // Band registers come all three or not at all, and only with a correction.
    let resolve = |extra: &[&str]| {
        let mut args = vec!["billing", "resolve", "--read", "1", "--staff", "S1", "--reason", "现场复核"];
        args.extend_from_slice(extra);
        kehu_in(&dir, &args)
    };
    let (code, _, err) = resolve(&["--action", "correct", "--value", "5", "--peak", "1", "--valley", "2"]);
    assert_ne!(code, 0);
    assert!(err.contains("come together"), "{err}");
    let (code, _, err) = resolve(&["--action", "accept", "--peak", "1", "--flat", "1", "--valley", "2"]);
    assert_ne!(code, 0);
    assert!(err.contains("go with --action correct"), "{err}");

    // Reads: unknown meter, non-numeric value, out of order → nothing imported.
    let reads = dir.join("reads.csv");
    std::fs::write(
        &reads,
        // Read today: after the demo's last reads (the end of last month) whatever the date.
        format!("表号,抄表日期,示数\nDB00000001,{today},99999\nNOPE,{today},5\nDB00000002,{today},abc\nDB00000003,2026-01-01,5\n"),
    )
    .unwrap();
    let (code, _, err) = kehu_in(
        &dir,
        &["billing", "import", "reads", reads.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reads.csv:3: column meter, value \"NOPE\""),
        "{err}"
    );
    assert!(
        err.contains("reads.csv:4: column value, value \"abc\""),
        "{err}"
    );
    assert!(
        err.contains("reads.csv:5: column read_on") && err.contains("date order"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    // With --skip-invalid the good row goes in (and through the review checks).
    let (code, _, err) = kehu_in(
        &dir,
        &[
            "billing",
            "import",
            "reads",
            reads.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 loaded, 3 rejected"), "{err}");

    // Time-of-use registers: a non-numeric band, a negative one and a lone one are named
    // with line, column and value, and nothing of the file is imported.
    let tou = dir.join("tou.csv");
    std::fs::write(
        &tou,
        format!("meter,read_on,value,peak,flat,valley\nDB00000002,{today},99999,10,x,5\nDB00000003,{today},99999,-1,2,3\nDB00000004,{today},99999,7,,\n"),
    )
    .unwrap();
    let (code, _, err) = kehu_in(&dir, &["billing", "import", "reads", tou.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tou.csv:2: column flat, value \"x\""), "{err}");
    assert!(err.contains("tou.csv:3: column peak, value \"-1\""), "{err}");
    assert!(
        err.contains("tou.csv:4: column flat") && err.contains("tou.csv:4: column valley"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    // All three, under Chinese headers: loaded.
    std::fs::write(
        &tou,
        format!("表号,抄表日期,示数,峰,平,谷\nDB00000002,{today},99999,10,20,5\n"),
    )
    .unwrap();
    let (code, _, err) = kehu_in(&dir, &["billing", "import", "reads", tou.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 loaded, 0 rejected"), "{err}");

    // Payments: zero and negative amounts, unknown accounts.
    let pays = dir.join("payments.jsonl");
    std::fs::write(
        &pays,
        concat!(
            "{\"external_id\":\"X1\",\"account\":\"PA00000001\",\"amount\":\"0\",\"paid_on\":\"2026-11-20\"}\n",
            "{\"external_id\":\"X2\",\"account\":\"PA00000001\",\"amount\":\"-3\",\"paid_on\":\"2026-11-20\"}\n",
            "{\"external_id\":\"X3\",\"account\":\"NOBODY\",\"amount\":\"10\",\"paid_on\":\"2026-11-20\"}\n",
        ),
    )
    .unwrap();
    let (code, _, err) = kehu_in(
        &dir,
        &["billing", "import", "payments", pays.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("payments.jsonl:1: column amount, value \"0\""),
        "{err}"
    );
    assert!(
        err.contains("payments.jsonl:2: column amount, value \"-3\""),
        "{err}"
    );
    assert!(
        err.contains("payments.jsonl:3: column account, value \"NOBODY\""),
        "{err}"
    );
    std::fs::write(&pays, "{\"external_id\":\"X4\",\"account\":\"PA00000001\",\"amount\":\"12.34\",\"paid_on\":\"2026-11-20\"}\n").unwrap();
    let (code, _, err) = kehu_in(
        &dir,
        &["billing", "import", "payments", pays.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 loaded, 0 rejected"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
