//! The collections workbench of a power supplier: arrears by age (a chart), the dunning
//! worklist, the meter-read review queue with its decisions, and the supply account page
//! (bills, consumption chart, credit grade, dunning timeline, the next dunning step).
//! Every rule is the domain's and every write the store's; a refused step shows the
//! legal gates it failed, in the reader's language.

use super::charts::{self, Datum, Frame};
use super::i18n::{Lang, Tr};
use super::nav::Perm;
use super::pages::{Chrome, StaffCtx};
use super::{render, urlencode, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use kehu_domain::billing::dunning::TimelineEvent;
use kehu_domain::billing::{AgeingBucket, AgeingTotals, DunningStep, Period};
use kehu_domain::state::Role;
use kehu_domain::Fen;
use kehu_store::AuditAction;
use kehu_store::billing::{AgeingGroup, BillingError, ReadStatus, Resolution, ReviewItem};
use serde::Deserialize;

/// Most worklist lines and review-queue reads one page shows.
const PAGE_ROWS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/billing", get(overview))
        .route("/billing/accounts/{account}", get(account))
        .route("/billing/accounts/{account}/dunning", post(add_dunning))
        .route("/billing/accounts/{account}/payments", post(take_payment))
        .route("/billing/accounts/{account}/payments/{payment}/reversal", post(reverse_payment))
        .route("/billing/runs", get(run_page).post(run_period))
        .route("/billing/deposits", get(deposits))
        .route("/meter-review", get(review))
        .route("/meter-review/{read}", post(resolve))
}

fn store_err(e: BillingError) -> PageError {
    match e {
        BillingError::Store(s) => s.into(),
        other => PageError::Internal(other.to_string()),
    }
}

fn step_label(t: &Tr, s: DunningStep) -> &'static str {
    t.label(s.label_zh(), s.label_en())
}

// ---------------------------------------------------------------- overview

struct WorkRow {
    account: String,
    class: &'static str,
    grade: String,
    oldest_due: String,
    days: String,
    outstanding: String,
    step: &'static str,
    step_code: &'static str,
}

