//! The web UI served by the kehu binary: the staff workbench at `/` and the demo customer
//! app at `/app`. Server-rendered HTML (askama templates compiled in), SVG charts drawn
//! here, one small embedded stylesheet, no script of its own and nothing from outside.
//!
//! Pages are thin: they check the role, read through the store, and hand plain values to
//! a template. Every string a person reads comes from the language catalogs (`i18n/`).

pub mod auth;
pub mod charts;
pub mod i18n;
pub mod nav;

mod admin;
mod app;
mod billing;
mod pages;

use crate::AppState;
use askama::Template;
use auth::{cookie, CookieSpec, LANG_COOKIE};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::{Lang, Tr};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Settings of the web UI (`[web]` in kehu.toml).
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// How long a login lasts without logging in again.
    pub session_hours: i64,
    /// Failed logins in a row before the login is locked …
    pub max_failed_logins: i64,
    /// … for this many minutes.
    pub lockout_minutes: i64,
    /// Mark cookies `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Let anyone open the app pages as a customer picked from a list. For the demo only.
    pub app_demo_login: bool,
    /// How long the dashboard figures of the bank and of a branch are reused.
    pub dashboard_cache_secs: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_hours: 8,
            max_failed_logins: 5,
            lockout_minutes: 15,
            secure_cookies: false,
            app_demo_login: false,
            dashboard_cache_secs: 300,
        }
    }
}

/// What the web pages keep between requests besides the database.
#[derive(Default)]
pub struct WebState {
    pub cfg: WebConfig,
    /// Dashboard figures that scan many rows (the whole bank, a branch), by scope, with
    /// the time they were read.
    pub(crate) summaries: Mutex<HashMap<Option<String>, (Instant, kehu_store::BookSummary)>>,
}

impl WebState {
    pub fn new(cfg: WebConfig) -> Self {
        WebState {
            cfg,
            summaries: Mutex::default(),
        }
    }

    /// The summary of a branch (`Some`) or of the bank (`None`), read at most once per
    /// `dashboard_cache_secs`.
    pub(crate) async fn summary(
        &self,
        store: &kehu_store::Store,
        branch: Option<&str>,
    ) -> Result<kehu_store::BookSummary, kehu_store::StoreError> {
        let key = branch.map(str::to_string);
        let ttl = Duration::from_secs(self.cfg.dashboard_cache_secs);
        if let Ok(g) = self.summaries.lock() {
            if let Some((_, s)) = g.get(&key).filter(|(at, _)| at.elapsed() < ttl) {
                return Ok(s.clone());
            }
        }
        let s = store.book_summary(None, branch).await?;
        if let Ok(mut g) = self.summaries.lock() {
            g.retain(|_, (at, _)| at.elapsed() < ttl);
            g.insert(key, (Instant::now(), s.clone()));
        }
        Ok(s)
    }
}

/// The web routes, merged into the API router by `crate::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lang", post(pages::set_lang))
        .route("/customers", get(pages::customers))
        .route("/customers/{key}", get(pages::customer))
        .route("/products", get(pages::products))
        .route("/products/{code}", get(pages::product))
        .route("/admin/staff", get(pages::staff))
        .merge(billing::routes())
        .route("/admin/audit", get(admin::audit_log))
        .route("/admin/app-keys", get(admin::app_keys).post(admin::create_app_key))
        .route("/admin/app-keys/revoke", post(admin::revoke_app_key))
        .route("/admin/api-tokens", get(admin::api_tokens).post(admin::create_api_token))
        .route("/admin/api-tokens/revoke", post(admin::revoke_api_token))
        .route("/behaviour/settings", get(admin::behaviour_settings))
        .route("/static/kehu.css", get(stylesheet))
        .route("/app", get(app::home))
        .route("/app/login", post(app::login))
        .route("/app/logout", post(app::logout))
        .route("/app/lang", post(app::set_lang))
        .route("/app/products", get(app::products))
        .route("/app/products/{code}", get(app::product))
        .route("/app/assets", get(app::assets))
        .route("/app/products/{code}/buy", post(app::buy))
        .route("/app/risk", get(app::risk).post(app::risk_submit))
        .route("/app/me", get(app::me))
        .route("/app/me/personalization", post(app::set_personalization))
        .route("/app/me/tags/delete", post(app::delete_tag))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(render_errors))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/kehu.css"),
    )
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        let body = serde_json::json!({ "error": { "code": "not_found", "message": format!("no such endpoint: {}", req.uri().path()) } });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    PageError::NotFound.into_response()
}

/// Where a request came from, for the audit trail: the peer address of the connection
/// (behind a reverse proxy, the proxy's) and the browser's `User-Agent`.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client {
            ip: parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }
}

/// A form that carries nothing but its CSRF token (logout, …); forms with more fields
/// have a `csrf` field of their own and go through the same `csrf_ok`.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The language switch of the workbench and of the app: the token, the language, and
/// the page to return to.
#[derive(serde::Deserialize)]
pub struct LangForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub back: String,
}

