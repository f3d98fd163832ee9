//! Who may call the HTTP API. Every `/api/v1/*` route needs `Authorization: Bearer TOKEN`
//! with a live API token (`kehu api-token create NAME`), except `POST /api/v1/events`,
//! which takes an app key (apps may only write events). `/healthz`, `/api/openapi.json`,
//! `/kehu.js` and the web pages (their own sessions) are outside this rule.
//!
//! A token's digest is looked up once and the answer kept for `CACHE_SECS`, so a busy
//! API does not read the database per request; a revoked token stops working within that
//! time.
//!
//! A token may act for a staff member (`kehu api-token create NAME --staff ID`). The
//! request then carries an `ApiCaller` naming them, and the actions that record who did
//! them (reviewing a read, a dunning step, approving a disconnection order, reversing a
//! payment) take that staff member, within their role's permissions (`acting_staff`). A
//! token that acts for nobody (an integration) cannot do those.

use crate::web::nav::{can, Perm};
use crate::{ApiError, AppState};
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
    cache: Mutex<HashMap<String, (Instant, Option<ApiCaller>)>>,
}

/// Who an API call comes from (a request extension, set when tokens are required).
#[derive(Clone, Debug)]
pub struct ApiCaller {
    /// The token's name.
    pub token: String,
    /// The staff member the token acts for (their role as of the lookup).
    pub staff: Option<kehu_domain::state::Staff>,
}

/// A token that acts for a staff member may do what their role may (`perm`); a token that
/// acts for nobody (an integration's), or no token at all, is not limited here.
pub fn staff_may(caller: Option<&ApiCaller>, perm: Perm, what: &str) -> Result<(), ApiError> {
    match caller.and_then(|c| c.staff.as_ref()) {
        Some(st) if !can(st.role, perm) => Err(ApiError::Forbidden(format!(
            "staff member {} ({}) may not do this: {what}",
            st.external_id,
            st.role.code()
        ))),
        _ => Ok(()),
    }
}

/// The staff member an API call records as having done an action that needs `perm`.
/// With a token (`caller`): the staff member it acts for, refused when the token acts for
/// nobody, when their role lacks `perm`, or when `claimed` names someone else. Without
/// tokens (`api.require_token = false`, a gateway authenticates): `claimed`, required.
pub fn acting_staff(
    caller: Option<&ApiCaller>,
    claimed: Option<&str>,
    perm: Perm,
    what: &str,
) -> Result<String, ApiError> {
    let claimed = claimed.map(str::trim).filter(|c| !c.is_empty());
    let Some(caller) = caller else {
        return claimed
            .map(str::to_string)
            .ok_or_else(|| ApiError::BadRequest(format!("{what} records who did it: field `staff` is required")));
    };
    let Some(staff) = &caller.staff else {
        return Err(ApiError::Forbidden(format!(
            "{what} records who did it, and the API token {:?} acts for no staff member: use a token made with `kehu api-token create NAME --staff STAFF_ID`",
            caller.token
        )));
    };
    staff_may(Some(caller), perm, what)?;
    if let Some(c) = claimed.filter(|c| *c != staff.external_id) {
        return Err(ApiError::Forbidden(format!(
            "the API token acts for {}; it cannot record {what} as done by {c:?}",
            staff.external_id
        )));
    }
    Ok(staff.external_id.clone())
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
        .map(|(_, caller)| caller.clone());
    let caller = match cached {
        Some(c) => c,
        None => {
            let found = match s.store.api_token_by_digest(&digest).await {
                Ok(f) => f,
                Err(e) => return crate::ApiError::from(e).into_response(),
            };
            let caller = match found {
                Some((token, staff_id)) => {
                    let staff = match staff_id {
                        Some(id) => match s.store.staff_member(&id).await {
                            Ok(Some(st)) => Some(st),
                            // The staff member is gone: the token acts for nobody.
                            Ok(None) => None,
                            Err(e) => return crate::ApiError::from(e).into_response(),
                        },
                        None => None,
                    };
                    Some(ApiCaller { token, staff })
                }
                None => None,
            };
            let mut c = s.api_auth.cache.lock().expect("lock");
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(digest, (Instant::now(), caller.clone()));
            caller
        }
    };
    match caller {
        Some(c) => {
            let mut req = req;
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        None => refuse("unknown or revoked API token"),
    }
}

#[cfg(test)]
mod tests {
    use super::{acting_staff, exempt, ApiCaller};
    use crate::web::nav::Perm;
    use crate::ApiError;
    use kehu_domain::state::{Role, Staff};

    fn caller(role: Option<Role>) -> ApiCaller {
        ApiCaller {
            token: "t".into(),
            staff: role.map(|role| Staff {
                external_id: "S1".into(),
                name: "张三".into(),
                role,
                branch: None,
            }),
        }
    }

    #[test]
    fn who_an_action_is_recorded_for() {
        let forbidden = |r: Result<String, ApiError>| matches!(r, Err(ApiError::Forbidden(_)));
        // Tokens: the staff member the token acts for, within their role.
        let c = caller(Some(Role::Collector));
        assert_eq!(acting_staff(Some(&c), None, Perm::MeterReview, "x").unwrap(), "S1");
        assert_eq!(acting_staff(Some(&c), Some(" S1 "), Perm::MeterReview, "x").unwrap(), "S1");
        assert_eq!(acting_staff(Some(&c), Some(""), Perm::Billing, "x").unwrap(), "S1");
        assert!(forbidden(acting_staff(Some(&c), Some("S2"), Perm::MeterReview, "x")));
        assert!(forbidden(acting_staff(Some(&c), None, Perm::ApproveDisconnection, "x")));
        let head = caller(Some(Role::BranchHead));
        assert_eq!(acting_staff(Some(&head), None, Perm::ApproveDisconnection, "x").unwrap(), "S1");
        assert!(forbidden(acting_staff(Some(&head), None, Perm::MeterReview, "x")));
        assert!(forbidden(acting_staff(Some(&caller(None)), Some("S1"), Perm::Billing, "x")));
        // No tokens (a gateway authenticates): the named staff member, required.
        assert_eq!(acting_staff(None, Some("S9"), Perm::Billing, "x").unwrap(), "S9");
        assert!(matches!(acting_staff(None, Some(" "), Perm::Billing, "x"), Err(ApiError::BadRequest(_))));
    }

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
