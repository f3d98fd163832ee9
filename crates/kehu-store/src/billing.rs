//! Electricity billing storage: areas, tariffs, supply accounts, meters, reads with the
//! review queue and its audited edits, bills with lines, payments with allocations, and
//! the dunning timeline. The rules are `kehu_domain::billing`'s; this module fetches what
//! they need, calls them, and writes the result in one transaction per operation, so
//! nothing is ever half-applied.

use crate::BeginWrite;
use crate::{with_pool, StoreError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use kehu_domain::billing::allocation::{self, OpenBill};
use kehu_domain::billing::bill::{bill_period, Consumption, Period};
use kehu_domain::billing::dunning::{self, Arrears, DunningStep, Gate, TimelineEvent};
use kehu_domain::billing::penalty::accrued_penalty;
use kehu_domain::billing::credit;
use kehu_domain::billing::prepaid;
use kehu_domain::billing::tariff::{Tariff, TariffError, TierPeriod};
use kehu_domain::billing::vee::{
    self, BandRegisters, BandUse, PeriodUse, Read, ReadContext, VeeFlag, VeeRules,
};
use kehu_domain::billing::{
    AgeingTotals, BillingRules, CreditGrade, CreditInputs, CustomerClass, Meter, SupplyAccount,
};
use kehu_domain::code_enum;
use kehu_domain::Fen;
use serde::Serialize;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// What went wrong, with the key and value that caused it.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("unknown meter {meter:?}: import the meter first")]
    UnknownMeter { meter: String },
    #[error("unknown supply account {account:?}")]
    UnknownAccount { account: String },
    #[error("account {account:?}: unknown tariff {tariff:?}: store the tariff first")]
    UnknownTariff { account: String, tariff: String },
    #[error("tariff {code:?}: {source}")]
    Tariff {
        code: String,
        #[source]
        source: TariffError,
    },
    #[error("meter {meter:?}: read of {read_on} is older than the meter's latest read of {latest}: reads must arrive in date order")]
    OutOfOrder {
        meter: String,
        read_on: NaiveDate,
        latest: NaiveDate,
    },
    #[error("read {external_id:?} was already received with other values ({before}); send a correction through the review queue instead")]
    ConflictingResend { external_id: String, before: String },
    #[error("period {period}: {count} reads are waiting for review (first: {}); review them, or bill only the clean accounts", first.join("; "))]
    UnreviewedReads {
        period: String,
        count: i64,
        first: Vec<String>,
    },
    #[error("payment amount {amount} is not positive: a payment must be more than ¥0.00")]
    NotPositive { amount: String },
    #[error("unknown payment {payment:?}")]
    UnknownPayment { payment: String },
    #[error("payment {payment:?} was already reversed")]
    AlreadyReversed { payment: String },
    #[error("payment {payment:?}: reverse the later payments first ({later})")]
    LaterPayments { payment: String, later: String },
    #[error("read {read_id} is not in the review queue (status {status})")]
    NotInReview { read_id: i64, status: String },
    #[error("read {read_id}: {reason}")]
    BadResolution { read_id: i64, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("account {account:?}: {step} refused: {}", gates.iter().map(|g| g.to_string()).collect::<Vec<_>>().join("; "))]
    Gates {
        account: String,
        step: DunningStep,
        gates: Vec<Gate>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        BillingError::Store(StoreError::Db(e))
    }
}

pub type BResult<T> = std::result::Result<T, BillingError>;

code_enum!(
    /// Where a read stands.
    ReadStatus {
        Clean = "clean", "正常", "clean",
        Review = "review", "待审核", "waiting for review",
        Accepted = "accepted", "审核通过", "accepted",
        Corrected = "corrected", "已更正", "corrected",
        Estimated = "estimated", "已估算", "estimated",
        Billed = "billed", "已出账", "billed",
        Rejected = "rejected", "已作废", "rejected",
    }
);

/// Statuses whose consumption can be billed (and counts as history).
const BILLABLE: &str = "('clean', 'accepted', 'corrected', 'estimated')";
const HISTORY: &str = "('clean', 'accepted', 'corrected', 'estimated', 'billed')";
/// The statuses of `HISTORY`, for checks made outside SQL.
const HISTORY_STATUSES: [&str; 5] = ["clean", "accepted", "corrected", "estimated", "billed"];

/// A transformer area (台区).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Area {
    pub code: String,
    pub name: String,
}

/// A read as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NewRead {
    /// The read's id in the metering system; `METER@DATE` when absent.
    pub external_id: Option<String>,
    pub meter: String,
    pub read_on: NaiveDate,
    /// Register value in whole kWh (the total register).
    pub value: u64,
    /// Time-of-use peak register (峰) in whole kWh. `peak`, `flat` and `valley` come
    /// together or not at all.
    #[serde(default)]
    pub peak: Option<u64>,
    /// Time-of-use flat register (平) in whole kWh.
    #[serde(default)]
    pub flat: Option<u64>,
    /// Time-of-use valley register (谷) in whole kWh.
    #[serde(default)]
    pub valley: Option<u64>,
}

impl NewRead {
    /// A read of the total register only.
    pub fn total(meter: &str, read_on: NaiveDate, value: u64) -> NewRead {
        NewRead {
            external_id: None,
            meter: meter.into(),
            read_on,
            value,
            peak: None,
            flat: None,
            valley: None,
        }
    }

    /// The band registers: all three, or none; some without the others is refused,
    /// naming the read and what is missing.
    pub fn bands(&self) -> BResult<Option<BandRegisters>> {
        match (self.peak, self.flat, self.valley) {
            (Some(peak), Some(flat), Some(valley)) => {
                for (name, v) in [("peak", peak), ("flat", flat), ("valley", valley)] {
                    if i64::try_from(v).is_err() {
                        return Err(BillingError::Invalid(format!(
                            "meter {} read of {}: {name} register {v} too large",
                            self.meter, self.read_on
                        )));
                    }
                }
                Ok(Some(BandRegisters { peak, flat, valley }))
            }
            (None, None, None) => Ok(None),
            (p, f, v) => {
                let part = |name: &str, x: Option<u64>| match x {
                    Some(x) => format!("{name} {x}"),
                    None => format!("{name} missing"),
                };
                Err(BillingError::Invalid(format!(
                    "meter {} read of {}: band registers come all three or none ({}, {}, {}): give peak, flat and valley, or leave all three out",
                    self.meter,
                    self.read_on,
                    part("peak", p),
                    part("flat", f),
                    part("valley", v)
                )))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadOutcome {
    pub read_id: i64,
    pub status: ReadStatus,
    pub flags: Vec<VeeFlag>,
    pub kwh: Option<u64>,
    /// Consumption by time-of-use band (after the multiplier), when the read and the
    /// previous read both carry band registers that agree with the total.
    pub bands: Option<BandUse>,
}

/// A read in the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub read_id: i64,
    pub meter: String,
    pub account: String,
    pub read_on: NaiveDate,
    pub value: u64,
    pub prev_read_on: Option<NaiveDate>,
    pub kwh: Option<u64>,
    pub flags: Vec<VeeFlag>,
    pub status: ReadStatus,
    /// The read's time-of-use registers (peak, flat, valley) when it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bands: Option<BandRegisters>,
    /// After a resolution that changed the read's register or took it out of force: what
    /// became of the meter's next read, whose consumption is measured from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
}

/// The meter's next read after an earlier one was corrected, estimated or rejected: its
/// consumption is measured again from the read now before it and checked again (VEE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    pub read_id: i64,
    pub read_on: NaiveDate,
    pub kwh_before: Option<u64>,
    pub kwh_after: Option<u64>,
    pub flags: Vec<VeeFlag>,
    /// The next read's status now: `clean` or `review` as its new check says; a read a
    /// reviewer had already decided goes back to `review` when its consumption changed;
    /// a billed read keeps its bill and status (see `rebill`).
    pub status: ReadStatus,
    /// The next read was billed already with `kwh_before` kWh: its bill needs an
    /// adjustment (recorded in the read's audit trail as `needs_rebill`).
    pub rebill: bool,
}

/// What happens to the meter's next read when the consumption measured from the changed
/// earlier read comes out as `check` (pure; see `FollowUp`). `None` leaves it as it is.
fn follow_up_status(current: ReadStatus, kwh_before: Option<u64>, check: &vee::ReadCheck) -> Option<ReadStatus> {
    let checked = if check.clean() { ReadStatus::Clean } else { ReadStatus::Review };
    match current {
        ReadStatus::Billed | ReadStatus::Rejected => None,
        ReadStatus::Clean | ReadStatus::Review => Some(checked),
        // A reviewer's decision stands only for the consumption it was made on.
        ReadStatus::Accepted | ReadStatus::Corrected | ReadStatus::Estimated => {
            (check.kwh != kwh_before).then_some(ReadStatus::Review)
        }
    }
}

/// What a reviewer decides about a read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Resolution {
    /// The read is right as it is (its consumption is billed).
    Accept,
    /// The register value was wrong; this is the right one. A time-of-use read's band
    /// registers (peak, flat, valley) may be corrected with it; without `bands` the read
    /// keeps the ones it was read with.
    Correct {
        value: u64,
        #[serde(default)]
        bands: Option<BandRegisters>,
    },
    /// Replace the consumption by an estimate: average daily use of the last periods.
    EstimateAverage,
    /// Replace the consumption by the same period last year, scaled to the days.
    EstimateLastYear,
    /// The read is void (a duplicate, a wrong meter); it is never billed.
    Reject,
}

/// One audited edit of a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadEdit {
    pub read_id: i64,
    pub staff: String,
    pub at: DateTime<Utc>,
    pub action: String,
    pub before: String,
    pub after: String,
    pub reason: String,
}

/// What a billing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunReport {
    pub period: String,
    pub bills: u64,
    pub kwh: u64,
    pub total: Fen,
    /// Bills of this period that existed before the run (a re-run bills nothing twice).
    pub already_billed: u64,
    /// Accounts not billed because one of their reads waits for review.
    pub held_for_review: u64,
    /// Prepaid accounts whose meter is not in prepaid mode.
    pub prepaid_mode_mismatches: Vec<String>,
    /// Prepaid accounts whose balance ran low or out paying this period's bill.
    pub prepaid_alerts: Vec<PrepaidAlertRow>,
    /// Meters without a read in the period (see `missing_reads`; estimate them to bill).
    pub meters_without_read: i64,
    /// Time-of-use accounts billed at the flat price because a read of the period had no
    /// band consumption (no band registers, the first read with them, an estimate, or
    /// bands that did not add up to the total).
    pub tou_billed_at_flat: u64,
    /// The first of those accounts (at most 5).
    pub tou_billed_at_flat_first: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PrepaidAlertRow {
    pub account: String,
    pub alert: kehu_domain::billing::prepaid::PrepaidAlert,
}

/// A payment as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NewPayment {
    pub external_id: String,
    pub account: String,
    pub amount: Fen,
    pub paid_on: NaiveDate,
    /// counter | bank | app | wechat | alipay | …
    pub channel: String,
}

/// A receipt: what the payment paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub payment: String,
    pub account: String,
    pub amount: Fen,
    pub paid_on: NaiveDate,
    /// Credit the account held before, used by this payment.
    pub credit_used: Fen,
    pub lines: Vec<ReceiptLine>,
    /// Left over, kept as credit.
    pub credit: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReceiptLine {
    pub period: String,
    pub principal: Fen,
    pub penalty: Fen,
}

/// A stored bill with its lines and what is still owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredBill {
    pub id: i64,
    pub account: String,
    pub period: String,
    pub kwh: u64,
    pub total: Fen,
    pub due_on: NaiveDate,
    pub paid_principal: Fen,
    pub paid_penalty: Fen,
    pub lines: Vec<kehu_domain::billing::BillLine>,
}

code_enum!(AgeingGroup {
    Account = "account", "按户", "by account",
    Area = "area", "按台区", "by area",
    Class = "class", "按用户类别", "by customer class",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgeingRow {
    pub key: String,
    pub bills: u64,
    pub totals: AgeingTotals,
    pub total: Fen,
}

/// One line of the dunning worklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkItem {
    pub account: String,
    pub class: CustomerClass,
    pub grade: CreditGrade,
    pub oldest_due: NaiveDate,
    pub days_overdue: i64,
    pub outstanding: Fen,
    pub step: DunningStep,
}

/// A billed read whose consumption changed after it was billed (an earlier read of its
/// meter was corrected, estimated or rejected): its bill needs an adjustment. From the
/// read's audit trail (`needs_rebill`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RebillItem {
    pub read_id: i64,
    pub meter: String,
    pub account: String,
    pub read_on: NaiveDate,
    /// The period of the bill that billed it.
    pub period: Option<String>,
    /// The consumption billed, and the right one (kWh after the multiplier).
    pub kwh_billed: Option<u64>,
    pub kwh_right: Option<u64>,
    /// Who changed the earlier read, when and why.
    pub staff: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// One line of the deposit worklist: an account whose credit grade calls for more deposit
/// or guarantee (电费保证金) than it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DepositItem {
    pub account: String,
    pub class: CustomerClass,
    pub grade: CreditGrade,
    /// The average of its latest bills (`credit::average_bill`).
    pub average_bill: Fen,
    /// What the grade calls for: the grade's months of the average bill.
    pub required: Fen,
    pub held: Fen,
    /// Still to ask for: what the grade calls for less what is held.
    pub shortfall: Fen,
}

/// A payment as the account's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentRow {
    pub payment: String,
    #[schema(value_type = String)]
    pub amount: Fen,
    pub paid_on: NaiveDate,
    pub channel: String,
    pub reversed_at: Option<DateTime<Utc>>,
    pub reversed_by: Option<String>,
    pub reversal_reason: Option<String>,
}

/// Extra decoders for the billing tables, on both backends' rows.
trait BRow {
    fn g_i(&self, c: &str) -> Result<i64, sqlx::Error>;
    fn g_oi(&self, c: &str) -> Result<Option<i64>, sqlx::Error>;
    fn g_s(&self, c: &str) -> Result<String, sqlx::Error>;
    fn g_os(&self, c: &str) -> Result<Option<String>, sqlx::Error>;
    fn g_b(&self, c: &str) -> Result<bool, sqlx::Error>;
    fn g_d(&self, c: &str) -> Result<NaiveDate, sqlx::Error>;
    fn g_od(&self, c: &str) -> Result<Option<NaiveDate>, sqlx::Error>;
    fn g_ndt(&self, c: &str) -> Result<NaiveDateTime, sqlx::Error>;
    fn g_ondt(&self, c: &str) -> Result<Option<NaiveDateTime>, sqlx::Error>;
    fn g_t(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn g_ot(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
}

macro_rules! brow {
    ($row:ty) => {
        impl BRow for $row {
            fn g_i(&self, c: &str) -> Result<i64, sqlx::Error> {
                self.try_get(c)
            }
            fn g_oi(&self, c: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(c)
            }
            fn g_s(&self, c: &str) -> Result<String, sqlx::Error> {
                self.try_get(c)
            }
            fn g_os(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(c)
            }
            fn g_b(&self, c: &str) -> Result<bool, sqlx::Error> {
                self.try_get(c)
            }
            fn g_d(&self, c: &str) -> Result<NaiveDate, sqlx::Error> {
                self.try_get(c)
            }
            fn g_od(&self, c: &str) -> Result<Option<NaiveDate>, sqlx::Error> {
                self.try_get(c)
            }
            fn g_ndt(&self, c: &str) -> Result<NaiveDateTime, sqlx::Error> {
                self.try_get(c)
            }
            fn g_ondt(&self, c: &str) -> Result<Option<NaiveDateTime>, sqlx::Error> {
                self.try_get(c)
            }
            fn g_t(&self, c: &str) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get(c)
            }
            fn g_ot(&self, c: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get(c)
            }
        }
    };
}
brow!(sqlx::sqlite::SqliteRow);
brow!(sqlx::postgres::PgRow);

fn corrupt(table: &'static str, column: &'static str, value: String) -> BillingError {
    BillingError::Store(StoreError::Corrupt {
        table,
        column,
        value,
    })
}

fn flags_to_text(flags: &[VeeFlag]) -> String {
    flags.iter().map(|f| f.code()).collect::<Vec<_>>().join(",")
}

fn flags_from_text(s: &str) -> Vec<VeeFlag> {
    s.split(',').filter_map(VeeFlag::parse).collect()
}

/// VEE on an arriving read, and the status it enters with: clean, or waiting for review.
/// With band registers on this read and the previous one (`prev_bands`), the consumption
/// by band too; bands that do not agree with the total raise `band_mismatch`.
fn check_new_read(
    rules: &VeeRules,
    r: &NewRead,
    bands: Option<BandRegisters>,
    prev_bands: Option<BandRegisters>,
    ctx: &ReadContext<'_>,
) -> (vee::ReadCheck, ReadStatus, Option<BandUse>) {
    let mut check = vee::check_read(
        rules,
        Read {
            read_on: r.read_on,
            value: r.value,
        },
        ctx,
    );
    let band_use = match (prev_bands, bands, check.kwh) {
        (Some(prev), Some(cur), Some(kwh)) => match vee::band_use(rules, ctx.meter, prev, cur, kwh) {
            Ok(u) => Some(u),
            Err(_) => {
                check.flags.push(VeeFlag::BandMismatch);
                None
            }
        },
        _ => None,
    };
    let st = if check.clean() {
        ReadStatus::Clean
    } else {
        ReadStatus::Review
    };
    (check, st, band_use)
}

/// Band registers from three stored columns (all set, or none).
fn bands_from(peak: Option<i64>, flat: Option<i64>, valley: Option<i64>) -> Option<BandRegisters> {
    Some(BandRegisters {
        peak: peak? as u64,
        flat: flat? as u64,
        valley: valley? as u64,
    })
}

/// Band consumption from three stored columns (all set, or none).
fn band_use_from(peak: Option<i64>, flat: Option<i64>, valley: Option<i64>) -> Option<BandUse> {
    Some(BandUse {
        peak: peak? as u64,
        flat: flat? as u64,
        valley: valley? as u64,
    })
}

fn status(s: String) -> BResult<ReadStatus> {
    ReadStatus::parse(&s).ok_or_else(|| corrupt("billing_reads", "status", s))
}

fn meter_from(r: &impl BRow, account: String) -> BResult<Meter> {
    Ok(Meter {
        external_id: r.g_s("external_id")?,
        account,
        ct_ratio: r.g_i("ct_ratio")? as u32,
        pt_ratio: r.g_i("pt_ratio")? as u32,
        multiplier: r.g_i("multiplier")? as u32,
        register_digits: r.g_i("register_digits")? as u8,
        installed_on: r.g_d("installed_on")?,
        capacity_kva: r.g_i("capacity_kva")? as u32,
        prepaid_mode: r.g_b("prepaid_mode")?,
    })
}

fn review_item(r: &impl BRow) -> BResult<ReviewItem> {
    Ok(ReviewItem {
        read_id: r.g_i("id")?,
        meter: r.g_s("meter")?,
        account: r.g_s("account")?,
        read_on: r.g_d("read_on")?,
        value: r.g_i("value")? as u64,
        prev_read_on: r.g_od("prev_read_on")?,
        kwh: r.g_oi("kwh")?.map(|k| k as u64),
        flags: flags_from_text(&r.g_s("flags")?),
        status: status(r.g_s("status")?)?,
        bands: bands_from(r.g_oi("peak_value")?, r.g_oi("flat_value")?, r.g_oi("valley_value")?),
        follow_up: None,
    })
}

const REVIEW_COLS: &str =
    "r.id, m.external_id AS meter, a.external_id AS account, r.read_on, r.value, \
     r.prev_read_on, r.kwh, r.flags, r.status, r.peak_value, r.flat_value, r.valley_value";

fn snapshot(value: u64, kwh: Option<u64>, status: ReadStatus, flags: &[VeeFlag]) -> String {
    snapshot_bands(value, kwh, status, flags, None, None)
}

/// The audited state of a read; a time-of-use read's band registers and band consumption
/// are part of it when it has them.
fn snapshot_bands(
    value: u64,
    kwh: Option<u64>,
    status: ReadStatus,
    flags: &[VeeFlag],
    bands: Option<BandRegisters>,
    band_use: Option<BandUse>,
) -> String {
    let mut v = serde_json::json!({ "value": value, "kwh": kwh, "status": status.code(), "flags": flags_to_text(flags) });
    if let Some(b) = bands {
        v["bands"] = serde_json::json!(b);
    }
    if let Some(u) = band_use {
        v["band_kwh"] = serde_json::json!(u);
    }
    v.to_string()
}

impl crate::Store {
    pub async fn upsert_area(&self, a: &Area) -> BResult<()> {
        with_pool!(self, p => {
            sqlx::query("INSERT INTO billing_areas (code, name) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET name = excluded.name")
                .bind(&a.code).bind(&a.name).execute(p).await?;
        });
        Ok(())
    }

