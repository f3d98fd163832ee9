//! HTTP for behaviour: the event collector, the tracker script, behaviour state,
//! questionnaire and assessments, purchases with the suitability check,
//! recommendations, personalization, tags and the funnel.

use super::engine::{asset_class_for, assessment};
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use kehu_domain::behaviour::event::{self, EventKind, EventLimits, Rejection};
use kehu_domain::decide::recommend::{Decision, Placement};
use kehu_domain::decide::suitability::{self, Questionnaire};
use kehu_domain::money::Fen;
use kehu_domain::state::ProductKind;
use kehu_store::behaviour::NewEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/kehu.js", get(tracker))
        .route("/api/v1/events", post(collect).options(preflight))
        .route("/api/v1/questionnaire", get(questionnaire))
        .route("/api/v1/customers/{id}/assessment", get(get_assessment).post(assess))
        .route("/api/v1/customers/{id}/behaviour", get(customer_behaviour))
        .route("/api/v1/customers/{id}/recommendations", get(recommendations))
        .route("/api/v1/customers/{id}/decisions", get(decisions))
        .route("/api/v1/customers/{id}/personalization", get(get_personalization).put(set_personalization))
        .route("/api/v1/customers/{id}/tags", get(tags))
        .route("/api/v1/customers/{id}/tags/{tag}", delete(delete_tag))
        .route("/api/v1/customers/{id}/suitability-checks", get(checks))
        .route("/api/v1/purchases", post(purchase))
        .route("/api/v1/products/{code}/behaviour", get(product_behaviour))
        .route("/api/v1/analytics/funnel", get(funnel))
        .route("/api/v1/app-keys", get(app_keys))
        .route("/api/v1/behaviour/snapshot", put(snapshot))
}

const TRACKER: &str = include_str!("../../assets/kehu.js");

/// The web tracker (see docs/tracker.md).
async fn tracker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        TRACKER,
    )
        .into_response()
}

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    r
}

async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct KeyParam {
    /// The app key, for `navigator.sendBeacon`, which cannot set headers.
    key: Option<String>,
}

/// Per event of a batch.
#[derive(Serialize, ToSchema)]
pub struct EventResult {
    pub index: usize,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CollectResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Receives a batch of behaviour events (JSON array, NDJSON, or a JSON array sent as
/// text/plain by a beacon). Answers after the accepted events are committed.
#[utoipa::path(post, path = "/api/v1/events", tag = "behaviour", params(KeyParam),
    responses((status = 200, body = CollectResponse), (status = 401), (status = 413)))]
pub async fn collect(
    State(st): State<AppState>,
    Query(q): Query<KeyParam>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors(match collect_inner(&st, q, &headers, &body).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    })
}

