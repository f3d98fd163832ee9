//! Billing benchmarks (run by `bench/billing.sh`; figures in docs/benchmarks.md).
//!
//! 1. **Billing cycle through the store** for N accounts, each with a meter, three periods
//!    of read history and one earlier bill (one in eight unpaid), on SQLite and (with
//!    `KEHU_PG_URL`) PostgreSQL. Timed: October's N reads through `Store::add_reads` (VEE,
//!    10,000 reads a call), `Store::billing_run` for October (the reads in review held
//!    back), `Store::ageing` by class. Baseline in the same run: a plain insert of the same
//!    reads, bills and lines (values fixed, no reading, no rules) — on SQLite by prepared
//!    statements into a fresh database with the same schema, on PostgreSQL by `UNNEST` in
//!    the same database, rolled back.
//! 2. **Penalty and ageing recomputation in memory** for N accounts × 12 bills. Baseline:
//!    a plain sum of the same bills' principal.
//!
//! Usage: billing_bench [N=1000000] [DIR=/tmp] [BACKENDS=sqlite,postgres]

use chrono::{NaiveDate, Utc};
use kehu_domain::billing::bill::Period;
use kehu_domain::billing::penalty::exact_penalty;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{AgeingTotals, BillingRules, CustomerClass, PenaltyRates};
use kehu_domain::Fen;
use kehu_store::billing::{AgeingGroup, AgeingRow, NewRead, ReadStatus, RunReport};
use kehu_store::{Store, StoreOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
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

/// CPU time of this process so far (user + system, seconds): a phase's CPU time is what it
/// cost even when other work shares the cores and stretches its wall time.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
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
    }
}

const INS_BILL: &str = "INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INS_LINE: &str = "INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INS_READ: &str = "INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, bill_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The rows the billing cycle writes (reads, bills, lines), with fixed values: no reading,
/// no rules; into a fresh database with the same schema.
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

// ---- The product path: the store's own read intake, billing run and ageing report ----

/// The register value of account `i`'s meter after period number `m` (0 = June).
fn register_after(i: i64, m: i64) -> u64 {
    (i as u64 * 37) % 500_000 + (1..=m).map(|k| use_of(i, k)).sum::<u64>()
}

/// October's read of account `i` as the metering system sends it; one meter in 997 reads
/// thirty times its usual use (it goes to the review queue).
fn october_read(i: i64) -> NewRead {
    let used = use_of(i, 4) * if i % 997 == 0 { 30 } else { 1 };
    NewRead {
        external_id: None,
        meter: format!("M{i:08}"),
        read_on: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
        value: register_after(i, 3) + used,
        peak: None,
        flat: None,
        valley: None,
    }
}

async fn store_tariffs(store: &Store) {
    store
        .upsert_tariff("res", "居民阶梯电价", &Tariff::default_residential_tiered())
        .await
        .unwrap();
    store
        .upsert_tariff(
            "biz",
            "一般工商业",
            &Tariff::Flat {
                price: PricePerKwh(6_352),
            },
        )
        .await
        .unwrap();
}

struct ProductTimes {
    intake: f64,
    run: f64,
    ageing: f64,
    /// CPU seconds of the process in each phase.
    cpu: [f64; 3],
    review: u64,
    report: RunReport,
    ageing_rows: Vec<AgeingRow>,
}

