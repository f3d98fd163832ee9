//! SQLite: the write-ahead log is copied back into the database file by the store's own
//! checkpoint thread once `store.sqlite_wal_checkpoint_pages` pages wait in it (here 20, so
//! that a few commits cross it), not by the commits; what was committed is all there after
//! the store is closed and opened again, also while a second store writes to the same file.

use chrono::{NaiveDate, Utc};
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass};
use kehu_store::billing::NewRead;
use kehu_store::{testing, Store, StoreOptions};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn reads(on: &str, from: usize, to: usize, value: u64) -> Vec<NewRead> {
    (from..to)
        .map(|i| NewRead {
            external_id: None,
            meter: format!("M{i:04}"),
            read_on: day(on),
            value: value + i as u64,
            peak: None,
            flat: None,
            valley: None,
        })
        .collect()
}

#[tokio::test]
async fn checkpoints_run_on_the_stores_thread_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::sqlite_url_for_dir(dir.path());
    let opts = StoreOptions {
        sqlite_wal_checkpoint_pages: 20,
        ..StoreOptions::default()
    };
    let s = Store::open(&url, &opts).await.unwrap();
    // The schema's migrations may have crossed the threshold already.
    let before = s.sqlite_checkpoints().expect("an on-disk SQLite store has the thread");
    let rules = BillingRules::default();
    s.upsert_tariff("flat", "平价", &Tariff::Flat { price: PricePerKwh(5_283) })
        .await
        .unwrap();
    for i in 0..600 {
        testing::supply_account_with_meter(&s, &format!("A{i:04}"), CustomerClass::Residential, "flat", &format!("M{i:04}"), 1, 50).await;
    }
    // A second store on the same file writes too (another process would, like the CLI).
    let other = Store::open(&url, &opts).await.unwrap();
    let now = Utc::now();
    for (k, on) in ["2026-06-30", "2026-07-31", "2026-08-31", "2026-09-30"].iter().enumerate() {
        let writer = if k % 2 == 0 { &s } else { &other };
        for part in [0..300, 300..600] {
            writer
                .add_reads(&reads(on, part.start, part.end, 1_000 * (k as u64 + 1)), &rules.vee, day("2026-10-05"), now)
                .await
                .unwrap();
        }
    }
    // The thread takes its calls in the background: wait for it (bounded), no timing asserted.
    let mut waited = 0;
    while s.sqlite_checkpoints() == Some(before) && waited < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        s.sqlite_checkpoints().unwrap() > before,
        "the store's thread copied the log back while the reads were written"
    );
    s.close().await;
    other.close().await;
    drop((s, other));
    let s = Store::open(&url, &opts).await.unwrap();
    for i in [0usize, 299, 300, 599] {
        assert_eq!(
            s.meter_latest_read(&format!("M{i:04}")).await.unwrap(),
            Some(Some(day("2026-09-30"))),
            "meter {i}"
        );
    }
    assert_eq!(
        s.ageing(day("2026-10-05"), kehu_store::billing::AgeingGroup::Class).await.unwrap().len(),
        0,
        "no bills were made"
    );
}
