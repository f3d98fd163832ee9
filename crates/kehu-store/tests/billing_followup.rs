//! When a reviewer corrects, estimates or rejects a read, the meter's next read (whose
//! consumption was measured from it) is measured and checked again, on every backend this
//! run has: an unbilled next read gets its new consumption and status, a next read a
//! reviewer had already accepted goes back to review when its consumption changed, and a
//! billed next read keeps its bill and is marked for an adjustment. All audited.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass, Period, VeeFlag};
use kehu_store::billing::{NewRead, ReadOutcome, ReadStatus, Resolution};
use kehu_store::{testing, Store};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The review happens on 5 December 2026 (fixed, so no read is in the future).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap()
}

async fn setup(s: &Store, n: &str) {
    testing::supply_account_with_meter(s, &format!("A{n}"), CustomerClass::Residential, "flat", &format!("M{n}"), 1, 10).await;
}

async fn read(s: &Store, n: &str, on: &str, value: u64) -> ReadOutcome {
    read_bands(s, n, on, value, None).await
}

/// A read with time-of-use registers (peak, flat, valley) when given.
async fn read_bands(s: &Store, n: &str, on: &str, value: u64, bands: Option<[u64; 3]>) -> ReadOutcome {
    s.add_read(
        &NewRead {
            external_id: None,
            meter: format!("M{n}"),
            read_on: day(on),
            value,
            peak: bands.map(|b| b[0]),
            flat: bands.map(|b| b[1]),
            valley: bands.map(|b| b[2]),
        },
        &BillingRules::default().vee,
        day("2026-12-05"),
        now(),
    )
    .await
    .unwrap()
}

/// June to September at 100 kWh a month, October's register read low (1,250 < 1,300: in
/// review), November measured from it. Returns (October, November).
async fn history(s: &Store, n: &str, november: u64) -> (ReadOutcome, ReadOutcome) {
    setup(s, n).await;
    for (on, v) in [
        ("2026-06-30", 1_000),
        ("2026-07-31", 1_100),
        ("2026-08-31", 1_200),
        ("2026-09-30", 1_300),
    ] {
        assert_eq!(read(s, n, on, v).await.status, ReadStatus::Clean);
    }
    let oct = read(s, n, "2026-10-31", 1_250).await;
    assert_eq!(
        (oct.status, oct.flags.clone()),
        (ReadStatus::Review, vec![VeeFlag::Negative])
    );
    let nov = read(s, n, "2026-11-30", november).await;
    (oct, nov)
}

