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
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
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
    let (code, err) = kehu(&dir, &["demo", "--customers", "50", "--seed", "3", "--csv-dir", files.to_str().unwrap()]);
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
    assert_eq!(exported, std::fs::read_to_string(files.join("customers.csv")).unwrap(), "export gives back the import");

    // A bad row: exit 1, the error names file, line, column and value, nothing changes.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "external_id,name,birth_date\nC000000001,改名,2023-13-01\n").unwrap();
    let (code, err) = kehu(&dir, &["import", "customers", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.csv:2: column birth_date, value \"2023-13-01\": expected a date"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");

    // An unreachable PostgreSQL is named, password hidden: exit 2.
    let (code, err) = kehu(&dir, &["--database-url", "postgres://kehu:pw@127.0.0.1:9/kehu", "export", "staff"]);
    assert_eq!(code, 2);
    assert!(err.contains("postgres://kehu:***@127.0.0.1:9/kehu") && !err.contains(":pw@"), "{err}");

    let (code, err) = kehu(&dir, &["import", "accounts", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown kind \"accounts\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
