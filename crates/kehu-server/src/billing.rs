//! Electricity billing and collections over HTTP: penalty calculator, reads and the review
//! queue, billing runs, bills, payments and reversals, ageing, the dunning timeline and
//! worklist, credit grades. Rules come from the domain, storage from the store; this
//! module only maps requests and errors.

use crate::api_auth::{acting_staff, staff_may, ApiCaller};
use crate::web::nav::Perm;
use crate::{ApiError, AppState};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use kehu_domain::billing::credit::CreditResult;
use kehu_domain::billing::dunning::{DunningStep, TimelineEvent};
use kehu_domain::billing::penalty::{exact_penalty, overdue_days};
use kehu_domain::billing::{BandUse, CustomerClass, Period};
use kehu_domain::Fen;
use kehu_store::billing::{
    AgeingGroup, AgeingRow, BillingError, NewPayment, NewRead, ReadOutcome, Receipt, Resolution,
    ReviewItem, RunReport, StoredBill, WorkItem, DepositItem, RebillItem,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(
        penalty,
        add_read,
        review_queue,
        rebills,
        missing,
        estimate,
        resolve,
        run,
        bills,
        pay,
        reverse,
        ageing,
        worklist,
        deposits,
        timeline,
        add_dunning,
        credit
    ),
    components(schemas(
        PenaltyResponse,
        NewRead,
        ReadOutcome,
        BandUse,
        ReviewItem,
        ResolveRequest,
        MissingResponse,
        RebillsResponse,
        RebillItem,
        EstimateRequest,
        Resolution,
        RunRequest,
        RunReport,
        StoredBill,
        NewPayment,
        Receipt,
        ReversalRequest,
        AgeingRow,
        WorkItem,
        DepositItem,
        TimelineEvent,
        CreditResult
    ))
)]
pub struct BillingApiDoc;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/billing/penalty", get(penalty))
        .route("/api/v1/billing/reads", post(add_read))
        .route("/api/v1/billing/review", get(review_queue))
        .route("/api/v1/billing/rebills", get(rebills))
        .route("/api/v1/billing/missing", get(missing))
        .route("/api/v1/billing/meters/{meter}/estimate", post(estimate))
        .route("/api/v1/billing/review/{read_id}", post(resolve))
        .route("/api/v1/billing/runs", post(run))
        .route("/api/v1/billing/accounts/{account}/bills", get(bills))
        .route("/api/v1/billing/payments", post(pay))
        .route("/api/v1/billing/payments/{payment}/reversal", post(reverse))
        .route("/api/v1/billing/ageing", get(ageing))
        .route("/api/v1/billing/dunning/worklist", get(worklist))
        .route("/api/v1/billing/deposits", get(deposits))
        .route(
            "/api/v1/billing/accounts/{account}/dunning",
            get(timeline).post(add_dunning),
        )
        .route("/api/v1/billing/accounts/{account}/credit", get(credit))
}

/// A billing error as JSON: `{"error": {"code", "message", "details"?}}` with a status
/// that says whose move it is.
pub enum BillingApiError {
    Billing(BillingError),
    /// Refused before the billing rules were asked (who may call what).
    Api(ApiError),
}

impl From<BillingError> for BillingApiError {
    fn from(e: BillingError) -> Self {
        BillingApiError::Billing(e)
    }
}

impl From<ApiError> for BillingApiError {
    fn from(e: ApiError) -> Self {
        BillingApiError::Api(e)
    }
}

fn bad(msg: String) -> BillingApiError {
    BillingApiError::Billing(BillingError::Invalid(msg))
}