struct GroupRow {
    key: String,
    bills: String,
    cells: Vec<String>,
    total: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct OverviewTpl {
    c: Chrome,
    today: String,
    group: String,
    groups: Vec<(&'static str, &'static str)>,
    buckets: Vec<&'static str>,
    chart: String,
    total: String,
    rows: Vec<GroupRow>,
    work: Vec<WorkRow>,
    work_total: usize,
    steps: Vec<(&'static str, &'static str, usize)>,
    step: String,
    review_count: String,
    may_review: bool,
    may_run: bool,
    rebill_count: String,
    rebills: Vec<RebillRow>,
}

/// A bill to adjust, as the overview lists it.
struct RebillRow {
    account: String,
    meter: String,
    read_on: String,
    period: String,
    kwh_billed: String,
    kwh_right: String,
    why: String,
}

/// Bills to adjust the overview shows (the newest; the count covers all).
const REBILL_ROWS: i64 = 20;

#[derive(Deserialize)]
pub struct OverviewQuery {
    group: Option<String>,
    step: Option<String>,
}

fn bucket_amount(t: &AgeingTotals, b: AgeingBucket) -> Fen {
    match b {
        AgeingBucket::Current => t.current,
        AgeingBucket::D1To30 => t.d1_30,
        AgeingBucket::D31To60 => t.d31_60,
        AgeingBucket::D61To90 => t.d61_90,
        AgeingBucket::Over90 => t.over_90,
    }
}

async fn overview(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Billing)?;
    let t = ctx.t;
    let group_s = q.group.unwrap_or_else(|| "class".into());
    let group = AgeingGroup::parse(&group_s).ok_or(PageError::BadField {
        key: "error.bad_group",
        value: group_s.chars().take(32).collect(),
    })?;
    let step = match q.step.as_deref().unwrap_or("") {
        "" => None,
        v => Some(DunningStep::parse(v).ok_or(PageError::BadField {
            key: "error.bad_step",
            value: v.chars().take(32).collect(),
        })?),
    };
    let today = s.today();
    let ageing = s.store.ageing(today, group).await.map_err(store_err)?;
    let mut all = AgeingTotals::default();
    for r in &ageing {
        for b in AgeingBucket::ALL {
            all.add(*b, bucket_amount(&r.totals, *b));
        }
    }
    let data: Vec<Datum> = AgeingBucket::ALL
        .iter()
        .map(|b| {
            let v = bucket_amount(&all, *b);
            Datum::new(t.label(b.label_zh(), b.label_en()), v.0, t.money(v))
        })
        .collect();
    let chart = charts::bar(
        &Frame {
            id: "ageing-chart",
            title: t.s("billing.ageing_chart"),
            desc: &t.f("billing.ageing_desc", &[("date", &t.date(today))]),
            label_header: t.s("billing.bucket"),
            value_header: t.s("billing.outstanding"),
        },
        &data,
    );
    let label_of = |key: &str| -> String {
        match group {
            AgeingGroup::Class => kehu_domain::billing::CustomerClass::parse(key)
                .map(|c| t.label(c.label_zh(), c.label_en()).to_string())
                .unwrap_or_else(|| key.to_string()),
            AgeingGroup::Area if key.is_empty() => t.s("billing.no_area").to_string(),
            _ => key.to_string(),
        }
    };
    // Largest arrears first; the page shows the first rows, the totals cover all.
    let mut sorted: Vec<_> = ageing.iter().collect();
    sorted.sort_by(|a, b| b.total.0.cmp(&a.total.0).then(a.key.cmp(&b.key)));
    let rows = sorted
        .into_iter()
        .take(PAGE_ROWS)
        .map(|r| GroupRow {
            key: label_of(&r.key),
            bills: t.int(r.bills as i64),
            cells: AgeingBucket::ALL
                .iter()
                .map(|b| t.money(bucket_amount(&r.totals, *b)))
                .collect(),
            total: t.money(r.total),
        })
        .collect();
    let work_all = s
        .store
        .dunning_worklist(today, &s.billing)
        .await
        .map_err(store_err)?;
    let steps = DunningStep::ALL
        .iter()
        .map(|st| {
            let n = work_all.iter().filter(|w| w.step == *st).count();
            (st.code(), step_label(&t, *st), n)
        })
        .filter(|(_, _, n)| *n > 0)
        .collect();
    let chosen: Vec<_> = work_all
        .iter()
        .filter(|w| step.is_none_or(|st| w.step == st))
        .collect();
    let work_total = chosen.len();
    let work = chosen
        .into_iter()
        .take(PAGE_ROWS)
        .map(|w| WorkRow {
            account: w.account.clone(),
            class: t.label(w.class.label_zh(), w.class.label_en()),
            grade: w.grade.code().to_string(),
            oldest_due: t.date(w.oldest_due),
            days: t.int(w.days_overdue),
            outstanding: t.money(w.outstanding),
            step: step_label(&t, w.step),
            step_code: w.step.code(),
        })
        .collect();
    let review_count = s.store.review_count().await.map_err(store_err)?;
    let (rebill_count, rebill_items) = s.store.rebills(REBILL_ROWS).await.map_err(store_err)?;
    let kwh = |k: Option<u64>| k.map(|k| t.int(k as i64)).unwrap_or_else(|| "—".into());
    let rebills = rebill_items
        .into_iter()
        .map(|i| RebillRow {
            why: format!("{} · {} · {}", i.staff, t.date(i.at.date_naive()), i.reason),
            account: i.account,
            meter: i.meter,
            read_on: t.date(i.read_on),
            period: i.period.unwrap_or_default(),
            kwh_billed: kwh(i.kwh_billed),
            kwh_right: kwh(i.kwh_right),
        })
        .collect();
    Ok(render(&OverviewTpl {
        today: t.date(today),
        group: group.code().to_string(),
        groups: AgeingGroup::ALL
            .iter()
            .map(|g| (g.code(), t.label(g.label_zh(), g.label_en())))
            .collect(),
        buckets: AgeingBucket::ALL
            .iter()
            .map(|b| t.label(b.label_zh(), b.label_en()))
            .collect(),
        chart,
        total: t.money(all.total()),
        rows,
        work,
        work_total,
        steps,
        step: step.map(|s| s.code().to_string()).unwrap_or_default(),
        review_count: t.int(review_count),
        may_review: ctx.require(Perm::MeterReview).is_ok(),
        may_run: ctx.require(Perm::RunBilling).is_ok(),
        rebill_count: t.int(rebill_count),
        rebills,
        c: ctx.chrome(),
    }))
}

// ---------------------------------------------------------------- deposits

struct DepositRow {
    account: String,
    class: &'static str,
    grade: &'static str,
    average: String,
    required: String,
    held: String,
    shortfall: String,
}

#[derive(Template)]
#[template(path = "billing_deposits.html")]
struct DepositsTpl {
    c: Chrome,
    today: String,
    count: String,
    total: String,
    chart: String,
    rows: Vec<DepositRow>,
}

/// Whom to ask for a deposit or guarantee: the shortfall by credit grade (a chart) and the
/// accounts, the largest shortfall first.
async fn deposits(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    use kehu_domain::billing::CreditGrade;
    ctx.require(Perm::Billing)?;
    let t = ctx.t;
    let today = s.today();
    let list = s
        .store
        .deposit_worklist(today, &s.billing)
        .await
        .map_err(store_err)?;
    let by_grade = |g: CreditGrade| -> Fen {
        list.iter()
            .filter(|i| i.grade == g)
            .fold(Fen::ZERO, |a, i| a + i.shortfall)
    };
    let data: Vec<Datum> = CreditGrade::ALL
        .iter()
        .map(|g| {
            let v = by_grade(*g);
            Datum::new(t.label(g.label_zh(), g.label_en()), v.0, t.money(v))
        })
        .collect();
    let chart = charts::bar(
        &Frame {
            id: "deposit-chart",
            title: t.s("deposits.chart"),
            desc: &t.f("deposits.chart_desc", &[("date", &t.date(today))]),
            label_header: t.s("account.grade"),
            value_header: t.s("deposits.shortfall"),
        },
        &data,
    );
    let total = list.iter().fold(Fen::ZERO, |a, i| a + i.shortfall);
    let rows = list
        .iter()
        .take(PAGE_ROWS)
        .map(|i| DepositRow {
            account: i.account.clone(),
            class: t.label(i.class.label_zh(), i.class.label_en()),
            grade: i.grade.code(),
            average: t.money(i.average_bill),
            required: t.money(i.required),
            held: t.money(i.held),
            shortfall: t.money(i.shortfall),
        })
        .collect();
    Ok(render(&DepositsTpl {
        today: t.date(today),
        count: t.int(list.len() as i64),
        total: t.money(total),
        chart,
        rows,
        c: ctx.chrome(),
    }))
}