async fn collect_inner(st: &AppState, q: KeyParam, headers: &HeaderMap, body: &[u8]) -> Result<CollectResponse, ApiError> {
    let eng = &st.behaviour;
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(String::from)
        .or(q.key)
        .ok_or_else(|| ApiError::Unauthorized("an app key is required: Authorization: Bearer KEY (kehu app-key create NAME)".into()))?;
    let app = eng
        .app_for_key(&key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked app key".into()))?;
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    // Each element is read straight from the body (event::SentEvent: strings borrowed,
    // no JSON tree built), and judged as a JSON value would be.
    let items: Vec<Result<event::SentEvent, String>> = if trimmed.starts_with('[') {
        match serde_json::from_str::<Vec<event::SentEvent>>(text) {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => return Err(ApiError::BadRequest(format!("the body is not a JSON array of events: line {}, column {}: {e}", e.line(), e.column()))),
        }
    } else if trimmed.is_empty() {
        return Err(ApiError::BadRequest("the body is empty: send a JSON array of events or NDJSON".into()));
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str::<event::SentEvent>(l).map_err(|e| format!("line {} is not JSON: {e}", i + 1)))
            .collect()
    };
    let max = eng.cfg.max_batch;
    if items.len() > max {
        return Err(ApiError::TooLarge(format!("{} events in one batch; at most {max} (behaviour.max_batch)", items.len())));
    }
    let limits = EventLimits { now_ms: now_ms(), max_future_ms: eng.cfg.max_future_secs * 1000 };
    let mut results: Vec<EventResult> = Vec::with_capacity(items.len());
    let reject = |index: usize, r: Rejection| EventResult { index, status: "rejected", field: Some(r.field), reason: Some(r.reason) };
    let checked: Vec<Option<event::Event>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let e = match item {
                Err(msg) => Err(Rejection::new("", msg.clone())),
                Ok(v) => event::validate_sent(v, limits),
            };
            match e {
                Err(r) => {
                    results.push(reject(i, r));
                    None
                }
                Ok(e) => {
                    results.push(EventResult { index: i, status: "pending", field: None, reason: None });
                    Some(e)
                }
            }
        })
        .collect();
    // An id repeated inside the batch: the first is the one written.
    let mut first = vec![false; checked.len()];
    {
        let mut seen = std::collections::HashSet::with_capacity(checked.len());
        for (i, e) in checked.iter().enumerate() {
            if let Some(e) = e {
                if seen.insert(e.id.as_str()) {
                    first[i] = true;
                } else {
                    results[i].status = "duplicate";
                }
            }
        }
    }
    let valid: Vec<(usize, event::Event)> =
        checked.into_iter().enumerate().filter_map(|(i, e)| e.filter(|_| first[i]).map(|e| (i, e))).collect();
    // Resolve customers and products.
    let ext: Vec<&str> = valid.iter().filter_map(|(_, e)| e.customer.as_deref()).collect();
    let customers = if ext.is_empty() { Vec::new() } else { eng.customer_ids(&ext).await? };
    let mut customers = customers.into_iter();
    let mut shelf = eng.shelf();
    // A product added by another process since the shelf was loaded: reload it once.
    let unknown: Vec<&str> = valid.iter().filter_map(|(_, e)| e.product.as_deref()).filter(|c| !shelf.by_code.contains_key(*c)).collect();
    if let Some(code) = unknown.first() {
        if eng.store.product(code).await?.is_some() {
            eng.refresh_shelf().await?;
            shelf = eng.shelf();
        }
    }
    let mut pending_links: std::collections::HashMap<String, i64> = Default::default();
    let mut rows: Vec<NewEvent> = Vec::with_capacity(valid.len());
    let mut index_of: Vec<usize> = Vec::with_capacity(valid.len());
    for (i, e) in valid {
        let customer_id = match &e.customer {
            Some(c) => match customers.next().flatten() {
                Some(id) => Some(id),
                None => {
                    results[i] = reject(i, Rejection::new("customer", format!("unknown customer {c:?}")));
                    continue;
                }
            },
            None => e.device.as_deref().and_then(|d| pending_links.get(d).copied().or_else(|| eng.device_customer(d))),
        };
        let product_id = match &e.product {
            Some(code) => match shelf.by_code.get(code) {
                Some(id) => Some(*id as i64),
                None => {
                    results[i] = reject(i, Rejection::new("product", format!("unknown product {code:?}")));
                    continue;
                }
            },
            None => None,
        };
        if e.kind == EventKind::Identify {
            if let (Some(d), Some(c)) = (&e.device, customer_id) {
                pending_links.insert(d.clone(), c);
            }
        }
        let mut detail = serde_json::Map::new();
        for (k, v) in [("page", &e.page), ("query", &e.query), ("element", &e.element), ("message", &e.message)] {
            if let Some(v) = v {
                detail.insert(k.into(), Value::String(v.clone()));
            }
        }
        rows.push(NewEvent {
            app_id: app,
            event_id: e.id,
            kind: e.kind,
            ts_ms: e.ts_ms,
            device: e.device,
            customer_id,
            product_id,
            dwell_ms: e.dwell_ms.map(i64::from),
            depth: e.depth.map(i64::from),
            quantity: e.quantity.map(i64::from),
            amount_fen: e.amount.map(|a| a.0),
            detail: (!detail.is_empty()).then(|| Value::Object(detail).to_string()),
        });
        index_of.push(i);
    }
    if !rows.is_empty() {
        let seqs = eng.write(limits.now_ms, rows).await?;
        for (i, s) in index_of.into_iter().zip(seqs) {
            results[i].status = if s.is_some() { "accepted" } else { "duplicate" };
        }
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    Ok(CollectResponse { accepted: count("accepted"), duplicates: count("duplicate"), rejected: count("rejected"), results })
}

