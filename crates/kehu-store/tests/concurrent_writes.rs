//! Writes that read before they write, from many tasks at once, all succeed: on SQLite
//! they take the write lock when they begin and wait their turn, rather than failing when
//! another connection committed between their read and their write.

use chrono::NaiveDate;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{CustomerClass, Meter, SupplyAccount};
use kehu_domain::Fen;
use kehu_store::testing;

const TASKS: usize = 12;
const EACH: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_then_write_transactions_all_commit() {
    for t in testing::all().await {
        let s = t.store.clone();
        s.upsert_tariff("flat", "平价", &Tariff::Flat { price: PricePerKwh(5_283) })
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for k in 0..TASKS {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let id = format!("CW{k:02}{i:03}");
                    // Each reads (the tariff, the account) before it writes.
                    s.upsert_supply_account(&SupplyAccount {
                        external_id: id.clone(),
                        name: format!("并发{k}-{i}"),
                        class: CustomerClass::Residential,
                        area: None,
                        tariff: "flat".into(),
                        penalty_ppm: None,
                        deposit: Fen::ZERO,
                        prepaid: false,
                        opened_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                    })
                    .await
                    .map_err(|e| format!("account {id}: {e}"))?;
                    s.upsert_meter(&Meter {
                        external_id: format!("M{id}"),
                        account: id.clone(),
                        ct_ratio: 1,
                        pt_ratio: 1,
                        multiplier: 1,
                        register_digits: 6,
                        installed_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                        capacity_kva: 10,
                        prepaid_mode: false,
                    })
                    .await
                    .map_err(|e| format!("meter of {id}: {e}"))?;
                }
                Ok::<(), String>(())
            }));
        }
        let mut failures = Vec::new();
        for h in tasks {
            if let Err(e) = h.await.unwrap() {
                failures.push(e);
            }
        }
        assert!(failures.is_empty(), "{}: {failures:?}", t.name);
        assert_eq!(
            s.supply_account_count().await.unwrap(),
            (TASKS * EACH) as i64,
            "{}",
            t.name
        );
    }
}