/// The timed cycle through the store, as `kehu billing import-reads` / `kehu billing run` /
/// `kehu billing ageing` do it: reads in chunks of 10,000 (one transaction each), VEE on
/// each; the run for October (the reads in review held back, the rest billed); ageing by
/// class on 5 November.
async fn product_cycle(store: &Store, n: i64) -> ProductTimes {
    let mut rules = BillingRules::default();
    rules.vee.history_periods = 3;
    let today = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
    let now = Utc::now();
    let t = Instant::now();
    let c0 = cpu_secs();
    let mut review = 0u64;
    let mut i = 1;
    while i <= n {
        let chunk: Vec<NewRead> = (i..=(i + 9_999).min(n)).map(october_read).collect();
        for o in store
            .add_reads(&chunk, &rules.vee, today, now)
            .await
            .unwrap()
        {
            review += u64::from(o.status == ReadStatus::Review);
        }
        i += 10_000;
    }
    let intake = t.elapsed().as_secs_f64();
    let c1 = cpu_secs();
    let t = Instant::now();
    let report = store
        .billing_run(Period::parse("2026-10").unwrap(), true, &rules, now)
        .await
        .unwrap();
    let run = t.elapsed().as_secs_f64();
    let c2 = cpu_secs();
    let t = Instant::now();
    let ageing_rows = store.ageing(today, AgeingGroup::Class).await.unwrap();
    let ageing = t.elapsed().as_secs_f64();
    let cpu = [c1 - c0, c2 - c1, cpu_secs() - c2];
    ProductTimes {
        intake,
        run,
        ageing,
        cpu,
        review,
        report,
        ageing_rows,
    }
}

/// PostgreSQL: the same accounts, meters, history and September bills as `setup`, written
/// with `UNNEST` in chunks (not timed).
async fn setup_pg(p: &sqlx::PgPool, n: i64) {
    let mut i = 1;
    while i <= n {
        let ids: Vec<i64> = (i..=(i + 9_999).min(n)).collect();
        let ext: Vec<String> = ids.iter().map(|i| format!("A{i:08}")).collect();
        let mext: Vec<String> = ids.iter().map(|i| format!("M{i:08}")).collect();
        let class: Vec<String> = ids
            .iter()
            .map(|i| class_of(*i).code().to_string())
            .collect();
        let area: Vec<String> = ids.iter().map(|i| format!("T{}", i % 5_000)).collect();
        let tariff: Vec<String> = ids
            .iter()
            .map(|i| {
                if class_of(*i) == CustomerClass::Residential {
                    "res"
                } else {
                    "biz"
                }
                .to_string()
            })
            .collect();
        let mut tx = p.begin().await.unwrap();
        sqlx::query("INSERT INTO billing_accounts (id, external_id, name, class, area, tariff, opened_on) \
                     SELECT u.i, u.e, 'x', u.c, u.a, u.t, DATE '2020-01-01' FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(i, e, c, a, t)")
            .bind(&ids).bind(&ext).bind(&class).bind(&area).bind(&tariff).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO billing_meters (id, external_id, account_id, ct_ratio, pt_ratio, multiplier, register_digits, installed_on, capacity_kva) \
                     SELECT u.i, u.e, u.i, 1, 1, 1, 6, DATE '2020-01-01', 50 FROM UNNEST($1::bigint[], $2::text[]) AS u(i, e)")
            .bind(&ids).bind(&mext).execute(&mut *tx).await.unwrap();
        let (mut r_ext, mut r_meter, mut r_on, mut r_value, mut r_prev, mut r_kwh) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let days: Vec<NaiveDate> = PERIODS
            .iter()
            .map(|p| Period::parse(p).unwrap().last_day())
            .collect();
        for id in &ids {
            for (m, day) in days.iter().enumerate() {
                r_ext.push(format!("M{id:08}@{day}"));
                r_meter.push(*id);
                r_on.push(*day);
                r_value.push(register_after(*id, m as i64) as i64);
                r_prev.push((m > 0).then(|| days[m - 1]));
                r_kwh.push((m > 0).then(|| use_of(*id, m as i64) as i64));
            }
        }
        sqlx::query("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, status, created_at) \
                     SELECT u.e, u.m, u.d, u.v, u.p, u.k, 'billed', TIMESTAMPTZ '2026-10-01 00:00:00+00' \
                     FROM UNNEST($1::text[], $2::bigint[], $3::date[], $4::bigint[], $5::date[], $6::bigint[]) AS u(e, m, d, v, p, k)")
            .bind(&r_ext).bind(&r_meter).bind(&r_on).bind(&r_value).bind(&r_prev).bind(&r_kwh)
            .execute(&mut *tx).await.unwrap();
        let kwh: Vec<i64> = ids.iter().map(|i| use_of(*i, 3) as i64).collect();
        let total: Vec<i64> = kwh.iter().map(|k| k * 55).collect();
        let paid: Vec<i64> = ids
            .iter()
            .zip(&total)
            .map(|(i, t)| if i % 8 == 0 { 0 } else { *t })
            .collect();
        sqlx::query("INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at, paid_principal_fen) \
                     SELECT u.a, '2026-09', u.k, u.t, DATE '2026-10-15', TIMESTAMPTZ '2026-10-01 00:00:00+00', u.p \
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(a, k, t, p)")
            .bind(&ids).bind(&kwh).bind(&total).bind(&paid).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        i += 10_000;
    }
    sqlx::query("ANALYZE").execute(p).await.unwrap();
}