async fn customer_id(st: &AppState, key: &str) -> Result<i64, ApiError> {
    // A kehu id the profile table knows needs no store read (an id wins over an
    // external id that looks like one, as in the store's lookup).
    if let Ok(id) = key.parse::<i64>() {
        if st.behaviour.known_customer(id) {
            return Ok(id);
        }
    }
    st.store
        .customer_id(key)
        .await?
        .ok_or_else(|| ApiError::NotFound { what: "customer", key: key.to_string() })
}

/// The risk questionnaire (option scores are not shown to the app).
#[utoipa::path(get, path = "/api/v1/questionnaire", tag = "suitability", responses((status = 200, body = Object)))]
pub async fn questionnaire(State(st): State<AppState>) -> Json<Value> {
    let q: &Questionnaire = &st.behaviour.questionnaire;
    Json(serde_json::json!({
        "version": q.version,
        "title_zh": q.title_zh,
        "title_en": q.title_en,
        "validity_days": st.behaviour.cfg.suitability.validity_days,
        "questions": q.questions.iter().map(|x| serde_json::json!({
            "id": x.id, "text_zh": x.text_zh, "text_en": x.text_en,
            "options": x.options.iter().map(|o| serde_json::json!({"key": o.key, "text_zh": o.text_zh, "text_en": o.text_en})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "levels": q.bands.iter().map(|b| serde_json::json!({"level": b.level.code(), "label_zh": b.label_zh, "label_en": b.label_en, "max_product_level": format!("R{}", b.level.rank())})).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct AnswersBody {
    /// Question id → option key, e.g. {"Q1": "B", "Q2": "C", …}.
    #[schema(value_type = Object)]
    pub answers: serde_json::Map<String, Value>,
}

/// Submits the questionnaire answers for a customer; stores the result.
#[utoipa::path(post, path = "/api/v1/customers/{id}/assessment", tag = "suitability", request_body = AnswersBody,
    responses((status = 200, body = Object), (status = 400), (status = 404)))]
pub async fn assess(State(st): State<AppState>, Path(id): Path<String>, Json(body): Json<AnswersBody>) -> Result<Json<Value>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let mut answers = Vec::new();
    for (q, v) in &body.answers {
        let key = v.as_str().ok_or_else(|| ApiError::BadRequest(format!("question {q}: the answer must be an option key like \"A\", not {v}")))?;
        answers.push((q.clone(), key.to_string()));
    }
    let r = submit_assessment(&st, cid, &answers)
        .await?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(serde_json::json!({
        "id": r.id, "customer_id": cid, "score": r.score, "level": r.level.code(),
        "label_zh": r.label_zh, "label_en": r.label_en, "assessed_on": r.assessed_on,
        "valid_until": r.valid_until,
        "max_product_level": format!("R{}", r.level.rank()),
    })))
}

/// A stored assessment.
pub struct Assessed {
    pub id: i64,
    pub score: u32,
    pub level: suitability::RiskTolerance,
    pub label_zh: String,
    pub label_en: String,
    pub assessed_on: chrono::NaiveDate,
    pub valid_until: chrono::NaiveDate,
}

/// Scores answers (question id, option key) and stores the assessment (API and app
/// pages); the inner error names what is wrong with the answers.
pub async fn submit_assessment(
    st: &AppState,
    cid: i64,
    answers: &[(String, String)],
) -> Result<Result<Assessed, suitability::AnswerError>, kehu_store::StoreError> {
    let q = &st.behaviour.questionnaire;
    let scored = match q.score(answers) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let today = st.today();
    let raw: serde_json::Map<String, Value> = answers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let id = st
        .store
        .insert_assessment(cid, &q.version, &Value::Object(raw), scored.score as i64, scored.level.code(), today)
        .await?;
    st.behaviour.refresh_profile(cid).await?;
    let a = suitability::Assessment { level: scored.level, assessed_on: today };
    Ok(Ok(Assessed {
        id,
        score: scored.score,
        level: scored.level,
        label_zh: scored.label_zh,
        label_en: scored.label_en,
        assessed_on: today,
        valid_until: a.valid_until(&st.behaviour.cfg.suitability),
    }))
}

/// The customer's current assessment and whether it is valid today.
#[utoipa::path(get, path = "/api/v1/customers/{id}/assessment", tag = "suitability", responses((status = 200, body = Object), (status = 404)))]
pub async fn get_assessment(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let all = st.store.assessments(cid).await?;
    let cfg = &st.behaviour.cfg.suitability;
    let today = st.today();
    let current = all.first().and_then(|r| {
        let level = suitability::RiskTolerance::parse(&r.level)?;
        let a = suitability::Assessment { level, assessed_on: r.assessed_on };
        Some(serde_json::json!({
            "level": r.level, "label_zh": level.label_zh(), "label_en": level.label_en(), "score": r.score,
            "assessed_on": r.assessed_on, "valid_until": a.valid_until(cfg), "valid": a.valid_on(cfg, today),
        }))
    });
    Ok(Json(serde_json::json!({ "customer_id": cid, "current": current, "must_assess": current.as_ref().map_or(true, |c| c["valid"] == false), "history": all })))
}

#[derive(Deserialize, ToSchema)]
pub struct PurchaseBody {
    /// Customer id or external id.
    pub customer: String,
    /// Product code.
    pub product: String,
    /// Amount in yuan (string or number).
    #[schema(value_type = String)]
    pub amount: Value,
    pub quantity: Option<i64>,
    /// The elderly customer's extra confirmation, when asked for.
    #[serde(default)]
    pub elderly_confirmed: bool,
}

/// A purchase: the suitability check is recorded either way; an unsuitable purchase is
/// refused (422) with the reason.
#[utoipa::path(post, path = "/api/v1/purchases", tag = "suitability", request_body = PurchaseBody,
    responses((status = 201, body = Object), (status = 422, body = Object), (status = 400), (status = 404)))]
pub async fn purchase(State(st): State<AppState>, Json(b): Json<PurchaseBody>) -> Result<Response, ApiError> {
    let cid = customer_id(&st, &b.customer).await?;
    let amount = match &b.amount {
        Value::String(s) => Fen::parse_yuan(s),
        Value::Number(n) => Fen::parse_yuan(&n.to_string()),
        v => return Err(ApiError::BadRequest(format!("amount: yuan as a string or number, not {v}"))),
    }
    .map_err(|e| ApiError::BadRequest(format!("amount {}: {e}", b.amount)))?;
    let quantity = b.quantity.unwrap_or(1);
    let out = match buy(&st, cid, &b.product, amount, quantity, b.elderly_confirmed).await {
        Ok(o) => o,
        Err(BuyError::NoProduct) => return Err(ApiError::NotFound { what: "product", key: b.product.clone() }),
        Err(BuyError::NoCustomer) => return Err(ApiError::NotFound { what: "customer", key: b.customer.clone() }),
        Err(BuyError::NotPositive) => return Err(ApiError::BadRequest(format!("amount {}: must be more than zero", b.amount))),
        Err(BuyError::Quantity) => return Err(ApiError::BadRequest(format!("quantity {quantity}: must be at least 1"))),
        Err(BuyError::NotOnSale { today }) => {
            return Err(ApiError::Unprocessable(serde_json::json!({"code": "not_on_sale", "message": format!("product {} is not on sale on {today}", b.product)})))
        }
        Err(BuyError::BelowMinimum { min }) => {
            return Err(ApiError::Unprocessable(serde_json::json!({"code": "below_minimum", "message": format!("amount {amount} is below the minimum purchase {min} of {}", b.product)})))
        }
        Err(BuyError::Store(e)) => return Err(e.into()),
    };
    let check = out.check;
    if let Some(pid) = out.purchase_id {
        let body = serde_json::json!({ "check_id": out.check_id, "purchase_id": pid, "check": check });
        Ok((StatusCode::CREATED, Json(body)).into_response())
    } else {
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"error": {"code": check.refusal.map(|r| r.code()), "message": check.reason_en, "message_zh": check.reason_zh}, "check_id": out.check_id, "check": check}))).into_response())
    }
}

