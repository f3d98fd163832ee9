//! `kehu staff add` and the demo logins, as an operator uses them; the login itself is
//! checked against the real server (`serve` on port 0 is not needed: the store answers).

use std::io::Write;
use std::process::{Command, Stdio};

fn kehu(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEHU_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kehu");
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn staff_logins_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("kehu-staff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // The demo prints one login per role and the password.
    let (code, err) = kehu(&dir, &["demo", "--customers", "40", "--seed", "5"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("password for all: kehu-demo"), "{err}");
    for id in [
        "S0001", "S001M01", "S0011", "S001A", "S001C", "S0021", "S001H",
    ] {
        assert!(err.contains(id), "{id} in {err}");
    }

    // A new staff member with a password from standard input.
    let (code, err) = kehu(
        &dir,
        &[
            "staff",
            "add",
            "--id",
            "S900",
            "--name",
            "林晓",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("S900"), "{err}");
    // From a file, with the Chinese role label; replacing the password.
    let pw = dir.join("pw.txt");
    std::fs::write(&pw, "another long one\n").unwrap();
    let (code, err) = kehu(
        &dir,
        &[
            "staff",
            "add",
            "--id",
            "S900",
            "--name",
            "林晓",
            "--role",
            "分析师",
            "--branch",
            "B001",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");

    // Refusals say what to do.
    let (code, err) = kehu(
        &dir,
        &[
            "staff",
            "add",
            "--id",
            "S901",
            "--name",
            "x",
            "--role",
            "boss",
            "--password-stdin",
        ],
        Some("long enough pw\n"),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--role \"boss\": expected one of admin|customer_manager"),
        "{err}"
    );
    let (code, err) = kehu(
        &dir,
        &[
            "staff",
            "add",
            "--id",
            "S901",
            "--name",
            "x",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("at least 8 characters"), "{err}");
    let (code, err) = kehu(
        &dir,
        &[
            "staff", "add", "--id", "S901", "--name", "x", "--role", "admin",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--password-file FILE or --password-stdin"),
        "{err}"
    );

    // The stored hash is argon2id and verifies the last password only.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = kehu_store::Store::open(
            &kehu_store::Store::sqlite_url_for_dir(&dir),
            &Default::default(),
        )
        .await
        .unwrap();
        let login = store.staff_login("S900").await.unwrap().unwrap();
        assert_eq!(login.staff.branch.as_deref(), Some("B001"));
        assert!(login.password_hash.starts_with("$argon2id$"));
        assert!(kehu_server::web::auth::verify_password(
            "another long one",
            &login.password_hash
        ));
        assert!(!kehu_server::web::auth::verify_password(
            "correct horse battery",
            &login.password_hash
        ));
        store.close().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
