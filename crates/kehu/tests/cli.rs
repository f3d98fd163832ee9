//! The `kehu` binary as an operator uses it.

use std::process::Command;

fn kehu(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEHU_DATABASE_URL")
        .output()
        .expect("run kehu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_import_export_and_errors_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("kehu-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let (code, err) = kehu(&dir, &["demo", "--customers", "50", "--seed", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("customers: 50"), "{err}");

    // Demo files re-import cleanly (idempotent upsert).
    let files = dir.join("files");
    let (code, err) = kehu(
        &dir,
        &[
            "demo",
            "--customers",
            "50",
            "--seed",
            "3",
            "--csv-dir",
            files.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    for kind in ["staff", "products", "customers", "holdings", "transactions"] {
        let f = files.join(format!("{kind}.csv"));
        let (code, err) = kehu(&dir, &["import", kind, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{kind}: {err}");
        assert!(err.contains("0 rejected"), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args(["--data-dir", dir.to_str().unwrap(), "export", "customers"])
        .output()
        .unwrap();
    let exported = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        exported,
        std::fs::read_to_string(files.join("customers.csv")).unwrap(),
        "export gives back the import"
    );

    // A bad row: exit 1, the error names file, line, column and value, nothing changes.
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "external_id,name,birth_date\nC000000001,改名,2023-13-01\n",
    )
    .unwrap();
    let (code, err) = kehu(&dir, &["import", "customers", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.csv:2: column birth_date, value \"2023-13-01\": expected a date"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");

    // An unreachable PostgreSQL is named, password hidden: exit 2.
    let (code, err) = kehu(
        &dir,
        &[
            "--database-url",
            "postgres://kehu:pw@127.0.0.1:9/kehu",
            "export",
            "staff",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("postgres://kehu:***@127.0.0.1:9/kehu") && !err.contains(":pw@"),
        "{err}"
    );

    let (code, err) = kehu(&dir, &["import", "accounts", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown kind \"accounts\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn model_train_score_and_psi_on_german_credit() {
    let shared = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())).join("../../../shared/datasets");
    let data = std::fs::read_to_string(shared.join("germancredit.csv")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared datasets sit beside the repository)",
            shared.display()
        )
    });
    let split = std::fs::read_to_string(shared.join("germancredit_split.csv")).unwrap();
    let dir = std::env::temp_dir().join(format!("kehu-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Split by the fixed row ids, keeping CSV lines intact (fields may be quoted).
    let mut rdr = csv::Reader::from_reader(data.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let mut train = csv::Writer::from_path(dir.join("train.csv")).unwrap();
    let mut test = csv::Writer::from_path(dir.join("test.csv")).unwrap();
    train.write_record(&header).unwrap();
    test.write_record(&header).unwrap();
    for line in split.lines().skip(1) {
        let mut f = line.split(',');
        let id: usize = f.next().unwrap().parse().unwrap();
        let w = if f.next() == Some("train") {
            &mut train
        } else {
            &mut test
        };
        w.write_record(&rows[id]).unwrap();
    }
    drop((train, test));
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args(["--data-dir", &p("db")])
        .args([
            "model",
            "train",
            "--data",
            &p("train.csv"),
            "--target",
            "creditability",
            "--event",
            "bad",
        ])
        .args([
            "--out",
            &p("model.json"),
            "--test",
            &p("test.csv"),
            "--report",
            &p("report.html"),
        ])
        .args(["--register", "credit_grade", "--activate"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let auc: f64 = err.split("test: AUC ").nth(1).unwrap()[..6]
        .parse()
        .unwrap();
    assert!(
        auc >= 0.8103,
        "test AUC {auc} below the best Python tool's 0.8103\n{err}"
    );
    assert!(
        err.contains("registered credit_grade version 1 (active)"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args(["--data-dir", &p("db"), "model", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.starts_with("credit_grade") && list.contains("v1") && list.contains("active"),
        "{list}"
    );
    assert!(
        list.contains(&format!("{:.4}", auc)[..5]),
        "metrics recorded: {list}"
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        report.contains("<svg") && !report.contains("<script"),
        "self-contained report with charts"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args([
            "model",
            "score",
            "--model",
            &p("model.json"),
            "--data",
            &p("test.csv"),
            "--out",
            &p("scores.csv"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores = std::fs::read_to_string(dir.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 301);
    assert!(scores.lines().next().unwrap().contains("score,p_event"));

    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args([
            "model",
            "psi",
            "--model",
            &p("model.json"),
            "--expected",
            &p("train.csv"),
            "--actual",
            &p("test.csv"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("PSI "), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args([
            "model",
            "train",
            "--data",
            &p("train.csv"),
            "--target",
            "nosuch",
            "--event",
            "bad",
            "--out",
            &p("m2.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    let _ = std::fs::remove_dir_all(&dir);
}