/// Why a purchase was not even put to the suitability check.
#[derive(Debug)]
pub enum BuyError {
    NoCustomer,
    NoProduct,
    NotPositive,
    Quantity,
    NotOnSale { today: chrono::NaiveDate },
    BelowMinimum { min: Fen },
    Store(kehu_store::StoreError),
}

impl From<kehu_store::StoreError> for BuyError {
    fn from(e: kehu_store::StoreError) -> Self {
        BuyError::Store(e)
    }
}

/// A purchase put to the suitability check: refused when `purchase_id` is `None`
/// (`check` says why, in both languages).
#[derive(Debug)]
pub struct Bought {
    pub check_id: i64,
    pub purchase_id: Option<i64>,
    pub check: suitability::Check,
    pub product_name: String,
    pub amount: Fen,
    pub quantity: i64,
    pub on: chrono::NaiveDate,
}

/// The one purchase path (API and app pages): amount and sale checks, the suitability
/// check recorded either way, the purchase and its behaviour event when allowed.
pub async fn buy(
    st: &AppState,
    cid: i64,
    product_code: &str,
    amount: Fen,
    quantity: i64,
    elderly_confirmed: bool,
) -> Result<Bought, BuyError> {
    let product = st.store.product(product_code).await?.ok_or(BuyError::NoProduct)?;
    if amount.0 <= 0 {
        return Err(BuyError::NotPositive);
    }
    if quantity < 1 {
        return Err(BuyError::Quantity);
    }
    let today = st.today();
    if !product.product.on_sale(today) {
        return Err(BuyError::NotOnSale { today });
    }
    if amount < product.product.min_purchase {
        return Err(BuyError::BelowMinimum { min: product.product.min_purchase });
    }
    let prof = st.behaviour.profile(cid).await?.ok_or(BuyError::NoCustomer)?;
    let age = prof.birth_date.and_then(|d| today.years_since(d));
    let check = suitability::check(&st.behaviour.cfg.suitability, assessment(&prof), age, product.product.risk_level, today, elderly_confirmed);
    let (check_id, purchase_id) = st
        .store
        .record_purchase(cid, product.id, asset_class_for(product.product.kind), amount.0, quantity, &check, elderly_confirmed, today)
        .await?;
    st.behaviour.refresh_profile(cid).await?;
    if let Some(pid) = purchase_id {
        // The purchase is behaviour too: one event through the same log and state.
        let app = *st.behaviour.self_app.lock().expect("lock");
        let now = now_ms();
        st.behaviour
            .write(now, vec![NewEvent {
                app_id: app,
                event_id: format!("purchase-{pid}"),
                kind: EventKind::Purchase,
                ts_ms: now,
                device: None,
                customer_id: Some(cid),
                product_id: Some(product.id),
                dwell_ms: None,
                depth: None,
                quantity: Some(quantity),
                amount_fen: Some(amount.0),
                detail: None,
            }])
            .await?;
    }
    Ok(Bought { check_id, purchase_id, check, product_name: product.product.name.clone(), amount, quantity, on: today })
}

