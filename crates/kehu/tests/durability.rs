//! An acknowledged event survives `kill -9` of the server a moment later: the restarted
//! server replays it into the behaviour state, and `kehu features rebuild` agrees.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

fn kehu(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kehu"));
    c.arg("--data-dir").arg(dir).env_remove("KEHU_DATABASE_URL").env("KEHU_LOG", "warn");
    c
}

/// Starts `kehu serve` on a free port; returns the child and its address.
fn serve(dir: &std::path::Path) -> (Child, String) {
    let mut child = kehu(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start kehu serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("kehu serve printed its address").unwrap();
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// A minimal HTTP/1.1 client: status and body.
fn http(addr: &str, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
    for attempt in 0..100 {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            std::thread::sleep(std::time::Duration::from_millis(50 + attempt));
            continue;
        };
        let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
        return (status, body);
    }
    panic!("kehu did not answer on {addr}");
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("kehu-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = kehu(&dir).args(["demo", "--customers", "20", "--seed", "5", "--events", "0"]).status().unwrap();
    assert!(st.success());
    let out = kehu(&dir).args(["app-key", "create", "durable-test"]).output().unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("kehu_"), "{key}");
    let out = kehu(&dir).args(["api-token", "create", "durable-api"]).output().unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("kehu_api_"), "{token}");
    let out = kehu(&dir).args(["api-token", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("durable-api\t"));
    let api = Some(token.as_str());

    let (mut child, addr) = serve(&dir);
    let (status, _) = http(&addr, "GET", "/api/v1/products", None, "");
    assert_eq!(status, 401, "the API needs the token");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (_, products) = http(&addr, "GET", "/api/v1/products", api, "");
    let products: serde_json::Value = serde_json::from_str(&products).unwrap();
    let code = products[0]["code"].as_str().unwrap().to_string();
    let events: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"id": format!("k{i}"), "type": "product_view", "ts": now - 1000 * i,
            "customer": "C000000003", "product": code, "dwell_ms": 1000}))
        .collect();
    let (status, body) = http(&addr, "POST", "/api/v1/events", Some(&key), &serde_json::Value::Array(events).to_string());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":100"), "{body}");
    // kill -9 right after the acknowledgement: no graceful shutdown, no snapshot.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, addr) = serve(&dir);
    let (status, body) = http(&addr, "GET", "/api/v1/customers/C000000003/behaviour", api, "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["products"][0]["views"], 100, "{v}");
    assert_eq!(v["state"]["products"][0]["dwell_ms"], 100_000);
    child.kill().unwrap();
    child.wait().unwrap();

    let out = kehu(&dir).args(["features", "rebuild"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("from 100 events") && err.contains("1 customer × product pairs"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