// ---------------------------------------------------------------- review queue

struct ReviewRow {
    id: i64,
    meter: String,
    account: String,
    read_on: String,
    value: String,
    prev_read_on: String,
    kwh: String,
    flags: Vec<&'static str>,
    /// The time-of-use registers as read (peak, flat, valley): the correction form then
    /// takes corrected ones too.
    bands: Option<[String; 3]>,
}

#[derive(Template)]
#[template(path = "meter_review.html")]
struct ReviewTpl {
    c: Chrome,
    count: String,
    rows: Vec<ReviewRow>,
    actions: Vec<(&'static str, &'static str)>,
    done: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ReviewQuery {
    done: Option<i64>,
    /// The meter's next read, measured again after the decision (see `FollowUp`).
    next: Option<i64>,
    on: Option<NaiveDate>,
    before: Option<String>,
    after: Option<String>,
    status: Option<String>,
    rebill: Option<bool>,
}

const ACTIONS: [&str; 5] = [
    "accept",
    "correct",
    "estimate_average",
    "estimate_last_year",
    "reject",
];

async fn review_page(
    s: &AppState,
    ctx: StaffCtx,
    done: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let items: Vec<ReviewItem> = s
        .store
        .review_queue(PAGE_ROWS as i64)
        .await
        .map_err(store_err)?;
    let count = s.store.review_count().await.map_err(store_err)?;
    let rows = items
        .iter()
        .map(|r| ReviewRow {
            id: r.read_id,
            meter: r.meter.clone(),
            account: r.account.clone(),
            read_on: t.date(r.read_on),
            value: t.int(r.value as i64),
            prev_read_on: r.prev_read_on.map(|d| t.date(d)).unwrap_or_default(),
            kwh: r.kwh.map(|k| t.int(k as i64)).unwrap_or_else(|| "—".into()),
            flags: r
                .flags
                .iter()
                .map(|f| t.label(f.label_zh(), f.label_en()))
                .collect(),
            bands: r.bands.map(|b| {
                [b.peak, b.flat, b.valley].map(|v| t.int(v as i64))
            }),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = render(&ReviewTpl {
        count: t.int(count),
        rows,
        actions: ACTIONS
            .iter()
            .map(|a| (*a, t.s(action_key(a))))
            .collect(),
        done,
        error,
        c: ctx.chrome(),
    });
    Ok((status, page).into_response())
}

fn action_key(a: &str) -> &'static str {
    match a {
        "accept" => "review.accept",
        "correct" => "review.correct",
        "estimate_average" => "review.estimate_average",
        "estimate_last_year" => "review.estimate_last_year",
        _ => "review.reject",
    }
}

async fn review(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Query(q): Query<ReviewQuery>,
) -> Result<Response, PageError> {
    ctx.require(Perm::MeterReview)?;
    let mut done = q
        .done
        .map(|id| ctx.t.f("review.done", &[("id", &id.to_string())]));
    if let (Some(d), Some(next), Some(on)) = (done.as_mut(), q.next, q.on) {
        let kwh = |v: &Option<String>| v.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| "—".into());
        let status = q
            .status
            .as_deref()
            .and_then(ReadStatus::parse)
            .map(|st| ctx.t.label(st.label_zh(), st.label_en()).to_string())
            .unwrap_or_default();
        let key = if q.rebill == Some(true) { "review.followup_rebill" } else { "review.followup" };
        d.push(' ');
        d.push_str(&ctx.t.f(
            key,
            &[
                ("next", &next.to_string()),
                ("on", &on.to_string()),
                ("before", &kwh(&q.before)),
                ("after", &kwh(&q.after)),
                ("status", &status),
            ],
        ));
    }
    review_page(&s, ctx, done, None).await
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    value: String,
    /// Corrected time-of-use registers: all three, or none to keep the ones read.
    #[serde(default)]
    peak: String,
    #[serde(default)]
    flat: String,
    #[serde(default)]
    valley: String,
    #[serde(default)]
    reason: String,
}

async fn resolve(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Path(read): Path<i64>,
    Form(f): Form<ResolveForm>,
) -> Result<Response, PageError> {
    ctx.require(Perm::MeterReview)?;
    ctx.check_csrf(&f.csrf)?;
    let t = ctx.t;
    let resolution = match f.action.as_str() {
        "accept" => Resolution::Accept,
        "correct" => {
            let number = |s: &str| s.trim().replace([',', '，'], "");
            let regs = [&f.peak, &f.flat, &f.valley].map(|s| number(s));
            let bands = if regs.iter().all(|r| r.is_empty()) {
                None
            } else {
                match regs.each_ref().map(|r| r.parse::<u64>()) {
                    [Ok(peak), Ok(flat), Ok(valley)] => {
                        Some(kehu_domain::billing::vee::BandRegisters { peak, flat, valley })
                    }
                    _ => {
                        let msg = t.f(
                            "review.bad_bands",
                            &[("id", &read.to_string()), ("value", &regs.join(" / "))],
                        );
                        return review_page(&s, ctx, None, Some(msg)).await;
                    }
                }
            };
            match number(&f.value).parse::<u64>() {
                Ok(value) => Resolution::Correct { value, bands },
                Err(_) => {
                    let msg = t.f(
                        "review.bad_value",
                        &[("id", &read.to_string()), ("value", f.value.trim())],
                    );
                    return review_page(&s, ctx, None, Some(msg)).await;
                }
            }
        }
        "estimate_average" => Resolution::EstimateAverage,
        "estimate_last_year" => Resolution::EstimateLastYear,
        "reject" => Resolution::Reject,
        other => {
            return Err(PageError::BadField {
                key: "error.bad_review_action",
                value: other.chars().take(32).collect(),
            })
        }
    };
    let reason = f.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        let msg = t.f("review.need_reason", &[("id", &read.to_string())]);
        return review_page(&s, ctx, None, Some(msg)).await;
    }
    match s
        .store
        .resolve_read(
            read,
            &resolution,
            &ctx.staff.external_id,
            reason,
            &s.billing.vee,
            Utc::now(),
        )
        .await
    {
        Ok(item) => {
            tracing::info!(target: "kehu::audit", staff = %ctx.staff.external_id, read, action = %f.action, "meter read reviewed");
            let mut to = format!("/meter-review?done={read}");
            if let Some(f) = item.follow_up {
                let kwh = |k: Option<u64>| k.map(|k| k.to_string()).unwrap_or_default();
                to.push_str(&format!(
                    "&next={}&on={}&before={}&after={}&status={}&rebill={}",
                    f.read_id,
                    f.read_on,
                    kwh(f.kwh_before),
                    kwh(f.kwh_after),
                    f.status.code(),
                    f.rebill
                ));
            }
            Ok(Redirect::to(&to).into_response())
        }
        Err(e @ (BillingError::BadResolution { .. } | BillingError::NotInReview { .. })) => {
            let msg = t.f(
                "review.refused",
                &[("id", &read.to_string()), ("reason", &e.to_string())],
            );
            review_page(&s, ctx, None, Some(msg)).await
        }
        Err(e) => Err(store_err(e)),
    }
}

