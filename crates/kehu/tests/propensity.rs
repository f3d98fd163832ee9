//! A purchase-propensity model trained from the behaviour state with a time-based split,
//! registered, and used by the recommendations instead of the default weights.

use std::process::Command;

fn kehu(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEHU_DATABASE_URL")
        .output()
        .expect("run kehu");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn propensity_trained_on_behaviour_replaces_the_default_weights() {
    let dir = std::env::temp_dir().join(format!("kehu-propensity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, err) = kehu(&dir, &["demo", "--customers", "3000", "--seed", "8", "--events", "40"]);
    assert!(ok, "{err}");
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    let train_day = (today - chrono::Days::new(60)).to_string();
    let test_day = (today - chrono::Days::new(30)).to_string();
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    let (ok, err) = kehu(&dir, &["features", "export", "--as-of", &train_day, "--horizon-days", "30", "--out", train.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("bought within 30 days"), "{err}");
    let (ok, err) = kehu(&dir, &["features", "export", "--as-of", &test_day, "--horizon-days", "30", "--out", test.to_str().unwrap()]);
    assert!(ok, "{err}");
    // The sample: the feature columns, and events only from purchases after the date.
    let text = std::fs::read_to_string(&train).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(header, "customer_id,product,interest,views_7d,views,active_days,dwell_min,depth,same_kind_held,ability,age,income,bought");
    let bought = text.lines().skip(1).filter(|l| l.ends_with(",1")).count();
    assert!(bought >= 20, "{bought} purchases in the training window");

    let model = dir.join("propensity.json");
    let conf = dir.join("propensity.toml");
    std::fs::write(&conf, "exclude = [\"customer_id\", \"product\"]\n").unwrap();
    let (ok, err) = kehu(&dir, &[
        "model", "train", "--data", train.to_str().unwrap(), "--test", test.to_str().unwrap(),
        "--config", conf.to_str().unwrap(),
        "--target", "bought", "--event", "1", "--out", model.to_str().unwrap(),
        "--register", "propensity", "--activate", "--description", "features as of the train day, bought within 30 days",
    ]);
    assert!(ok, "{err}");
    // Behaviour predicts purchases out of time: the viewed product is the one bought.
    let auc: f64 = err
        .lines()
        .filter(|l| l.contains("test") && l.contains("AUC"))
        .find_map(|l| l.split("AUC").nth(1)?.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|s| !s.is_empty())?.parse().ok())
        .unwrap_or_else(|| panic!("no test AUC in: {err}"));
    assert!(auc > 0.6, "out-of-time AUC {auc}: {err}");

    // The server uses it.
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir").arg(&dir)
        .args(["api-token", "create", "propensity-test"])
        .env_remove("KEHU_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("--data-dir").arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("KEHU_DATABASE_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, Read, Write};
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(rest) = l.split("serving on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /api/v1/customers/C000000010/recommendations?n=3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(body.contains("\"model\":\"propensity v1\""), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