/// Whether the elderly customer's extra confirmation applies to this customer and product.
pub async fn elderly_rule(st: &AppState, cid: i64, level: kehu_domain::state::RiskLevel) -> Result<bool, kehu_store::StoreError> {
    let cfg = &st.behaviour.cfg.suitability;
    let today = st.today();
    let Some(prof) = st.behaviour.profile(cid).await? else { return Ok(false) };
    let age = prof.birth_date.and_then(|d| today.years_since(d));
    Ok(age.is_some_and(|a| a >= cfg.elderly_age) && level.rank() > cfg.elderly_confirm_above.rank())
}

#[derive(Deserialize, IntoParams)]
pub struct RecParams {
    /// How many products (default 5, at most 50).
    n: Option<usize>,
    /// `home` (default), `product:CODE` (on that product's page) or `message`.
    placement: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RecResponse {
    pub customer_id: i64,
    pub decided_at: chrono::DateTime<chrono::Utc>,
    pub placement: String,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Next best products with score components and reasons (zh-CN and English). Each
/// response is logged with its inputs.
#[utoipa::path(get, path = "/api/v1/customers/{id}/recommendations", tag = "recommendation", params(RecParams),
    responses((status = 200, body = RecResponse), (status = 404)))]
pub async fn recommendations(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<RecParams>) -> Result<Json<RecResponse>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let n = q.n.unwrap_or(5);
    if !(1..=50).contains(&n) {
        return Err(ApiError::BadRequest(format!("n={n}: from 1 to 50")));
    }
    let pname = q.placement.unwrap_or_else(|| "home".into());
    let placement = match pname.split_once(':') {
        None if pname == "home" => Placement::Home,
        None if pname == "message" => Placement::Message,
        Some(("product", code)) => {
            let shelf = st.behaviour.shelf();
            let kind = shelf
                .by_code
                .get(code)
                .and_then(|id| shelf.catalogue.offer(*id))
                .map(|o| o.kind)
                .ok_or_else(|| ApiError::NotFound { what: "product", key: code.to_string() })?;
            Placement::ProductPage(kind)
        }
        _ => return Err(ApiError::BadRequest(format!("placement {pname:?}: expected home, message or product:CODE"))),
    };
    let prof = st.behaviour.profile(cid).await?.ok_or_else(|| ApiError::NotFound { what: "customer", key: id.clone() })?;
    let now = chrono::Utc::now();
    let today = now.with_timezone(&st.cfg.offset).date_naive();
    let decision = st.behaviour.decide(cid, &prof, &placement, n, now, today, &pname);
    Ok(Json(RecResponse { customer_id: cid, decided_at: now, placement: pname, decision }))
}