// ---------------------------------------------------------------- account

struct BillRow {
    period: String,
    kwh: String,
    total: String,
    due: String,
    paid: String,
    owed: String,
    overdue: bool,
    lines: Vec<(String, String, String)>,
}

struct EventRow {
    at: String,
    step: &'static str,
    staff: String,
    approver: String,
    planned: String,
    note: String,
}

#[derive(Template)]
#[template(path = "supply_account.html")]
struct AccountTpl {
    c: Chrome,
    number: String,
    name: String,
    facts: Vec<(&'static str, String)>,
    grade: String,
    score: String,
    grade_reason: String,
    /// The deposit the grade calls for and what is still to be asked for.
    deposit_rule: String,
    deposit_short: bool,
    owed: String,
    chart: String,
    bills: Vec<BillRow>,
    events: Vec<EventRow>,
    steps: Vec<(&'static str, &'static str)>,
    may_approve: bool,
    message: Option<String>,
    gates: Vec<String>,
    /// The payment form: its id (a resent form records the payment once), today, channels.
    payment_id: String,
    today: String,
    channels: Vec<(&'static str, &'static str)>,
    receipt: Option<ReceiptView>,
    payments: Vec<PaymentView>,
}

/// A payment in the account's list; the latest in force carries the reversal form.
struct PaymentView {
    no: String,
    /// `no`, encoded for the form's address.
    url: String,
    paid_on: String,
    channel: String,
    amount: String,
    /// How and why it was reversed.
    reversed: Option<String>,
    may_reverse: bool,
}

/// A receipt as the desk prints it.
struct ReceiptView {
    no: String,
    paid_on: String,
    amount: String,
    credit_used: String,
    credit: String,
    /// (period, principal, late fee)
    lines: Vec<(String, String, String)>,
}

/// Payment channels the desk records (`billing_payments.channel`).
const CHANNELS: [(&str, &str); 5] = [
    ("counter", "account.channel_counter"),
    ("bank", "account.channel_bank"),
    ("wechat", "account.channel_wechat"),
    ("alipay", "account.channel_alipay"),
    ("app", "account.channel_app"),
];

#[derive(Deserialize)]
pub struct AccountQuery {
    recorded: Option<String>,
    /// A payment just taken: its receipt is shown.
    receipt: Option<String>,
    /// A payment just reversed.
    reversed: Option<String>,
}

async fn account(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Path(number): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Billing)?;
    let message = q
        .recorded
        .as_deref()
        .and_then(DunningStep::parse)
        .map(|st| {
            ctx.t
                .f("account.recorded", &[("step", step_label(&ctx.t, st))])
        });
    let receipt = match q.receipt.as_deref() {
        Some(id) => s
            .store
            .receipt(id)
            .await
            .map_err(store_err)?
            .filter(|r| r.account == number),
        None => None,
    };
    account_page_with(&s, ctx, &number, message, Vec::new(), receipt, q.reversed.as_deref()).await
}

