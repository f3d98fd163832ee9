//! Billing benchmarks (run by `bench/billing.sh`; figures in docs/benchmarks.md).
//!
//! 1. **Billing cycle on SQLite** for N accounts, each with a meter, three periods of read
//!    history and one earlier bill (a share of them unpaid): the new month's reads are
//!    checked (VEE, against the previous read and the history), billed by tariff (tiers
//!    cumulative over the year), written (reads, bills, lines), then the unpaid bills are
//!    re-priced with their penalty and aged by customer class — all in one transaction,
//!    streaming (memory flat in N). Baseline in the same run: a plain insert of the same
//!    reads, bills and lines (values precomputed, no reading, no rules) into a fresh
//!    database with the same schema.
//! 2. **Penalty and ageing recomputation in memory** for N accounts × 12 bills. Baseline:
//!    a plain sum of the same bills' principal.
//!
//! Usage: billing_bench [N=1000000] [DIR=/tmp]

use chrono::{NaiveDate, Utc};
use futures_util::TryStreamExt;
use kehu_domain::billing::bill::{bill_period, Consumption, Period};
use kehu_domain::billing::penalty::exact_penalty;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::vee::{check_read, PeriodUse, Read, ReadContext, VeeRules};
use kehu_domain::billing::{AgeingTotals, CustomerClass, Meter, PenaltyRates};
use kehu_domain::Fen;
use kehu_store::{Store, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Instant;

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn class_of(i: i64) -> CustomerClass {
    match i % 100 {
        0..=87 => CustomerClass::Residential,
        88..=98 => CustomerClass::NonResidential,
        _ => CustomerClass::Important,
    }
}

/// Deterministic monthly use of account `i` in period number `m` (whole kWh on the register).
fn use_of(i: i64, m: i64) -> u64 {
    let h = (i.wrapping_mul(2_654_435_761) ^ m.wrapping_mul(40_503)).rem_euclid(1_000) as u64;
    let base = if class_of(i) == CustomerClass::Residential {
        150
    } else {
        900
    };
    base + h / 4
}

async fn pool(path: &std::path::Path) -> SqlitePool {
    let co = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(false)
        .pragma("cache_size", "-65536");
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(co)
        .await
        .unwrap()
}

async fn open_fresh(dir: &std::path::Path, name: &str) -> SqlitePool {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let s = Store::open(&Store::sqlite_url_for_dir(&d), &StoreOptions::default())
        .await
        .unwrap();
    s.close().await;
    pool(&d.join("kehu.db")).await
}

const PERIODS: [&str; 4] = ["2026-06", "2026-07", "2026-08", "2026-09"];

/// Accounts, meters, four reads (three periods of history) and one earlier bill each,
/// through prepared statements on the raw handle.
async fn setup(p: &SqlitePool, n: i64) {
    use raw::{St, V};
    let mut c = p.acquire().await.unwrap();
    let mut h = c.lock_handle().await.unwrap();
    let db = h.as_raw_handle().as_ptr();
    St::prepare(db, "BEGIN IMMEDIATE").exec(&[]);
    St::prepare(db, "INSERT INTO billing_tariffs (code, name, spec) VALUES ('res', 'r', '{}'), ('biz', 'b', '{}')").exec(&[]);
    let acc = St::prepare(db, "INSERT INTO billing_accounts (id, external_id, name, class, area, tariff, opened_on) VALUES (?1, ?2, 'x', ?3, ?4, ?5, '2020-01-01')");
    let met = St::prepare(db, "INSERT INTO billing_meters (id, external_id, account_id, ct_ratio, pt_ratio, multiplier, register_digits, installed_on, capacity_kva) VALUES (?1, ?2, ?1, 1, 1, 1, 6, '2020-01-01', 50)");
    let rd = St::prepare(db, "INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'billed', '2026-10-01T00:00:00Z')");
    let bl = St::prepare(db, "INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at, paid_principal_fen) VALUES (?1, '2026-09', ?2, ?3, '2026-10-15', '2026-10-01T00:00:00Z', ?4)");
    let days: Vec<String> = PERIODS
        .iter()
        .map(|p| Period::parse(p).unwrap().last_day().to_string())
        .collect();
    for i in 1..=n {
        let class = class_of(i);
        let (ext, area, mext) = (
            format!("A{i:08}"),
            format!("T{}", i % 5_000),
            format!("M{i:08}"),
        );
        acc.exec(&[
            V::I(i),
            V::T(&ext),
            V::T(class.code()),
            V::T(&area),
            V::T(if class == CustomerClass::Residential {
                "res"
            } else {
                "biz"
            }),
        ]);
        met.exec(&[V::I(i), V::T(&mext)]);
        let mut value = (i as u64 * 37) % 500_000;
        for (m, day) in days.iter().enumerate() {
            let kwh = (m > 0).then(|| use_of(i, m as i64));
            value += kwh.unwrap_or(0);
            let rext = format!("M{i:08}@{day}");
            let prev = if m > 0 { V::T(&days[m - 1]) } else { V::N };
            rd.exec(&[
                V::T(&rext),
                V::I(i),
                V::T(day),
                V::I(value as i64),
                prev,
                kwh.map_or(V::N, |k| V::I(k as i64)),
            ]);
        }
        // September's bill, due 2026-10-15; one account in eight has not paid it.
        let total = (use_of(i, 3) * 55) as i64;
        let paid = if i % 8 == 0 { 0 } else { total };
        bl.exec(&[V::I(i), V::I(use_of(i, 3) as i64), V::I(total), V::I(paid)]);
    }
    drop((acc, met, rd, bl));
    St::prepare(db, "COMMIT").exec(&[]);
    St::prepare(db, "PRAGMA wal_checkpoint(TRUNCATE)").next();
}

struct CycleTimes {
    total: f64,
    read_vee_bill: f64,
    penalty_ageing: f64,
    bills: u64,
    review: u64,
    ageing: Vec<(String, AgeingTotals)>,
}

/// The timed billing cycle for October 2026.
async fn cycle(p: &SqlitePool) -> CycleTimes {
    let started = Instant::now();
    let rules = VeeRules {
        history_periods: 3,
        ..VeeRules::default()
    };
    let tiered = Tariff::default_residential_tiered();
    let flat = Tariff::Flat {
        price: PricePerKwh(6_352),
    };
    let period = Period::parse("2026-10").unwrap();
    let read_on = period.last_day();
    let today = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
    let now = Utc::now();
    let mut reader = p.acquire().await.unwrap();
    let mut writer = p.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *writer)
        .await
        .unwrap();
    let (mut bills, mut review) = (0u64, 0u64);
    {
        // Reads in meter order with their meter and account: one pass, grouped per meter.
        let mut rows = sqlx::query(
            "SELECT r.meter_id, r.read_on, r.prev_read_on, r.value, r.kwh, m.multiplier, m.register_digits, m.capacity_kva, m.installed_on, a.class \
             FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id JOIN billing_accounts a ON a.id = m.account_id \
             WHERE r.read_on >= '2026-06-01' ORDER BY r.meter_id, r.read_on",
        )
        .fetch(&mut *reader);
        let mut current: Option<(i64, Meter, CustomerClass)> = None;
        let mut history: Vec<PeriodUse> = Vec::with_capacity(4);
        let mut last: Option<Read> = None;
        let flush = |id: i64,
                     meter: &Meter,
                     class: CustomerClass,
                     history: &[PeriodUse],
                     last: Option<Read>| {
            // The new month's read, as the import would deliver it.
            let prev = last.expect("a previous read");
            let read = Read {
                read_on,
                value: prev.value + use_of(id, 4),
            };
            let ctx = ReadContext {
                meter,
                previous: Some(prev),
                history,
                last_year: None,
                today,
            };
            let check = check_read(&rules, read, &ctx);
            let kwh = check.kwh.unwrap_or(0);
            let used_before: u64 = history.iter().map(|h| h.kwh).sum();
            let tariff = if class == CustomerClass::Residential {
                &tiered
            } else {
                &flat
            };
            let draft = bill_period(tariff, period, Consumption::Total(kwh), used_before, 15)
                .expect("valid tariff");
            (read, check, draft)
        };
        let mut pending = Vec::with_capacity(1024);
        loop {
            let row = rows.try_next().await.unwrap();
            let id = row.as_ref().map(|r| r.get::<i64, _>("meter_id"));
            if current.as_ref().map(|c| c.0) != id || row.is_none() {
                if let Some((cid, meter, class)) = current.take() {
                    pending.push((cid, flush(cid, &meter, class, &history, last)));
                }
                history.clear();
                if let Some(r) = &row {
                    let class = CustomerClass::parse(r.get::<&str, _>("class")).unwrap();
                    let meter = Meter {
                        external_id: String::new(),
                        account: String::new(),
                        ct_ratio: r.get::<i64, _>("multiplier") as u32,
                        pt_ratio: 1,
                        multiplier: r.get::<i64, _>("multiplier") as u32,
                        register_digits: r.get::<i64, _>("register_digits") as u8,
                        installed_on: r.get("installed_on"),
                        capacity_kva: r.get::<i64, _>("capacity_kva") as u32,
                        prepaid_mode: false,
                    };
                    current = Some((id.unwrap(), meter, class));
                }
            }
            let Some(r) = row else { break };
            let on: NaiveDate = r.get("read_on");
            if let (Some(from), Some(k)) = (
                r.get::<Option<NaiveDate>, _>("prev_read_on"),
                r.get::<Option<i64>, _>("kwh"),
            ) {
                history.push(PeriodUse {
                    from,
                    to: on,
                    kwh: k as u64,
                });
            }
            last = Some(Read {
                read_on: on,
                value: r.get::<i64, _>("value") as u64,
            });
            if pending.len() >= 1024 {
                for (id, (read, check, draft)) in pending.drain(..) {
                    let (b, rv) = write_one(&mut writer, id, &read, &check, &draft, now).await;
                    bills += b;
                    review += rv;
                }
            }
        }
        for (id, (read, check, draft)) in pending.drain(..) {
            let (b, rv) = write_one(&mut writer, id, &read, &check, &draft, now).await;
            bills += b;
            review += rv;
        }
    }
    let read_vee_bill = started.elapsed().as_secs_f64();
    // Penalties on the unpaid bills as of today, and ageing by class.
    let t = Instant::now();
    let rates = PenaltyRates::default();
    let mut ageing: std::collections::BTreeMap<String, AgeingTotals> = Default::default();
    {
        let mut rows = sqlx::query(
            "SELECT a.class, b.due_on, b.total_fen - b.paid_principal_fen AS owed FROM billing_bills b \
             JOIN billing_accounts a ON a.id = b.account_id WHERE b.total_fen > b.paid_principal_fen",
        )
        .fetch(&mut *writer);
        let mut penalties = Fen::ZERO;
        while let Some(r) = rows.try_next().await.unwrap() {
            let class_s: &str = r.get("class");
            let class = CustomerClass::parse(class_s).unwrap();
            let due: NaiveDate = r.get("due_on");
            let owed = Fen(r.get("owed"));
            penalties = penalties + exact_penalty(&rates, class, owed, due, today).settle(&rates);
            ageing
                .entry(class_s.to_string())
                .or_default()
                .add_bill(due, owed, today);
        }
        std::hint::black_box(penalties);
    }
    sqlx::query("COMMIT").execute(&mut *writer).await.unwrap();
    CycleTimes {
        total: started.elapsed().as_secs_f64(),
        read_vee_bill,
        penalty_ageing: t.elapsed().as_secs_f64(),
        bills,
        review,
        ageing: ageing.into_iter().collect(),
    }
}