    /// Stores a tariff after checking it (sorted, non-overlapping tiers, …).
    pub async fn upsert_tariff(&self, code: &str, name: &str, t: &Tariff) -> BResult<()> {
        t.validate().map_err(|source| BillingError::Tariff {
            code: code.into(),
            source,
        })?;
        let spec = serde_json::to_string(t).expect("tariff serializes");
        with_pool!(self, p => {
            sqlx::query("INSERT INTO billing_tariffs (code, name, spec) VALUES ($1, $2, $3) \
                         ON CONFLICT (code) DO UPDATE SET name = excluded.name, spec = excluded.spec")
                .bind(code).bind(name).bind(&spec).execute(p).await?;
        });
        Ok(())
    }

    pub async fn tariffs(&self) -> BResult<HashMap<String, Tariff>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => {
            sqlx::query_as("SELECT code, spec FROM billing_tariffs").fetch_all(p).await?
        });
        rows.into_iter()
            .map(|(c, s)| match serde_json::from_str(&s) {
                Ok(t) => Ok((c, t)),
                Err(_) => Err(corrupt("billing_tariffs", "spec", s)),
            })
            .collect()
    }

    /// Creates or updates a supply account (its tariff must exist).
    pub async fn upsert_supply_account(&self, a: &SupplyAccount) -> BResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let t: Option<i64> = sqlx::query_scalar("SELECT id FROM billing_tariffs WHERE code = $1")
                .bind(&a.tariff).fetch_optional(&mut *tx).await?;
            if t.is_none() {
                return Err(BillingError::UnknownTariff { account: a.external_id.clone(), tariff: a.tariff.clone() });
            }
            sqlx::query("INSERT INTO billing_accounts (external_id, name, class, area, tariff, penalty_ppm, deposit_fen, prepaid, opened_on) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, class = excluded.class, area = excluded.area, \
                         tariff = excluded.tariff, penalty_ppm = excluded.penalty_ppm, deposit_fen = excluded.deposit_fen, \
                         prepaid = excluded.prepaid, opened_on = excluded.opened_on")
                .bind(&a.external_id).bind(&a.name).bind(a.class.code()).bind(&a.area).bind(&a.tariff)
                .bind(a.penalty_ppm.map(i64::from)).bind(a.deposit.0).bind(a.prepaid).bind(a.opened_on)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records electricity theft found on an account (drives the credit grade).
    pub async fn record_theft(&self, account: &str, on: NaiveDate) -> BResult<()> {
        let n = with_pool!(self, p => {
            sqlx::query("UPDATE billing_accounts SET last_theft_on = $1 WHERE external_id = $2")
                .bind(on).bind(account).execute(p).await?.rows_affected()
        });
        if n == 0 {
            return Err(BillingError::UnknownAccount {
                account: account.into(),
            });
        }
        Ok(())
    }

    pub async fn upsert_meter(&self, m: &Meter) -> BResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let acc: Option<i64> = sqlx::query_scalar("SELECT id FROM billing_accounts WHERE external_id = $1")
                .bind(&m.account).fetch_optional(&mut *tx).await?;
            let Some(acc) = acc else {
                return Err(BillingError::UnknownAccount { account: m.account.clone() });
            };
            sqlx::query("INSERT INTO billing_meters (external_id, account_id, ct_ratio, pt_ratio, multiplier, register_digits, installed_on, capacity_kva, prepaid_mode) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (external_id) DO UPDATE SET account_id = excluded.account_id, ct_ratio = excluded.ct_ratio, \
                         pt_ratio = excluded.pt_ratio, multiplier = excluded.multiplier, register_digits = excluded.register_digits, \
                         installed_on = excluded.installed_on, capacity_kva = excluded.capacity_kva, prepaid_mode = excluded.prepaid_mode")
                .bind(&m.external_id).bind(acc).bind(i64::from(m.ct_ratio)).bind(i64::from(m.pt_ratio))
                .bind(i64::from(m.multiplier)).bind(i64::from(m.register_digits)).bind(m.installed_on)
                .bind(i64::from(m.capacity_kva)).bind(m.prepaid_mode)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Receives one read: checks it (VEE) against the meter and its history and stores it,
    /// clean or into the review queue. Re-sending the same read is harmless.
    pub async fn add_read(
        &self,
        r: &NewRead,
        rules: &VeeRules,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> BResult<ReadOutcome> {
        let mut v = self
            .add_reads(std::slice::from_ref(r), rules, today, now)
            .await?;
        Ok(v.remove(0))
    }

    /// Receives reads in one transaction, in the given order (each checked against what
    /// the ones before it left): all are stored, or none when one is refused.
    pub async fn add_reads(
        &self,
        reads: &[NewRead],
        rules: &VeeRules,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> BResult<Vec<ReadOutcome>> {
        // Band registers all three or none, before anything is written.
        for r in reads {
            r.bands()?;
        }
        match &self.backend {
            crate::Backend::Sqlite(p) => {
                let mut tx = p.begin_write().await?;
                let out = crate::sqlite_bulk::on_raw(p, &mut tx, reads.len() >= INTAKE_PIPELINE_MIN, |db, reader| {
                    add_reads_sqlite(db, reader, reads, rules, today, now)
                })
                .await??;
                tx.commit().await?;
                Ok(out)
            }
            crate::Backend::Postgres(p) => {
                let mut tx = p.begin_write().await?;
                let out = add_reads_pg(&mut tx, reads, rules, today, now).await?;
                tx.commit().await?;
                Ok(out)
            }
        }
    }

    /// `None` for an unknown meter; otherwise the date of its latest read in force.
    pub async fn meter_latest_read(&self, meter: &str) -> BResult<Option<Option<NaiveDate>>> {
        let row: Option<(i64, Option<NaiveDate>)> = with_pool!(self, p => {
            sqlx::query_as("SELECT m.id, (SELECT MAX(r.read_on) FROM billing_reads r WHERE r.meter_id = m.id AND r.status <> 'rejected') \
                            FROM billing_meters m WHERE m.external_id = $1")
                .bind(meter).fetch_optional(p).await?
        });
        Ok(row.map(|(_, d)| d))
    }

    /// Meters without a read in force in `period` (漏抄): how many, and the first `limit`.
    pub async fn missing_reads(&self, period: Period, limit: i64) -> BResult<(i64, Vec<String>)> {
        let cond = "FROM billing_meters m WHERE NOT EXISTS (SELECT 1 FROM billing_reads r WHERE r.meter_id = m.id \
                    AND r.read_on >= $1 AND r.read_on <= $2 AND r.status <> 'rejected')";
        let (from, to) = (period.first_day(), period.last_day());
        with_pool!(self, p => {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {cond}")).bind(from).bind(to).fetch_one(p).await?;
            let first: Vec<String> = sqlx::query_scalar(&format!("SELECT m.external_id {cond} ORDER BY m.external_id LIMIT $3"))
                .bind(from).bind(to).bind(limit).fetch_all(p).await?;
            Ok((n, first))
        })
    }

    /// Stores an estimated read for a meter whose read is missing: the average daily use of
    /// the last periods (or the same period last year) over the days since the previous
    /// read. Audited like a review decision.
    pub async fn estimate_missing_read(
        &self,
        meter: &str,
        read_on: NaiveDate,
        last_year: bool,
        staff: &str,
        reason: &str,
        rules: &VeeRules,
        now: DateTime<Utc>,
    ) -> BResult<ReviewItem> {
        if staff.trim().is_empty() || reason.trim().is_empty() {
            return Err(BillingError::Invalid(
                "an estimate needs the staff member and the reason".into(),
            ));
        }
        let hist_sql = history_sql();
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let Some(m) = sqlx::query("SELECT m.id, m.multiplier, a.external_id AS account FROM billing_meters m JOIN billing_accounts a ON a.id = m.account_id WHERE m.external_id = $1")
                .bind(meter).fetch_optional(&mut *tx).await? else {
                return Err(BillingError::UnknownMeter { meter: meter.into() });
            };
            let (meter_id, mult) = (m.g_i("id")?, m.g_i("multiplier")?.max(1) as u64);
            let Some(prev) = sqlx::query("SELECT read_on, value FROM billing_reads WHERE meter_id = $1 AND status <> 'rejected' ORDER BY read_on DESC, id DESC LIMIT 1")
                .bind(meter_id).fetch_optional(&mut *tx).await? else {
                return Err(BillingError::Invalid(format!("meter {meter} has no read to estimate from")));
            };
            let (prev_on, prev_value) = (prev.g_d("read_on")?, prev.g_i("value")? as u64);
            if read_on <= prev_on {
                return Err(BillingError::OutOfOrder { meter: meter.into(), read_on, latest: prev_on });
            }
            let mut history = Vec::new();
            for h in sqlx::query(&hist_sql).bind(meter_id).bind(read_on).bind(rules.history_periods.max(1) as i64 + 12).fetch_all(&mut *tx).await? {
                history.push(period_use(&h)?);
            }
            history.reverse();
            let days = (read_on - prev_on).num_days();
            let est = if last_year {
                let (lo, hi) = vee::last_year_window(read_on);
                history.iter().find(|h| lo <= h.to && h.to <= hi).and_then(|h| vee::estimate_same_period_last_year(h, days))
            } else {
                let recent = &history[history.len().saturating_sub(rules.history_periods)..];
                vee::estimate_average_daily(recent, rules.history_periods, days)
            };
            let Some(kwh) = est else {
                return Err(BillingError::Invalid(format!("meter {meter}: no history to estimate from")));
            };
            let raw = kwh / mult;
            let value = prev_value + raw;
            let flags = [VeeFlag::Missing];
            let id: i64 = sqlx::query_scalar("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, created_at) \
                                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'estimated', $8) RETURNING id")
                .bind(format!("{meter}@{read_on}~estimated")).bind(meter_id).bind(read_on).bind(value as i64).bind(prev_on)
                .bind((raw * mult) as i64).bind(flags_to_text(&flags)).bind(now)
                .fetch_one(&mut *tx).await?;
            let after = snapshot(value, Some(raw * mult), ReadStatus::Estimated, &flags);
            sqlx::query("INSERT INTO billing_read_edits (read_id, staff, at, action, before, after, reason) VALUES ($1, $2, $3, 'estimate_missing', '{}', $4, $5)")
                .bind(id).bind(staff.trim()).bind(now).bind(&after).bind(reason.trim())
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(ReviewItem {
                read_id: id, meter: meter.into(), account: m.g_s("account")?, read_on, value, prev_read_on: Some(prev_on),
                kwh: Some(raw * mult), flags: flags.to_vec(), status: ReadStatus::Estimated, bands: None, follow_up: None,
            })
        })
    }

    /// Reads waiting for review, oldest first.
    pub async fn review_queue(&self, limit: i64) -> BResult<Vec<ReviewItem>> {
        let sql = format!(
            "SELECT {REVIEW_COLS} FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id \
             JOIN billing_accounts a ON a.id = m.account_id WHERE r.status = 'review' ORDER BY r.read_on, r.id LIMIT $1"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(limit).fetch_all(p).await?;
            rows.iter().map(review_item).collect()
        })
    }

    /// Resolves a read in the review queue; the edit is audited (who, when, before, after,
    /// why).
    pub async fn resolve_read(
        &self,
        read_id: i64,
        resolution: &Resolution,
        staff: &str,
        reason: &str,
        rules: &VeeRules,
        now: DateTime<Utc>,
    ) -> BResult<ReviewItem> {
        if staff.trim().is_empty() || reason.trim().is_empty() {
            return Err(BillingError::BadResolution {
                read_id,
                reason: "a review needs the staff member and the reason".into(),
            });
        }
        let one = format!(
            "SELECT {REVIEW_COLS}, r.meter_id, m.multiplier, m.register_digits, \
             r.peak_kwh, r.flat_kwh, r.valley_kwh FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id \
             JOIN billing_accounts a ON a.id = m.account_id WHERE r.id = $1"
        );
        let hist_sql = history_sql();
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let Some(row) = sqlx::query(&one).bind(read_id).fetch_optional(&mut *tx).await? else {
                return Err(BillingError::BadResolution { read_id, reason: "no such read".into() });
            };
            let item = review_item(&row)?;
            if item.status != ReadStatus::Review {
                return Err(BillingError::NotInReview { read_id, status: item.status.code().into() });
            }
            let meter_id = row.g_i("meter_id")?;
            let mult = row.g_i("multiplier")?.max(1) as u64;
            let (prev_value, prev_bands) = match item.prev_read_on {
                Some(d) => match sqlx::query("SELECT value, peak_value, flat_value, valley_value FROM billing_reads WHERE meter_id = $1 AND read_on = $2 AND id <> $3 AND status <> 'rejected' ORDER BY id DESC LIMIT 1")
                    .bind(meter_id).bind(d).bind(read_id).fetch_optional(&mut *tx).await? {
                    Some(pr) => (Some(pr.g_i("value")? as u64), bands_from(pr.g_oi("peak_value")?, pr.g_oi("flat_value")?, pr.g_oi("valley_value")?)),
                    None => (None, None),
                },
                None => (None, None),
            };
            let bands = item.bands;
            let stored_use = band_use_from(row.g_oi("peak_kwh")?, row.g_oi("flat_kwh")?, row.g_oi("valley_kwh")?);
            // Only the multiplier and the register digits count for the band split.
            let band_meter = Meter {
                external_id: item.meter.clone(), account: item.account.clone(), ct_ratio: mult as u32, pt_ratio: 1,
                multiplier: mult as u32, register_digits: row.g_i("register_digits")? as u8, installed_on: item.read_on,
                capacity_kva: 0, prepaid_mode: false,
            };
            let days = item.prev_read_on.map(|d| (item.read_on - d).num_days());
            let mut history = Vec::new();
            for h in sqlx::query(&hist_sql).bind(meter_id).bind(item.read_on).bind(rules.history_periods.max(1) as i64).fetch_all(&mut *tx).await? {
                history.push(period_use(&h)?);
            }
            history.reverse();
            let bad = |reason: String| BillingError::BadResolution { read_id, reason };
            // Band registers and consumption after the decision: accepted and rejected reads
            // keep theirs; a correction splits its new total by the same registers (none when
            // they no longer agree); an estimate has no band registers, so the next read
            // starts the bands again.
            let (mut regs_after, mut use_after) = (bands, stored_use);
            let (value, kwh, st, action) = match resolution {
                Resolution::Accept => {
                    if item.kwh.is_none() && item.prev_read_on.is_some() {
                        return Err(bad(format!("its consumption cannot be computed (flags {}): correct, estimate or reject it", flags_to_text(&item.flags))));
                    }
                    (item.value, item.kwh, ReadStatus::Accepted, "accept")
                }
                Resolution::Correct { value, bands: new_bands } => {
                    let kwh = match prev_value {
                        Some(pv) if *value < pv => return Err(bad(format!("corrected value {value} is below the previous read {pv}"))),
                        Some(pv) => Some((value - pv) * mult),
                        None => None,
                    };
                    if new_bands.is_some() {
                        regs_after = *new_bands;
                    }
                    use_after = match (prev_bands, regs_after, kwh) {
                        (Some(pb), Some(b), Some(k)) => match vee::band_use(rules, &band_meter, pb, b, k) {
                            Ok(u) => Some(u),
                            // Corrected registers must agree with the corrected total.
                            Err(m) if new_bands.is_some() => return Err(bad(format!(
                                "the corrected band registers (peak {}, flat {}, valley {}) moved {} kWh since the previous read, \
                                 the total register {} kWh (peak and valley within the total, the three within {} kWh of it)",
                                b.peak, b.flat, b.valley, m.bands_raw, m.total_raw, rules.band_tolerance_kwh
                            ))),
                            Err(_) => None,
                        },
                        _ => None,
                    };
                    (*value, kwh, ReadStatus::Corrected, "correct")
                }
                Resolution::EstimateAverage | Resolution::EstimateLastYear => {
                    let (Some(days), Some(pv)) = (days, prev_value) else {
                        return Err(bad("the first read of a meter cannot be estimated".into()));
                    };
                    let est = if matches!(resolution, Resolution::EstimateAverage) {
                        vee::estimate_average_daily(&history, rules.history_periods, days)
                    } else {
                        let (lo, hi) = vee::last_year_window(item.read_on);
                        history.iter().find(|h| lo <= h.to && h.to <= hi).and_then(|h| vee::estimate_same_period_last_year(h, days))
                    };
                    let Some(kwh) = est else {
                        return Err(bad("no history to estimate from".into()));
                    };
                    // The register is set so the next actual read reconciles the estimate.
                    (regs_after, use_after) = (None, None);
                    (pv + kwh / mult, Some(kwh / mult * mult), ReadStatus::Estimated, "estimate")
                }
                Resolution::Reject => (item.value, None, ReadStatus::Rejected, "reject"),
            };
            let before = snapshot_bands(item.value, item.kwh, item.status, &item.flags, bands, stored_use);
            let after = snapshot_bands(value, kwh, st, &item.flags, regs_after, use_after);
            let i = |v: Option<u64>| v.map(|x| x as i64);
            sqlx::query("UPDATE billing_reads SET value = $1, kwh = $2, status = $3, peak_value = $5, flat_value = $6, valley_value = $7, \
                         peak_kwh = $8, flat_kwh = $9, valley_kwh = $10 WHERE id = $4")
                .bind(value as i64).bind(kwh.map(|k| k as i64)).bind(st.code()).bind(read_id)
                .bind(i(regs_after.map(|b| b.peak))).bind(i(regs_after.map(|b| b.flat))).bind(i(regs_after.map(|b| b.valley)))
                .bind(i(use_after.map(|b| b.peak))).bind(i(use_after.map(|b| b.flat))).bind(i(use_after.map(|b| b.valley)))
                .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO billing_read_edits (read_id, staff, at, action, before, after, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(read_id).bind(staff.trim()).bind(now).bind(action).bind(&before).bind(&after).bind(reason.trim())
                .execute(&mut *tx).await?;
            // The next read of the meter is measured from this one: when its register (or
            // a band register) changed or it left force, measure and check the next one again.
            let mut follow_up = None;
            if value != item.value || regs_after != bands || st == ReadStatus::Rejected {
                let next = sqlx::query("SELECT id, read_on, value, kwh, flags, status, bill_id, peak_value, flat_value, valley_value, \
                     peak_kwh, flat_kwh, valley_kwh FROM billing_reads WHERE meter_id = $1 \
                     AND status <> 'rejected' AND (read_on > $2 OR (read_on = $2 AND id > $3)) ORDER BY read_on, id LIMIT 1")
                    .bind(meter_id).bind(item.read_on).bind(read_id).fetch_optional(&mut *tx).await?;
                if let Some(n) = next {
                    let (n_id, n_on, n_value) = (n.g_i("id")?, n.g_d("read_on")?, n.g_i("value")? as u64);
                    let n_kwh = n.g_oi("kwh")?.map(|k| k as u64);
                    let n_status = status(n.g_s("status")?)?;
                    let n_flags = flags_from_text(&n.g_s("flags")?);
                    let billed = n.g_oi("bill_id")?.is_some() || n_status == ReadStatus::Billed;
                    let n_bands = bands_from(n.g_oi("peak_value")?, n.g_oi("flat_value")?, n.g_oi("valley_value")?);
                    let n_band_use = band_use_from(n.g_oi("peak_kwh")?, n.g_oi("flat_kwh")?, n.g_oi("valley_kwh")?);
                    let m = sqlx::query("SELECT m.*, a.external_id AS account FROM billing_meters m JOIN billing_accounts a ON a.id = m.account_id WHERE m.id = $1")
                        .bind(meter_id).fetch_one(&mut *tx).await?;
                    let meter = meter_from(&m, m.g_s("account")?)?;
                    let prev_row = sqlx::query("SELECT read_on, value, peak_value, flat_value, valley_value FROM billing_reads WHERE meter_id = $1 \
                         AND status <> 'rejected' AND (read_on < $2 OR (read_on = $2 AND id < $3)) ORDER BY read_on DESC, id DESC LIMIT 1")
                        .bind(meter_id).bind(n_on).bind(n_id).fetch_optional(&mut *tx).await?;
                    let previous = prev_row.as_ref()
                        .map(|r| Ok::<_, BillingError>(Read { read_on: r.g_d("read_on")?, value: r.g_i("value")? as u64 }))
                        .transpose()?;
                    let prev_bands = match &prev_row {
                        Some(r) => bands_from(r.g_oi("peak_value")?, r.g_oi("flat_value")?, r.g_oi("valley_value")?),
                        None => None,
                    };
                    let mut n_history = Vec::new();
                    for h in sqlx::query(&hist_sql).bind(meter_id).bind(n_on).bind(rules.history_periods.max(1) as i64).fetch_all(&mut *tx).await? {
                        n_history.push(period_use(&h)?);
                    }
                    n_history.reverse();
                    // As at intake: the same period last year only without history.
                    let last_year = if n_history.is_empty() {
                        let (lo, hi) = vee::last_year_window(n_on);
                        sqlx::query(&last_year_sql())
                            .bind(meter_id).bind(lo).bind(hi)
                            .fetch_optional(&mut *tx).await?
                            .map(|h| period_use(&h))
                            .transpose()?
                    } else {
                        None
                    };
                    let ctx = ReadContext { meter: &meter, previous, history: &n_history, last_year, today: now.date_naive() };
                    let n_read = NewRead { external_id: None, meter: meter.external_id.clone(), read_on: n_on, value: n_value, peak: None, flat: None, valley: None };
                    let (check, _, band_use) = check_new_read(rules, &n_read, n_bands, prev_bands, &ctx);
                    let why = format!("the previous read {read_id} of {} was changed ({action}): {}", item.read_on, reason.trim());
                    let n_before = snapshot_bands(n_value, n_kwh, n_status, &n_flags, n_bands, n_band_use);
                    let new_status = if billed { None } else { follow_up_status(n_status, n_kwh, &check) };
                    if billed {
                        if check.kwh != n_kwh || band_use != n_band_use {
                            let n_after = snapshot_bands(n_value, check.kwh, n_status, &check.flags, n_bands, band_use);
                            sqlx::query("INSERT INTO billing_read_edits (read_id, staff, at, action, before, after, reason) VALUES ($1, $2, $3, 'needs_rebill', $4, $5, $6)")
                                .bind(n_id).bind(staff.trim()).bind(now).bind(&n_before).bind(&n_after).bind(&why)
                                .execute(&mut *tx).await?;
                            follow_up = Some(FollowUp { read_id: n_id, read_on: n_on, kwh_before: n_kwh, kwh_after: check.kwh, flags: check.flags, status: n_status, rebill: true });
                        }
                    } else if let Some(ns) = new_status.filter(|ns| *ns != n_status || check.kwh != n_kwh || check.flags != n_flags || band_use != n_band_use) {
                        let bu = |f: fn(&BandUse) -> u64| band_use.as_ref().map(|u| f(u) as i64);
                        sqlx::query("UPDATE billing_reads SET prev_read_on = $1, kwh = $2, flags = $3, status = $4, \
                             peak_kwh = $6, flat_kwh = $7, valley_kwh = $8 WHERE id = $5")
                            .bind(previous.map(|p| p.read_on)).bind(check.kwh.map(|k| k as i64)).bind(flags_to_text(&check.flags)).bind(ns.code()).bind(n_id)
                            .bind(bu(|u| u.peak)).bind(bu(|u| u.flat)).bind(bu(|u| u.valley))
                            .execute(&mut *tx).await?;
                        let n_after = snapshot_bands(n_value, check.kwh, ns, &check.flags, n_bands, band_use);
                        sqlx::query("INSERT INTO billing_read_edits (read_id, staff, at, action, before, after, reason) VALUES ($1, $2, $3, 'recompute', $4, $5, $6)")
                            .bind(n_id).bind(staff.trim()).bind(now).bind(&n_before).bind(&n_after).bind(&why)
                            .execute(&mut *tx).await?;
                        follow_up = Some(FollowUp { read_id: n_id, read_on: n_on, kwh_before: n_kwh, kwh_after: check.kwh, flags: check.flags, status: ns, rebill: false });
                    }
                }
            }
            tx.commit().await?;
            Ok(ReviewItem { value, kwh, status: st, bands: regs_after, follow_up, ..item })
        })
    }

    /// The audit trail of a read's edits.
    pub async fn read_edits(&self, read_id: i64) -> BResult<Vec<ReadEdit>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT read_id, staff, at, action, before, after, reason FROM billing_read_edits WHERE read_id = $1 ORDER BY id")
                .bind(read_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(ReadEdit {
                read_id: r.g_i("read_id")?, staff: r.g_s("staff")?, at: r.g_t("at")?, action: r.g_s("action")?,
                before: r.g_s("before")?, after: r.g_s("after")?, reason: r.g_s("reason")?,
            })).collect()
        })
    }

    /// Billed reads whose consumption changed after billing, newest first (at most
    /// `limit`), with the count of all of them: their bills need an adjustment.
    pub async fn rebills(&self, limit: i64) -> BResult<(i64, Vec<RebillItem>)> {
        let kwh = |snapshot: &str| -> Option<u64> {
            serde_json::from_str::<serde_json::Value>(snapshot).ok()?["kwh"].as_u64()
        };
        with_pool!(self, p => {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_read_edits WHERE action = 'needs_rebill'")
                .fetch_one(p).await?;
            let rows = sqlx::query("SELECT e.read_id, m.external_id AS meter, a.external_id AS account, r.read_on, b.period, \
                                    e.before, e.after, e.staff, e.at, e.reason FROM billing_read_edits e \
                                    JOIN billing_reads r ON r.id = e.read_id JOIN billing_meters m ON m.id = r.meter_id \
                                    JOIN billing_accounts a ON a.id = m.account_id LEFT JOIN billing_bills b ON b.id = r.bill_id \
                                    WHERE e.action = 'needs_rebill' ORDER BY e.at DESC, e.id DESC LIMIT $1")
                .bind(limit).fetch_all(p).await?;
            let items = rows.iter().map(|r| Ok(RebillItem {
                read_id: r.g_i("read_id")?, meter: r.g_s("meter")?, account: r.g_s("account")?,
                read_on: r.g_d("read_on")?, period: r.g_os("period")?,
                kwh_billed: kwh(&r.g_s("before")?), kwh_right: kwh(&r.g_s("after")?),
                staff: r.g_s("staff")?, at: r.g_t("at")?, reason: r.g_s("reason")?,
            })).collect::<BResult<Vec<_>>>()?;
            Ok((count, items))
        })
    }

    /// Bills `period` for every account with billable reads in it, in one transaction.
    /// Refuses while reads of the period wait for review, unless `only_clean`: then the
    /// accounts with a read in review are held back and the others billed. Re-running a
    /// period bills nothing twice.
    ///
    /// Memory stays flat in the number of accounts. SQLite walks the accounts 10,000 at a
    /// time in id order (`run_sqlite`: prepared statements on the transaction's own
    /// connection, reads marked billed by id); PostgreSQL streams the period's reads in
    /// account order from a cursor, writes each batch of bills and lines with one `UNNEST`
    /// statement and marks the reads billed by one set-based statement at the end.
    pub async fn billing_run(
        &self,
        period: Period,
        only_clean: bool,
        rules: &BillingRules,
        now: DateTime<Utc>,
    ) -> BResult<RunReport> {
        let tariffs = self.tariffs().await?;
        // Checked once here rather than for every bill.
        for (code, t) in &tariffs {
            t.validate().map_err(|source| BillingError::Tariff {
                code: code.clone(),
                source,
            })?;
        }
        // SQLite counts the meters without a read as the run walks them.
        let missing = match &self.backend {
            crate::Backend::Sqlite(_) => 0,
            crate::Backend::Postgres(_) => self.missing_reads(period, 0).await?.0,
        };
        let (from, to) = (period.first_day(), period.last_day());
        let review_count_sql = "SELECT COUNT(*) FROM billing_reads r WHERE r.status = 'review' AND r.read_on >= $1 AND r.read_on <= $2";
        let review_first_sql = "SELECT m.external_id AS meter, r.read_on, r.flags FROM billing_reads r \
             JOIN billing_meters m ON m.id = r.meter_id WHERE r.status = 'review' AND r.read_on >= $1 AND r.read_on <= $2 \
             ORDER BY r.read_on, r.id LIMIT 5";
        let held_sql = "SELECT DISTINCT m.account_id FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id \
             WHERE r.status = 'review' AND r.read_on >= $1 AND r.read_on <= $2";
        let year_start = Period {
            year: period.year,
            month: 1,
        }
        .to_string();
        let period_s = period.to_string();
        let mut report = RunReport {
            period: period_s.clone(),
            meters_without_read: missing,
            ..RunReport::default()
        };
        let ctx = RunCtx {
            tariffs: &tariffs,
            period,
            rules,
        };
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let count: i64 = sqlx::query_scalar(review_count_sql).bind(from).bind(to).fetch_one(&mut *tx).await?;
            if count > 0 && !only_clean {
                let mut first = Vec::new();
                for r in sqlx::query(review_first_sql).bind(from).bind(to).fetch_all(&mut *tx).await? {
                    first.push(format!("meter {} read {} ({})", r.g_s("meter")?, r.g_d("read_on")?, r.g_s("flags")?.replace(',', ", ")));
                }
                return Err(BillingError::UnreviewedReads { period: period_s, count, first });
            }
            let held: std::collections::HashSet<i64> = if count > 0 {
                sqlx::query_scalar::<_, i64>(held_sql).bind(from).bind(to).fetch_all(&mut *tx).await?.into_iter().collect()
            } else {
                Default::default()
            };
            report.held_for_review = held.len() as u64;
            let billed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_bills WHERE period = $1")
                .bind(&period_s).fetch_one(&mut *tx).await?;
            report.already_billed = billed as u64;
            tx.run_bulk(p, &ctx, &held, &year_start, now, &mut report).await?;
            tx.commit().await?;
        });
        Ok(report)
    }

    /// The bills of an account, oldest first, with their lines.
    pub async fn account_bills(&self, account: &str) -> BResult<Vec<StoredBill>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT b.*, a.external_id AS account FROM billing_bills b JOIN billing_accounts a ON a.id = b.account_id \
                                    WHERE a.external_id = $1 ORDER BY b.period")
                .bind(account).fetch_all(p).await?;
            // Every line of the account's bills in one statement, by bill.
            let mut lines: HashMap<i64, Vec<kehu_domain::billing::BillLine>> = HashMap::new();
            for l in sqlx::query("SELECT l.bill_id, l.item, l.label, l.kwh, l.price, l.amount_fen FROM billing_bill_lines l \
                                  JOIN billing_bills b ON b.id = l.bill_id JOIN billing_accounts a ON a.id = b.account_id \
                                  WHERE a.external_id = $1 ORDER BY l.bill_id, l.line_no")
                .bind(account).fetch_all(p).await?
            {
                lines.entry(l.g_i("bill_id")?).or_default().push(kehu_domain::billing::BillLine {
                    item: l.g_s("item")?, label: l.g_s("label")?, kwh: l.g_i("kwh")? as u64,
                    price: kehu_domain::billing::PricePerKwh(l.g_i("price")?), amount: Fen(l.g_i("amount_fen")?),
                });
            }
            let mut out = Vec::new();
            for r in rows {
                let id = r.g_i("id")?;
                out.push(StoredBill {
                    id, account: r.g_s("account")?, period: r.g_s("period")?, kwh: r.g_i("kwh")? as u64,
                    total: Fen(r.g_i("total_fen")?), due_on: r.g_d("due_on")?,
                    paid_principal: Fen(r.g_i("paid_principal_fen")?), paid_penalty: Fen(r.g_i("paid_penalty_fen")?),
                    lines: lines.remove(&id).unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }

    /// Every bill of a period: (account, bill id, total, due date), by account.
    pub async fn period_bills(
        &self,
        period: Period,
    ) -> BResult<Vec<(String, i64, Fen, NaiveDate)>> {
        let rows: Vec<(String, i64, i64, NaiveDate)> = with_pool!(self, p => {
            sqlx::query_as("SELECT a.external_id, b.id, b.total_fen, b.due_on FROM billing_bills b \
                            JOIN billing_accounts a ON a.id = b.account_id WHERE b.period = $1 ORDER BY a.external_id")
                .bind(period.to_string()).fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|(a, id, t, d)| (a, id, Fen(t), d))
            .collect())
    }

    /// Records a payment: pays the account's open bills oldest first (penalty and
    /// principal in the configured order), keeps what is left as credit. The account's
    /// earlier credit is used too. Re-sending a payment id returns the first receipt.
    pub async fn record_payment(
        &self,
        pay: &NewPayment,
        rules: &BillingRules,
        now: DateTime<Utc>,
    ) -> BResult<Receipt> {
        self.record_payments(std::slice::from_ref(pay), rules, now)
            .await?
            .remove(0)
    }

    /// Records payments in one transaction, in the given order (each pays what the ones
    /// before it left), as `record_payment` does each. Every payment has its own answer: a
    /// refused one (amount not positive, unknown account) writes nothing and the others go
    /// in; a payment id recorded before, or earlier in the batch, is answered with its
    /// receipt. A storage error writes none of them.
    pub async fn record_payments(
        &self,
        pays: &[NewPayment],
        rules: &BillingRules,
        now: DateTime<Utc>,
    ) -> BResult<Vec<BResult<Receipt>>> {
        let bills_sql = "SELECT id, period, due_on, total_fen, paid_principal_fen, paid_penalty_fen FROM billing_bills \
                         WHERE account_id = $1 ORDER BY due_on, id";
        let paid_sql = "SELECT al.bill_id, p.paid_on, al.principal_fen FROM billing_allocations al \
                        JOIN billing_payments p ON p.id = al.payment_id JOIN billing_bills b ON b.id = al.bill_id \
                        WHERE b.account_id = $1 AND p.reversed_at IS NULL ORDER BY p.paid_on, al.id";
        // What is answered without writing: refusals, and receipts of payments stored before.
        let mut out: Vec<Option<BResult<Receipt>>> = Vec::with_capacity(pays.len());
        for pay in pays {
            out.push(if pay.amount.0 <= 0 {
                Some(Err(BillingError::NotPositive {
                    amount: pay.amount.to_plain(),
                }))
            } else {
                self.receipt(&pay.external_id).await?.map(Ok)
            });
        }
        // The batch's recorded payment under each id (a later one is answered with its
        // receipt).
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            for (i, pay) in pays.iter().enumerate() {
                if out[i].is_some() {
                    continue;
                }
                if let Some(&j) = first_of.get(pay.external_id.as_str()) {
                    if let Some(Ok(r)) = &out[j] {
                        out[i] = Some(Ok(r.clone()));
                        continue;
                    }
                }
                let Some(acc) = sqlx::query("SELECT id, class, penalty_ppm, credit_fen FROM billing_accounts WHERE external_id = $1")
                    .bind(&pay.account).fetch_optional(&mut *tx).await? else {
                    out[i] = Some(Err(BillingError::UnknownAccount { account: pay.account.clone() }));
                    continue;
                };
                let account_id = acc.g_i("id")?;
                let class_s = acc.g_s("class")?;
                let class = CustomerClass::parse(&class_s).ok_or_else(|| corrupt("billing_accounts", "class", class_s))?;
                let rates = rules.penalty.with_contract_ppm(class, acc.g_oi("penalty_ppm")?.map(|v| v as u32));
                let credit_before = acc.g_i("credit_fen")?;
                let mut principal_paid: HashMap<i64, Vec<(NaiveDate, Fen)>> = HashMap::new();
                for r in sqlx::query(paid_sql).bind(account_id).fetch_all(&mut *tx).await? {
                    principal_paid.entry(r.g_i("bill_id")?).or_default().push((r.g_d("paid_on")?, Fen(r.g_i("principal_fen")?)));
                }
                let mut open = Vec::new();
                let mut periods = HashMap::new();
                for b in sqlx::query(bills_sql).bind(account_id).fetch_all(&mut *tx).await? {
                    let id = b.g_i("id")?;
                    let total = Fen(b.g_i("total_fen")?);
                    let due = b.g_d("due_on")?;
                    let hist = principal_paid.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                    let accrued = accrued_penalty(&rates, class, total, due, hist, pay.paid_on);
                    let ob = OpenBill {
                        bill_id: id,
                        due_on: due,
                        principal: Fen(total.0 - b.g_i("paid_principal_fen")?),
                        penalty: Fen((accrued.0 - b.g_i("paid_penalty_fen")?).max(0)),
                    };
                    periods.insert(id, b.g_s("period")?);
                    if ob.principal.0 > 0 || ob.penalty.0 > 0 {
                        open.push(ob);
                    }
                }
                let result = match allocation::allocate(Fen(pay.amount.0 + credit_before), &open, rules.allocation_order) {
                    Ok(r) => r,
                    Err(e) => {
                        out[i] = Some(Err(BillingError::Invalid(e.to_string())));
                        continue;
                    }
                };
                let pid: i64 = sqlx::query_scalar("INSERT INTO billing_payments (external_id, account_id, amount_fen, paid_on, channel, credit_fen, recorded_at) \
                                                  VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                    .bind(&pay.external_id).bind(account_id).bind(pay.amount.0).bind(pay.paid_on).bind(&pay.channel)
                    .bind(result.credit.0).bind(now).fetch_one(&mut *tx).await?;
                let mut lines = Vec::new();
                for a in &result.allocations {
                    sqlx::query("INSERT INTO billing_allocations (payment_id, bill_id, principal_fen, penalty_fen) VALUES ($1, $2, $3, $4)")
                        .bind(pid).bind(a.bill_id).bind(a.principal.0).bind(a.penalty.0).execute(&mut *tx).await?;
                    sqlx::query("UPDATE billing_bills SET paid_principal_fen = paid_principal_fen + $1, paid_penalty_fen = paid_penalty_fen + $2 WHERE id = $3")
                        .bind(a.principal.0).bind(a.penalty.0).bind(a.bill_id).execute(&mut *tx).await?;
                    lines.push(ReceiptLine { period: periods[&a.bill_id].clone(), principal: a.principal, penalty: a.penalty });
                }
                sqlx::query("UPDATE billing_accounts SET credit_fen = $1 WHERE id = $2")
                    .bind(result.credit.0).bind(account_id).execute(&mut *tx).await?;
                out[i] = Some(Ok(Receipt {
                    payment: pay.external_id.clone(), account: pay.account.clone(), amount: pay.amount, paid_on: pay.paid_on,
                    credit_used: Fen(credit_before), lines, credit: result.credit,
                }));
                first_of.insert(pay.external_id.as_str(), i);
            }
            tx.commit().await?;
        });
        Ok(out
            .into_iter()
            .map(|o| o.expect("every payment answered above"))
            .collect())
    }

    /// The receipt of a recorded payment.
    pub async fn receipt(&self, payment: &str) -> BResult<Option<Receipt>> {
        with_pool!(self, p => {
            let Some(r) = sqlx::query("SELECT p.id, p.amount_fen, p.paid_on, p.credit_fen, a.external_id AS account FROM billing_payments p \
                                       JOIN billing_accounts a ON a.id = p.account_id WHERE p.external_id = $1")
                .bind(payment).fetch_optional(p).await? else { return Ok(None) };
            let mut lines = Vec::new();
            let mut allocated = 0;
            for l in sqlx::query("SELECT b.period, al.principal_fen, al.penalty_fen FROM billing_allocations al JOIN billing_bills b ON b.id = al.bill_id WHERE al.payment_id = $1 ORDER BY al.id")
                .bind(r.g_i("id")?).fetch_all(p).await?
            {
                allocated += l.g_i("principal_fen")? + l.g_i("penalty_fen")?;
                lines.push(ReceiptLine { period: l.g_s("period")?, principal: Fen(l.g_i("principal_fen")?), penalty: Fen(l.g_i("penalty_fen")?) });
            }
            let amount = r.g_i("amount_fen")?;
            let credit = r.g_i("credit_fen")?;
            Ok(Some(Receipt {
                payment: payment.to_string(), account: r.g_s("account")?, amount: Fen(amount), paid_on: r.g_d("paid_on")?,
                credit_used: Fen(allocated + credit - amount), lines, credit: Fen(credit),
            }))
        })
    }

    /// Reverses a payment (a bounced transfer, a wrong account): its allocations are undone
    /// and the account's credit goes back to what it was before. Only the account's latest
    /// payment still in force can be reversed, so later allocations stay right.
    pub async fn reverse_payment(
        &self,
        payment: &str,
        staff: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> BResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let Some(r) = sqlx::query("SELECT id, account_id, amount_fen, credit_fen, reversed_at FROM billing_payments WHERE external_id = $1")
                .bind(payment).fetch_optional(&mut *tx).await? else {
                return Err(BillingError::UnknownPayment { payment: payment.into() });
            };
            if r.g_ot("reversed_at")?.is_some() {
                return Err(BillingError::AlreadyReversed { payment: payment.into() });
            }
            let (pid, account_id) = (r.g_i("id")?, r.g_i("account_id")?);
            let later: Vec<String> = sqlx::query_scalar("SELECT external_id FROM billing_payments WHERE account_id = $1 AND id > $2 AND reversed_at IS NULL ORDER BY id")
                .bind(account_id).bind(pid).fetch_all(&mut *tx).await?;
            if !later.is_empty() {
                return Err(BillingError::LaterPayments { payment: payment.into(), later: later.join(", ") });
            }
            let mut allocated = 0;
            for a in sqlx::query("SELECT bill_id, principal_fen, penalty_fen FROM billing_allocations WHERE payment_id = $1").bind(pid).fetch_all(&mut *tx).await? {
                allocated += a.g_i("principal_fen")? + a.g_i("penalty_fen")?;
                sqlx::query("UPDATE billing_bills SET paid_principal_fen = paid_principal_fen - $1, paid_penalty_fen = paid_penalty_fen - $2 WHERE id = $3")
                    .bind(a.g_i("principal_fen")?).bind(a.g_i("penalty_fen")?).bind(a.g_i("bill_id")?).execute(&mut *tx).await?;
            }
            // Credit before the payment = allocated + credit after − amount.
            let credit_before = allocated + r.g_i("credit_fen")? - r.g_i("amount_fen")?;
            sqlx::query("UPDATE billing_accounts SET credit_fen = $1 WHERE id = $2").bind(credit_before).bind(account_id).execute(&mut *tx).await?;
            sqlx::query("UPDATE billing_payments SET reversed_at = $1, reversed_by = $2, reversal_reason = $3 WHERE id = $4")
                .bind(now).bind(staff).bind(reason).bind(pid).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The account's latest payments, newest first (at most `limit`), reversed or not.
    pub async fn account_payments(&self, account: &str, limit: i64) -> BResult<Vec<PaymentRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT py.external_id, py.amount_fen, py.paid_on, py.channel, py.reversed_at, py.reversed_by, py.reversal_reason \
                 FROM billing_payments py JOIN billing_accounts a ON a.id = py.account_id \
                 WHERE a.external_id = $1 ORDER BY py.id DESC LIMIT $2",
            )
            .bind(account)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(PaymentRow {
                        payment: r.g_s("external_id")?,
                        amount: Fen(r.g_i("amount_fen")?),
                        paid_on: r.g_d("paid_on")?,
                        channel: r.g_s("channel")?,
                        reversed_at: r.g_ot("reversed_at")?,
                        reversed_by: r.g_os("reversed_by")?,
                        reversal_reason: r.g_os("reversal_reason")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(BillingError::from)
        })
    }

    /// The account's credit (overpayments kept for the next bills).
    pub async fn account_credit(&self, account: &str) -> BResult<Fen> {
        let v: Option<i64> = with_pool!(self, p => {
            sqlx::query_scalar("SELECT credit_fen FROM billing_accounts WHERE external_id = $1").bind(account).fetch_optional(p).await?
        });
        v.map(Fen).ok_or_else(|| BillingError::UnknownAccount {
            account: account.into(),
        })
    }

    /// Outstanding principal by ageing bucket on `today`, grouped by account, area or class.
    /// The totals are exact sums of the bills' unpaid principal.
    pub async fn ageing(&self, today: NaiveDate, group: AgeingGroup) -> BResult<Vec<AgeingRow>> {
        let key = match group {
            AgeingGroup::Account => "a.external_id",
            AgeingGroup::Area => "COALESCE(a.area, '')",
            AgeingGroup::Class => "a.class",
        };
        let sql = format!(
            "SELECT {key} AS k, b.due_on, COUNT(*) AS n, CAST(SUM(b.total_fen - b.paid_principal_fen) AS BIGINT) AS owed \
             FROM billing_bills b JOIN billing_accounts a ON a.id = b.account_id WHERE b.total_fen > b.paid_principal_fen \
             GROUP BY {key}, b.due_on"
        );
        let mut map: BTreeMap<String, (u64, AgeingTotals)> = BTreeMap::new();
        // SQLite by class or area (few groups): the unpaid bills summed here while they are
        // read, instead of sorted by SQLite for its GROUP BY.
        if let (crate::Backend::Sqlite(p), AgeingGroup::Class | AgeingGroup::Area) =
            (&self.backend, group)
        {
            let mut conn = p.acquire().await?;
            let sums = {
                let mut handle = conn.lock_handle().await?;
                ageing_sums_sqlite(handle.as_raw_handle().as_ptr(), key)?
            };
            for (k, due_on, n, owed) in sums {
                let e = map.entry(k).or_default();
                e.0 += n;
                e.1.add_bill(due_on, Fen(owed), today);
            }
        } else {
            with_pool!(self, p => {
                let mut rows = sqlx::query(&sql).fetch(p);
                use futures_util::TryStreamExt;
                while let Some(r) = rows.try_next().await? {
                    // A bill's bucket depends on its due date only, so the sum per due date
                    // falls in one bucket exactly.
                    let e = map.entry(r.g_s("k")?).or_default();
                    e.0 += r.g_i("n")? as u64;
                    e.1.add_bill(r.g_d("due_on")?, Fen(r.g_i("owed")?), today);
                }
            })
        }
        Ok(map
            .into_iter()
            .map(|(key, (bills, totals))| AgeingRow {
                key,
                bills,
                total: totals.total(),
                totals,
            })
            .collect())
    }

    /// The dunning timeline of an account, oldest first.
    pub async fn dunning_timeline(&self, account: &str) -> BResult<Vec<TimelineEvent>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT d.* FROM billing_dunning d JOIN billing_accounts a ON a.id = d.account_id WHERE a.external_id = $1 ORDER BY d.at, d.id")
                .bind(account).fetch_all(p).await?;
            rows.iter().map(timeline_event).collect()
        })
    }

    async fn arrears(&self, account: &str) -> BResult<(Arrears, i64)> {
        let row: Option<(i64, String, Option<NaiveDate>, Option<i64>)> = with_pool!(self, p => {
            sqlx::query_as("SELECT a.id, a.class, MIN(b.due_on), CAST(SUM(b.total_fen - b.paid_principal_fen) AS BIGINT) FROM billing_accounts a \
                            LEFT JOIN billing_bills b ON b.account_id = a.id AND b.total_fen > b.paid_principal_fen \
                            WHERE a.external_id = $1 GROUP BY a.id, a.class")
                .bind(account).fetch_optional(p).await?
        });
        let Some((id, class, due, owed)) = row else {
            return Err(BillingError::UnknownAccount {
                account: account.into(),
            });
        };
        let class = CustomerClass::parse(&class)
            .ok_or_else(|| corrupt("billing_accounts", "class", class))?;
        Ok((
            Arrears {
                class,
                oldest_due: due.unwrap_or(NaiveDate::MAX),
                outstanding_fen: owed.unwrap_or(0),
            },
            id,
        ))
    }

    /// Adds a step to an account's dunning timeline. A disconnection order and an executed
    /// disconnection pass the legal gates first (`kehu_domain::billing::dunning`); refused,
    /// nothing is written and every failed gate is named.
    pub async fn record_dunning(
        &self,
        account: &str,
        event: &TimelineEvent,
        rules: &BillingRules,
    ) -> BResult<TimelineEvent> {
        let (arrears, account_id) = self.arrears(account).await?;
        let timeline = self.dunning_timeline(account).await?;
        let gates = |gates| BillingError::Gates {
            account: account.into(),
            step: event.step,
            gates,
        };
        let ev = match event.step {
            DunningStep::DisconnectionOrder => dunning::order_disconnection(
                &rules.dunning,
                &arrears,
                &timeline,
                &event.staff,
                event.approver.as_deref(),
                event.planned_at.unwrap_or(event.at),
                event.at,
            )
            .map_err(gates)?,
            DunningStep::Disconnected => dunning::execute_disconnection(
                &rules.dunning,
                &arrears,
                &timeline,
                &event.staff,
                event.at,
            )
            .map_err(gates)?,
            _ => event.clone(),
        };
        let ev = TimelineEvent {
            note: event.note.clone(),
            ..ev
        };
        with_pool!(self, p => {
            sqlx::query("INSERT INTO billing_dunning (account_id, step, at, staff, approver, planned_at, note) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(account_id).bind(ev.step.code()).bind(ev.at).bind(&ev.staff).bind(&ev.approver).bind(ev.planned_at).bind(&ev.note)
                .execute(p).await?;
        });
        Ok(ev)
    }

    /// Credit inputs of one account on `today`, counted from its bills and payments.
    async fn credit_inputs(
        &self,
        account_id: i64,
        opened_on: NaiveDate,
        deposit: i64,
        theft: Option<NaiveDate>,
        today: NaiveDate,
    ) -> BResult<CreditInputs> {
        let sql = credit_rows_sql("= $1");
        let rows: Vec<(i64, NaiveDate, i64, i64, Option<NaiveDate>)> = with_pool!(self, p => {
            sqlx::query_as(&sql).bind(account_id).bind(credit_since(today)).bind(today).fetch_all(p).await?
        });
        let rows: Vec<CreditRow> = rows.into_iter().map(|(_, due, total, paid, last)| (due, total, paid, last)).collect();
        Ok(credit_inputs_from(&rows, opened_on, deposit, theft, today))
    }

    /// The dunning worklist on `today`: every account in arrears (or disconnected and paid)
    /// with the step its grade's ladder calls for now.
    pub async fn dunning_worklist(
        &self,
        today: NaiveDate,
        rules: &BillingRules,
    ) -> BResult<Vec<WorkItem>> {
        let rows: Vec<(
            i64,
            String,
            String,
            NaiveDate,
            i64,
            Option<NaiveDate>,
            Option<NaiveDate>,
            i64,
        )> = with_pool!(self, p => {
            // The unpaid bills summed per account in one pass over the bills (`+account_id`:
            // SQLite would otherwise walk the key index for the grouping and seek every
            // bill's row), then their accounts; and the disconnected accounts that owe
            // nothing (with a bill), for their reconnection.
            sqlx::query_as("SELECT a.id, a.external_id, a.class, a.opened_on, a.deposit_fen, a.last_theft_on, u.oldest, CAST(u.owed AS BIGINT) \
                            FROM (SELECT +account_id AS account_id, MIN(due_on) AS oldest, SUM(total_fen - paid_principal_fen) AS owed \
                                  FROM billing_bills WHERE total_fen > paid_principal_fen GROUP BY 1) u \
                            JOIN billing_accounts a ON a.id = u.account_id \
                            UNION ALL \
                            SELECT a.id, a.external_id, a.class, a.opened_on, a.deposit_fen, a.last_theft_on, NULL, 0 FROM billing_accounts a \
                            WHERE a.id IN (SELECT account_id FROM billing_dunning WHERE step = 'disconnected') \
                            AND EXISTS (SELECT 1 FROM billing_bills b WHERE b.account_id = a.id) \
                            AND NOT EXISTS (SELECT 1 FROM billing_bills b WHERE b.account_id = a.id AND b.total_fen > b.paid_principal_fen) \
                            ORDER BY 1")
                .fetch_all(p).await?
        });
        let mut out = Vec::new();
        let since = credit_since(today);
        for chunk in rows.chunks(WORKLIST_CHUNK.load(std::sync::atomic::Ordering::Relaxed).max(1)) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.0).collect();
            let (mut bills, mut timelines) = self.worklist_context(&ids, since, today, true).await?;
            for (id, ext, class, opened, deposit, theft, oldest, owed) in chunk.iter().cloned() {
                let (class, grade) = worklist_grade(
                    rules,
                    &bills.remove(&id).unwrap_or_default(),
                    (class, opened, deposit, theft),
                    today,
                )?;
                let arrears = Arrears {
                    class,
                    oldest_due: oldest.unwrap_or(today),
                    outstanding_fen: owed,
                };
                let timeline = timelines.remove(&id).unwrap_or_default();
                if let Some(step) =
                    dunning::next_step(&rules.dunning, grade, &arrears, &timeline, today)
                {
                    out.push(WorkItem {
                        account: ext,
                        class,
                        grade,
                        oldest_due: arrears.oldest_due,
                        days_overdue: (today - arrears.oldest_due).num_days().max(0),
                        outstanding: Fen(owed),
                        step,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(out)
    }

    /// The deposit worklist on `today`: every postpaid account whose credit grade calls for
    /// more deposit or guarantee than it holds, the largest shortfall first. Prepaid
    /// accounts pay before they use and are not asked. Accounts are read `WORKLIST_CHUNK`
    /// at a time; only the accounts listed are kept.
    pub async fn deposit_worklist(
        &self,
        today: NaiveDate,
        rules: &BillingRules,
    ) -> BResult<Vec<DepositItem>> {
        type Acc = (i64, String, String, NaiveDate, i64, Option<NaiveDate>);
        let chunk = WORKLIST_CHUNK.load(std::sync::atomic::Ordering::Relaxed).max(1) as i64;
        let since = credit_since(today);
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let accounts: Vec<Acc> = with_pool!(self, p => {
                sqlx::query_as("SELECT id, external_id, class, opened_on, deposit_fen, last_theft_on FROM billing_accounts \
                                WHERE id > $1 AND NOT prepaid ORDER BY id LIMIT $2")
                    .bind(after).bind(chunk).fetch_all(p).await?
            });
            let Some(last) = accounts.last() else { break };
            after = last.0;
            let ids: Vec<i64> = accounts.iter().map(|a| a.0).collect();
            let (mut bills, _) = self.worklist_context(&ids, since, today, false).await?;
            let mut latest = self.latest_bill_totals(&ids).await?;
            for (id, ext, class, opened, deposit, theft) in accounts {
                let (class, grade) = worklist_grade(
                    rules,
                    &bills.remove(&id).unwrap_or_default(),
                    (class, opened, deposit, theft),
                    today,
                )?;
                let average = credit::average_bill(&latest.remove(&id).unwrap_or_default());
                let (required, shortfall) =
                    credit::deposit_required(&rules.credit, grade, average, Fen(deposit));
                if shortfall.0 > 0 {
                    out.push(DepositItem {
                        account: ext,
                        class,
                        grade,
                        average_bill: average,
                        required,
                        held: Fen(deposit),
                        shortfall,
                    });
                }
            }
        }
        out.sort_by(|a, b| b.shortfall.cmp(&a.shortfall).then_with(|| a.account.cmp(&b.account)));
        Ok(out)
    }

    /// For the accounts `ids`: the totals of their latest `credit::DEPOSIT_AVERAGE_BILLS`
    /// bills (one statement).
    async fn latest_bill_totals(&self, ids: &[i64]) -> BResult<HashMap<i64, Vec<Fen>>> {
        let sql = |set: &str| {
            format!(
                "SELECT account_id, total_fen FROM (SELECT account_id, total_fen, \
                 ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY period DESC) AS k \
                 FROM billing_bills WHERE account_id {set}) t WHERE k <= {}",
                credit::DEPOSIT_AVERAGE_BILLS
            )
        };
        let rows: Vec<(i64, i64)> = match &self.backend {
            crate::Backend::Sqlite(p) => {
                let set = serde_json::to_string(ids).map_err(|e| BillingError::Invalid(e.to_string()))?;
                sqlx::query_as(&sql("IN (SELECT value FROM json_each($1))")).bind(&set).fetch_all(p).await?
            }
            crate::Backend::Postgres(p) => sqlx::query_as(&sql("= ANY($1)")).bind(ids).fetch_all(p).await?,
        };
        let mut out: HashMap<i64, Vec<Fen>> = HashMap::new();
        for (account, total) in rows {
            out.entry(account).or_default().push(Fen(total));
        }
        Ok(out)
    }

    /// For the accounts `ids`: their bills due from `since` to `today` as the credit grade
    /// reads them, and (with `timelines`) their dunning timelines, oldest first (a statement
    /// each).
    async fn worklist_context(
        &self,
        ids: &[i64],
        since: NaiveDate,
        today: NaiveDate,
        with_timelines: bool,
    ) -> BResult<(HashMap<i64, Vec<CreditRow>>, HashMap<i64, Vec<TimelineEvent>>)> {
        let timeline_sql = |set: &str| {
            format!("SELECT d.* FROM billing_dunning d WHERE d.account_id {set} ORDER BY d.account_id, d.at, d.id")
        };
        let mut bills: HashMap<i64, Vec<CreditRow>> = HashMap::new();
        let mut timelines: HashMap<i64, Vec<TimelineEvent>> = HashMap::new();
        let rows: Vec<(i64, NaiveDate, i64, i64, Option<NaiveDate>)>;
        match &self.backend {
            crate::Backend::Sqlite(p) => {
                // The ids as a JSON array, read back as a set by `json_each`.
                let set = serde_json::to_string(ids).map_err(|e| BillingError::Invalid(e.to_string()))?;
                let within = "IN (SELECT value FROM json_each($1))";
                rows = sqlx::query_as(&credit_rows_sql(within)).bind(&set).bind(since).bind(today).fetch_all(p).await?;
                let events = if with_timelines { sqlx::query(&timeline_sql(within)).bind(&set).fetch_all(p).await? } else { Vec::new() };
                for r in events {
                    timelines.entry(r.g_i("account_id")?).or_default().push(timeline_event(&r)?);
                }
            }
            crate::Backend::Postgres(p) => {
                let within = "= ANY($1)";
                rows = sqlx::query_as(&credit_rows_sql(within)).bind(ids).bind(since).bind(today).fetch_all(p).await?;
                let events = if with_timelines { sqlx::query(&timeline_sql(within)).bind(ids).fetch_all(p).await? } else { Vec::new() };
                for r in events {
                    timelines.entry(r.g_i("account_id")?).or_default().push(timeline_event(&r)?);
                }
            }
        }
        for (account, due, total, paid, last) in rows {
            bills.entry(account).or_default().push((due, total, paid, last));
        }
        Ok((bills, timelines))
    }

    /// The credit grade of an account on `today`, with its score and reason.
    pub async fn credit_grade(
        &self,
        account: &str,
        today: NaiveDate,
        rules: &BillingRules,
    ) -> BResult<kehu_domain::billing::credit::CreditResult> {
        let row: Option<(i64, NaiveDate, i64, Option<NaiveDate>)> = with_pool!(self, p => {
            sqlx::query_as("SELECT id, opened_on, deposit_fen, last_theft_on FROM billing_accounts WHERE external_id = $1")
                .bind(account).fetch_optional(p).await?
        });
        let Some((id, opened, deposit, theft)) = row else {
            return Err(BillingError::UnknownAccount {
                account: account.into(),
            });
        };
        let inputs = self
            .credit_inputs(id, opened, deposit, theft, today)
            .await?;
        Ok(kehu_domain::billing::credit_grade(
            &rules.credit,
            &inputs,
            today,
        ))
    }
}

// ---- The billing run's bulk path (both backends) ----

/// What every account's pricing needs.
struct RunCtx<'a> {
    tariffs: &'a HashMap<String, Tariff>,
    period: Period,
    rules: &'a BillingRules,
}

/// One account's billable reads of the period, summed.
#[derive(Default)]
struct RunAcc {
    id: i64,
    ext: String,
    class: String,
    tariff: String,
    kwh: u64,
    mismatch: bool,
    prepaid: bool,
    credit: i64,
    /// kWh billed earlier in the tier period (the year so far).
    before: u64,
    /// The reads summed (SQLite marks them billed by id).
    read_ids: Vec<i64>,
    /// Band consumption summed over the reads that have it.
    bands: BandUse,
    /// A read without band consumption was summed: a time-of-use tariff bills the total
    /// at the flat price.
    bands_missing: bool,
}

impl RunAcc {
    /// Adds one read's consumption (total, and by band when it has it).
    fn add(&mut self, kwh: i64, peak: Option<i64>, flat: Option<i64>, valley: Option<i64>) {
        self.kwh += kwh.max(0) as u64;
        match band_use_from(peak, flat, valley) {
            Some(b) => {
                self.bands.peak += b.peak;
                self.bands.flat += b.flat;
                self.bands.valley += b.valley;
            }
            None => self.bands_missing = true,
        }
    }
}

fn timeline_event(r: &impl BRow) -> BResult<TimelineEvent> {
    let s = r.g_s("step")?;
    Ok(TimelineEvent {
        step: DunningStep::parse(&s).ok_or_else(|| corrupt("billing_dunning", "step", s))?,
        at: r.g_ndt("at")?,
        staff: r.g_s("staff")?,
        approver: r.g_os("approver")?,
        planned_at: r.g_ondt("planned_at")?,
        note: r.g_os("note")?,
    })
}

/// Accounts whose credit rows and timelines the dunning worklist reads per statement.
pub(crate) static WORKLIST_CHUNK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(500);

/// A meter's billable periods before `$2`, latest first, at most `$3` (the VEE history).
fn history_sql() -> String {
    format!(
        "SELECT prev_read_on, read_on, kwh FROM billing_reads WHERE meter_id = $1 AND kwh IS NOT NULL \
         AND prev_read_on IS NOT NULL AND status IN {HISTORY} AND read_on < $2 ORDER BY read_on DESC, id DESC LIMIT $3"
    )
}

/// A meter's first billable period read from `$2` to `$3` (the same period last year, see
/// `vee::last_year_window`).
fn last_year_sql() -> String {
    format!(
        "SELECT prev_read_on, read_on, kwh FROM billing_reads WHERE meter_id = $1 AND kwh IS NOT NULL \
         AND prev_read_on IS NOT NULL AND status IN {HISTORY} AND read_on >= $2 AND read_on <= $3 ORDER BY read_on LIMIT 1"
    )
}

/// A period of use from a row with `prev_read_on`, `read_on` and `kwh`.
fn period_use(r: &impl BRow) -> BResult<PeriodUse> {
    Ok(PeriodUse {
        from: r.g_d("prev_read_on")?,
        to: r.g_d("read_on")?,
        kwh: r.g_i("kwh")? as u64,
    })
}

/// A bill as the credit grade reads it: due date, total, principal paid, last payment.
type CreditRow = (NaiveDate, i64, i64, Option<NaiveDate>);

/// The class and credit grade on `today` of an account of a worklist, from its bills as the
/// credit grade reads them and its account row (class, opened on, deposit, last theft).
fn worklist_grade(
    rules: &BillingRules,
    bills: &[CreditRow],
    (class, opened, deposit, theft): (String, NaiveDate, i64, Option<NaiveDate>),
    today: NaiveDate,
) -> BResult<(CustomerClass, CreditGrade)> {
    let class = CustomerClass::parse(&class).ok_or_else(|| corrupt("billing_accounts", "class", class))?;
    let inputs = credit_inputs_from(bills, opened, deposit, theft, today);
    Ok((class, kehu_domain::billing::credit_grade(&rules.credit, &inputs, today).grade))
}

/// The credit grade looks at the bills due in the last 365 days up to `today`.
fn credit_since(today: NaiveDate) -> NaiveDate {
    today - chrono::Duration::days(365)
}

/// The bills the credit grade reads, of the accounts `b.account_id {set}` (`$1`), due from
/// `$2` to `$3`: account, due date, total, principal paid, date of the last payment in force.
fn credit_rows_sql(set: &str) -> String {
    format!(
        "SELECT b.account_id, b.due_on, b.total_fen, b.paid_principal_fen, MAX(p.paid_on) FROM billing_bills b \
         LEFT JOIN billing_allocations al ON al.bill_id = b.id \
         LEFT JOIN billing_payments p ON p.id = al.payment_id AND p.reversed_at IS NULL \
         WHERE b.account_id {set} AND b.due_on >= $2 AND b.due_on <= $3 \
         GROUP BY b.account_id, b.id, b.due_on, b.total_fen, b.paid_principal_fen"
    )
}

/// The credit-grade inputs of an account from its bills of the last 12 months (due date,
/// total, principal paid, date of the last payment in force on it).
fn credit_inputs_from(
    rows: &[(NaiveDate, i64, i64, Option<NaiveDate>)],
    opened_on: NaiveDate,
    deposit: i64,
    theft: Option<NaiveDate>,
    today: NaiveDate,
) -> CreditInputs {
    let mut i = CreditInputs {
        bills_last_12m: rows.len() as u32,
        paid_on_time_last_12m: 0,
        max_days_overdue_last_12m: 0,
        arrears_episodes_last_12m: 0,
        tenure_months: 0,
        has_deposit: deposit > 0,
        last_theft_on: theft,
        arrears_months_this_year: 0,
    };
    let mut months = std::collections::BTreeSet::new();
    for &(due, total, paid, last_paid) in rows {
        let settled_on = if paid >= total {
            last_paid.unwrap_or(due)
        } else {
            today
        };
        let late = (settled_on - due).num_days().max(0);
        if late == 0 {
            i.paid_on_time_last_12m += 1
        } else {
            i.arrears_episodes_last_12m += 1
        }
        i.max_days_overdue_last_12m = i.max_days_overdue_last_12m.max(late as u32);
        use chrono::Datelike;
        let mut d = due + chrono::Duration::days(1);
        while late > 0 && d <= settled_on {
            if d.year() == today.year() {
                months.insert(d.month());
            }
            d += chrono::Duration::days(28);
        }
        if late > 0 && settled_on.year() == today.year() {
            months.insert(chrono::Datelike::month(&settled_on));
        }
    }
    i.arrears_months_this_year = months.len() as u32;
    let t = (today - opened_on).num_days().max(0) / 30;
    i.tenure_months = t as u32;
    i
}

/// Whether a bill on `tariff` depends on the kWh billed earlier in the year (annual tiers).
fn counts_tier_year(tariff: &Tariff) -> bool {
    matches!(
        tariff,
        Tariff::Tiered {
            period: TierPeriod::Annual,
            ..
        }
    )
}

/// Prices one account's bill (and settles it from a prepaid balance), adding it to the
/// report. The rules are the domain's; nothing is written here.
fn price_account(
    ctx: &RunCtx<'_>,
    a: &RunAcc,
    report: &mut RunReport,
) -> BResult<(
    kehu_domain::billing::bill::BillDraft,
    Option<prepaid::PrepaidSettlement>,
)> {
    if a.mismatch {
        report.prepaid_mode_mismatches.push(a.ext.clone());
    }
    CustomerClass::parse(&a.class)
        .ok_or_else(|| corrupt("billing_accounts", "class", a.class.clone()))?;
    let Some(tariff) = ctx.tariffs.get(&a.tariff) else {
        return Err(BillingError::UnknownTariff {
            account: a.ext.clone(),
            tariff: a.tariff.clone(),
        });
    };
    let before = if counts_tier_year(tariff) { a.before } else { 0 };
    // A time-of-use account is billed by band when every read of the period has its band
    // consumption; otherwise its total at the flat price, counted in the report.
    let consumption = match tariff {
        Tariff::TimeOfUse { .. } if !a.bands_missing => Consumption::Bands {
            peak: a.bands.peak,
            flat: a.bands.flat,
            valley: a.bands.valley,
        },
        Tariff::TimeOfUse { .. } => {
            report.tou_billed_at_flat += 1;
            if report.tou_billed_at_flat_first.len() < 5 {
                report.tou_billed_at_flat_first.push(a.ext.clone());
            }
            Consumption::Total(a.kwh)
        }
        _ => Consumption::Total(a.kwh),
    };
    let draft = bill_period(
        tariff,
        ctx.period,
        consumption,
        before,
        ctx.rules.due_days_after_period_end,
    )
    .map_err(|source| BillingError::Tariff {
        code: a.tariff.clone(),
        source,
    })?;
    let settled = if a.prepaid {
        // The bought balance pays the bill at once (an internal payment of ¥0 that uses the
        // account's credit, so the receipt and a reversal work as for any payment).
        let st = prepaid::settle(Fen(a.credit), draft.total, &ctx.rules.prepaid);
        if let Some(alert) = st.alert.clone() {
            report.prepaid_alerts.push(PrepaidAlertRow {
                account: a.ext.clone(),
                alert,
            });
        }
        Some(st)
    } else {
        None
    };
    report.bills += 1;
    report.kwh += draft.kwh;
    report.total = report.total + draft.total;
    Ok((draft, settled))
}

/// PostgreSQL's run cursor: the billable reads of the period not yet billed, of accounts
/// without a bill for the period, in account order, with what each account was billed
/// earlier in the year. `p1`/`p2`: first and last day, `p3`: the year's first period,
/// `p4`: the period (literals made from typed values).
fn run_reads_sql(p1: &str, p2: &str, p3: &str, p4: &str) -> String {
    format!(
        "SELECT m.account_id, a.external_id, a.class, a.tariff, a.prepaid, a.credit_fen, r.kwh, r.peak_kwh, r.flat_kwh, r.valley_kwh, m.prepaid_mode, \
         (SELECT CAST(COALESCE(SUM(b.kwh), 0) AS BIGINT) FROM billing_bills b WHERE b.account_id = m.account_id AND b.period >= {p3} AND b.period < {p4}) AS before_kwh \
         FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id JOIN billing_accounts a ON a.id = m.account_id \
         WHERE r.status IN {BILLABLE} AND r.bill_id IS NULL AND r.kwh IS NOT NULL AND r.read_on >= {p1} AND r.read_on <= {p2} \
         AND NOT EXISTS (SELECT 1 FROM billing_bills b WHERE b.account_id = m.account_id AND b.period = {p4}) \
         ORDER BY m.account_id, r.id"
    )
}

trait RunBulk<P> {
    /// `pool`: the store's pool, for a second connection to read through.
    async fn run_bulk(
        &mut self,
        pool: &P,
        ctx: &RunCtx<'_>,
        held: &std::collections::HashSet<i64>,
        year_start: &str,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> BResult<()>;
}

impl RunBulk<sqlx::SqlitePool> for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn run_bulk(
        &mut self,
        pool: &sqlx::SqlitePool,
        ctx: &RunCtx<'_>,
        held: &std::collections::HashSet<i64>,
        year_start: &str,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> BResult<()> {
        crate::sqlite_bulk::on_raw(pool, self, true, |db, reader| {
            run_sqlite(db, reader, ctx, held, year_start, now, report)
        })
        .await?
    }
}

/// Accounts read per step of the SQLite run: their billable reads are collected with the
/// statement open, then the statement is reset and their bills written (so no statement
/// reads a table while it is written to, and memory stays flat).
pub(crate) static SQLITE_RUN_CHUNK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(10_000);

/// The meters of accounts `?3 <= id < ?4` (a rowid range) with their reads in force of the
/// period (`?1`/`?2`, not rejected), in account order without a sort: a meter without such
/// a read comes once with the read's columns NULL (漏抄, counted as the run goes). Column
/// 12 says whether the read is billable and not yet billed.
const SQLITE_RUN_READS: &str = "SELECT a.id, a.external_id, a.class, a.tariff, a.prepaid, a.credit_fen, r.id, r.kwh, m.prepaid_mode, \
    r.peak_kwh, r.flat_kwh, r.valley_kwh, \
    r.status IN ('clean', 'accepted', 'corrected', 'estimated') AND r.bill_id IS NULL AND r.kwh IS NOT NULL \
    FROM billing_accounts a CROSS JOIN billing_meters m LEFT JOIN billing_reads r \
    ON r.meter_id = m.id AND r.read_on >= ?1 AND r.read_on <= ?2 AND r.status <> 'rejected' \
    WHERE a.id >= ?3 AND a.id < ?4 AND m.account_id = a.id \
    ORDER BY a.id";

/// One account priced by the reading side of the SQLite run, for the writing side.
struct Priced {
    acc: RunAcc,
    draft: kehu_domain::billing::bill::BillDraft,
    settled: Option<prepaid::PrepaidSettlement>,
}

/// The SQLite run on raw connections: no await, no per-row sqlx. Accounts are taken
/// `SQLITE_RUN_CHUNK` at a time in id order; the reading side (on `reader`, a second
/// connection, when there is one: see `sqlite_bulk::pipeline`) collects each account's
/// billable reads and earlier bills of the tier year and prices the bill, while the writing
/// side (the transaction's connection `writer`) writes the bills priced before with their
/// lines and marks their reads billed by id. The reader reads accounts, meters, reads and
/// bills as they were when the run began; the run writes only bills of the period and the
/// reads it bills, each account's after that account was read.
fn run_sqlite(
    writer: *mut libsqlite3_sys::sqlite3,
    reader: Option<*mut libsqlite3_sys::sqlite3>,
    ctx: &RunCtx<'_>,
    held: &std::collections::HashSet<i64>,
    year_start: &str,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> BResult<()> {
    use crate::sqlite_bulk::{Stmt, V};
    debug_assert!(SQLITE_RUN_READS.contains(BILLABLE));
    let period = ctx.period.to_string();
    let date = crate::sqlite_bulk::date_text;
    let produce = |db: *mut libsqlite3_sys::sqlite3,
                   sink: &mut dyn FnMut(Vec<Priced>) -> bool|
     -> BResult<i64> {
        let reads = Stmt::prepare(db, SQLITE_RUN_READS)?;
        // The account's bills from ?2 to the period ?3: whether the period is billed
        // already, and the kWh billed before it in the tier year (one walk of the unique key).
        let bills_st = Stmt::prepare(db, "SELECT period, kwh FROM billing_bills WHERE account_id = ?1 AND period >= ?2 AND period <= ?3")?;
        let (from, to) = (date(ctx.period.first_day()), date(ctx.period.last_day()));
        let last_acc = crate::sqlite_bulk::max_id(db, "billing_accounts")?;
        let annual = |tariff: &str| ctx.tariffs.get(tariff).is_some_and(counts_tier_year);
        let mut chunk: Vec<RunAcc> = Vec::new();
        let mut missing = 0i64;
        let mut lo = 1;
        while lo <= last_acc {
            let hi = lo + SQLITE_RUN_CHUNK.load(std::sync::atomic::Ordering::Relaxed).max(1);
            chunk.clear();
            reads.bind(&[V::Text(&from), V::Text(&to), V::Int(lo), V::Int(hi)])?;
            while reads.next()? {
                if reads.is_null(6) {
                    missing += 1;
                    continue;
                }
                if reads.int(12) == 0 {
                    continue;
                }
                let id = reads.int(0);
                if chunk.last().map_or(true, |a| a.id != id) {
                    chunk.push(RunAcc {
                        id,
                        ext: reads.text(1).to_string(),
                        class: reads.text(2).to_string(),
                        tariff: reads.text(3).to_string(),
                        prepaid: reads.int(4) != 0,
                        credit: reads.int(5),
                        ..RunAcc::default()
                    });
                }
                let a = chunk.last_mut().expect("pushed above");
                a.read_ids.push(reads.int(6));
                let opt = |i| (!reads.is_null(i)).then(|| reads.int(i));
                a.add(reads.int(7), opt(9), opt(10), opt(11));
                a.mismatch |= a.prepaid && reads.int(8) == 0;
            }
            // Reset: on the writer's connection the bills and reads are written next.
            reads.bind(&[])?;
            let mut priced = Vec::with_capacity(chunk.len());
            'acc: for mut a in chunk.drain(..) {
                if held.contains(&a.id) {
                    continue;
                }
                let from = if annual(&a.tariff) { year_start } else { period.as_str() };
                bills_st.bind(&[V::Int(a.id), V::Text(from), V::Text(&period)])?;
                let mut before = 0u64;
                while bills_st.next()? {
                    if bills_st.text(0) == period {
                        continue 'acc;
                    }
                    before += bills_st.int(1).max(0) as u64;
                }
                a.before = before;
                let (draft, settled) = price_account(ctx, &a, report)?;
                priced.push(Priced { acc: a, draft, settled });
            }
            bills_st.bind(&[])?;
            if !priced.is_empty() && !sink(priced) {
                break;
            }
            lo = hi;
        }
        Ok(missing)
    };
    let db = writer;
    // Bills take the ids after the last (as SQLite would give them one by one): no other
    // writer can add one during this transaction.
    let mut next_bill = crate::sqlite_bulk::max_id(db, "billing_bills")? + 1;
    let bills = crate::sqlite_bulk::Rows::prepare(db, "billing_bills (id, account_id, period, kwh, total_fen, due_on, issued_at)", 7)?;
    let lines = crate::sqlite_bulk::Rows::prepare(db, "billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen)", 7)?;
    let mark = Stmt::prepare(db, "UPDATE billing_reads SET status = 'billed', bill_id = ?1 WHERE id = ?2")?;
    let mut prepaid_stmts: Option<[Stmt; 4]> = None;
    let now_s = crate::sqlite_bulk::time(now);
    let last_day = date(ctx.period.last_day());
    // The bills of a chunk, then their lines, then their reads marked and prepaid balances.
    let mut write = |chunk: &[Priced]| -> BResult<()> {
        let first = next_bill;
        next_bill += chunk.len() as i64;
        let ids = (first..next_bill).zip(chunk);
        let dues: Vec<String> = chunk.iter().map(|p| date(p.draft.due_on)).collect();
        let mut vals = Vec::with_capacity(chunk.len() * 7);
        for ((id, p), due) in ids.clone().zip(&dues) {
            vals.extend([
                V::Int(id),
                V::Int(p.acc.id),
                V::Text(&period),
                V::Int(p.draft.kwh as i64),
                V::Int(p.draft.total.0),
                V::Text(due),
                V::Text(&now_s),
            ]);
        }
        bills.write(&vals)?;
        vals.clear();
        for (id, p) in ids.clone() {
            for (i, l) in p.draft.lines.iter().enumerate() {
                vals.extend([
                    V::Int(id),
                    V::Int(i as i64 + 1),
                    V::Text(&l.item),
                    V::Text(&l.label),
                    V::Int(l.kwh as i64),
                    V::Int(l.price.0),
                    V::Int(l.amount.0),
                ]);
            }
        }
        lines.write(&vals)?;
        for (bill_id, p) in ids {
            let a = &p.acc;
            for &r in &a.read_ids {
                mark.row(&[V::Int(bill_id), V::Int(r)])?;
            }
            let Some(st) = p.settled.as_ref().filter(|st| st.paid.0 > 0) else {
                continue;
            };
            if prepaid_stmts.is_none() {
                prepaid_stmts = Some([
                    Stmt::prepare(db, "INSERT INTO billing_payments (external_id, account_id, amount_fen, paid_on, channel, credit_fen, recorded_at) VALUES (?1, ?2, 0, ?3, 'prepaid_balance', ?4, ?5)")?,
                    Stmt::prepare(db, "INSERT INTO billing_allocations (payment_id, bill_id, principal_fen, penalty_fen) VALUES (?1, ?2, ?3, 0)")?,
                    Stmt::prepare(db, "UPDATE billing_bills SET paid_principal_fen = ?1 WHERE id = ?2")?,
                    Stmt::prepare(db, "UPDATE billing_accounts SET credit_fen = ?1 WHERE id = ?2")?,
                ]);
            }
            let [pay, alloc, paid, credit] = prepaid_stmts.as_ref().expect("prepared");
            let ext = format!("PREPAID-{}-{}", a.ext, period);
            let pid = pay
                .insert(&[
                    V::Text(&ext),
                    V::Int(a.id),
                    V::Text(&last_day),
                    V::Int(st.balance_after.0),
                    V::Text(&now_s),
                ])?
                .ok_or_else(|| BillingError::Invalid(format!("payment {ext} was not written")))?;
            alloc.row(&[V::Int(pid), V::Int(bill_id), V::Int(st.paid.0)])?;
            paid.row(&[V::Int(st.paid.0), V::Int(bill_id)])?;
            credit.row(&[V::Int(st.balance_after.0), V::Int(a.id)])?;
        }
        Ok(())
    };
    let missing = crate::sqlite_bulk::pipeline(writer, reader, produce, |chunk: Vec<Priced>| write(&chunk))?;
    report.meters_without_read = missing;
    Ok(())
}

/// Bills written to PostgreSQL per statement.
const PG_BATCH: usize = 5_000;

#[derive(Default)]
struct PgBatch {
    acc: Vec<i64>,
    kwh: Vec<i64>,
    total: Vec<i64>,
    due: Vec<NaiveDate>,
    l_acc: Vec<i64>,
    l_no: Vec<i64>,
    l_item: Vec<String>,
    l_label: Vec<String>,
    l_kwh: Vec<i64>,
    l_price: Vec<i64>,
    l_amount: Vec<i64>,
    prepaid: Vec<(i64, String, prepaid::PrepaidSettlement)>,
    /// Bills written so far by this run.
    written: usize,
}

impl PgBatch {
    async fn flush(
        &mut self,
        tx: &mut sqlx::PgConnection,
        period: &str,
        last_day: NaiveDate,
        now: DateTime<Utc>,
    ) -> BResult<()> {
        if self.acc.is_empty() {
            return Ok(());
        }
        // The new bills' ids by account: the lines and prepaid payments refer to them
        // directly (a join on bills written in this transaction would be planned blind).
        let mut ids: HashMap<i64, i64> = HashMap::with_capacity(self.acc.len());
        for r in sqlx::query(
            "INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) \
             SELECT u.a, $5, u.k, u.t, u.d, $6 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::date[]) AS u(a, k, t, d) \
             RETURNING id, account_id",
        )
        .bind(&self.acc)
        .bind(&self.kwh)
        .bind(&self.total)
        .bind(&self.due)
        .bind(period)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        {
            ids.insert(r.g_i("account_id")?, r.g_i("id")?);
        }
        let l_bill: Vec<i64> = self.l_acc.iter().map(|a| ids[a]).collect();
        sqlx::query(
            "INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])",
        )
        .bind(&l_bill)
        .bind(&self.l_no)
        .bind(&self.l_item)
        .bind(&self.l_label)
        .bind(&self.l_kwh)
        .bind(&self.l_price)
        .bind(&self.l_amount)
        .execute(&mut *tx)
        .await?;
        for (acc, ext, st) in &self.prepaid {
            let bill_id = ids[acc];
            let pid: i64 = sqlx::query_scalar(
                "INSERT INTO billing_payments (external_id, account_id, amount_fen, paid_on, channel, credit_fen, recorded_at) \
                 VALUES ($1, $2, 0, $3, 'prepaid_balance', $4, $5) RETURNING id",
            )
            .bind(format!("PREPAID-{ext}-{period}"))
            .bind(acc)
            .bind(last_day)
            .bind(st.balance_after.0)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO billing_allocations (payment_id, bill_id, principal_fen, penalty_fen) VALUES ($1, $2, $3, 0)")
                .bind(pid).bind(bill_id).bind(st.paid.0).execute(&mut *tx).await?;
            sqlx::query("UPDATE billing_bills SET paid_principal_fen = $1 WHERE id = $2")
                .bind(st.paid.0)
                .bind(bill_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE billing_accounts SET credit_fen = $1 WHERE id = $2")
                .bind(st.balance_after.0)
                .bind(acc)
                .execute(&mut *tx)
                .await?;
        }
        self.written += self.acc.len();
        let written = self.written;
        *self = PgBatch::default();
        self.written = written;
        Ok(())
    }

    fn push(&mut self, ctx: &RunCtx<'_>, a: &RunAcc, report: &mut RunReport) -> BResult<()> {
        let (draft, settled) = price_account(ctx, a, report)?;
        self.acc.push(a.id);
        self.kwh.push(draft.kwh as i64);
        self.total.push(draft.total.0);
        self.due.push(draft.due_on);
        for (i, l) in draft.lines.into_iter().enumerate() {
            self.l_acc.push(a.id);
            self.l_no.push(i as i64 + 1);
            self.l_item.push(l.item);
            self.l_label.push(l.label);
            self.l_kwh.push(l.kwh as i64);
            self.l_price.push(l.price.0);
            self.l_amount.push(l.amount.0);
        }
        if let Some(st) = settled.filter(|st| st.paid.0 > 0) {
            self.prepaid.push((a.id, a.ext.clone(), st));
        }
        Ok(())
    }
}

impl RunBulk<sqlx::PgPool> for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn run_bulk(
        &mut self,
        _pool: &sqlx::PgPool,
        ctx: &RunCtx<'_>,
        held: &std::collections::HashSet<i64>,
        year_start: &str,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> BResult<()> {
        let conn: &mut sqlx::PgConnection = self;
        let max_bill: i64 = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM billing_bills")
            .fetch_one(&mut *conn)
            .await?
            .unwrap_or(0);
        let period = ctx.period.to_string();
        // Literals, not parameters, in the cursor's query: dates and periods formatted from
        // typed values, never from input text.
        let lit = |s: &str| format!("'{s}'");
        let sql = run_reads_sql(
            &format!("DATE {}", lit(&ctx.period.first_day().to_string())),
            &format!("DATE {}", lit(&ctx.period.last_day().to_string())),
            &lit(year_start),
            &lit(&period),
        );
        // Fresh statistics first: a run usually follows the intake of a whole period of
        // reads, and a plan made on the counts from before it can be ruinous (a sampled
        // ANALYZE costs well under a second).
        sqlx::query("ANALYZE billing_reads").execute(&mut *conn).await?;
        sqlx::query(&format!(
            "DECLARE billing_run_reads NO SCROLL CURSOR FOR {sql}"
        ))
        .execute(&mut *conn)
        .await?;
        let mut batch = PgBatch::default();
        let mut cur: Option<RunAcc> = None;
        loop {
            let rows = sqlx::query("FETCH 10000 FROM billing_run_reads")
                .fetch_all(&mut *conn)
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id = r.g_i("account_id")?;
                if cur.as_ref().map_or(true, |a| a.id != id) {
                    if let Some(a) = cur.take() {
                        if !held.contains(&a.id) {
                            batch.push(ctx, &a, report)?;
                        }
                    }
                    cur = Some(RunAcc {
                        id,
                        ext: r.g_s("external_id")?,
                        class: r.g_s("class")?,
                        tariff: r.g_s("tariff")?,
                        prepaid: r.g_b("prepaid")?,
                        credit: r.g_i("credit_fen")?,
                        before: r.g_i("before_kwh")?.max(0) as u64,
                        ..RunAcc::default()
                    });
                }
                let a = cur.as_mut().expect("set above");
                if let Some(k) = r.g_oi("kwh")? {
                    a.add(k, r.g_oi("peak_kwh")?, r.g_oi("flat_kwh")?, r.g_oi("valley_kwh")?);
                }
                a.mismatch |= a.prepaid && !r.g_b("prepaid_mode")?;
            }
            if batch.acc.len() >= PG_BATCH {
                batch
                    .flush(conn, &period, ctx.period.last_day(), now)
                    .await?;
            }
        }
        if let Some(a) = cur.take() {
            if !held.contains(&a.id) {
                batch.push(ctx, &a, report)?;
            }
        }
        batch
            .flush(conn, &period, ctx.period.last_day(), now)
            .await?;
        sqlx::query("CLOSE billing_run_reads")
            .execute(&mut *conn)
            .await?;
        if batch.written > 10_000 {
            // Fresh statistics for the set-based update that marks the reads billed.
            sqlx::query("ANALYZE billing_bills")
                .execute(&mut *conn)
                .await?;
        }
        // The reads of the bills written above (ids past the largest before the run).
        sqlx::query(&format!(
            "UPDATE billing_reads SET status = 'billed', bill_id = b.id FROM billing_meters m JOIN billing_bills b ON b.account_id = m.account_id \
             WHERE m.id = billing_reads.meter_id AND b.period = $3 AND b.id > $4 AND billing_reads.status IN {BILLABLE} \
             AND billing_reads.bill_id IS NULL AND billing_reads.kwh IS NOT NULL AND billing_reads.read_on >= $1 AND billing_reads.read_on <= $2"
        ))
        .bind(ctx.period.first_day())
        .bind(ctx.period.last_day())
        .bind(&period)
        .bind(max_bill)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

// ---- Read intake on SQLite: the same checks through prepared statements ----

/// A stored `YYYY-MM-DD` date, read digit by digit (chrono's parser cost more than the
/// statement that fetched it).
fn parse_date(s: &str, table: &'static str, column: &'static str) -> BResult<NaiveDate> {
    parse_date_bytes(s.as_bytes(), table, column)
}

/// `parse_date` on the bytes of a stored date (no UTF-8 check first).
fn parse_date_bytes(b: &[u8], table: &'static str, column: &'static str) -> BResult<NaiveDate> {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?))
        .flatten()
        .ok_or_else(|| corrupt(table, column, String::from_utf8_lossy(b).into_owned()))
}

/// What intake needs to know of a meter before checking its next read: the meter, its
/// latest read in force, and its billable periods before the read (the VEE history; the
/// same period last year when there is none).
struct MeterContext {
    meter_id: i64,
    meter: Meter,
    previous: Option<Read>,
    prev_bands: Option<BandRegisters>,
    /// Oldest first.
    history: Vec<PeriodUse>,
    last_year: Option<PeriodUse>,
    /// The read checked against this context already (by the reading side), unless it is
    /// out of order.
    checked: Option<(vee::ReadCheck, ReadStatus, Option<BandUse>)>,
}

impl MeterContext {
    /// VEE on read `r` (with its band registers `bands`) against this context.
    fn check(
        &self,
        rules: &VeeRules,
        r: &NewRead,
        bands: Option<BandRegisters>,
        today: NaiveDate,
    ) -> (vee::ReadCheck, ReadStatus, Option<BandUse>) {
        let ctx = ReadContext {
            meter: &self.meter,
            previous: self.previous,
            history: &self.history,
            last_year: self.last_year,
            today,
        };
        check_new_read(rules, r, bands, self.prev_bands, &ctx)
    }
}

/// The unpaid principal of every bill summed by group (`key`, an expression on the account
/// `a`) and due date, with the count of bills, read in one pass over the bills on a raw
/// SQLite connection (one statement: one snapshot).
fn ageing_sums_sqlite(
    db: *mut libsqlite3_sys::sqlite3,
    key: &str,
) -> BResult<Vec<(String, NaiveDate, u64, i64)>> {
    let st = crate::sqlite_bulk::Stmt::prepare(
        db,
        &format!(
            "SELECT {key}, b.due_on, b.total_fen - b.paid_principal_fen FROM billing_bills b \
             JOIN billing_accounts a ON a.id = b.account_id WHERE b.total_fen > b.paid_principal_fen"
        ),
    )?;
    let mut sums: HashMap<Box<[u8]>, HashMap<Box<[u8]>, (u64, i64)>> = HashMap::new();
    st.bind(&[])?;
    while st.next()? {
        let by_due = match sums.get_mut(st.bytes(0)) {
            Some(m) => m,
            None => sums.entry(st.bytes(0).into()).or_default(),
        };
        let e = match by_due.get_mut(st.bytes(1)) {
            Some(e) => e,
            None => by_due.entry(st.bytes(1).into()).or_default(),
        };
        e.0 += 1;
        e.1 += st.int(2);
    }
    st.bind(&[])?;
    let mut out = Vec::new();
    for (k, by_due) in sums {
        let k = String::from_utf8(k.into_vec()).map_err(|e| {
            let v = String::from_utf8_lossy(e.as_bytes()).into_owned();
            corrupt("billing_accounts", "class or area", v)
        })?;
        for (due, (n, owed)) in by_due {
            out.push((k.clone(), parse_date_bytes(&due, "billing_bills", "due_on")?, n, owed));
        }
    }
    Ok(out)
}

/// The prepared lookups of a `MeterContext` on one connection.
struct ContextLookups {
    meter_st: crate::sqlite_bulk::Stmt,
    recent_st: crate::sqlite_bulk::Stmt,
    ly_st: crate::sqlite_bulk::Stmt,
    hist_n: usize,
}

impl ContextLookups {
    fn prepare(db: *mut libsqlite3_sys::sqlite3, rules: &VeeRules) -> BResult<ContextLookups> {
        use crate::sqlite_bulk::Stmt;
        Ok(ContextLookups {
            // The meter with its reads (as `recent_st`), in one statement. The meter's
            // account is not read: no check of a read depends on it.
            meter_st: Stmt::prepare(db, "SELECT m.id, m.ct_ratio, m.pt_ratio, m.multiplier, m.register_digits, m.installed_on, \
                m.capacity_kva, m.prepaid_mode, \
                r.read_on, r.value, r.prev_read_on, r.kwh, r.status, r.peak_value, r.flat_value, r.valley_value \
                FROM billing_meters m LEFT JOIN billing_reads r ON r.meter_id = m.id AND r.status <> 'rejected' \
                WHERE m.external_id = ?1 ORDER BY r.read_on DESC, r.id DESC")?,
            // The meter's reads, latest first: the first is the previous read, the history
            // is taken from the following ones (one walk of the meter's index for both).
            recent_st: Stmt::prepare(db, "SELECT read_on, value, prev_read_on, kwh, status, peak_value, flat_value, valley_value FROM billing_reads \
                WHERE meter_id = ?1 AND status <> 'rejected' ORDER BY read_on DESC, id DESC")?,
            ly_st: Stmt::prepare(db, &last_year_sql())?,
            hist_n: rules.history_periods.max(1) as usize,
        })
    }

    /// The context of read `r`; `known`: its meter when already looked up (reads of one
    /// meter usually come together). Every statement is reset before it returns.
    fn context(&self, r: &NewRead, known: Option<(i64, Meter)>) -> BResult<MeterContext> {
        use crate::sqlite_bulk::V;
        const M: &str = "billing_meters";
        const R: &str = "billing_reads";
        // A meter looked up here comes with its reads in one statement (its columns first,
        // the read's after `off`; a meter without reads comes once, the read's NULL).
        let (meter_id, meter, st, off) = match known {
            Some((id, m)) => {
                self.recent_st.bind(&[V::Int(id)])?;
                (id, m, &self.recent_st, 0)
            }
            None => {
                let st = &self.meter_st;
                st.bind(&[V::Text(&r.meter)])?;
                if !st.next()? {
                    st.bind(&[])?;
                    return Err(BillingError::UnknownMeter {
                        meter: r.meter.clone(),
                    });
                }
                let m = Meter {
                    // Not read: the caller knows it (the read names its meter).
                    external_id: String::new(),
                    account: String::new(),
                    ct_ratio: st.int(1) as u32,
                    pt_ratio: st.int(2) as u32,
                    multiplier: st.int(3) as u32,
                    register_digits: st.int(4) as u8,
                    installed_on: parse_date_bytes(st.bytes(5), M, "installed_on")?,
                    capacity_kva: st.int(6) as u32,
                    prepaid_mode: st.int(7) != 0,
                };
                (st.int(0), m, st, 8)
            }
        };
        let mut history = Vec::with_capacity(self.hist_n);
        let mut previous = None;
        let mut prev_bands = None;
        // The meter's statement stands on its first row already.
        let mut row = off > 0 && !st.is_null(off);
        if off == 0 {
            row = st.next()?;
        }
        while row {
            let on = parse_date_bytes(st.bytes(off), R, "read_on")?;
            if previous.is_none() {
                previous = Some(Read {
                    read_on: on,
                    value: st.int(off + 1) as u64,
                });
                let opt = |i| (!st.is_null(off + i)).then(|| st.int(off + i));
                prev_bands = bands_from(opt(5), opt(6), opt(7));
            }
            let status = st.bytes(off + 4);
            if on < r.read_on
                && !st.is_null(off + 2)
                && !st.is_null(off + 3)
                && HISTORY_STATUSES.iter().any(|h| h.as_bytes() == status)
            {
                history.push(PeriodUse {
                    from: parse_date_bytes(st.bytes(off + 2), R, "prev_read_on")?,
                    to: on,
                    kwh: st.int(off + 3) as u64,
                });
            }
            row = history.len() < self.hist_n && st.next()?;
        }
        st.bind(&[])?;
        history.reverse();
        // The same period last year is used only without history (see `vee::check_read`).
        let mut last_year = None;
        if history.is_empty() {
            let date = crate::sqlite_bulk::date_text;
            let (lo, hi) = vee::last_year_window(r.read_on);
            let st = &self.ly_st;
            st.bind(&[V::Int(meter_id), V::Text(&date(lo)), V::Text(&date(hi))])?;
            if st.next()? {
                last_year = Some(PeriodUse {
                    from: parse_date(st.text(0), R, "prev_read_on")?,
                    to: parse_date(st.text(1), R, "read_on")?,
                    kwh: st.int(2) as u64,
                });
            }
            st.bind(&[])?;
        }
        Ok(MeterContext {
            meter_id,
            meter,
            previous,
            prev_bands,
            history,
            last_year,
            checked: None,
        })
    }
}

/// Reads taken together by the reading side of SQLite intake.
const INTAKE_STEP: usize = 256;

/// Batches smaller than this are read and written on one connection (a second thread and
/// connection cost more than they save).
const INTAKE_PIPELINE_MIN: usize = 512;

/// `add_reads` on raw SQLite connections: for each read, the meter, the previous read and
/// the history are looked up by prepared statements, the read is checked by
/// `vee::check_read` and inserted; a resend is found by the insert (the unique key) and only
/// then looked up. Same order, same answers, same rows as the per-statement path; no await
/// inside.
///
/// With a second connection (`reader`, see `sqlite_bulk::shared_steps`) the lookups of a
/// meter's first read in the batch run there, on the other core, while the transaction's
/// connection (`writer`) checks and writes the reads before it; when the writer would wait
/// for them, it looks up the next ones itself. A meter's later reads in the batch depend on
/// what its earlier ones wrote: they are looked up on the writer, in order.
fn add_reads_sqlite(
    writer: *mut libsqlite3_sys::sqlite3,
    reader: Option<*mut libsqlite3_sys::sqlite3>,
    reads: &[NewRead],
    rules: &VeeRules,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> BResult<Vec<ReadOutcome>> {
    use crate::sqlite_bulk::{Stmt, V};
    const R: &str = "billing_reads";
    // A meter's first read in the batch is looked up in a step of reading (on either
    // connection: see `sqlite_bulk::shared_steps`); its later reads by the writer, after the
    // earlier ones are written.
    let first: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(reads.len());
        reads.iter().map(|r| seen.insert(r.meter.as_str())).collect()
    };
    // The reads of step `j`: for each in order, its context, or `None` when the writer must
    // look it up; ends at the first that fails.
    let step = |lookups: &ContextLookups, j: usize| -> Vec<BResult<Option<MeterContext>>> {
        let lo = j * INTAKE_STEP;
        let hi = (lo + INTAKE_STEP).min(reads.len());
        let mut out = Vec::with_capacity(hi - lo);
        for (r, &first) in reads[lo..hi].iter().zip(&first[lo..hi]) {
            if !first {
                out.push(Ok(None));
                continue;
            }
            // Checked here too when in order: the writer then only writes it.
            let c = lookups.context(r, None).and_then(|mut c| {
                let bands = r.bands()?;
                if c.previous.map_or(true, |p| r.read_on >= p.read_on) {
                    c.checked = Some(c.check(rules, r, bands, today));
                    // Not needed by the writer any more: freed on this thread.
                    c.history = Vec::new();
                }
                Ok(c)
            });
            let failed = c.is_err();
            out.push(c.map(Some));
            if failed {
                break;
            }
        }
        out
    };
    let existing_st = Stmt::prepare(writer, "SELECT id, meter_id, read_on, value, kwh, flags, status, \
        peak_value, flat_value, valley_value, peak_kwh, flat_kwh, valley_kwh FROM billing_reads WHERE external_id = ?1")?;
    let ins_st = Stmt::prepare(writer, "INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, created_at, \
        peak_value, flat_value, valley_value, peak_kwh, flat_kwh, valley_kwh) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (external_id) DO NOTHING")?;
    let now_s = crate::sqlite_bulk::time(now);
    // The meter of the read before (reads of one meter usually come together).
    // (Named by the read: a context's meter comes without its external id.)
    let mut last_meter: Option<(&str, (i64, Meter))> = None;
    let mut out = Vec::with_capacity(reads.len());
    let mut next = 0usize;
    // The text written per read, in buffers kept from one read to the next.
    let (mut ext_buf, mut on_buf, mut prev_buf) = (String::new(), String::new(), String::new());
    // `own`: the lookups on the writer, for a meter's later reads.
    let mut consume = |found: BResult<Option<MeterContext>>, own: &ContextLookups| -> BResult<()> {
        let r = &reads[next];
        next += 1;
        let ext: &str = match &r.external_id {
            Some(e) => e,
            None => {
                ext_buf.clear();
                ext_buf.push_str(&r.meter);
                ext_buf.push('@');
                crate::sqlite_bulk::push_date(&mut ext_buf, r.read_on);
                &ext_buf
            }
        };
        let value = i64::try_from(r.value).map_err(|_| {
            BillingError::Invalid(format!(
                "meter {}: register value {} too large",
                r.meter, r.value
            ))
        })?;
        let bands = r.bands()?;
        let mut c = match found? {
            Some(c) => c,
            None => {
                let known = last_meter.take().filter(|(m, _)| *m == r.meter);
                own.context(r, known.map(|(_, k)| k))?
            }
        };
        let meter_id = c.meter_id;
        // A read already stored under this id: the same read again is answered as it was
        // stored, a different one is refused.
        let resent = |out: &mut Vec<ReadOutcome>| -> BResult<bool> {
            existing_st.bind(&[V::Text(ext)])?;
            if !existing_st.next()? {
                return Ok(false);
            }
            let (ex_meter, ex_on, ex_value) = (
                existing_st.int(1),
                parse_date(existing_st.text(2), R, "read_on")?,
                existing_st.int(3),
            );
            let opt = |i| (!existing_st.is_null(i)).then(|| existing_st.int(i));
            let same = ex_meter == meter_id
                && ex_on == r.read_on
                && ex_value == value
                && bands_from(opt(7), opt(8), opt(9)) == bands;
            if same {
                out.push(ReadOutcome {
                    read_id: existing_st.int(0),
                    status: status(existing_st.text(6).to_string())?,
                    flags: flags_from_text(existing_st.text(5)),
                    kwh: opt(4).map(|k| k as u64),
                    bands: band_use_from(opt(10), opt(11), opt(12)),
                });
            }
            existing_st.bind(&[])?;
            if same {
                return Ok(true);
            }
            Err(BillingError::ConflictingResend {
                external_id: ext.to_string(),
                before: format!("meter id {ex_meter}, {ex_on} value {ex_value}"),
            })
        };
        let previous = c.previous;
        if let Some(pr) = previous {
            if r.read_on < pr.read_on {
                if resent(&mut out)? {
                    last_meter = Some((&r.meter, (meter_id, c.meter)));
                    return Ok(());
                }
                return Err(BillingError::OutOfOrder {
                    meter: r.meter.clone(),
                    read_on: r.read_on,
                    latest: pr.read_on,
                });
            }
        }
        let (check, st, band_use) = match c.checked.take() {
            Some(checked) => checked,
            None => c.check(rules, r, bands, today),
        };
        on_buf.clear();
        crate::sqlite_bulk::push_date(&mut on_buf, r.read_on);
        let prev_on = previous.map(|p| {
            prev_buf.clear();
            crate::sqlite_bulk::push_date(&mut prev_buf, p.read_on);
            prev_buf.as_str()
        });
        let int_or_null = |v: Option<u64>| v.map_or(V::Null, |k| V::Int(k as i64));
        let flags = flags_to_text(&check.flags);
        let id = ins_st.insert(&[
            V::Text(ext),
            V::Int(meter_id),
            V::Text(&on_buf),
            V::Int(value),
            prev_on.map_or(V::Null, V::Text),
            check.kwh.map_or(V::Null, |k| V::Int(k as i64)),
            V::Text(&flags),
            V::Text(st.code()),
            V::Text(&now_s),
            int_or_null(bands.map(|b| b.peak)),
            int_or_null(bands.map(|b| b.flat)),
            int_or_null(bands.map(|b| b.valley)),
            int_or_null(band_use.map(|b| b.peak)),
            int_or_null(band_use.map(|b| b.flat)),
            int_or_null(band_use.map(|b| b.valley)),
        ])?;
        last_meter = Some((&r.meter, (meter_id, c.meter)));
        let Some(id) = id else {
            if resent(&mut out)? {
                return Ok(());
            }
            return Err(BillingError::Invalid(format!("read {ext} was not written")));
        };
        out.push(ReadOutcome {
            read_id: id,
            status: st,
            flags: check.flags,
            kwh: check.kwh,
            bands: band_use,
        });
        Ok(())
    };
    crate::sqlite_bulk::shared_steps(
        writer,
        reader,
        reads.len().div_ceil(INTAKE_STEP),
        |db| ContextLookups::prepare(db, rules),
        step,
        |step: Vec<BResult<Option<MeterContext>>>, own| {
            step.into_iter().try_for_each(|found| consume(found, own))
        },
    )?;
    Ok(out)
}

// ---- Read intake on PostgreSQL: the context of a batch of reads in a few set queries ----

/// Reads of one PostgreSQL batch at most (a batch also ends before a meter or a read id
/// comes a second time, so every read is checked against what the earlier ones left).
const PG_READ_BATCH: usize = 5_000;

/// `add_reads` on PostgreSQL: per batch, the meters, resends, previous reads, history and
/// last year's periods come from one statement each (`= ANY`, `DISTINCT ON`, `LATERAL`),
/// the reads are checked in order by `vee::check_read` and inserted by one `UNNEST`.
async fn add_reads_pg(
    conn: &mut sqlx::PgConnection,
    reads: &[NewRead],
    rules: &VeeRules,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> BResult<Vec<ReadOutcome>> {
    let mut out = Vec::with_capacity(reads.len());
    let mut start = 0;
    while start < reads.len() {
        let mut meters_seen = std::collections::HashSet::new();
        let mut exts_seen = std::collections::HashSet::new();
        let mut exts = Vec::new();
        let mut end = start;
        while end < reads.len() && end - start < PG_READ_BATCH {
            let r = &reads[end];
            let ext = r
                .external_id
                .clone()
                .unwrap_or_else(|| format!("{}@{}", r.meter, r.read_on));
            if meters_seen.contains(r.meter.as_str()) || exts_seen.contains(&ext) {
                break;
            }
            meters_seen.insert(r.meter.as_str());
            exts_seen.insert(ext.clone());
            exts.push(ext);
            end += 1;
        }
        add_reads_pg_batch(conn, &reads[start..end], exts, rules, today, now, &mut out).await?;
        start = end;
    }
    Ok(out)
}

async fn add_reads_pg_batch(
    conn: &mut sqlx::PgConnection,
    reads: &[NewRead],
    exts: Vec<String>,
    rules: &VeeRules,
    today: NaiveDate,
    now: DateTime<Utc>,
    out: &mut Vec<ReadOutcome>,
) -> BResult<()> {
    let names: Vec<&str> = reads.iter().map(|r| r.meter.as_str()).collect();
    let mut meters: HashMap<String, (i64, Meter)> = HashMap::new();
    for m in sqlx::query("SELECT m.*, a.external_id AS account FROM billing_meters m JOIN billing_accounts a ON a.id = m.account_id WHERE m.external_id = ANY($1)")
        .bind(&names).fetch_all(&mut *conn).await?
    {
        let meter = meter_from(&m, m.g_s("account")?)?;
        meters.insert(meter.external_id.clone(), (m.g_i("id")?, meter));
    }
    let mut existing: HashMap<String, sqlx::postgres::PgRow> = HashMap::new();
    for e in sqlx::query("SELECT external_id, id, meter_id, read_on, value, kwh, flags, status, \
                          peak_value, flat_value, valley_value, peak_kwh, flat_kwh, valley_kwh FROM billing_reads WHERE external_id = ANY($1)")
        .bind(&exts).fetch_all(&mut *conn).await?
    {
        existing.insert(e.g_s("external_id")?, e);
    }
    let ids: Vec<i64> = reads
        .iter()
        .filter_map(|r| meters.get(&r.meter).map(|m| m.0))
        .collect();
    let days: Vec<NaiveDate> = reads
        .iter()
        .filter(|r| meters.contains_key(&r.meter))
        .map(|r| r.read_on)
        .collect();
    let mut prev: HashMap<i64, (Read, Option<BandRegisters>)> = HashMap::new();
    for p in sqlx::query("SELECT DISTINCT ON (meter_id) meter_id, read_on, value, peak_value, flat_value, valley_value FROM billing_reads \
                          WHERE meter_id = ANY($1) AND status <> 'rejected' ORDER BY meter_id, read_on DESC, id DESC")
        .bind(&ids).fetch_all(&mut *conn).await?
    {
        prev.insert(p.g_i("meter_id")?, (
            Read { read_on: p.g_d("read_on")?, value: p.g_i("value")? as u64 },
            bands_from(p.g_oi("peak_value")?, p.g_oi("flat_value")?, p.g_oi("valley_value")?),
        ));
    }
    let mut history: HashMap<i64, Vec<(NaiveDate, i64, PeriodUse)>> = HashMap::new();
    for h in sqlx::query(&format!(
        "SELECT u.m, h.id, h.prev_read_on, h.read_on, h.kwh FROM UNNEST($1::bigint[], $2::date[]) AS u(m, d) CROSS JOIN LATERAL \
         (SELECT id, prev_read_on, read_on, kwh FROM billing_reads WHERE meter_id = u.m AND kwh IS NOT NULL AND prev_read_on IS NOT NULL \
          AND status IN {HISTORY} AND read_on < u.d ORDER BY read_on DESC, id DESC LIMIT $3) h"))
        .bind(&ids).bind(&days).bind(rules.history_periods.max(1) as i64).fetch_all(&mut *conn).await?
    {
        let to = h.g_d("read_on")?;
        history.entry(h.g_i("m")?).or_default().push((to, h.g_i("id")?, PeriodUse { from: h.g_d("prev_read_on")?, to, kwh: h.g_i("kwh")? as u64 }));
    }
    // The same period last year, used only without history (see `vee::check_read`).
    let (mut ly_ids, mut ly_lo, mut ly_hi) = (Vec::new(), Vec::new(), Vec::new());
    for (id, d) in ids.iter().zip(&days) {
        if !history.contains_key(id) {
            let (lo, hi) = vee::last_year_window(*d);
            ly_ids.push(*id);
            ly_lo.push(lo);
            ly_hi.push(hi);
        }
    }
    let mut last_year: HashMap<i64, PeriodUse> = HashMap::new();
    if !ly_ids.is_empty() {
        for h in sqlx::query(&format!(
            "SELECT u.m, h.prev_read_on, h.read_on, h.kwh FROM UNNEST($1::bigint[], $2::date[], $3::date[]) AS u(m, lo, hi) CROSS JOIN LATERAL \
             (SELECT prev_read_on, read_on, kwh FROM billing_reads WHERE meter_id = u.m AND kwh IS NOT NULL AND prev_read_on IS NOT NULL \
              AND status IN {HISTORY} AND read_on >= u.lo AND read_on <= u.hi ORDER BY read_on LIMIT 1) h"))
            .bind(&ly_ids).bind(&ly_lo).bind(&ly_hi).fetch_all(&mut *conn).await?
        {
            last_year.insert(h.g_i("m")?, period_use(&h)?);
        }
    }
    // Check in order; new reads are collected and written at the end of the batch.
    enum Slot {
        Done(ReadOutcome),
        New(usize, ReadStatus, Vec<VeeFlag>, Option<u64>, Option<BandUse>),
    }
    #[derive(Default)]
    struct Bands {
        peak: Vec<Option<i64>>,
        flat: Vec<Option<i64>>,
        valley: Vec<Option<i64>>,
    }
    impl Bands {
        fn push(&mut self, p: Option<u64>, f: Option<u64>, v: Option<u64>) {
            self.peak.push(p.map(|x| x as i64));
            self.flat.push(f.map(|x| x as i64));
            self.valley.push(v.map(|x| x as i64));
        }
    }
    let (mut n_regs, mut n_use) = (Bands::default(), Bands::default());
    let mut slots = Vec::with_capacity(reads.len());
    let (
        mut n_ext,
        mut n_meter,
        mut n_on,
        mut n_value,
        mut n_prev,
        mut n_kwh,
        mut n_flags,
        mut n_status,
    ) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (r, ext) in reads.iter().zip(exts) {
        let value = i64::try_from(r.value).map_err(|_| {
            BillingError::Invalid(format!(
                "meter {}: register value {} too large",
                r.meter, r.value
            ))
        })?;
        let Some((meter_id, meter)) = meters.get(&r.meter) else {
            return Err(BillingError::UnknownMeter {
                meter: r.meter.clone(),
            });
        };
        let meter_id = *meter_id;
        let bands = r.bands()?;
        if let Some(ex) = existing.get(&ext) {
            if ex.g_i("meter_id")? == meter_id
                && ex.g_d("read_on")? == r.read_on
                && ex.g_i("value")? == value
                && bands_from(ex.g_oi("peak_value")?, ex.g_oi("flat_value")?, ex.g_oi("valley_value")?) == bands
            {
                slots.push(Slot::Done(ReadOutcome {
                    read_id: ex.g_i("id")?,
                    status: status(ex.g_s("status")?)?,
                    flags: flags_from_text(&ex.g_s("flags")?),
                    kwh: ex.g_oi("kwh")?.map(|k| k as u64),
                    bands: band_use_from(ex.g_oi("peak_kwh")?, ex.g_oi("flat_kwh")?, ex.g_oi("valley_kwh")?),
                }));
                continue;
            }
            return Err(BillingError::ConflictingResend {
                external_id: ext,
                before: format!(
                    "meter id {}, {} value {}",
                    ex.g_i("meter_id")?,
                    ex.g_d("read_on")?,
                    ex.g_i("value")?
                ),
            });
        }
        let (previous, prev_bands) = match prev.get(&meter_id) {
            Some((r, b)) => (Some(*r), *b),
            None => (None, None),
        };
        if let Some(pr) = previous {
            if r.read_on < pr.read_on {
                return Err(BillingError::OutOfOrder {
                    meter: r.meter.clone(),
                    read_on: r.read_on,
                    latest: pr.read_on,
                });
            }
        }
        let mut hist = history.remove(&meter_id).unwrap_or_default();
        hist.sort_by_key(|(d, id, _)| (*d, *id));
        let hist: Vec<PeriodUse> = hist.into_iter().map(|(_, _, p)| p).collect();
        let ctx = ReadContext {
            meter,
            previous,
            history: &hist,
            last_year: last_year.get(&meter_id).copied(),
            today,
        };
        let (check, st, band_use) = check_new_read(rules, r, bands, prev_bands, &ctx);
        slots.push(Slot::New(n_ext.len(), st, check.flags.clone(), check.kwh, band_use));
        n_regs.push(r.peak, r.flat, r.valley);
        n_use.push(band_use.map(|b| b.peak), band_use.map(|b| b.flat), band_use.map(|b| b.valley));
        n_ext.push(ext);
        n_meter.push(meter_id);
        n_on.push(r.read_on);
        n_value.push(value);
        n_prev.push(previous.map(|p| p.read_on));
        n_kwh.push(check.kwh.map(|k| k as i64));
        n_flags.push(flags_to_text(&check.flags));
        n_status.push(st.code().to_string());
    }
    let mut new_ids: HashMap<String, i64> = HashMap::new();
    if !n_ext.is_empty() {
        for row in sqlx::query("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, created_at, \
                                peak_value, flat_value, valley_value, peak_kwh, flat_kwh, valley_kwh) \
                                SELECT u.e, u.m, u.d, u.v, u.p, u.k, u.f, u.s, $9, u.pv, u.fv, u.vv, u.pk, u.fk, u.vk \
                                FROM UNNEST($1::text[], $2::bigint[], $3::date[], $4::bigint[], $5::date[], $6::bigint[], $7::text[], $8::text[], \
                                $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[]) \
                                AS u(e, m, d, v, p, k, f, s, pv, fv, vv, pk, fk, vk) RETURNING id, external_id")
            .bind(&n_ext).bind(&n_meter).bind(&n_on).bind(&n_value).bind(&n_prev).bind(&n_kwh).bind(&n_flags).bind(&n_status).bind(now)
            .bind(&n_regs.peak).bind(&n_regs.flat).bind(&n_regs.valley).bind(&n_use.peak).bind(&n_use.flat).bind(&n_use.valley)
            .fetch_all(&mut *conn).await?
        {
            new_ids.insert(row.g_s("external_id")?, row.g_i("id")?);
        }
    }
    for s in slots {
        out.push(match s {
            Slot::Done(o) => o,
            Slot::New(k, status, flags, kwh, bands) => ReadOutcome {
                read_id: new_ids[&n_ext[k]],
                status,
                flags,
                kwh,
                bands,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_dates_are_read_digit_by_digit_and_checked() {
        for d in ["2026-10-31", "2000-01-01", "2024-02-29", "9999-12-31"] {
            assert_eq!(
                parse_date(d, "t", "c").unwrap(),
                NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
            );
        }
        for bad in ["2026-02-30", "2026-13-01", "2026-1-01", "2026/10/31", "20261031xx", "", "2026-10-3a"] {
            let e = parse_date(bad, "billing_reads", "read_on").unwrap_err().to_string();
            assert!(e.contains("billing_reads") && e.contains(bad), "{bad}: {e}");
        }
    }
}
