//! The workbench and the app pages in a real, headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `.ci/chromium.sh` installs them). The
//! WebDriver protocol is plain HTTP + JSON, spoken here with reqwest.
//!
//! Without Chromium this test FAILS with a message saying what to install: a browser
//! test that silently skips would pass while proving nothing.
//!
//! Screenshots of the main pages are saved under `<target dir>/screenshots/`.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{login_of, Server, ROLES};

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ]) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free port, ended when dropped.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    /// Ends chromedriver and the browsers it started (its process group), also when a
    /// failed assertion skipped closing the session.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        use std::os::unix::process::CommandExt;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.url)).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        break;
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d
    }
}

/// One browser session.
struct Session<'a> {
    d: &'a Driver,
    id: String,
    shots: PathBuf,
}

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl<'a> Session<'a> {
    async fn new(d: &'a Driver, chromium: &Path, profile: &Path, shots: PathBuf) -> Session<'a> {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--lang=zh-CN", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v: Value = d
            .http
            .post(format!("{}/session", d.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_string();
        Session { d, id, shots }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.d.url, self.id);
        let mut r = self.d.http.request(method, url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array()
            .unwrap_or_else(|| panic!("elements {css}: {v}"))
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("element {e}"))
                    .to_string()
            })
            .collect()
    }

    /// The first element matching `css`, waiting for it (up to 15 s) while a page loads.
    async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            if started.elapsed() > Duration::from_secs(15) {
                let src = self.cmd(reqwest::Method::GET, "/source", None).await;
                panic!(
                    "no element {css} on {}:\n{}",
                    self.url().await,
                    src.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits (up to 15 s) until the element's text is `want`: for a page that reloads at
    /// the same address.
    async fn wait_text(&self, css: &str, want: &str) {
        let started = Instant::now();
        loop {
            let mut got = None;
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                let url = format!("{}/session/{}/element/{e}/text", self.d.url, self.id);
                // The element may go away while the page reloads: just look again.
                if let Ok(r) = self.d.http.get(url).send().await {
                    if let Ok(v) = r.json::<Value>().await {
                        got = v["value"].as_str().map(str::to_string);
                    }
                }
            }
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{css}: {got:?}, waiting for {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn attr(&self, e: &str, name: &str) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{e}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    async fn window(&self, w: u32, h: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": w, "height": h })),
        )
        .await;
    }

    /// Waits until the page at `path` (no query) has loaded.
    async fn wait_path(&self, path: &str) {
        let started = Instant::now();
        loop {
            let u = self.url().await;
            let p = u
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            if p.split('?').next() == Some(path)
                && self.script("return document.readyState").await == json!("complete")
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "still at {u}, waiting for {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the address holds `part` (a search's query: the page before the search
    /// had the same path) and the page has loaded.
    async fn wait_url_contains(&self, part: &str) {
        let started = Instant::now();
        loop {
            let u = self.url().await;
            if u.contains(part) && self.script("return document.readyState").await == json!("complete") {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "still at {u}, waiting for {part}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(&self.shots).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    async fn quit(self) {
        let _ = self
            .d
            .http
            .delete(format!("{}/session/{}", self.d.url, self.id))
            .send()
            .await;
    }

    async fn login(&self, base: &str, staff_id: &str, password: &str) {
        self.go(&format!("{base}/login")).await;
        self.type_into("#staff_id", staff_id).await;
        self.type_into("#password", password).await;
        self.click("#login-submit").await;
    }

    async fn logout(&self) {
        self.click("#logout").await;
        self.wait_path("/login").await;
    }
}

#[tokio::test]
async fn workbench_and_app_in_chromium() {
    let chromium = find_binary(
        "KEHU_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_binary("KEHU_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, driver) else {
        panic!(
            "the browser tests need Chromium and chromedriver: install them with \
             `bash .ci/chromium.sh` (Debian: apt-get install chromium chromium-driver), \
             or point KEHU_CHROMIUM and KEHU_CHROMEDRIVER at them"
        );
    };
    let t = kehu_store::testing::sqlite().await;
    // A small power supplier for the collector's pages (loaded before the server starts:
    // the loader's transactions read before they write).
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    kehu_ingest::demo_power::load(
        &t.store,
        &kehu_ingest::demo_power::PowerSpec::new(120, 11, today),
        &kehu_domain::billing::BillingRules::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let server = Server::start(t.store.clone(), support::demo_web()).await;
    let base = server.base.clone();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let shots = target.join("screenshots");
    let profile = std::env::temp_dir().join(format!("kehu-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let d = Driver::start(&chromedriver).await;
    let s = Session::new(&d, &chromium, &profile, shots.clone()).await;

    // Each role logs in through the form and sees exactly its navigation.
    for role in ROLES {
        s.login(&base, login_of(role), "kehu-demo").await;
        s.wait_path("/").await;
        s.find("#stat-customers").await;
        let mut shown = Vec::new();
        for e in s.find_all("#nav [data-nav]").await {
            shown.push(s.attr(&e, "data-nav").await);
        }
        let expected: Vec<String> =
            kehu_server::web::nav::for_role(kehu_domain::state::Role::parse(role).unwrap())
                .map(|n| n.key.to_string())
                .collect();
        assert_eq!(shown, expected, "navigation of {role}");
        // The session cookie is out of reach of page scripts.
        let cookies = s.script("return document.cookie").await;
        assert!(
            !cookies.as_str().unwrap_or("").contains("kehu_session"),
            "{cookies}"
        );
        if role == "customer_manager" {
            assert_eq!(s.text("#scope").await, "我管户的客户");
            s.screenshot("workbench-home").await;
        }
        s.logout().await;
    }

    // A wrong password is refused on the page, in Chinese.
    s.login(&base, "S0001", "wrong-password").await;
    assert_eq!(s.text("#login-message").await, "员工号或密码不正确。");
    // A form whose CSRF token was tampered with is refused.
    s.go(&format!("{base}/login")).await;
    s.script("document.querySelector('input[name=csrf]').value = 'forged'; return 1")
        .await;
    s.type_into("#staff_id", "S0001").await;
    s.type_into("#password", "kehu-demo").await;
    s.click("#login-submit").await;
    assert_eq!(s.text("#error-title").await, "表单已失效");

    // The customer manager searches a customer of their book and opens the 360 page.
    let book = t
        .store
        .search_customers(&kehu_store::CustomerQuery {
            manager_id: Some("S001M01".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let target_customer = book
        .iter()
        .find(|r| r.customer.phone.is_some())
        .unwrap()
        .customer
        .clone();
    s.login(&base, "S001M01", "kehu-demo").await;
    s.wait_path("/").await;
    s.click("a[data-nav='nav.customers']").await;
    s.wait_path("/customers").await;
    let phone = target_customer.phone.clone().unwrap();
    let last4 = &phone[phone.len() - 4..];
    s.type_into("#q", last4).await;
    s.click("#search-submit").await;
    // The list before the search was at the same path: wait for the search's own page.
    s.wait_url_contains(&format!("q={last4}")).await;
    let links = s.find_all(".customer-link").await;
    let mut opened = false;
    for e in links {
        let href = s.attr(&e, "href").await;
        if href.ends_with(&target_customer.external_id) {
            s.cmd(
                reqwest::Method::POST,
                &format!("/element/{e}/click"),
                Some(json!({})),
            )
            .await;
            opened = true;
            break;
        }
    }
    assert!(opened, "the phone-suffix search lists the customer");
    s.wait_path(&format!("/customers/{}", target_customer.external_id))
        .await;
    assert!(s
        .text("#customer-name")
        .await
        .starts_with(&target_customer.name));
    s.find("#chart-flows svg title").await;
    assert!(
        s.text("#profile").await.contains(&phone),
        "own customer: phone in full"
    );
    // The whole page: a tall window for the shot.
    s.window(1280, 2400).await;
    s.screenshot("customer-360").await;
    s.window(1280, 900).await;

    // Switching language.
    s.click("#switch-lang").await;
    s.wait_text("#profile-h", "Profile").await;
    s.wait_path(&format!("/customers/{}", target_customer.external_id))
        .await;
    assert_eq!(s.text("a[data-nav='nav.customers']").await, "Customers");
    s.click("#switch-lang").await;
    s.wait_text("#profile-h", "基本信息").await;
    assert_eq!(s.text("a[data-nav='nav.customers']").await, "客户");
    s.go(&format!("{base}/customers/C999999999")).await;
    assert_eq!(s.text("#error-title").await, "页面不存在");
    s.go(&base).await;
    s.logout().await;

    // A marketer opening a customer: 403 page, no data.
    s.login(&base, "S0011", "kehu-demo").await;
    s.wait_path("/").await;
    s.go(&format!("{base}/customers/{}", target_customer.external_id))
        .await;
    assert_eq!(s.text("#error-title").await, "无权访问");
    let body = s.text("body").await;
    assert!(!body.contains(&target_customer.name));
    s.go(&base).await;
    s.logout().await;

    // The app: pick a demo customer, see assets, open a product with the tracker tag.
    s.window(420, 860).await;
    s.go(&format!("{base}/app")).await;
    s.click("button.person").await;
    s.wait_path("/app").await;
    let total = s.text("#total-assets").await;
    assert!(total.starts_with('¥'), "{total}");
    s.screenshot("app-home").await;
    s.click("a[data-tab='assets']").await;
    s.wait_path("/app/assets").await;
    s.find("#my-net-worth").await;
    s.screenshot("app-assets").await;
    s.click("a[data-tab='products']").await;
    s.wait_path("/app/products").await;
    s.click("#app-products a").await;
    s.find("#app-product-name").await;
    let tracker = s.script("var t = document.querySelector('script[src=\"/kehu.js\"]'); return t ? t.dataset.product : null").await;
    assert!(
        tracker.as_str().is_some_and(|c| !c.is_empty()),
        "product page carries kehu.js: {tracker}"
    );
    app_behaviour(&s, &base, &t.store).await;

    s.quit().await;
    drop(d);
    let _ = std::fs::remove_dir_all(&profile);
    server.stop().await;
    eprintln!("screenshots in {}", shots.display());
}

/// Polls `f` (up to 15 s) until it gives `Some`.
async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The app on the behaviour capability, in the browser: the questionnaire, a product view
/// sent by kehu.js reaching the customer's behaviour and the home's reasons, a refused
/// purchase, the personalization switch, and the staff 360's new panels.
async fn app_behaviour(s: &Session<'_>, base: &str, store: &kehu_store::Store) {
    let who = s
        .script("return document.querySelector('script[src=\"/kehu.js\"]').dataset.customer")
        .await
        .as_str()
        .unwrap()
        .to_string();
    let key = s
        .script("return document.querySelector('script[src=\"/kehu.js\"]').dataset.key")
        .await;
    assert!(key.as_str().is_some_and(|k| k.starts_with("kehu_")), "{key}");

    // The questionnaire: submitting with nothing answered names the first question; the
    // first option everywhere gives the lowest level.
    s.click("a[data-tab='me']").await;
    s.wait_path("/app/me").await;
    s.click("#me-take-risk").await;
    s.wait_path("/app/risk").await;
    s.click("#risk-submit").await;
    s.find("#risk-error").await;
    assert!(s.text("#risk-error").await.starts_with("请回答第"), "names the question");
    for e in s.find_all("#risk-form fieldset").await {
        let name = s.attr(&e, "id").await.trim_start_matches("question-").to_string();
        s.click(&format!("input[name='q_{name}']")).await;
    }
    s.click("#risk-submit").await;
    let level = s.text("#risk-level").await;
    assert!(level.starts_with('C'), "{level}");
    s.find("#risk-valid-until").await;

    // A product the recommendations offer: view it; kehu.js sends the view on flush.
    let http = support::api_client();
    let recs: Value = http
        .get(format!("{base}/api/v1/customers/{who}/recommendations?n=4"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = recs["items"][0]["code"].as_str().expect("a recommendation").to_string();
    s.go(&format!("{base}/app/products/{code}")).await;
    s.find("#buy-form").await;
    s.script("window.kehu.flush(); return true").await;
    poll("the product view in the customer's behaviour", || {
        let http = http.clone();
        let url = format!("{base}/api/v1/customers/{who}/behaviour");
        let code = code.clone();
        async move {
            let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            v["state"]["products"]
                .as_array()?
                .iter()
                .any(|p| p["product"] == code.as_str() && p["views"].as_u64() >= Some(1))
                .then_some(())
        }
    })
    .await;
    // The home's recommendation of that product says why: the views.
    s.go(&format!("{base}/app")).await;
    let sel = format!("li.rec[data-product='{code}'] details.why");
    s.click(&format!("{sel} summary")).await;
    let why = s.text(&sel).await;
    assert!(why.contains("近7天浏览"), "{why}");
    s.window(420, 1400).await;
    s.screenshot("app-home-recommendations").await;
    s.window(420, 860).await;

    // A product above the customer's level: refused, with the reason.
    let today = chrono::Utc::now().date_naive();
    let high = store
        .list_products(None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.product)
        .filter(|p| p.on_sale(today) || p.on_sale(today + chrono::Days::new(1)))
        .max_by_key(|p| p.risk_level.rank())
        .unwrap();
    assert!(high.risk_level.rank() > 1);
    s.go(&format!("{base}/app/products/{}", high.code)).await;
    s.type_into("#buy-amount", &(high.min_purchase.0 / 100 + 1).to_string()).await;
    s.click("#buy-submit").await;
    let refusal = s.text("#buy-error").await;
    assert!(!refusal.is_empty(), "the refusal says why");
    assert_eq!(
        s.attr(&s.find("#buy-error").await, "data-refusal").await,
        "above_level",
        "{refusal}"
    );

    // Personalization off: the home says its recommendations are not personalized.
    s.go(&format!("{base}/app/me")).await;
    s.click("#personalization-off").await;
    s.wait_text("#personalization-state", "个性化推荐：已关闭").await;
    s.go(&format!("{base}/app")).await;
    s.find("#rec-not-personalized").await;
    s.go(&format!("{base}/app/me")).await;
    s.click("#personalization-on").await;
    s.wait_text("#personalization-state", "个性化推荐：已开启").await;
    // My tags: the viewed product is one; deleting it takes it off the list.
    let tag = format!("#me-tags li[data-tag='product:{code}']");
    s.click(&format!("{tag} button.delete-tag")).await;
    poll("the deleted tag gone from the list", || async {
        s.find_all(&tag).await.is_empty().then_some(())
    })
    .await;

    // Staff: the 360 with the risk level, the behaviour timeline and the recommendations.
    s.window(1280, 900).await;
    s.login(base, "S0001", "kehu-demo").await;
    s.wait_path("/").await;
    s.go(&format!("{base}/customers/{who}")).await;
    assert!(s.text("#risk-state").await.contains(&level[..2]));
    s.find(&format!("#behaviour-timeline tr[data-kind='product_view'][data-product='{code}']")).await;
    s.find("#panel-recommendations li.rec").await;
    s.window(1280, 2600).await;
    s.screenshot("customer-360-behaviour").await;
    s.window(1280, 900).await;
    s.go(&format!("{base}/products/{code}")).await;
    s.find("#chart-funnel").await;
    s.screenshot("product-funnel").await;

    // The administrator's audit log: filtered by staff id through its form, the customer
    // manager's login and their full view of a customer's personal data are there.
    s.click("a[data-nav='nav.platform']").await;
    s.wait_path("/admin/staff").await;
    s.click("#admin-tabs a[data-tab='audit']").await;
    s.wait_path("/admin/audit").await;
    s.type_into("#audit-filter input[name=staff]", "S001M01").await;
    s.click("#audit-filter button").await;
    poll("the filtered audit page", || async {
        s.url().await.contains("staff=S001M01").then_some(())
    })
    .await;
    s.find("#audit-table tr.audit-row[data-staff='S001M01'][data-action='login']").await;
    s.find("#audit-table tr.audit-row[data-staff='S001M01'][data-action='unmask']").await;
    assert!(s.find_all("#audit-table tr.audit-row[data-staff='S0001']").await.is_empty());
    s.screenshot("audit-log").await;
    s.logout().await;

    // The collector: arrears by age as a chart, then a read decided in the review queue.
    s.login(&base, login_of("collector"), "kehu-demo").await;
    s.wait_path("/").await;
    s.click("a[data-nav='nav.billing']").await;
    s.wait_path("/billing").await;
    s.find("#ageing-chart svg").await;
    s.screenshot("collections").await;
    s.click("a[data-nav='nav.meter_review']").await;
    s.wait_path("/meter-review").await;
    let first = s.attr(&s.find("#review-table tbody tr").await, "id").await;
    let read: i64 = first.trim_start_matches("read-").parse().unwrap();
    s.script("document.querySelector('.review-form select[name=action]').value = 'reject'; return 1")
        .await;
    s.type_into(".review-form input[name=reason]", "现场核实为重复抄表").await;
    s.click(".review-form button").await;
    s.find("#review-done").await;
    let edits = store.read_edits(read).await.unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].staff, login_of("collector"));
    assert_eq!(edits[0].reason, "现场核实为重复抄表");
    s.screenshot("meter-review").await;
}