impl IntoResponse for BillingApiError {
    fn into_response(self) -> Response {
        use BillingError as E;
        let e = match self {
            BillingApiError::Api(a) => return a.into_response(),
            BillingApiError::Billing(e) => e,
        };
        let e = &e;
        let (status, code) = match e {
            E::UnknownMeter { .. }
            | E::UnknownAccount { .. }
            | E::UnknownTariff { .. }
            | E::UnknownPayment { .. } => (StatusCode::NOT_FOUND, "not_found"),
            E::UnreviewedReads { .. } => (StatusCode::CONFLICT, "unreviewed_reads"),
            E::Gates { .. } => (StatusCode::CONFLICT, "legal_gates"),
            E::OutOfOrder { .. }
            | E::ConflictingResend { .. }
            | E::AlreadyReversed { .. }
            | E::LaterPayments { .. }
            | E::NotInReview { .. } => (StatusCode::CONFLICT, "conflict"),
            E::Tariff { .. } | E::NotPositive { .. } | E::BadResolution { .. } | E::Invalid(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            E::Store(_) => {
                tracing::error!(error = %e, "store error");
                (StatusCode::INTERNAL_SERVER_ERROR, "store_error")
            }
        };
        let details = match e {
            E::Gates { gates, .. } => serde_json::to_value(gates).ok(),
            E::UnreviewedReads { count, first, .. } => {
                Some(serde_json::json!({ "count": count, "first": first }))
            }
            _ => None,
        };
        let mut body = serde_json::json!({ "error": { "code": code, "message": e.to_string() } });
        if let Some(d) = details {
            body["error"]["details"] = d;
        }
        (status, Json(body)).into_response()
    }
}

type R<T> = Result<Json<T>, BillingApiError>;

fn day(name: &str, v: &str) -> Result<NaiveDate, BillingApiError> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| bad(format!("{name} {v:?}: expected a date like 2026-10-15")))
}

/// The day of an `as_of` parameter: today when it is absent.
fn as_of(s: &AppState, v: Option<&str>) -> Result<NaiveDate, BillingApiError> {
    v.map_or_else(|| Ok(s.today()), |v| day("as_of", v))
}

#[derive(Deserialize, IntoParams)]
struct PenaltyParams {
    /// residential | non_residential | important
    class: String,
    /// Unpaid principal in yuan.
    amount: String,
    /// Due date, YYYY-MM-DD.
    due: String,
    /// Payment date, YYYY-MM-DD.
    paid: String,
}

#[derive(Serialize, ToSchema)]
struct PenaltyResponse {
    /// Yuan with two decimals.
    penalty: String,
    penalty_fen: Fen,
    days_overdue: i64,
    days_in_due_year: i64,
    days_in_later_years: i64,
}

/// Late-payment penalty (供电营业规则 art. 98) with the configured rates.
#[utoipa::path(get, path = "/api/v1/billing/penalty", params(PenaltyParams), responses((status = 200, body = PenaltyResponse)))]
async fn penalty(State(s): State<AppState>, Query(p): Query<PenaltyParams>) -> R<PenaltyResponse> {
    let class = CustomerClass::parse_loose(&p.class).ok_or_else(|| {
        bad(format!(
            "class {:?}: expected {}",
            p.class,
            CustomerClass::expected()
        ))
    })?;
    let amount =
        Fen::parse_yuan(&p.amount).map_err(|e| bad(format!("amount {:?}: {e}", p.amount)))?;
    if amount.is_negative() {
        return Err(bad(format!("amount {:?}: cannot be negative", p.amount)));
    }
    let (due, paid) = (day("due", &p.due)?, day("paid", &p.paid)?);
    let rates = s.billing.penalty;
    let fen = exact_penalty(&rates, class, amount, due, paid).settle(&rates);
    let (a, b) = overdue_days(due, paid);
    Ok(Json(PenaltyResponse {
        penalty: fen.to_plain(),
        penalty_fen: fen,
        days_overdue: a + b,
        days_in_due_year: a,
        days_in_later_years: b,
    }))
}