async fn account_page(
    s: &AppState,
    ctx: StaffCtx,
    number: &str,
    message: Option<String>,
    gates: Vec<String>,
) -> Result<Response, PageError> {
    account_page_with(s, ctx, number, message, gates, None, None).await
}

async fn account_page_with(
    s: &AppState,
    ctx: StaffCtx,
    number: &str,
    message: Option<String>,
    gates: Vec<String>,
    receipt: Option<kehu_store::billing::Receipt>,
    // A payment the address says was just reversed: announced only if it is this
    // account's and reversed indeed.
    reversed: Option<&str>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let today = s.today();
    let view = s
        .store
        .supply_account(number)
        .await
        .map_err(store_err)?
        .ok_or(PageError::NotFound)?;
    let a = &view.account;
    let grade = s
        .store
        .credit_grade(number, today, &s.billing)
        .await
        .map_err(store_err)?;
    let bills = s.store.account_bills(number).await.map_err(store_err)?;
    let timeline = s.store.dunning_timeline(number).await.map_err(store_err)?;
    let listed = s.store.account_payments(number, 20).await.map_err(store_err)?;
    let message = message.or_else(|| {
        let id = reversed?;
        listed
            .iter()
            .find(|p| p.payment == id && p.reversed_at.is_some())
            .map(|p| t.f("account.reversal_done", &[("payment", &p.payment)]))
    });
    let mut latest_in_force = true;
    let payments: Vec<PaymentView> = listed
        .into_iter()
        .map(|p| {
            let may_reverse = p.reversed_at.is_none() && latest_in_force;
            if p.reversed_at.is_none() {
                latest_in_force = false;
            }
            PaymentView {
                url: urlencode(&p.payment),
                paid_on: t.date(p.paid_on),
                channel: CHANNELS
                    .iter()
                    .find(|(c, _)| *c == p.channel)
                    .map_or(p.channel.clone(), |(_, key)| t.s(key).to_string()),
                amount: t.money(p.amount),
                reversed: p.reversed_at.map(|at| {
                    t.f(
                        "account.reversed",
                        &[
                            ("at", &at.format("%Y-%m-%d %H:%M").to_string()),
                            ("staff", p.reversed_by.as_deref().unwrap_or("")),
                            ("reason", p.reversal_reason.as_deref().unwrap_or("")),
                        ],
                    )
                }),
                may_reverse,
                no: p.payment,
            }
        })
        .collect();
    let mut owed = 0i64;
    let rows: Vec<BillRow> = bills
        .iter()
        .rev()
        .map(|b| {
            let left = b.total.0 - b.paid_principal.0;
            owed += left.max(0);
            BillRow {
                period: b.period.clone(),
                kwh: t.int(b.kwh as i64),
                total: t.money(b.total),
                due: t.date(b.due_on),
                paid: t.money(Fen(b.paid_principal.0 + b.paid_penalty.0)),
                owed: t.money(Fen(left.max(0))),
                overdue: left > 0 && b.due_on < today,
                lines: b
                    .lines
                    .iter()
                    .map(|l| (l.label.clone(), t.int(l.kwh as i64), t.money(l.amount)))
                    .collect(),
            }
        })
        .collect();
    // Consumption over the last 24 bills, oldest first.
    let recent: Vec<_> = bills.iter().rev().take(24).rev().collect();
    let chart = if recent.is_empty() {
        String::new()
    } else {
        charts::line(
            &Frame {
                id: "consumption-chart",
                title: t.s("account.consumption"),
                desc: &t.f("account.consumption_desc", &[("n", &recent.len().to_string())]),
                label_header: t.s("account.period"),
                value_header: t.s("account.kwh"),
            },
            &recent.iter().map(|b| b.period.clone()).collect::<Vec<_>>(),
            &[(
                t.s("account.kwh").to_string(),
                recent.iter().map(|b| b.kwh as i64).collect(),
            )],
            &super::i18n::group,
        )
    };
    // The deposit the grade calls for: months of the average bill of the last 12 bills
    // (rounded half up to the fen), less what is held.
    let latest: Vec<Fen> = bills
        .iter()
        .rev()
        .take(kehu_domain::billing::credit::DEPOSIT_AVERAGE_BILLS)
        .map(|b| b.total)
        .collect();
    let average = kehu_domain::billing::credit::average_bill(&latest);
    let (required, missing) =
        kehu_domain::billing::credit::deposit_required(&s.billing.credit, grade.grade, average, a.deposit);
    let deposit_rule = t.f(
        "account.deposit_rule",
        &[
            ("grade", grade.grade.code()),
            ("required", &t.money(required)),
            ("average", &t.money(average)),
            ("missing", &t.money(missing)),
        ],
    );
    let mut facts = vec![
        ("account.class", t.label(a.class.label_zh(), a.class.label_en()).to_string()),
        ("account.area", a.area.clone().unwrap_or_default()),
        ("account.tariff", a.tariff.clone()),
        ("account.opened", t.date(a.opened_on)),
        ("account.deposit", t.money(a.deposit)),
        ("account.credit", t.money(view.credit)),
        (
            "account.payment_mode",
            t.s(if a.prepaid { "account.prepaid" } else { "account.postpaid" }).to_string(),
        ),
        (
            "account.meters",
            view.meters
                .iter()
                .map(|(m, mult, mode)| {
                    let mut s = format!("{m} ×{mult}");
                    if *mode {
                        s.push_str(&format!(" ({})", t.s("account.prepaid_mode")));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    if let Some(d) = view.last_theft_on {
        facts.push(("account.theft", t.date(d)));
    }
    let events = timeline
        .iter()
        .rev()
        .map(|e| EventRow {
            at: e.at.format("%Y-%m-%d %H:%M").to_string(),
            step: step_label(&t, e.step),
            staff: e.staff.clone(),
            approver: e.approver.clone().unwrap_or_default(),
            planned: e
                .planned_at
                .map(|p| p.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            note: e.note.clone().unwrap_or_default(),
        })
        .collect();
    let may_approve = may_approve(ctx.staff.role);
    let steps = DunningStep::ALL
        .iter()
        .filter(|st| **st != DunningStep::DisconnectionOrder)
        .map(|st| (st.code(), step_label(&t, *st)))
        .collect();
    let status = if gates.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = render(&AccountTpl {
        number: a.external_id.clone(),
        name: a.name.clone(),
        facts: facts.into_iter().map(|(k, v)| (t.s(k), v)).collect(),
        grade: grade.grade.code().to_string(),
        score: grade.score.to_string(),
        grade_reason: grade.reason.clone(),
        deposit_rule,
        deposit_short: missing.0 > 0,
        owed: t.money(Fen(owed)),
        chart,
        bills: rows,
        events,
        steps,
        may_approve,
        message,
        gates,
        payment_id: new_payment_id(),
        today: today.to_string(),
        channels: CHANNELS.iter().map(|(code, key)| (*code, t.s(key))).collect(),
        receipt: receipt.map(|r| ReceiptView {
            no: r.payment.clone(),
            paid_on: t.date(r.paid_on),
            amount: t.money(r.amount),
            credit_used: t.money(r.credit_used),
            credit: t.money(r.credit),
            lines: r
                .lines
                .iter()
                .map(|l| (l.period.clone(), t.money(l.principal), t.money(l.penalty)))
                .collect(),
        }),
        payments,
        c: ctx.chrome(),
    });
    Ok((status, page).into_response())
}

/// A fresh id for a payment form (`WB-` and 16 random hex digits): the payment takes it
/// as its id, so a form sent twice records one payment.
fn new_payment_id() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the operating system's random source");
    format!("WB-{:016x}", u64::from_le_bytes(b))
}

#[derive(Deserialize)]
pub struct PaymentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    payment_id: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    paid_on: String,
    #[serde(default)]
    channel: String,
}

/// Takes a payment at the desk: allocated by the billing rules (oldest bill first, late fee
/// before principal, the rest kept as credit), audited, then the account page shows the
/// receipt.
async fn take_payment(
    State(s): State<AppState>,
    client: super::Client,
    ctx: StaffCtx,
    Path(number): Path<String>,
    Form(f): Form<PaymentForm>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Billing)?;
    ctx.check_csrf(&f.csrf)?;
    let t = ctx.t;
    let id = f.payment_id.trim();
    let id_ok = id.len() == 19
        && id.starts_with("WB-")
        && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok {
        return Err(PageError::BadField {
            key: "error.bad_form",
            value: id.chars().take(32).collect(),
        });
    }
    let today = s.today();
    let amount = Fen::parse_yuan(&f.amount).ok().filter(|a| a.0 > 0);
    let paid_on = NaiveDate::parse_from_str(f.paid_on.trim(), "%Y-%m-%d").ok().filter(|d| *d <= today);
    let refused = match (amount, paid_on) {
        (None, _) => Some(t.f("account.bad_amount", &[("value", &f.amount.chars().take(32).collect::<String>())])),
        (_, None) => Some(t.f("account.bad_paid_on", &[("value", &f.paid_on.chars().take(32).collect::<String>())])),
        _ => None,
    };
    let Some(channel) = CHANNELS.iter().find(|(c, _)| *c == f.channel.trim()).map(|(c, _)| *c) else {
        return Err(PageError::BadField {
            key: "error.bad_channel",
            value: f.channel.chars().take(32).collect(),
        });
    };
    let (Some(amount), Some(paid_on), None) = (amount, paid_on, refused.clone()) else {
        let msg = refused.unwrap_or_default();
        return account_page(&s, ctx, &number, Some(t.s("account.payment_refused").to_string()), vec![msg]).await;
    };
    let pay = kehu_store::billing::NewPayment {
        external_id: id.to_string(),
        account: number.clone(),
        amount,
        paid_on,
        channel: channel.to_string(),
    };
    match s.store.record_payment(&pay, &s.billing, Utc::now()).await {
        Ok(r) => {
            super::admin::Audit {
                detail: Some(format!("{} {} {}", r.payment, r.account, r.amount.to_plain())),
                ..ctx.audit(AuditAction::PaymentRecord)
            }
            .record(&s, &client)
            .await?;
            Ok(Redirect::to(&format!(
                "/billing/accounts/{}?receipt={}",
                urlencode(&number),
                urlencode(&r.payment)
            ))
            .into_response())
        }
        Err(BillingError::UnknownAccount { .. }) => Err(PageError::NotFound),
        Err(e @ (BillingError::NotPositive { .. } | BillingError::Invalid(_))) => {
            account_page(&s, ctx, &number, Some(t.s("account.payment_refused").to_string()), vec![e.to_string()]).await
        }
        Err(e) => Err(store_err(e)),
    }
}

#[derive(Deserialize)]
pub struct ReversalForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Reverses the account's latest payment in force at the desk (the store's rule: bills and
/// credit go back to what they were before it), with the reason, audited; a refusal says
/// why and changes nothing.
async fn reverse_payment(
    State(s): State<AppState>,
    client: super::Client,
    ctx: StaffCtx,
    Path((number, payment)): Path<(String, String)>,
    Form(f): Form<ReversalForm>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Billing)?;
    ctx.check_csrf(&f.csrf)?;
    let t = ctx.t;
    // Only this account's payments are reversed from its page.
    let receipt = s.store.receipt(&payment).await.map_err(store_err)?;
    let Some(receipt) = receipt.filter(|r| r.account == number) else {
        return Err(PageError::NotFound);
    };
    let reason = f.reason.trim();
    if reason.is_empty() {
        return account_page(&s, ctx, &number, Some(t.s("account.reversal_refused").to_string()), vec![t.s("account.reason_required").to_string()]).await;
    }
    let reason: String = reason.chars().take(200).collect();
    match s.store.reverse_payment(&payment, &ctx.staff.external_id, &reason, Utc::now()).await {
        Ok(()) => {
            super::admin::Audit {
                detail: Some(format!("{} {} {} {}", payment, number, receipt.amount.to_plain(), reason)),
                ..ctx.audit(AuditAction::PaymentReverse)
            }
            .record(&s, &client)
            .await?;
            Ok(Redirect::to(&format!("/billing/accounts/{}?reversed={}", urlencode(&number), urlencode(&payment))).into_response())
        }
        Err(e @ (BillingError::AlreadyReversed { .. } | BillingError::LaterPayments { .. })) => {
            account_page(&s, ctx, &number, Some(t.s("account.reversal_refused").to_string()), vec![e.to_string()]).await
        }
        Err(BillingError::UnknownPayment { .. }) => Err(PageError::NotFound),
        Err(e) => Err(store_err(e)),
    }
}

/// Who may approve a disconnection order: the approver is the logged-in staff member, so
/// the approval cannot be typed in by the collector who asks for it.
fn may_approve(role: Role) -> bool {
    super::nav::can(role, Perm::ApproveDisconnection)
}

#[derive(Deserialize)]
pub struct DunningForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    /// For a disconnection order: the collector who asked for it.
    #[serde(default)]
    requested_by: String,
    /// For a disconnection order: when the supply is to be cut (`YYYY-MM-DDTHH:MM`).
    #[serde(default)]
    planned: String,
    #[serde(default)]
    note: String,
}

async fn add_dunning(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Path(number): Path<String>,
    Form(f): Form<DunningForm>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Billing)?;
    ctx.check_csrf(&f.csrf)?;
    let t = ctx.t;
    let step = DunningStep::parse(f.step.trim()).ok_or(PageError::BadField {
        key: "error.bad_step",
        value: f.step.chars().take(32).collect(),
    })?;
    let now = Utc::now().with_timezone(&s.cfg.offset).naive_local();
    let note = Some(f.note.trim().chars().take(500).collect::<String>()).filter(|n| !n.is_empty());
    let me = ctx.staff.external_id.clone();
    let event = if step == DunningStep::DisconnectionOrder {
        if !may_approve(ctx.staff.role) {
            return Err(PageError::Forbidden);
        }
        let planned = match parse_local(&f.planned) {
            Some(p) => p,
            None => {
                return Err(PageError::BadField {
                    key: "error.bad_planned",
                    value: f.planned.chars().take(32).collect(),
                })
            }
        };
        let requested_by = f.requested_by.trim();
        if requested_by.is_empty() || requested_by.chars().count() > 64 {
            return Err(PageError::BadField {
                key: "error.bad_requested_by",
                value: requested_by.chars().take(64).collect(),
            });
        }
        TimelineEvent {
            step,
            at: now,
            staff: requested_by.to_string(),
            approver: Some(me.clone()),
            planned_at: Some(planned),
            note,
        }
    } else {
        TimelineEvent {
            step,
            at: now,
            staff: me.clone(),
            approver: None,
            planned_at: None,
            note,
        }
    };
    match s.store.record_dunning(&number, &event, &s.billing).await {
        Ok(_) => {
            tracing::info!(target: "kehu::audit", staff = %me, account = %number, step = step.code(), "dunning step recorded");
            Ok(Redirect::to(&format!(
                "/billing/accounts/{}?recorded={}",
                urlencode(&number),
                step.code()
            ))
            .into_response())
        }
        Err(BillingError::Gates { gates, .. }) => {
            let lines = gates
                .iter()
                .map(|g| match t.lang {
                    Lang::ZhCn => g.zh(),
                    Lang::En => g.to_string(),
                })
                .collect();
            let msg = t.f("account.refused", &[("step", step_label(&t, step))]);
            account_page(&s, ctx, &number, Some(msg), lines).await
        }
        Err(BillingError::UnknownAccount { .. }) => Err(PageError::NotFound),
        Err(e) => Err(store_err(e)),
    }
}

