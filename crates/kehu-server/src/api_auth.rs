//! Who may call the HTTP API. Every `/api/v1/*` route needs `Authorization: Bearer TOKEN`
//! with a live API token (`kehu api-token create NAME`), except `POST /api/v1/events`,
//! which takes an app key (apps may only write events). `/healthz`, `/api/openapi.json`,
//! `/kehu.js` and the web pages (their own sessions) are outside this rule.
//!
//! A token's digest is looked up once and the answer kept for `CACHE_SECS`, so a busy
//! API does not read the database per request; a revoked token stops working within that
//! time.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token lookup is reused.
pub const CACHE_SECS: u64 = 10;
/// Entries kept before the cache starts over (bounds memory against random tokens).
const CACHE_MAX: usize = 10_000;

pub struct ApiAuth {
    /// Off only when the configuration says so (`api.require_token = false`, for a
    /// deployment whose gateway authenticates every call).
    pub required: bool,
    cache: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl Default for ApiAuth {
    fn default() -> Self {
        ApiAuth {
            required: true,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ApiAuth {
    /// Forgets every lookup: a token revoked on this server is refused from the next call.
    pub fn forget(&self) {
        self.cache.lock().expect("lock").clear();
    }

    pub fn open() -> Self {
        ApiAuth {
            required: false,
            ..Default::default()
        }
    }
}

fn exempt(path: &str) -> bool {
    !path.starts_with("/api/v1/") || path == "/api/v1/events"
}

fn refuse(message: &str) -> Response {
    let mut r = crate::ApiError::Unauthorized(message.to_string()).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"kehu\""),
    );
    r
}

/// The middleware: passes the request on, or answers 401 saying what is missing.
pub async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !s.api_auth.required || exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return refuse(
            "this API needs a token: send Authorization: Bearer TOKEN (make one with `kehu api-token create NAME`)",
        );
    };
    let digest = kehu_store::api_token_digest(token);
    let ttl = Duration::from_secs(CACHE_SECS);
    let cached = s
        .api_auth
        .cache
        .lock()
        .expect("lock")
        .get(&digest)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, name)| name.clone());
    let name = match cached {
        Some(n) => n,
        None => {
            let found = match s.store.api_token_by_digest(&digest).await {
                Ok(f) => f,
                Err(e) => return crate::ApiError::from(e).into_response(),
            };
            let mut c = s.api_auth.cache.lock().expect("lock");
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(digest, (Instant::now(), found.clone()));
            found
        }
    };
    match name {
        Some(_) => next.run(req).await,
        None => refuse("unknown or revoked API token"),
    }
}

#[cfg(test)]
mod tests {
    use super::exempt;

    #[test]
    fn which_paths_need_a_token() {
        assert!(!exempt("/api/v1/customers"));
        assert!(!exempt("/api/v1/customers/C1/recommendations"));
        assert!(!exempt("/api/v1/billing/payments"));
        assert!(exempt("/api/v1/events"));
        assert!(exempt("/healthz"));
        assert!(exempt("/api/openapi.json"));
        assert!(exempt("/kehu.js"));
        assert!(exempt("/customers/C1"));
    }
}
