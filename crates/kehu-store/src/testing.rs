//! Test support: fresh stores for the backend-agnostic suites. SQLite in a temporary
//! directory always; PostgreSQL as well when `KEHU_TEST_DATABASE_URL` is set (a new
//! database is created on that server for every call).

use crate::{Store, StoreOptions};
use sqlx::Connection;

/// A store under test and what keeps it alive.
pub struct TestStore {
    pub store: Store,
    pub name: &'static str,
    /// The SQLite directory, removed when dropped.
    pub dir: Option<tempfile_dir::Dir>,
}

pub mod tempfile_dir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Sets how many accounts the SQLite billing run takes per step (10,000 in the product), so
/// a test can cross step boundaries with few accounts.
pub fn set_billing_run_chunk(accounts: i64) {
    crate::billing::SQLITE_RUN_CHUNK.store(accounts, std::sync::atomic::Ordering::Relaxed);
}

/// Sets how many accounts the dunning worklist reads per statement (500 in the product).
pub fn set_worklist_chunk(accounts: usize) {
    crate::billing::WORKLIST_CHUNK.store(accounts, std::sync::atomic::Ordering::Relaxed);
}

/// Sets how many events make a bucket of SQLite's customer timeline (1,000,000 in the
/// product), so a test can cross buckets with few events. Call before writing events.
pub fn set_timeline_bucket_events(events: i64) {
    crate::behaviour::TIMELINE_BUCKET_EVENTS.store(events, std::sync::atomic::Ordering::Relaxed);
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        t % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn sqlite() -> TestStore {
    let dir = std::env::temp_dir().join(format!("kehu-test-{}", unique()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Store::open(&Store::sqlite_url_for_dir(&dir), &StoreOptions::default())
        .await
        .expect("open sqlite");
    TestStore {
        store,
        name: "sqlite",
        dir: Some(tempfile_dir::Dir(dir)),
    }
}

/// A fresh PostgreSQL database, if `KEHU_TEST_DATABASE_URL` is set.
pub async fn postgres() -> Option<TestStore> {
    let base = std::env::var("KEHU_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let db = format!("kehu_test_{}", unique());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to KEHU_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").unwrap() + 2 => {
            format!("{}/{db}", &base[..i])
        }
        _ => format!("{base}/{db}"),
    };
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open postgres");
    Some(TestStore {
        store,
        name: "postgres",
        dir: None,
    })
}

/// Every backend this run can test.
pub async fn all() -> Vec<TestStore> {
    let mut v = vec![sqlite().await];
    if let Some(p) = postgres().await {
        v.push(p);
    }
    v
}

/// A supply account `account` on `tariff` (opened 2020-01-01, no deposit, postpaid) with
/// one meter `meter` (CT `ct` × PT 1, six register digits, installed 2020-01-01, capacity
/// `capacity_kva`): the fixture of the billing suites.
pub async fn supply_account_with_meter(
    store: &Store,
    account: &str,
    class: kehu_domain::billing::CustomerClass,
    tariff: &str,
    meter: &str,
    ct: u32,
    capacity_kva: u32,
) {
    let opened = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date");
    store
        .upsert_supply_account(&kehu_domain::billing::SupplyAccount {
            external_id: account.into(),
            name: format!("用户{account}"),
            class,
            area: Some("T1".into()),
            tariff: tariff.into(),
            penalty_ppm: None,
            deposit: kehu_domain::Fen::ZERO,
            prepaid: false,
            opened_on: opened,
        })
        .await
        .expect("account stored");
    store
        .upsert_meter(&kehu_domain::billing::Meter {
            external_id: meter.into(),
            account: account.into(),
            ct_ratio: ct,
            pt_ratio: 1,
            multiplier: ct,
            register_digits: 6,
            installed_on: opened,
            capacity_kva,
            prepaid_mode: false,
        })
        .await
        .expect("meter stored");
}