#[derive(Deserialize, IntoParams)]
pub struct LimitParam {
    limit: Option<i64>,
}

/// The logged decisions for a customer (newest first): the why of each response.
#[utoipa::path(get, path = "/api/v1/customers/{id}/decisions", tag = "recommendation", params(LimitParam), responses((status = 200, body = Object)))]
pub async fn decisions(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<LimitParam>) -> Result<Json<Value>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    Ok(Json(Value::Array(st.store.decisions(cid, q.limit.unwrap_or(20).clamp(1, 500)).await?)))
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct PersonalizationBody {
    pub enabled: bool,
}

/// Whether recommendations for this customer use personal features.
#[utoipa::path(get, path = "/api/v1/customers/{id}/personalization", tag = "recommendation", responses((status = 200, body = PersonalizationBody)))]
pub async fn get_personalization(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<PersonalizationBody>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let p = st.behaviour.profile(cid).await?.ok_or_else(|| ApiError::NotFound { what: "customer", key: id })?;
    Ok(Json(PersonalizationBody { enabled: p.personalization }))
}

/// Switches personalization on or off (PIPL art. 24); effective for the next response.
#[utoipa::path(put, path = "/api/v1/customers/{id}/personalization", tag = "recommendation", request_body = PersonalizationBody,
    responses((status = 200, body = PersonalizationBody)))]
pub async fn set_personalization(State(st): State<AppState>, Path(id): Path<String>, Json(b): Json<PersonalizationBody>) -> Result<Json<PersonalizationBody>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    st.store.set_personalization(cid, b.enabled, "api").await?;
    st.behaviour.refresh_profile(cid).await?;
    Ok(Json(b))
}

#[derive(Serialize, ToSchema)]
pub struct Tag {
    /// `product:CODE` or `kind:CODE`; pass it to DELETE to remove the tag.
    pub tag: String,
    pub label_zh: String,
    pub label_en: String,
    /// Interest now (decayed).
    pub interest: f64,
}

