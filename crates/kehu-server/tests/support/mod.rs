//! Shared by the web test suites: the real server on 127.0.0.1:0 with a small demo bank
//! and one login per role, and an HTTP client that keeps cookies like a browser.
#![allow(dead_code)]

use chrono::{FixedOffset, NaiveDate};
use kehu_ingest::demo::{self, DemoSpec};
use kehu_server::web::WebConfig;
use kehu_server::{AppState, ServerConfig};
use std::collections::BTreeMap;

/// The API token the test servers accept (stored by `allow_api`).
pub const API_TOKEN: &str = "kehu_test_api_token";

/// Registers `API_TOKEN` in the store, as `kehu api-token create` would a random one.
pub async fn allow_api(store: &kehu_store::Store) {
    store.ensure_api_token("tests", API_TOKEN).await.unwrap();
}

/// An HTTP client that sends `Authorization: Bearer API_TOKEN` unless a request sets its
/// own `Authorization` (an app key for events).
pub fn api_client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {API_TOKEN}").parse().unwrap(),
    );
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

/// The server settings the suites share: masking on, Beijing time, `spool` for uploads.
pub fn config(spool: std::path::PathBuf, recent_transactions: i64) -> ServerConfig {
    ServerConfig {
        mask_personal_data: true,
        recent_transactions,
        spool_dir: spool,
        import_max_errors: 100,
        offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        behaviour: Default::default(),
    }
}

/// A running server on 127.0.0.1:0: its base URL, the sender that stops it gracefully and
/// the task to wait for. It registers `API_TOKEN` first.
pub async fn serve(
    state: AppState,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    allow_api(&state.store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        kehu_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (base, tx, handle)
}

pub struct Server {
    pub base: String,
    pub spec: DemoSpec,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(store: kehu_store::Store, web: WebConfig) -> Server {
        let spec = DemoSpec::new(300, 7, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        demo::load(&store, &spec, None).await.unwrap();
        let staff = demo::staff(&spec);
        kehu_server::web::ensure_demo_logins(&store, &staff, kehu_server::web::DEMO_PASSWORD)
            .await
            .unwrap();
        let state = AppState::new(store, config(std::env::temp_dir().join("kehu-web-spool"), 10))
            .with_web(web);
        let (base, tx, handle) = serve(state).await;
        Server {
            base,
            spec,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }
}

pub fn demo_web() -> WebConfig {
    WebConfig {
        app_demo_login: true,
        max_failed_logins: 3,
        ..WebConfig::default()
    }
}

/// The demo login of a role (first staff member of that role in the demo bank).
pub fn login_of(role: &str) -> &'static str {
    match role {
        "admin" => "S0001",
        "customer_manager" => "S001M01",
        "marketer" => "S0011",
        "service_agent" => "S001A",
        "collector" => "S001C",
        "analyst" => "S0021",
        "branch_head" => "S001H",
        other => panic!("no demo login for {other}"),
    }
}

pub const ROLES: [&str; 7] = [
    "admin",
    "customer_manager",
    "marketer",
    "service_agent",
    "collector",
    "analyst",
    "branch_head",
];

/// A response, read.
pub struct Page {
    pub status: u16,
    pub csp: Option<String>,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// HTTP with a cookie jar and no automatic redirects.
pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let csp = r
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string());
        Page {
            status,
            csp,
            location,
            set_cookies,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(r).await
    }

    /// Logs in through the login form; returns the answer to the POST.
    pub async fn login(&mut self, staff_id: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = hidden(&form.body, "csrf");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("staff_id", staff_id),
                ("password", password),
            ],
        )
        .await
    }
}

/// The value of a hidden form field.
pub fn hidden(html: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&pat)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + pat.len();
    html[i..i + html[i..].find('"').unwrap()].to_string()
}