async fn write_one(
    w: &mut sqlx::SqliteConnection,
    meter_id: i64,
    read: &Read,
    check: &kehu_domain::billing::vee::ReadCheck,
    draft: &kehu_domain::billing::BillDraft,
    now: chrono::DateTime<Utc>,
) -> (u64, u64) {
    let clean = check.clean();
    let bill_id: Option<i64> = if clean {
        Some(
            sqlx::query_scalar("INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(meter_id).bind("2026-10").bind(draft.kwh as i64).bind(draft.total.0).bind(draft.due_on).bind(now)
                .fetch_one(&mut *w).await.unwrap(),
        )
    } else {
        None
    };
    if let Some(b) = bill_id {
        for (n, l) in draft.lines.iter().enumerate() {
            sqlx::query("INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(b).bind(n as i64 + 1).bind(&l.item).bind(&l.label).bind(l.kwh as i64).bind(l.price.0).bind(l.amount.0)
                .execute(&mut *w).await.unwrap();
        }
    }
    sqlx::query("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, bill_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(format!("M{meter_id:08}@{}", read.read_on)).bind(meter_id).bind(read.read_on).bind(read.value as i64)
        .bind(NaiveDate::from_ymd_opt(2026, 9, 30)).bind(check.kwh.map(|k| k as i64))
        .bind(check.flags.iter().map(|f| f.code()).collect::<Vec<_>>().join(","))
        .bind(if clean { "billed" } else { "review" }).bind(bill_id).bind(now)
        .execute(&mut *w).await.unwrap();
    (u64::from(clean), u64::from(!clean))
}

/// The same rows written without reading or rules: the floor of the cycle's writes.
async fn baseline(p: &SqlitePool, n: i64) -> f64 {
    let now = Utc::now();
    let started = Instant::now();
    let mut w = p.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *w)
        .await
        .unwrap();
    let due = NaiveDate::from_ymd_opt(2026, 11, 15).unwrap();
    let on = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    for i in 1..=n {
        let b: i64 = sqlx::query_scalar("INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
            .bind(i).bind("2026-10").bind(200i64).bind(10_566i64).bind(due).bind(now)
            .fetch_one(&mut *w).await.unwrap();
        let lines = if class_of(i) == CustomerClass::Residential && i % 3 == 0 {
            2
        } else {
            1
        };
        for l in 0..lines {
            sqlx::query("INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(b).bind(l + 1).bind("tier1").bind("第1档电费").bind(200i64).bind(5_283i64).bind(10_566i64)
                .execute(&mut *w).await.unwrap();
        }
        sqlx::query("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, bill_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(format!("M{i:08}@{on}")).bind(i).bind(on).bind(12_345i64).bind(NaiveDate::from_ymd_opt(2026, 9, 30)).bind(200i64)
            .bind("").bind("billed").bind(b).bind(now)
            .execute(&mut *w).await.unwrap();
    }
    sqlx::query("COMMIT").execute(&mut *w).await.unwrap();
    started.elapsed().as_secs_f64()
}

// ---- The same cycle through prepared statements on the raw SQLite handle (the technique
// of the store's bulk load, `sqlite_bulk.rs`): no per-row round trip through sqlx.

mod raw {
    use libsqlite3_sys as ffi;
    use std::ffi::{c_char, c_int, CStr};

    pub struct St {
        db: *mut ffi::sqlite3,
        st: *mut ffi::sqlite3_stmt,
    }

    impl Drop for St {
        fn drop(&mut self) {
            // SAFETY: prepared on `db`, finalized once.
            unsafe { ffi::sqlite3_finalize(self.st) };
        }
    }

    pub enum V<'a> {
        I(i64),
        T(&'a str),
        N,
    }

    impl St {
        pub fn prepare(db: *mut ffi::sqlite3, sql: &str) -> St {
            let mut st = std::ptr::null_mut();
            // SAFETY: valid connection and SQL.
            let rc = unsafe {
                ffi::sqlite3_prepare_v2(
                    db,
                    sql.as_ptr() as *const c_char,
                    sql.len() as c_int,
                    &mut st,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(
                rc,
                ffi::SQLITE_OK,
                "{sql}: {}",
                unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy()
            );
            St { db, st }
        }

        /// Binds, steps to completion, resets; returns the last insert rowid.
        pub fn exec(&self, vals: &[V<'_>]) -> i64 {
            // SAFETY: live statement; text bound SQLITE_STATIC outlives the step.
            unsafe {
                for (i, v) in vals.iter().enumerate() {
                    let idx = (i + 1) as c_int;
                    match v {
                        V::I(n) => ffi::sqlite3_bind_int64(self.st, idx, *n),
                        V::T(s) => ffi::sqlite3_bind_text(
                            self.st,
                            idx,
                            s.as_ptr() as *const c_char,
                            s.len() as c_int,
                            ffi::SQLITE_STATIC(),
                        ),
                        V::N => ffi::sqlite3_bind_null(self.st, idx),
                    };
                }
                let rc = ffi::sqlite3_step(self.st);
                ffi::sqlite3_reset(self.st);
                assert_eq!(
                    rc,
                    ffi::SQLITE_DONE,
                    "{}",
                    CStr::from_ptr(ffi::sqlite3_errmsg(self.db)).to_string_lossy()
                );
                ffi::sqlite3_last_insert_rowid(self.db)
            }
        }

        /// Steps a query; false at the end.
        pub fn next(&self) -> bool {
            // SAFETY: live statement.
            let rc = unsafe { ffi::sqlite3_step(self.st) };
            assert!(
                rc == ffi::SQLITE_ROW || rc == ffi::SQLITE_DONE,
                "query failed"
            );
            rc == ffi::SQLITE_ROW
        }

        pub fn int(&self, i: c_int) -> i64 {
            // SAFETY: on a row.
            unsafe { ffi::sqlite3_column_int64(self.st, i) }
        }

        pub fn is_null(&self, i: c_int) -> bool {
            // SAFETY: on a row.
            unsafe { ffi::sqlite3_column_type(self.st, i) == ffi::SQLITE_NULL }
        }

        pub fn text(&self, i: c_int) -> &str {
            // SAFETY: on a row; the text lives until the next step.
            unsafe {
                let p = ffi::sqlite3_column_text(self.st, i);
                let n = ffi::sqlite3_column_bytes(self.st, i);
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, n as usize))
            }
        }
    }

    /// `YYYY-MM-DD` without chrono's parser.
    pub fn date(s: &str) -> chrono::NaiveDate {
        let b = s.as_bytes();
        let n =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
        chrono::NaiveDate::from_ymd_opt(n(0..4) as i32, n(5..7), n(8..10)).expect("stored date")
    }

    pub fn date_text(d: chrono::NaiveDate, out: &mut [u8; 10]) -> &str {
        use chrono::Datelike;
        let (y, m, dd) = (d.year() as u32, d.month(), d.day());
        let digits = [
            y / 1000,
            y / 100 % 10,
            y / 10 % 10,
            y % 10,
            10,
            m / 10,
            m % 10,
            10,
            dd / 10,
            dd % 10,
        ];
        for (o, v) in out.iter_mut().zip(digits) {
            *o = if v == 10 { b'-' } else { b'0' + v as u8 };
        }
        std::str::from_utf8(out).expect("ascii")
    }
}

const INS_BILL: &str = "INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INS_LINE: &str = "INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INS_READ: &str = "INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, bill_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

async fn cycle_raw(p: &SqlitePool) -> CycleTimes {
    use raw::{St, V};
    let started = Instant::now();
    let rules = VeeRules {
        history_periods: 3,
        ..VeeRules::default()
    };
    let tiered = Tariff::default_residential_tiered();
    let flat = Tariff::Flat {
        price: PricePerKwh(6_352),
    };
    let period = Period::parse("2026-10").unwrap();
    let read_on = period.last_day();
    let today = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
    let now = "2026-11-05T02:00:00+00:00";
    let mut reader = p.acquire().await.unwrap();
    let mut writer = p.acquire().await.unwrap();
    let mut rh = reader.lock_handle().await.unwrap();
    let mut wh = writer.lock_handle().await.unwrap();
    let (rdb, wdb) = (rh.as_raw_handle().as_ptr(), wh.as_raw_handle().as_ptr());
    St::prepare(wdb, "BEGIN IMMEDIATE").exec(&[]);
    let (bill, line, read) = (
        St::prepare(wdb, INS_BILL),
        St::prepare(wdb, INS_LINE),
        St::prepare(wdb, INS_READ),
    );
    let q = St::prepare(
        rdb,
        "SELECT r.meter_id, r.read_on, r.prev_read_on, r.value, r.kwh, m.multiplier, m.register_digits, m.capacity_kva, m.installed_on, a.class \
         FROM billing_reads r JOIN billing_meters m ON m.id = r.meter_id JOIN billing_accounts a ON a.id = m.account_id \
         WHERE r.read_on >= '2026-06-01' ORDER BY r.meter_id, r.read_on",
    );
    let (mut bills, mut review) = (0u64, 0u64);
    let mut history: Vec<PeriodUse> = Vec::with_capacity(4);
    let mut last: Option<Read> = None;
    let mut current: Option<(i64, Meter, CustomerClass)> = None;
    let (mut ext, mut flags) = (String::new(), String::new());
    let (mut due_buf, mut on_buf, mut prev_buf) = ([0u8; 10], [0u8; 10], [0u8; 10]);
    let due_on = period.last_day() + chrono::Duration::days(15);
    let due_s = raw::date_text(due_on, &mut due_buf).to_string();
    let on_s = raw::date_text(read_on, &mut on_buf).to_string();
    let prev_s =
        raw::date_text(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(), &mut prev_buf).to_string();
    let mut finish = |id: i64,
                      meter: &Meter,
                      class: CustomerClass,
                      history: &[PeriodUse],
                      last: Option<Read>| {
        let prev = last.expect("a previous read");
        let r = Read {
            read_on,
            value: prev.value + use_of(id, 4),
        };
        let ctx = ReadContext {
            meter,
            previous: Some(prev),
            history,
            last_year: None,
            today,
        };
        let check = check_read(&rules, r, &ctx);
        let kwh = check.kwh.unwrap_or(0);
        let used_before: u64 = history.iter().map(|h| h.kwh).sum();
        let tariff = if class == CustomerClass::Residential {
            &tiered
        } else {
            &flat
        };
        let draft = bill_period(tariff, period, Consumption::Total(kwh), used_before, 15)
            .expect("valid tariff");
        let clean = check.clean();
        let bill_id = if clean {
            let b = bill.exec(&[
                V::I(id),
                V::T("2026-10"),
                V::I(draft.kwh as i64),
                V::I(draft.total.0),
                V::T(&due_s),
                V::T(now),
            ]);
            for (n, l) in draft.lines.iter().enumerate() {
                line.exec(&[
                    V::I(b),
                    V::I(n as i64 + 1),
                    V::T(&l.item),
                    V::T(&l.label),
                    V::I(l.kwh as i64),
                    V::I(l.price.0),
                    V::I(l.amount.0),
                ]);
            }
            Some(b)
        } else {
            None
        };
        ext.clear();
        use std::fmt::Write;
        let _ = write!(ext, "M{id:08}@{on_s}");
        flags.clear();
        for (i, f) in check.flags.iter().enumerate() {
            if i > 0 {
                flags.push(',');
            }
            flags.push_str(f.code());
        }
        read.exec(&[
            V::T(&ext),
            V::I(id),
            V::T(&on_s),
            V::I(r.value as i64),
            V::T(&prev_s),
            check.kwh.map_or(V::N, |k| V::I(k as i64)),
            V::T(&flags),
            V::T(if clean { "billed" } else { "review" }),
            bill_id.map_or(V::N, V::I),
            V::T(now),
        ]);
        (
            u64::from(clean),
            u64::from(!clean),
            clean.then_some(draft.total),
        )
    };
    // The new bills are aged as they are written; the pass below reads only older ones.
    let mut ageing = [AgeingTotals::default(); 3];
    loop {
        let more = q.next();
        let id = more.then(|| q.int(0));
        if current.as_ref().map(|c| c.0) != id {
            if let Some((cid, meter, class)) = current.take() {
                let (b, rv, total) = finish(cid, &meter, class, &history, last);
                if let Some(t) = total {
                    ageing[class as usize].add_bill(due_on, t, today);
                }
                bills += b;
                review += rv;
            }
            history.clear();
            if more {
                let class = CustomerClass::parse(q.text(9)).unwrap();
                let meter = Meter {
                    external_id: String::new(),
                    account: String::new(),
                    ct_ratio: q.int(5) as u32,
                    pt_ratio: 1,
                    multiplier: q.int(5) as u32,
                    register_digits: q.int(6) as u8,
                    installed_on: raw::date(q.text(8)),
                    capacity_kva: q.int(7) as u32,
                    prepaid_mode: false,
                };
                current = Some((id.unwrap(), meter, class));
            }
        }
        if !more {
            break;
        }
        let on = raw::date(q.text(1));
        if !q.is_null(2) && !q.is_null(4) {
            history.push(PeriodUse {
                from: raw::date(q.text(2)),
                to: on,
                kwh: q.int(4) as u64,
            });
        }
        last = Some(Read {
            read_on: on,
            value: q.int(3) as u64,
        });
    }
    drop(q);
    let read_vee_bill = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let rates = PenaltyRates::default();
    let mut penalties = Fen::ZERO;
    let a = St::prepare(
        wdb,
        "SELECT a.class, b.due_on, b.total_fen - b.paid_principal_fen FROM billing_bills b \
         JOIN billing_accounts a ON a.id = b.account_id WHERE b.total_fen > b.paid_principal_fen AND b.period < '2026-10'",
    );
    while a.next() {
        let class = CustomerClass::parse(a.text(0)).unwrap();
        let due = raw::date(a.text(1));
        let owed = Fen(a.int(2));
        penalties = penalties + exact_penalty(&rates, class, owed, due, today).settle(&rates);
        ageing[class as usize].add_bill(due, owed, today);
    }
    drop(a);
    std::hint::black_box(penalties);
    drop((bill, line, read));
    St::prepare(wdb, "COMMIT").exec(&[]);
    CycleTimes {
        total: started.elapsed().as_secs_f64(),
        read_vee_bill,
        penalty_ageing: t.elapsed().as_secs_f64(),
        bills,
        review,
        ageing: CustomerClass::ALL
            .iter()
            .map(|c| (c.code().to_string(), ageing[*c as usize]))
            .collect(),
    }
}

/// The same rows as `cycle_raw` writes, with fixed values: no reading, no rules.
async fn baseline_raw(p: &SqlitePool, n: i64) -> f64 {
    use raw::{St, V};
    let started = Instant::now();
    let mut w = p.acquire().await.unwrap();
    let mut h = w.lock_handle().await.unwrap();
    let db = h.as_raw_handle().as_ptr();
    St::prepare(db, "BEGIN IMMEDIATE").exec(&[]);
    let (bill, line, read) = (
        St::prepare(db, INS_BILL),
        St::prepare(db, INS_LINE),
        St::prepare(db, INS_READ),
    );
    let now = "2026-11-05T02:00:00+00:00";
    let mut ext = String::new();
    for i in 1..=n {
        let b = bill.exec(&[
            V::I(i),
            V::T("2026-10"),
            V::I(200),
            V::I(10_566),
            V::T("2026-11-15"),
            V::T(now),
        ]);
        let lines = if class_of(i) == CustomerClass::Residential && i % 3 == 0 {
            2
        } else {
            1
        };
        for l in 0..lines {
            line.exec(&[
                V::I(b),
                V::I(l + 1),
                V::T("tier1"),
                V::T("第1档电费"),
                V::I(200),
                V::I(5_283),
                V::I(10_566),
            ]);
        }
        ext.clear();
        use std::fmt::Write;
        let _ = write!(ext, "M{i:08}@2026-10-31");
        read.exec(&[
            V::T(&ext),
            V::I(i),
            V::T("2026-10-31"),
            V::I(12_345),
            V::T("2026-09-30"),
            V::I(200),
            V::T(""),
            V::T("billed"),
            V::I(b),
            V::T(now),
        ]);
    }
    drop((bill, line, read));
    St::prepare(db, "COMMIT").exec(&[]);
    started.elapsed().as_secs_f64()
}

/// In memory: penalty and ageing for `n` accounts × 12 bills, against a plain sum.
fn in_memory(n: usize) {
    #[derive(Clone, Copy)]
    struct B {
        due: NaiveDate,
        owed: Fen,
        class: CustomerClass,
    }
    let mut bills = Vec::with_capacity(n * 12);
    for i in 0..n {
        let class = class_of(i as i64);
        for m in 0..12u32 {
            let due =
                NaiveDate::from_ymd_opt(2025 + i32::from(m >= 2), (m + 10) % 12 + 1, 15).unwrap();
            bills.push(B {
                due,
                owed: Fen((use_of(i as i64, i64::from(m)) * 55) as i64 * i64::from(i % 5 == 0)),
                class,
            });
        }
    }
    let today = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
    let rates = PenaltyRates::default();
    let t = Instant::now();
    let mut sum = 0i64;
    for b in &bills {
        sum += b.owed.0;
    }
    std::hint::black_box(sum);
    let base = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut ageing = [AgeingTotals::default(); 3];
    let mut penalties = 0i64;
    for b in &bills {
        if b.owed.0 > 0 {
            penalties += exact_penalty(&rates, b.class, b.owed, b.due, today)
                .settle(&rates)
                .0;
        }
        ageing[b.class as usize].add_bill(b.due, b.owed, today);
    }
    std::hint::black_box((penalties, ageing));
    let rules = t.elapsed().as_secs_f64();
    let total: i64 = ageing.iter().map(|a| a.total().0).sum();
    assert_eq!(total, sum, "ageing totals match the bills");
    let k = bills.len() as f64;
    println!(
        "== 2. penalty + ageing recomputation in memory: {n} accounts × 12 bills = {} bills",
        bills.len()
    );
    println!(
        "   plain sum of principal : {base:7.3} s  {:12.0} bills/s",
        k / base
    );
    println!(
        "   penalty + ageing       : {rules:7.3} s  {:12.0} bills/s  (target >= 5,000,000)",
        k / rules
    );
    println!(
        "   ratio rules/plain sum  : {:.3}x   penalties ¥{}",
        base / rules,
        Fen(penalties).to_plain()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: i64 = args
        .next()
        .map(|s| s.parse().expect("N"))
        .unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp".into()))
        .join(format!("kehu-billing-bench-{}", std::process::id()));
    let sqlx_n: i64 = args
        .next()
        .map(|s| s.parse().expect("SQLX_N"))
        .unwrap_or((n / 10).max(1));
    for (label, count, raw_path) in [
        ("raw prepared statements", n, true),
        ("sqlx per row (the store's path today)", sqlx_n, false),
    ] {
        println!("== 1. billing cycle on SQLite, {label}: {count} accounts");
        let p = open_fresh(&dir, "cycle").await;
        let t = Instant::now();
        setup(&p, count).await;
        println!(
            "   setup (not timed): {:.1} s ({} reads of history, {} earlier bills)",
            t.elapsed().as_secs_f64(),
            count * 4,
            count
        );
        let rss_before = peak_rss_mb();
        let c = if raw_path {
            cycle_raw(&p).await
        } else {
            cycle(&p).await
        };
        let base_p = open_fresh(&dir, "baseline").await;
        let base = if raw_path {
            baseline_raw(&base_p, count).await
        } else {
            baseline(&base_p, count).await
        };
        let k = count as f64;
        println!(
            "   cycle total            : {:7.2} s  {:10.0} accounts/s  (target >= 100,000)",
            c.total,
            k / c.total
        );
        println!(
            "     read + VEE + bill + write: {:7.2} s; penalty + ageing pass and commit: {:.2} s",
            c.read_vee_bill, c.penalty_ageing
        );
        println!("     {} bills, {} reads held for review", c.bills, c.review);
        println!(
            "   baseline: plain insert of the same rows: {base:7.2} s  {:10.0} accounts/s",
            k / base
        );
        println!(
            "   ratio cycle/baseline accounts/s: {:.2}x   peak RSS {} MB (after setup {} MB)",
            base / c.total,
            peak_rss_mb(),
            rss_before
        );
        for (class, a) in &c.ageing {
            println!(
                "     ageing {class:16}: total ¥{} overdue ¥{}",
                a.total().to_plain(),
                a.overdue().to_plain()
            );
        }
        p.close().await;
        base_p.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    in_memory(n as usize);
}