/// The one CSRF comparison of every form: the token expected (the session's, or the
/// login cookie's) against the one sent, in constant time. No expected token, no pass.
pub(crate) fn csrf_ok(expected: Option<&str>, sent: &str) -> Result<(), PageError> {
    match expected {
        Some(e) if !e.is_empty() && auth::same(e, sent) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

/// The language of a request without a session at hand: the language cookie (set at
/// login and on every switch), else the browser's preference, else Chinese.
pub fn request_lang(headers: &HeaderMap) -> Lang {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return l;
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").trim();
    if first.starts_with("en") {
        Lang::En
    } else {
        Lang::ZhCn
    }
}

pub(crate) fn lang_cookie(lang: Lang, secure: bool) -> axum::http::HeaderValue {
    CookieSpec {
        name: LANG_COOKIE,
        value: lang.code(),
        path: "/",
        max_age: Some(365 * 24 * 3600),
        http_only: true,
        same_site: "Lax",
        secure,
    }
    .header()
}

/// Why a page could not be shown. Each becomes a page in the reader's language, with a
/// status and a sentence saying what to do; never a stack trace, never the data asked for.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in, or the session ended: to the login page, then back.
    Login {
        next: String,
        expired: bool,
    },
    /// The app pages without a customer chosen.
    AppLogin,
    Forbidden,
    NotFound,
    /// A form or query field out of range: the catalog key of the message and the value.
    BadField {
        key: &'static str,
        value: String,
    },
    /// A form without the right CSRF token.
    Csrf,
    Internal(String),
}

impl From<kehu_store::StoreError> for PageError {
    fn from(e: kehu_store::StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

/// Carried on error responses until `render_errors` draws them in the right language.
#[derive(Clone, Debug)]
struct ErrorPage {
    status: StatusCode,
    title: &'static str,
    message: &'static str,
    detail: Option<String>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message, detail) = match self {
            PageError::Login { next, expired } => {
                let mut to = format!("/login?next={}", urlencode(&next));
                if expired {
                    to.push_str("&expired=1");
                }
                return Redirect::to(&to).into_response();
            }
            PageError::AppLogin => return Redirect::to("/app").into_response(),
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "error.forbidden.title",
                "error.forbidden.message",
                None,
            ),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "error.not_found.title",
                "error.not_found.message",
                None,
            ),
            PageError::BadField { key, value } => (
                StatusCode::BAD_REQUEST,
                "error.bad_request.title",
                key,
                Some(value),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "error.csrf.title",
                "error.csrf.message",
                None,
            ),
            PageError::Internal(e) => {
                tracing::error!(error = %e, "web page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error.internal.title",
                    "error.internal.message",
                    None,
                )
            }
        };
        let mut r = status.into_response();
        r.extensions_mut().insert(ErrorPage {
            status,
            title,
            message,
            detail,
        });
        r
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTpl<'a> {
    t: Tr,
    status: u16,
    title: &'a str,
    message: &'a str,
    detail: Option<String>,
}

/// Draws error pages in the language of the request.
async fn render_errors(req: Request, next: Next) -> Response {
    let lang = request_lang(req.headers());
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let e = match resp.extensions().get::<ErrorPage>().cloned() {
        Some(e) => e,
        // A request the extractors refused (a form that is not a form, a malformed
        // query): axum answers in plain text; a person gets a page.
        None if !api
            && resp.status().is_client_error()
            && resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain")) =>
        {
            ErrorPage {
                status: resp.status(),
                title: "error.bad_request.title",
                message: "error.malformed",
                detail: None,
            }
        }
        None => return resp,
    };
    let t = Tr::new(
        lang,
        chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"),
    );
    let tpl = ErrorTpl {
        t,
        status: e.status.as_u16(),
        title: t.s(e.title),
        message: t.s(e.message),
        detail: e.detail,
    };
    let mut out = render(&tpl);
    *out.status_mut() = e.status;
    out
}

/// Renders a template into an HTML response (a template error is a 500 page).
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                // Only this site's own files; no framing (clickjacking), no sniffing, no
                // addresses with customer numbers leaked to other sites.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
                ),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "same-origin"),
            ],
            Html(html),
        )
            .into_response(),
        Err(e) => PageError::Internal(format!("template: {e}")).into_response(),
    }
}

/// Percent-encodes a path or query value.
pub fn urlencode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                o.push(b as char)
            }
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// A local path to return to after login: only paths on this site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// The password of the demo logins (`kehu demo`, `kehu serve --demo`): the demo bank is
/// synthetic and printed on the console, so its password is no secret.
pub const DEMO_PASSWORD: &str = "kehu-demo";

/// Gives the first staff member of each role a login with `password`, unless they have
/// one already. Returns (role, staff id, name) for each role present.
pub async fn ensure_demo_logins(
    store: &kehu_store::Store,
    staff: &[kehu_domain::state::Staff],
    password: &str,
) -> Result<Vec<(kehu_domain::state::Role, String, String)>, String> {
    let mut out = Vec::new();
    for &role in kehu_domain::state::Role::ALL {
        let Some(m) = staff.iter().find(|m| m.role == role) else {
            continue;
        };
        let has = store
            .staff_login(&m.external_id)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !has {
            let pw = password.to_string();
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
                .await
                .map_err(|e| e.to_string())??;
            store
                .set_staff_password(&m.external_id, &hash, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())?;
        }
        out.push((role, m.external_id.clone(), m.name.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(super::safe_next(Some("/customers?q=王")), "/customers?q=王");
        assert_eq!(super::safe_next(Some("//evil.example")), "/");
        assert_eq!(super::safe_next(Some("https://evil.example")), "/");
        assert_eq!(super::safe_next(None), "/");
        assert_eq!(super::urlencode("/c?q=王"), "/c%3Fq%3D%E7%8E%8B");
    }
}