/// PostgreSQL baseline: the rows the cycle writes (N reads, N bills, their lines) with fixed
/// values, plain `UNNEST` inserts in chunks of 10,000, in one transaction rolled back at the
/// end (same database, same indexes and keys as the cycle).
async fn baseline_pg(p: &sqlx::PgPool, n: i64) -> f64 {
    let t = Instant::now();
    let mut tx = p.begin().await.unwrap();
    let mut i = 1;
    while i <= n {
        let ids: Vec<i64> = (i..=(i + 9_999).min(n)).collect();
        let mut bill_of = std::collections::HashMap::with_capacity(ids.len());
        for (id, acc) in sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO billing_bills (account_id, period, kwh, total_fen, due_on, issued_at) \
             SELECT u.a, '2026-10', 200, 10566, DATE '2026-11-15', now() FROM UNNEST($1::bigint[]) AS u(a) RETURNING id, account_id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        {
            bill_of.insert(acc, id);
        }
        let (mut l_bill, mut l_no) = (Vec::new(), Vec::new());
        for i in &ids {
            let two = class_of(*i) == CustomerClass::Residential && i % 3 == 0;
            for n in 1..=(if two { 2i64 } else { 1 }) {
                l_bill.push(bill_of[i]);
                l_no.push(n);
            }
        }
        sqlx::query("INSERT INTO billing_bill_lines (bill_id, line_no, item, label, kwh, price, amount_fen) \
                     SELECT u.b, u.n, 'tier1', '第1档电费', 200, 5283, 10566 FROM UNNEST($1::bigint[], $2::bigint[]) AS u(b, n)")
            .bind(&l_bill).bind(&l_no).execute(&mut *tx).await.unwrap();
        let ext: Vec<String> = ids.iter().map(|i| format!("M{i:08}@2026-10-31")).collect();
        let bills: Vec<i64> = ids.iter().map(|i| bill_of[i]).collect();
        sqlx::query("INSERT INTO billing_reads (external_id, meter_id, read_on, value, prev_read_on, kwh, flags, status, bill_id, created_at) \
                     SELECT u.e, u.m, DATE '2026-10-31', 12345, DATE '2026-09-30', 200, '', 'billed', u.b, now() \
                     FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS u(e, m, b)")
            .bind(&ext).bind(&ids).bind(&bills).execute(&mut *tx).await.unwrap();
        i += 10_000;
    }
    let secs = t.elapsed().as_secs_f64();
    tx.rollback().await.unwrap();
    secs
}