#[tokio::test]
async fn a_changed_read_measures_the_next_one_again() {
    for t in testing::all().await {
        let s = &t.store;
        let rules = BillingRules::default();
        let now = now();
        s.upsert_tariff(
            "flat",
            "平价",
            &Tariff::Flat {
                price: PricePerKwh(5_000),
            },
        )
        .await
        .unwrap();

        // 1. Not billed yet: November measured from the corrected October.
        let (oct, nov) = history(s, "1", 1_400).await;
        assert_eq!((nov.status, nov.kwh), (ReadStatus::Clean, Some(150)), "{}", t.name);
        let fixed = s
            .resolve_read(
                oct.read_id,
                &Resolution::Correct { value: 1_350, bands: None },
                "s1",
                "photo shows 1350",
                &rules.vee,
                now,
            )
            .await
            .unwrap();
        assert_eq!((fixed.status, fixed.kwh), (ReadStatus::Corrected, Some(50)));
        let f = fixed.follow_up.expect("November measured again");
        assert_eq!(
            (f.read_id, f.kwh_before, f.kwh_after, f.status, f.rebill),
            (nov.read_id, Some(150), Some(50), ReadStatus::Clean, false),
            "{}: {:?}",
            t.name,
            f.flags
        );
        let edits = s.read_edits(nov.read_id).await.unwrap();
        assert_eq!(edits.len(), 1, "{}", t.name);
        assert_eq!(
            (edits[0].action.as_str(), edits[0].staff.as_str()),
            ("recompute", "s1")
        );
        assert!(
            edits[0].reason.contains("correct") && edits[0].reason.contains("photo"),
            "{}",
            edits[0].reason
        );
        // October and November bill what the corrected registers say.
        for p in ["2026-10", "2026-11"] {
            s.billing_run(Period::parse(p).unwrap(), false, &rules, now)
                .await
                .unwrap();
        }
        let bills = s.account_bills("A1").await.unwrap();
        let kwh: Vec<(String, u64)> = bills.iter().map(|b| (b.period.clone(), b.kwh)).collect();
        assert_eq!(
            kwh,
            vec![("2026-10".to_string(), 50), ("2026-11".to_string(), 50)],
            "{}",
            t.name
        );

        // 2. Already billed: November keeps its bill and is marked for an adjustment.
        let (oct, nov) = history(s, "2", 1_400).await;
        let r = s
            .billing_run(Period::parse("2026-11").unwrap(), true, &rules, now)
            .await
            .unwrap();
        assert_eq!(r.bills, 1, "{}: {r:?}", t.name);
        let rejected = s
            .resolve_read(
                oct.read_id,
                &Resolution::Reject,
                "s2",
                "register misread",
                &rules.vee,
                now,
            )
            .await
            .unwrap();
        let f = rejected.follow_up.expect("November looked at again");
        assert_eq!(
            (f.kwh_before, f.kwh_after, f.status, f.rebill),
            (Some(150), Some(100), ReadStatus::Billed, true),
            "{}",
            t.name
        );
        let nov_bill = s.account_bills("A2").await.unwrap();
        assert_eq!(nov_bill.len(), 1);
        assert_eq!(nov_bill[0].kwh, 150, "the bill stands: {}", t.name);
        let edits = s.read_edits(nov.read_id).await.unwrap();
        assert_eq!(
            edits.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            vec!["needs_rebill"],
            "{}",
            t.name
        );
        assert!(edits[0].after.contains("100"), "{}", edits[0].after);
        // The bill to adjust is listed: the read, its bill's period, billed and right kWh,
        // who changed the earlier read and why.
        let (n, list) = s.rebills(10).await.unwrap();
        assert_eq!(n, 1, "{}", t.name);
        let item = &list[0];
        assert_eq!(
            (item.read_id, item.account.as_str(), item.period.as_deref(), item.kwh_billed, item.kwh_right),
            (nov.read_id, "A2", Some("2026-11"), Some(150), Some(100)),
            "{}",
            t.name
        );
        assert_eq!((item.staff.as_str(), item.read_on), ("s2", day("2026-11-30")), "{}", t.name);
        assert!(item.reason.contains("register misread"), "{}", item.reason);

        // 3. A reviewer's decision stands only for the consumption it was made on.
        let (oct, nov) = history(s, "3", 2_000).await;
        assert_eq!((nov.status, nov.kwh), (ReadStatus::Review, Some(750)), "{}", t.name);
        let accepted = s
            .resolve_read(
                nov.read_id,
                &Resolution::Accept,
                "s3",
                "heating installed",
                &rules.vee,
                now,
            )
            .await
            .unwrap();
        assert_eq!(accepted.status, ReadStatus::Accepted);
        assert!(accepted.follow_up.is_none(), "accepting changes no register");
        let fixed = s
            .resolve_read(
                oct.read_id,
                &Resolution::Correct { value: 1_350, bands: None },
                "s3",
                "photo",
                &rules.vee,
                now,
            )
            .await
            .unwrap();
        let f = fixed.follow_up.expect("November measured again");
        assert_eq!(
            (f.kwh_before, f.kwh_after, f.status, f.rebill),
            (Some(750), Some(650), ReadStatus::Review, false),
            "{}",
            t.name
        );
        let queue = s.review_queue(10).await.unwrap();
        assert!(
            queue.iter().any(|q| q.read_id == nov.read_id && q.kwh == Some(650)),
            "{}: {queue:?}",
            t.name
        );

        // 4. Time-of-use registers: the next read's band consumption follows its total.
        setup(s, "4").await;
        for (on, v, b) in [
            ("2026-08-31", 1_000, [300, 500, 200]),
            ("2026-09-30", 1_100, [330, 550, 220]),
        ] {
            assert_eq!(read_bands(s, "4", on, v, Some(b)).await.status, ReadStatus::Clean);
        }
        // October's total was keyed wrong (its bands say +100): a band mismatch, in review.
        let oct = read_bands(s, "4", "2026-10-31", 1_150, Some([360, 600, 240])).await;
        assert_eq!(oct.status, ReadStatus::Review, "{}: {:?}", t.name, oct.flags);
        let nov = read_bands(s, "4", "2026-11-30", 1_300, Some([390, 650, 260])).await;
        let fixed = s
            .resolve_read(oct.read_id, &Resolution::Correct { value: 1_200, bands: None }, "s4", "photo", &rules.vee, now)
            .await
            .unwrap();
        let f = fixed.follow_up.expect("November measured again");
        assert_eq!((f.read_id, f.kwh_before, f.kwh_after), (nov.read_id, Some(150), Some(100)), "{}", t.name);
        let edits = s.read_edits(nov.read_id).await.unwrap();
        let after: serde_json::Value = serde_json::from_str(&edits.last().unwrap().after).unwrap();
        assert_eq!(
            after["band_kwh"],
            serde_json::json!({"peak": 30, "flat": 50, "valley": 20}),
            "{}: {after}",
            t.name
        );
    }
}