pub fn customer_tags(st: &AppState, cid: i64) -> Vec<Tag> {
    let eng = &st.behaviour;
    let shelf = eng.shelf();
    let now = chrono::Utc::now().timestamp();
    let min = eng.cfg.tag_min_interest;
    eng.with_state(|s, _| {
        let mut out = Vec::new();
        let Some(c) = s.customer(cid as u32) else { return out };
        let mut by_kind: std::collections::BTreeMap<ProductKind, f64> = Default::default();
        for p in &c.pairs {
            let Some(o) = shelf.catalogue.offer(p.product) else { continue };
            let i = p.interest_at(&s.cfg, now);
            *by_kind.entry(o.kind).or_default() += i;
            if i >= min {
                out.push(Tag { tag: format!("product:{}", o.code), label_zh: format!("关注：{}", o.name), label_en: format!("interested in {}", o.name), interest: i });
            }
        }
        for (k, i) in by_kind {
            if i >= 2.0 * min {
                out.push(Tag { tag: format!("kind:{}", k.code()), label_zh: format!("偏好{}", k.label_zh()), label_en: format!("likes {}", k.label_en()), interest: i });
            }
        }
        out.sort_by(|a, b| b.interest.total_cmp(&a.interest));
        out
    })
}

/// The customer's derived interests ("my tags").
#[utoipa::path(get, path = "/api/v1/customers/{id}/tags", tag = "recommendation", responses((status = 200, body = [Tag])))]
pub async fn tags(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<Tag>>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    Ok(Json(customer_tags(&st, cid)))
}