fn print_product(label: &str, n: i64, c: &ProductTimes, base: f64, base_what: &str) {
    let k = n as f64;
    let total = c.intake + c.run + c.ageing;
    println!(
        "   cycle total ({label})  : {total:7.2} s  {:10.0} accounts/s  (target >= 100,000)",
        k / total
    );
    println!("     read intake + VEE (Store::add_reads, 10,000 a transaction): {:7.2} s  {:10.0} reads/s  (CPU {:.2} s)", c.intake, k / c.intake, c.cpu[0]);
    println!("     billing run (Store::billing_run: tariff + bills + lines + reads marked): {:7.2} s  {:10.0} accounts/s  (CPU {:.2} s)", c.run, k / c.run, c.cpu[1]);
    println!(
        "     ageing by class (Store::ageing over every unpaid bill): {:7.2} s  (CPU {:.2} s)",
        c.ageing, c.cpu[2]
    );
    let cpu: f64 = c.cpu.iter().sum();
    println!("     CPU time of the cycle: {cpu:.2} s = {:.0} accounts per CPU second", k / cpu);
    println!(
        "     {} bills (¥{}, {} kWh), {} reads in review, {} accounts held back, {} already billed",
        c.report.bills,
        c.report.total.to_plain(),
        c.report.kwh,
        c.review,
        c.report.held_for_review,
        c.report.already_billed
    );
    for r in &c.ageing_rows {
        println!(
            "     ageing {:16}: {} bills, total ¥{} overdue ¥{}",
            r.key,
            r.bills,
            r.total.to_plain(),
            r.totals.overdue().to_plain()
        );
    }
    println!(
        "   baseline: {base_what}: {base:7.2} s  {:10.0} accounts/s",
        k / base
    );
    println!(
        "   ratio cycle/baseline: {:.2}x (billing run alone {:.2}x)   peak RSS {} MB",
        base / total,
        base / c.run,
        peak_rss_mb()
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
    let backends = args.next().unwrap_or_else(|| "sqlite,postgres".into());

    if backends.contains("sqlite") {
        println!("== 1. billing cycle through the store on SQLite: {n} accounts");
        let p = open_fresh(&dir, "cycle").await;
        let t = Instant::now();
        setup(&p, n).await;
        p.close().await;
        let store = Store::open(
            &Store::sqlite_url_for_dir(&dir.join("cycle")),
            &StoreOptions::default(),
        )
        .await
        .unwrap();
        store_tariffs(&store).await;
        println!("   setup (not timed): {:.1} s ({} reads of history, {} earlier bills); RSS so far {} MB", t.elapsed().as_secs_f64(), n * 4, n, peak_rss_mb());
        let c = product_cycle(&store, n).await;
        store.close().await;
        let base_p = open_fresh(&dir, "baseline").await;
        let base = baseline_raw(&base_p, n).await;
        base_p.close().await;
        print_product(
            "SQLite",
            n,
            &c,
            base,
            "plain insert of the same reads, bills and lines (prepared statements, fresh database)",
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if backends.contains("postgres") {
        match std::env::var("KEHU_PG_URL") {
            Err(_) => println!("== 1b. PostgreSQL: skipped (KEHU_PG_URL not set)"),
            Ok(base_url) => {
                println!("== 1b. billing cycle through the store on PostgreSQL: {n} accounts");
                use sqlx::Connection;
                // KEHU_BENCH_PG_DB: a database left set up by an earlier run (setup skipped).
                let reuse = std::env::var("KEHU_BENCH_PG_DB").ok();
                let db = reuse
                    .clone()
                    .unwrap_or_else(|| format!("kehu_billing_bench_{}", std::process::id()));
                let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
                if reuse.is_none() {
                    sqlx::query(&format!("CREATE DATABASE {db}"))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                }
                let url = format!("{}/{db}", &base_url[..base_url.rfind('/').unwrap()]);
                let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
                store_tariffs(&store).await;
                let pg = sqlx::PgPool::connect(&url).await.unwrap();
                if reuse.is_none() {
                    let t = Instant::now();
                    setup_pg(&pg, n).await;
                    println!("   setup (not timed): {:.1} s", t.elapsed().as_secs_f64());
                }
                let base = baseline_pg(&pg, n).await;
                let c = product_cycle(&store, n).await;
                print_product("PostgreSQL", n, &c, base, "plain UNNEST insert of the same reads, bills and lines (same database, rolled back)");
                store.close().await;
                pg.close().await;
                sqlx::query(&format!("DROP DATABASE {db}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
    in_memory(n as usize);
}