/// `YYYY-MM-DDTHH:MM` (an `<input type="datetime-local">`) or with a space.
fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().replace(' ', "T");
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_times_from_the_form() {
        let p = parse_local("2026-11-30T09:30").unwrap();
        assert_eq!(p.to_string(), "2026-11-30 09:30:00");
        assert_eq!(parse_local("2026-11-30 09:30"), Some(p));
        assert!(parse_local("30/11/2026").is_none());
        assert!(parse_local("").is_none());
    }

    #[test]
    fn only_a_branch_head_or_admin_approves_a_disconnection() {
        assert!(may_approve(Role::BranchHead));
        assert!(may_approve(Role::Admin));
        assert!(!may_approve(Role::Collector));
        assert!(!may_approve(Role::CustomerManager));
    }
}

// ---------------------------------------------------------------- billing runs

#[derive(Template)]
#[template(path = "billing_run.html")]
struct RunTpl {
    c: Chrome,
    period: String,
    message: Option<String>,
    refused: bool,
    /// The first reads waiting for review, when the run was refused.
    first: Vec<String>,
    /// What the run did, as label and value.
    facts: Vec<(&'static str, String)>,
}

/// The period a branch head most likely bills: last month.
fn last_period(today: NaiveDate) -> String {
    use chrono::Datelike;
    let first = today.with_day(1).unwrap_or(today);
    let prev = first.pred_opt().unwrap_or(first);
    format!("{:04}-{:02}", prev.year(), prev.month())
}

async fn run_page(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    ctx.require(Perm::RunBilling)?;
    let period = last_period(s.today());
    Ok(render(&RunTpl { c: ctx.chrome(), period, message: None, refused: false, first: Vec::new(), facts: Vec::new() }))
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    only_clean: Option<String>,
}

/// Bills a period from the workbench (`Store::billing_run`, the same as `kehu billing run`
/// and the API), audited; a refusal shows the reads that wait for review.
async fn run_period(
    State(s): State<AppState>,
    client: super::Client,
    ctx: StaffCtx,
    Form(f): Form<RunForm>,
) -> Result<Response, PageError> {
    ctx.require(Perm::RunBilling)?;
    ctx.check_csrf(&f.csrf)?;
    let t = ctx.t;
    let Some(period) = Period::parse(f.period.trim()) else {
        return Err(PageError::BadField {
            key: "billing_run.bad_period",
            value: f.period.chars().take(16).collect(),
        });
    };
    let only_clean = f.only_clean.is_some();
    let p = period.to_string();
    match s.store.billing_run(period, only_clean, &s.billing, Utc::now()).await {
        Ok(r) => {
            super::admin::Audit {
                detail: Some(format!("{} bills {} total {}", r.period, r.bills, r.total.to_plain())),
                ..ctx.audit(AuditAction::BillingRun)
            }
            .record(&s, &client)
            .await?;
            let message = t.f(
                "billing_run.done",
                &[("period", &r.period), ("bills", &r.bills.to_string()), ("total", &t.money(r.total)), ("kwh", &r.kwh.to_string())],
            );
            let facts = vec![
                (t.s("billing_run.held"), r.held_for_review.to_string()),
                (t.s("billing_run.already"), r.already_billed.to_string()),
                (t.s("billing_run.missing"), r.meters_without_read.to_string()),
                (t.s("billing_run.tou_flat"), r.tou_billed_at_flat.to_string()),
                (t.s("billing_run.prepaid"), r.prepaid_alerts.len().to_string()),
            ];
            Ok(render(&RunTpl { c: ctx.chrome(), period: p, message: Some(message), refused: false, first: Vec::new(), facts }))
        }
        Err(BillingError::UnreviewedReads { count, first, .. }) => {
            let message = t.f("billing_run.refused", &[("period", &p), ("count", &count.to_string())]);
            let page = render(&RunTpl { c: ctx.chrome(), period: p, message: Some(message), refused: true, first, facts: Vec::new() });
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e @ (BillingError::Tariff { .. } | BillingError::UnknownTariff { .. } | BillingError::Invalid(_))) => {
            let page = render(&RunTpl { c: ctx.chrome(), period: p, message: Some(e.to_string()), refused: true, first: Vec::new(), facts: Vec::new() });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(store_err(e)),
    }
}