/// Deletes a derived interest: it is no longer used (algorithm-recommendation rules art. 17).
#[utoipa::path(delete, path = "/api/v1/customers/{id}/tags/{tag}", tag = "recommendation", responses((status = 204), (status = 400)))]
pub async fn delete_tag(State(st): State<AppState>, Path((id, tag)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let ok = match tag.split_once(':') {
        Some(("product", code)) => st.behaviour.shelf().by_code.contains_key(code),
        Some(("kind", k)) => ProductKind::parse(k).is_some_and(|p| p.code() == k),
        _ => false,
    };
    if !ok {
        return Err(ApiError::BadRequest(format!("tag {tag:?}: expected product:CODE of a known product or kind:{}", ProductKind::expected())));
    }
    st.behaviour.delete_tag(cid, &tag, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The behaviour state of a customer: per product and in total.
#[utoipa::path(get, path = "/api/v1/customers/{id}/behaviour", tag = "behaviour", params(LimitParam), responses((status = 200, body = Object)))]
pub async fn customer_behaviour(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<LimitParam>) -> Result<Json<Value>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    let shelf = st.behaviour.shelf();
    let now = chrono::Utc::now().timestamp();
    let state = st.behaviour.with_state(|s, wm| {
        let c = s.customer(cid as u32)?;
        let products: Vec<Value> = c.pairs.iter().map(|p| {
            let o = shelf.catalogue.offer(p.product);
            serde_json::json!({
                "product": o.map(|o| o.code.clone()), "name": o.map(|o| o.name.clone()),
                "views": p.views, "views_7d": p.views_recent(&s.cfg, now), "active_days": p.active_days,
                "dwell_ms": p.dwell_ms, "mean_dwell_ms": p.mean_dwell_ms(), "max_depth": p.max_depth,
                "last_seen": chrono::DateTime::from_timestamp(p.last_seen_secs(), 0),
                "purchases": p.purchases, "quantity": p.quantity, "amount_fen": p.amount_fen,
                "interest": p.interest_at(&s.cfg, now),
            })
        }).collect();
        Some(serde_json::json!({
            "events": c.events, "active_days": c.active_days, "product_views": c.product_views, "purchases": c.purchases,
            "conversion": c.conversion(), "last_seen": chrono::DateTime::from_timestamp(c.last_seen_secs(), 0),
            "products": products, "watermark": wm,
        }))
    });
    let timeline = st.store.customer_events(cid, q.limit.unwrap_or(20).clamp(1, 500)).await?;
    Ok(Json(serde_json::json!({ "customer_id": cid, "state": state, "timeline": timeline })))
}

/// Viewers, buyers and conversion of a product.
#[utoipa::path(get, path = "/api/v1/products/{code}/behaviour", tag = "behaviour", responses((status = 200, body = Object), (status = 404)))]
pub async fn product_behaviour(State(st): State<AppState>, Path(code): Path<String>) -> Result<Json<Value>, ApiError> {
    let shelf = st.behaviour.shelf();
    let id = *shelf.by_code.get(&code).ok_or_else(|| ApiError::NotFound { what: "product", key: code.clone() })?;
    let p = st.behaviour.with_state(|s, _| s.products.get(&id).copied().unwrap_or_default());
    Ok(Json(serde_json::json!({ "product": code, "views": p.views, "viewers": p.viewers, "purchases": p.purchases, "buyers": p.buyers, "amount_fen": p.amount_fen, "conversion": p.conversion() })))
}

#[derive(Deserialize, IntoParams)]
pub struct FunnelParams {
    /// First day (inclusive), `YYYY-MM-DD`; default 30 days before `to`.
    from: Option<String>,
    /// Last day (inclusive); default today.
    to: Option<String>,
    /// `gender`, `age_band` or `income_band`; none for all customers.
    segment: Option<String>,
    /// One product code; none for every product.
    product: Option<String>,
}

/// View → detail → purchase per product (and segment) over a date range.
#[utoipa::path(get, path = "/api/v1/analytics/funnel", tag = "behaviour", params(FunnelParams), responses((status = 200, body = Object), (status = 400)))]
pub async fn funnel(State(st): State<AppState>, Query(q): Query<FunnelParams>) -> Result<Json<Value>, ApiError> {
    let day = |s: &Option<String>, name: &str| -> Result<Option<chrono::NaiveDate>, ApiError> {
        s.as_deref()
            .map(|v| kehu_domain::ingest::fields::parse_date(v).ok_or_else(|| ApiError::BadRequest(format!("{name}={v:?}: expected a date like 2026-11-01"))))
            .transpose()
    };
    let to = day(&q.to, "to")?.unwrap_or_else(|| st.today());
    let from = day(&q.from, "from")?.unwrap_or(to - chrono::Days::new(30));
    if from > to {
        return Err(ApiError::BadRequest(format!("from {from} is after to {to}")));
    }
    let ms = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_local_timezone(st.cfg.offset).single().expect("fixed offset").timestamp_millis();
    let product = match &q.product {
        Some(code) => Some(*st.behaviour.shelf().by_code.get(code).ok_or_else(|| ApiError::NotFound { what: "product", key: code.clone() })? as i64),
        None => None,
    };
    if let Some(s) = &q.segment {
        if !["gender", "age_band", "income_band"].contains(&s.as_str()) {
            return Err(ApiError::BadRequest(format!("segment={s:?}: expected gender, age_band or income_band")));
        }
    }
    let cfg = &st.behaviour.cfg;
    let rows = st
        .store
        .funnel(ms(from), ms(to + chrono::Days::new(1)), q.segment.as_deref(), product, cfg.detail_dwell_ms, cfg.detail_depth, to)
        .await?;
    Ok(Json(serde_json::json!({ "from": from, "to": to, "segment": q.segment, "detail_dwell_ms": cfg.detail_dwell_ms, "detail_depth": cfg.detail_depth, "rows": rows })))
}

/// The suitability checks recorded for a customer (newest first).
#[utoipa::path(get, path = "/api/v1/customers/{id}/suitability-checks", tag = "suitability", responses((status = 200, body = Object)))]
pub async fn checks(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cid = customer_id(&st, &id).await?;
    Ok(Json(serde_json::to_value(st.store.suitability_checks(cid).await?).unwrap_or_default()))
}

/// The app keys (names only; keys are shown once, at creation).
#[utoipa::path(get, path = "/api/v1/app-keys", tag = "behaviour", responses((status = 200, body = Object)))]
pub async fn app_keys(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(serde_json::to_value(st.store.list_app_keys().await?).unwrap_or_default()))
}

/// Saves the behaviour state now (it is also saved periodically and at shutdown).
#[utoipa::path(put, path = "/api/v1/behaviour/snapshot", tag = "behaviour", responses((status = 204)))]
pub async fn snapshot(State(st): State<AppState>) -> Result<StatusCode, ApiError> {
    st.behaviour.snapshot().await?;
    Ok(StatusCode::NO_CONTENT)
}
