//! Import of reads with time-of-use registers (peak, flat, valley) on every backend: CSV
//! and JSON Lines with Chinese or English headers load the bands; a non-numeric, negative
//! or lone band register is named with its line, column and value, and a file with such
//! an error writes nothing.

use chrono::{FixedOffset, NaiveDate, Utc};
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass};
use kehu_domain::ingest::ParseContext;
use kehu_domain::Fen;
use kehu_ingest::billing_import::{import_billing_file, BillingImportOptions, BillingKind};
use kehu_store::{testing, Store};
use std::path::PathBuf;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn opts() -> BillingImportOptions {
    BillingImportOptions {
        kind: BillingKind::Reads,
        ctx: ParseContext {
            today: day("2026-11-05"),
            offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        },
        format: None,
        skip_invalid: false,
        max_errors: 100,
        rules: BillingRules::default(),
    }
}

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("kehu-tou-import-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn setup(s: &Store) {
    s.upsert_tariff(
        "tou",
        "分时",
        &Tariff::TimeOfUse {
            peak: PricePerKwh(9_851),
            flat: PricePerKwh(6_322),
            valley: PricePerKwh(3_096),
        },
    )
    .await
    .unwrap();
    for i in 1..=2 {
        testing::supply_account_with_meter(s, &format!("A{i}"), CustomerClass::NonResidential, "tou", &format!("M{i}"), 1, 100).await;
    }
}

#[tokio::test]
async fn band_registers_import_and_bad_ones_are_named() {
    for t in testing::all().await {
        let s = &t.store;
        let name = t.name;
        let dir = Dir::new(name);
        setup(s).await;
        let now = Utc::now();

        // Bad band values: nothing of the file is written, each error names line, column
        // and value.
        let bad = dir.write(
            "bad.csv",
            "表号,抄表日期,示数,峰,平,谷\n\
             M1,2026-09-30,1000,400,500,100\n\
             M2,2026-09-30,2000,abc,900,100\n\
             M1,2026-10-31,1100,-5,540,110\n\
             M2,2026-10-31,2100,1030,,\n",
        );
        let r = import_billing_file(s, &bad, &opts(), now).await.unwrap();
        assert!(!r.committed, "{name}");
        assert_eq!((r.rows_read, r.rows_rejected), (4, 3), "{name}");
        let e: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| e.iter().any(|x| x.contains(needle));
        assert!(
            has("bad.csv:3: column peak, value \"abc\""),
            "{name}: {e:?}"
        );
        assert!(has("bad.csv:4: column peak, value \"-5\""), "{name}: {e:?}");
        assert!(
            has("bad.csv:5: column flat") && has("bad.csv:5: column valley"),
            "{name}: {e:?}"
        );
        assert!(has("come together"), "{name}: {e:?}");
        assert_eq!(
            s.meter_latest_read("M1").await.unwrap(),
            Some(None),
            "{name}"
        );

        // Good files: CSV with Chinese headers, then JSON Lines with English keys.
        let good = dir.write(
            "good.csv",
            "表号,抄表日期,示数,峰段示数,平段示数,谷段示数\n\
             M1,2026-09-30,1000,400,500,100\n\
             M2,2026-09-30,2000,,,\n",
        );
        let r = import_billing_file(s, &good, &opts(), now).await.unwrap();
        assert!(r.committed && r.rows_loaded == 2, "{name}: {:?}", r.errors);
        let jsonl = dir.write(
            "oct.jsonl",
            "{\"meter\":\"M1\",\"read_on\":\"2026-10-31\",\"value\":1100,\"peak\":430,\"flat\":560,\"valley\":110}\n\
             {\"meter\":\"M2\",\"read_on\":\"2026-10-31\",\"value\":\"2150\",\"peak\":null}\n",
        );
        let r = import_billing_file(s, &jsonl, &opts(), now).await.unwrap();
        assert!(r.committed && r.rows_loaded == 2, "{name}: {:?}", r.errors);
        // Importing again is harmless.
        let r = import_billing_file(s, &jsonl, &opts(), now).await.unwrap();
        assert!(r.committed, "{name}: {:?}", r.errors);

        let period = kehu_domain::billing::Period::parse("2026-10").unwrap();
        let run = s
            .billing_run(period, false, &BillingRules::default(), now)
            .await
            .unwrap();
        assert_eq!((run.bills, run.tou_billed_at_flat), (2, 1), "{name}");
        let b = &s.account_bills("A1").await.unwrap()[0];
        let kwh: Vec<(&str, u64)> = b.lines.iter().map(|l| (l.item.as_str(), l.kwh)).collect();
        assert_eq!(
            kwh,
            vec![("peak", 30), ("flat", 60), ("valley", 10)],
            "{name}"
        );
    }
}

/// The demo supplier bills some accounts by time of use: their bills have peak, flat and
/// valley lines that add up to the bill, and the months after an estimate are billed at
/// the flat price and counted.
#[tokio::test]
async fn the_demo_supplier_bills_time_of_use_accounts_by_band() {
    use kehu_ingest::demo_power::{self, PowerSpec};
    let t = testing::sqlite().await;
    let spec = PowerSpec {
        months: 3,
        ..PowerSpec::new(400, 3, day("2026-11-15"))
    };
    demo_power::load(&t.store, &spec, &BillingRules::default(), Utc::now())
        .await
        .unwrap();
    let (mut by_band, mut tou_accounts) = (0, 0);
    for i in 0..spec.accounts {
        let a = demo_power::account(&spec, i);
        if !demo_power::is_time_of_use(&a.account.tariff) {
            continue;
        }
        tou_accounts += 1;
        for b in t.store.account_bills(&a.account.external_id).await.unwrap() {
            let items: Vec<&str> = b.lines.iter().map(|l| l.item.as_str()).collect();
            assert_eq!(
                b.lines.iter().map(|l| l.amount).sum::<Fen>(),
                b.total,
                "{items:?}"
            );
            assert_eq!(b.lines.iter().map(|l| l.kwh).sum::<u64>(), b.kwh);
            if items == ["peak", "flat", "valley"] {
                by_band += 1;
            }
        }
    }
    assert!(tou_accounts >= 10, "{tou_accounts} time-of-use accounts");
    // Every time-of-use meter reads its bands from the start read on, so all months but
    // those around an anomaly are billed by band.
    assert!(
        by_band >= tou_accounts * 2,
        "{by_band} bills by band for {tou_accounts} accounts over 3 months"
    );
}