/// Receive one meter read; it is checked (VEE) and stored clean or into the review queue.
///
/// A time-of-use meter sends its peak, flat and valley registers (`peak`, `flat`,
/// `valley`, whole kWh) beside the total `value`: all three or none (some without the
/// others is refused with 400, naming them). When the previous read has them too, the
/// answer's `bands` is the consumption by band (peak and valley from their registers, flat
/// the rest of the total); bands that do not add up to the total within
/// `vee.band_tolerance_kwh` send the read to review with the flag `band_mismatch`.
#[utoipa::path(post, path = "/api/v1/billing/reads", request_body = NewRead, responses((status = 200, body = ReadOutcome)))]
async fn add_read(State(s): State<AppState>, Json(r): Json<NewRead>) -> R<ReadOutcome> {
    Ok(Json(
        s.store
            .add_read(&r, &s.billing.vee, s.today(), Utc::now())
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
struct LimitParams {
    /// At most this many (default 100).
    limit: Option<i64>,
}

/// Reads waiting for review, oldest first.
#[utoipa::path(get, path = "/api/v1/billing/review", params(LimitParams), responses((status = 200, body = [ReviewItem])))]
async fn review_queue(
    State(s): State<AppState>,
    Query(p): Query<LimitParams>,
) -> R<Vec<ReviewItem>> {
    Ok(Json(
        s.store
            .review_queue(p.limit.unwrap_or(100).clamp(1, 10_000))
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
struct MissingParams {
    /// YYYY-MM
    period: String,
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct RebillsResponse {
    /// How many billed reads changed after billing in all.
    count: i64,
    /// The latest of them (at most `limit`), newest first.
    items: Vec<RebillItem>,
}

/// Bills to adjust: billed reads whose consumption changed after billing (an earlier read
/// of the meter was corrected, estimated or rejected), newest first.
#[utoipa::path(get, path = "/api/v1/billing/rebills", params(LimitParams), responses((status = 200, body = RebillsResponse)))]
async fn rebills(State(s): State<AppState>, Query(p): Query<LimitParams>) -> R<RebillsResponse> {
    let (count, items) = s.store.rebills(p.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    Ok(Json(RebillsResponse { count, items }))
}

#[derive(Serialize, ToSchema)]
struct MissingResponse {
    count: i64,
    meters: Vec<String>,
}

/// Meters without a read in a period (漏抄).
#[utoipa::path(get, path = "/api/v1/billing/missing", params(MissingParams), responses((status = 200, body = MissingResponse)))]
async fn missing(State(s): State<AppState>, Query(p): Query<MissingParams>) -> R<MissingResponse> {
    let period = Period::parse(&p.period).ok_or_else(|| {
        bad(format!(
            "period {:?}: expected a month like 2026-10",
            p.period
        ))
    })?;
    let (count, meters) = s
        .store
        .missing_reads(period, p.limit.unwrap_or(100).clamp(1, 10_000))
        .await?;
    Ok(Json(MissingResponse { count, meters }))
}

#[derive(Deserialize, ToSchema)]
struct EstimateRequest {
    /// The read date, YYYY-MM-DD.
    read_on: NaiveDate,
    /// Same period last year instead of the average of the last periods.
    #[serde(default)]
    last_year: bool,
    /// Who estimated it: with a staff member's API token, that staff member (this field may
    /// be left out, and may not name anyone else).
    staff: Option<String>,
    reason: String,
}

/// Store an estimated read for a meter whose read is missing (audited).
#[utoipa::path(post, path = "/api/v1/billing/meters/{meter}/estimate", params(("meter" = String, Path)), request_body = EstimateRequest, responses((status = 200, body = ReviewItem)))]
async fn estimate(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Path(meter): Path<String>,
    Json(r): Json<EstimateRequest>,
) -> R<ReviewItem> {
    let staff = acting_staff(caller.as_deref(), r.staff.as_deref(), Perm::MeterReview, "estimating a missing read")?;
    Ok(Json(
        s.store
            .estimate_missing_read(
                &meter,
                r.read_on,
                r.last_year,
                &staff,
                &r.reason,
                &s.billing.vee,
                Utc::now(),
            )
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
struct ResolveRequest {
    resolution: Resolution,
    /// Who decided: with a staff member's API token, that staff member (this field may be
    /// left out, and may not name anyone else).
    staff: Option<String>,
    reason: String,
}

/// Resolve a read in review: accept, correct, estimate or reject. Audited.
#[utoipa::path(post, path = "/api/v1/billing/review/{read_id}", params(("read_id" = i64, Path)), request_body = ResolveRequest, responses((status = 200, body = ReviewItem)))]
async fn resolve(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Path(id): Path<i64>,
    Json(r): Json<ResolveRequest>,
) -> R<ReviewItem> {
    let staff = acting_staff(caller.as_deref(), r.staff.as_deref(), Perm::MeterReview, "reviewing a read")?;
    Ok(Json(
        s.store
            .resolve_read(
                id,
                &r.resolution,
                &staff,
                &r.reason,
                &s.billing.vee,
                Utc::now(),
            )
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
struct RunRequest {
    /// YYYY-MM
    period: String,
    /// Bill the accounts whose reads are clean; hold the others.
    #[serde(default)]
    only_clean: bool,
}

/// Bill a period. 409 with the count and the first reads while reads wait for review.
#[utoipa::path(post, path = "/api/v1/billing/runs", request_body = RunRequest, responses((status = 200, body = RunReport), (status = 409, description = "reads wait for review")))]
async fn run(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Json(r): Json<RunRequest>,
) -> R<RunReport> {
    staff_may(caller.as_deref(), Perm::Billing, "running a billing period")?;
    let p = Period::parse(&r.period).ok_or_else(|| {
        bad(format!(
            "period {:?}: expected a month like 2026-10",
            r.period
        ))
    })?;
    Ok(Json(
        s.store
            .billing_run(p, r.only_clean, &s.billing, Utc::now())
            .await?,
    ))
}

/// The bills of an account with their lines.
#[utoipa::path(get, path = "/api/v1/billing/accounts/{account}/bills", params(("account" = String, Path)), responses((status = 200, body = [StoredBill])))]
async fn bills(State(s): State<AppState>, Path(account): Path<String>) -> R<Vec<StoredBill>> {
    s.store.account_credit(&account).await?;
    Ok(Json(s.store.account_bills(&account).await?))
}

/// Record a payment; returns the receipt (what it paid, what is left as credit).
#[utoipa::path(post, path = "/api/v1/billing/payments", request_body = NewPayment, responses((status = 200, body = Receipt)))]
async fn pay(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Json(p): Json<NewPayment>,
) -> R<Receipt> {
    staff_may(caller.as_deref(), Perm::Billing, "recording a payment")?;
    Ok(Json(
        s.store.record_payment(&p, &s.billing, Utc::now()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
struct ReversalRequest {
    /// Who reversed it: with a staff member's API token, that staff member (this field may
    /// be left out, and may not name anyone else).
    staff: Option<String>,
    reason: String,
}

/// Reverse a payment (the account's latest in force).
#[utoipa::path(post, path = "/api/v1/billing/payments/{payment}/reversal", params(("payment" = String, Path)), request_body = ReversalRequest, responses((status = 204)))]
async fn reverse(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Path(payment): Path<String>,
    Json(r): Json<ReversalRequest>,
) -> Result<StatusCode, BillingApiError> {
    let staff = acting_staff(caller.as_deref(), r.staff.as_deref(), Perm::Billing, "reversing a payment")?;
    s.store
        .reverse_payment(&payment, &staff, &r.reason, Utc::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
struct AgeingParams {
    /// account | area | class (default class)
    by: Option<String>,
    /// The day to age on (default today).
    as_of: Option<String>,
}

/// Arrears (unpaid principal) by ageing bucket.
#[utoipa::path(get, path = "/api/v1/billing/ageing", params(AgeingParams), responses((status = 200, body = [AgeingRow])))]
async fn ageing(State(s): State<AppState>, Query(p): Query<AgeingParams>) -> R<Vec<AgeingRow>> {
    let by = p.by.as_deref().unwrap_or("class");
    let group = AgeingGroup::parse(by)
        .ok_or_else(|| bad(format!("by {by:?}: expected {}", AgeingGroup::expected())))?;
    let d = as_of(&s, p.as_of.as_deref())?;
    Ok(Json(s.store.ageing(d, group).await?))
}

#[derive(Deserialize, IntoParams)]
struct AsOfParams {
    as_of: Option<String>,
}

/// Who needs which dunning step on the day, by the ladder of their credit grade.
#[utoipa::path(get, path = "/api/v1/billing/dunning/worklist", params(AsOfParams), responses((status = 200, body = [WorkItem])))]
async fn worklist(State(s): State<AppState>, Query(p): Query<AsOfParams>) -> R<Vec<WorkItem>> {
    let d = as_of(&s, p.as_of.as_deref())?;
    Ok(Json(s.store.dunning_worklist(d, &s.billing).await?))
}

/// Whom to ask for a deposit or guarantee (电费保证金) on the day: every postpaid account
/// whose credit grade calls for more than it holds, the largest shortfall first.
#[utoipa::path(get, path = "/api/v1/billing/deposits", params(AsOfParams), responses((status = 200, body = [DepositItem])))]
async fn deposits(State(s): State<AppState>, Query(p): Query<AsOfParams>) -> R<Vec<DepositItem>> {
    let d = as_of(&s, p.as_of.as_deref())?;
    Ok(Json(s.store.deposit_worklist(d, &s.billing).await?))
}

/// The dunning timeline of an account.
#[utoipa::path(get, path = "/api/v1/billing/accounts/{account}/dunning", params(("account" = String, Path)), responses((status = 200, body = [TimelineEvent])))]
async fn timeline(State(s): State<AppState>, Path(account): Path<String>) -> R<Vec<TimelineEvent>> {
    s.store.account_credit(&account).await?;
    Ok(Json(s.store.dunning_timeline(&account).await?))
}

/// Add a dunning step. A disconnection order or execution must pass the legal gates:
/// refused with 409 and every failed gate.
#[utoipa::path(post, path = "/api/v1/billing/accounts/{account}/dunning", params(("account" = String, Path)), request_body = TimelineEvent,
    responses((status = 200, body = TimelineEvent), (status = 409, description = "a legal gate is not met")))]
async fn add_dunning(
    State(s): State<AppState>,
    caller: Option<Extension<ApiCaller>>,
    Path(account): Path<String>,
    Json(mut e): Json<TimelineEvent>,
) -> R<TimelineEvent> {
    if let Some(c) = caller.as_deref() {
        if e.step == DunningStep::DisconnectionOrder {
            // The token's staff member approves; `staff` names who asked for the order.
            let approver = acting_staff(Some(c), e.approver.as_deref(), Perm::ApproveDisconnection, "approving a disconnection order")?;
            e.approver = Some(approver);
        } else {
            let claimed = Some(e.staff.as_str()).filter(|s| !s.trim().is_empty());
            e.staff = acting_staff(Some(c), claimed, Perm::Billing, "recording a dunning step")?;
        }
    }
    Ok(Json(
        s.store.record_dunning(&account, &e, &s.billing).await?,
    ))
}

/// The account's credit grade with its score and the reason.
#[utoipa::path(get, path = "/api/v1/billing/accounts/{account}/credit", params(("account" = String, Path), AsOfParams), responses((status = 200, body = CreditResult)))]
async fn credit(
    State(s): State<AppState>,
    Path(account): Path<String>,
    Query(p): Query<AsOfParams>,
) -> R<CreditResult> {
    let d = as_of(&s, p.as_of.as_deref())?;
    Ok(Json(s.store.credit_grade(&account, d, &s.billing).await?))
}
