//! Time-of-use registers end to end in the store, on every backend this run has (SQLite
//! always, PostgreSQL when KEHU_TEST_DATABASE_URL is set): reads with peak, flat and
//! valley registers are split by band (after the multiplier, across a rollover), a
//! time-of-use account is billed peak / flat / valley to the exact fen, an account whose
//! reads lack bands is billed at the flat price and counted, other tariffs ignore bands,
//! bad band registers are refused whole, and a re-run bills nothing twice.

use chrono::{NaiveDate, TimeZone, Utc};
use kehu_domain::billing::bill::TOU_WITHOUT_BANDS_LABEL;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{
    BandRegisters, BandUse, BillingRules, CustomerClass, Period, VeeFlag,
};
use kehu_domain::Fen;
use kehu_store::billing::{BillingError, NewRead, ReadStatus, Resolution, StoredBill};
use kehu_store::{testing, Store};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn read(meter: &str, on: &str, value: u64, bands: Option<(u64, u64, u64)>) -> NewRead {
    let mut r = NewRead::total(meter, day(on), value);
    if let Some((p, f, v)) = bands {
        (r.peak, r.flat, r.valley) = (Some(p), Some(f), Some(v));
    }
    r
}

async fn setup(s: &Store) {
    s.upsert_tariff(
        "tou",
        "一般工商业(分时)",
        &Tariff::TimeOfUse {
            peak: PricePerKwh(9_851),
            flat: PricePerKwh(6_322),
            valley: PricePerKwh(3_096),
        },
    )
    .await
    .unwrap();
    s.upsert_tariff(
        "biz",
        "一般工商业",
        &Tariff::Flat {
            price: PricePerKwh(6_500),
        },
    )
    .await
    .unwrap();
    // (account, tariff, meter, CT ratio)
    for (acc, tariff, meter, ct) in [
        ("A1-TOU", "tou", "M-TOU", 1),
        ("A2-CT", "tou", "M-CT", 40),
        ("A3-ROLL", "tou", "M-ROLL", 1),
        ("A4-NOBANDS", "tou", "M-NOB", 1),
        ("A5-MISMATCH", "tou", "M-MIS", 1),
        ("A6-FLAT", "biz", "M-FLAT", 1),
    ] {
        testing::supply_account_with_meter(s, acc, CustomerClass::NonResidential, tariff, meter, ct, 200).await;
    }
}

fn lines(b: &StoredBill) -> Vec<(&str, &str, u64, i64)> {
    b.lines
        .iter()
        .map(|l| (l.item.as_str(), l.label.as_str(), l.kwh, l.amount.0))
        .collect()
}

#[tokio::test]
async fn time_of_use_accounts_are_billed_by_band() {
    for t in testing::all().await {
        tou_story(&t.store, t.name).await;
        eprintln!("time-of-use story passed on {}", t.name);
    }
}

async fn tou_story(s: &Store, name: &str) {
    let rules = BillingRules::default();
    let today = day("2026-11-05");
    let now = Utc.with_ymd_and_hms(2026, 11, 5, 2, 0, 0).unwrap();
    setup(s).await;

    let sept = vec![
        read("M-TOU", "2026-09-30", 20_000, Some((8_000, 9_000, 3_000))),
        read("M-CT", "2026-09-30", 10_000, Some((4_000, 5_000, 1_000))),
        read("M-ROLL", "2026-09-30", 999_900, Some((999_950, 2_000, 500))),
        read("M-NOB", "2026-09-30", 1_000, None),
        read("M-MIS", "2026-09-30", 5_000, Some((1_000, 3_000, 1_000))),
        read("M-FLAT", "2026-09-30", 100, Some((10, 60, 30))),
    ];
    let out = s.add_reads(&sept, &rules.vee, today, now).await.unwrap();
    // The first read of a meter only sets the start of its registers.
    assert!(
        out.iter().all(|o| o.kwh.is_none() && o.bands.is_none()),
        "{name}: {out:?}"
    );

    // Bad band registers: some without the others is refused, naming what is missing,
    // and nothing of the call is kept (the good read before it neither).
    let bad = vec![
        read("M-TOU", "2026-10-31", 20_657, Some((8_123, 9_457, 3_078))),
        NewRead {
            flat: None,
            ..read("M-CT", "2026-10-31", 10_100, Some((4_030, 5_060, 1_010)))
        },
    ];
    let e = s.add_reads(&bad, &rules.vee, today, now).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BillingError::Invalid(_)), "{name}: {msg}");
    assert!(
        msg.contains("M-CT") && msg.contains("peak 4030") && msg.contains("flat missing"),
        "{name}: {msg}"
    );
    for m in ["M-TOU", "M-CT"] {
        assert_eq!(
            s.meter_latest_read(m).await.unwrap(),
            Some(Some(day("2026-09-30"))),
            "{name}: {m}"
        );
    }

    let oct = vec![
        // 657 kWh: peak 123, valley 78, flat the rest, 456 (its register says 457: within
        // the whole-kWh tolerance).
        read("M-TOU", "2026-10-31", 20_657, Some((8_123, 9_457, 3_078))),
        // CT 40: 100 on the register is 4,000 kWh; each band × 40.
        read("M-CT", "2026-10-31", 10_100, Some((4_030, 5_060, 1_010))),
        // The total and the peak register roll over at 10^6.
        read("M-ROLL", "2026-10-31", 100, Some((30, 2_100, 520))),
        read("M-NOB", "2026-10-31", 1_300, None),
        // Bands add up to 300, the total to 200: to review.
        read("M-MIS", "2026-10-31", 5_200, Some((1_050, 3_200, 1_050))),
        // A flat tariff ignores its meter's bands.
        read("M-FLAT", "2026-10-31", 200, Some((40, 120, 40))),
    ];
    let out = s.add_reads(&oct, &rules.vee, today, now).await.unwrap();
    let band = |peak, flat, valley| Some(BandUse { peak, flat, valley });
    assert_eq!(out[0].bands, band(123, 456, 78), "{name}");
    assert_eq!(out[0].kwh, Some(657));
    assert_eq!(out[1].bands, band(1_200, 2_400, 400), "{name}");
    assert_eq!(out[1].kwh, Some(4_000));
    assert_eq!(out[2].bands, band(80, 100, 20), "{name}");
    assert_eq!(out[2].flags, vec![VeeFlag::Rollover], "{name}");
    assert_eq!(out[3].bands, None);
    assert_eq!(out[4].status, ReadStatus::Review, "{name}");
    assert!(
        out[4].flags.contains(&VeeFlag::BandMismatch),
        "{name}: {:?}",
        out[4].flags
    );
    assert_eq!((out[4].kwh, out[4].bands), (Some(200), None), "{name}");
    assert_eq!(out[5].bands, band(30, 60, 10), "{name}");
    for o in [&out[0], &out[1], &out[3], &out[5]] {
        assert_eq!(o.status, ReadStatus::Clean, "{name}: {o:?}");
    }

    // Re-sending is harmless; the same id with other band registers is refused.
    let again = s
        .add_reads(&oct[..1], &rules.vee, today, now)
        .await
        .unwrap();
    assert_eq!(again, out[..1].to_vec(), "{name}");
    let mut changed = oct[0].clone();
    changed.peak = Some(8_124);
    let e = s
        .add_read(&changed, &rules.vee, today, now)
        .await
        .unwrap_err();
    assert!(
        matches!(e, BillingError::ConflictingResend { .. }),
        "{name}: {e}"
    );

    // The reviewer corrects the total: 300 now agrees with the bands, which are split again.
    let fixed = s
        .resolve_read(
            out[4].read_id,
            &Resolution::Correct { value: 5_300, bands: None },
            "张三",
            "total register misread on site",
            &rules.vee,
            now,
        )
        .await
        .unwrap();
    assert_eq!(fixed.kwh, Some(300), "{name}");
    // The audit keeps the bands before (registers, no split) and after (the split).
    let edit = s.read_edits(out[4].read_id).await.unwrap().remove(0);
    assert!(
        edit.before.contains("\"bands\"") && !edit.before.contains("band_kwh"),
        "{name}: {}",
        edit.before
    );
    assert!(
        edit.after.contains("\"band_kwh\":{\"flat\":200,\"peak\":50,\"valley\":50}")
            || edit.after.contains("\"band_kwh\":{\"peak\":50,\"flat\":200,\"valley\":50}"),
        "{name}: {}",
        edit.after
    );

    let period = Period::parse("2026-10").unwrap();
    let r = s.billing_run(period, false, &rules, now).await.unwrap();
    assert_eq!(
        (r.bills, r.already_billed, r.held_for_review),
        (6, 0, 0),
        "{name}"
    );
    assert_eq!(r.tou_billed_at_flat, 1, "{name}");
    assert_eq!(
        r.tou_billed_at_flat_first,
        vec!["A4-NOBANDS".to_string()],
        "{name}"
    );

    let bill = |acc: &'static str| async move { s.account_bills(acc).await.unwrap().remove(0) };
    // 123 × 0.9851 = 121.1673 → 121.17; 456 × 0.6322 = 288.2832 → 288.28;
    // 78 × 0.3096 = 24.1488 → 24.15 (each line half up to the fen).
    let b = bill("A1-TOU").await;
    assert_eq!(
        lines(&b),
        vec![
            ("peak", "峰段电费", 123, 12_117),
            ("flat", "平段电费", 456, 28_828),
            ("valley", "谷段电费", 78, 2_415)
        ],
        "{name}"
    );
    assert_eq!((b.kwh, b.total), (657, Fen(43_360)), "{name}");
    // 1,200 × 0.9851 = 1,182.12; 2,400 × 0.6322 = 1,517.28; 400 × 0.3096 = 123.84.
    let b = bill("A2-CT").await;
    assert_eq!(
        lines(&b).iter().map(|l| (l.2, l.3)).collect::<Vec<_>>(),
        vec![(1_200, 118_212), (2_400, 151_728), (400, 12_384)],
        "{name}"
    );
    assert_eq!((b.kwh, b.total), (4_000, Fen(282_324)), "{name}");
    // Across the rollover: 80 × 0.9851 = 78.808 → 78.81; 100 × 0.6322; 20 × 0.3096 = 6.192.
    let b = bill("A3-ROLL").await;
    assert_eq!(
        lines(&b).iter().map(|l| (l.2, l.3)).collect::<Vec<_>>(),
        vec![(80, 7_881), (100, 6_322), (20, 619)],
        "{name}"
    );
    assert_eq!(b.total, Fen(14_822), "{name}");
    // No band registers: 300 × 0.6322 = 189.66 at the flat price, on a line that says so.
    let b = bill("A4-NOBANDS").await;
    assert_eq!(
        lines(&b),
        vec![("flat", TOU_WITHOUT_BANDS_LABEL, 300, 18_966)],
        "{name}"
    );
    // The corrected read: 50 × 0.9851 = 49.255 → 49.26 (half up); 200 × 0.6322; 50 × 0.3096.
    let b = bill("A5-MISMATCH").await;
    assert_eq!(
        lines(&b)
            .iter()
            .map(|l| (l.0, l.2, l.3))
            .collect::<Vec<_>>(),
        vec![
            ("peak", 50, 4_926),
            ("flat", 200, 12_644),
            ("valley", 50, 1_548)
        ],
        "{name}"
    );
    assert_eq!(b.total, Fen(19_118), "{name}");
    // A flat tariff bills the total, bands or not: 100 × 0.65.
    let b = bill("A6-FLAT").await;
    assert_eq!(
        lines(&b),
        vec![("energy", "电度电费", 100, 6_500)],
        "{name}"
    );
    assert_eq!(
        r.total,
        Fen(43_360 + 282_324 + 14_822 + 18_966 + 19_118 + 6_500),
        "{name}"
    );

    // Re-running bills nothing twice and changes no bill.
    let before: Vec<StoredBill> = s.account_bills("A1-TOU").await.unwrap();
    let r2 = s.billing_run(period, false, &rules, now).await.unwrap();
    assert_eq!(
        (r2.bills, r2.already_billed, r2.tou_billed_at_flat),
        (0, 6, 0),
        "{name}"
    );
    assert_eq!(s.account_bills("A1-TOU").await.unwrap(), before, "{name}");

    // November: an estimate has no band registers, so the period bills at the flat price,
    // and the read after it starts the bands again.
    let nov = vec![read(
        "M-TOU",
        "2026-11-30",
        27_000,
        Some((8_246, 9_914, 3_157)),
    )];
    let o = s
        .add_reads(&nov, &rules.vee, day("2026-12-05"), now)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(o.status, ReadStatus::Review, "{name}: {:?}", o.flags);
    let est = s
        .resolve_read(
            o.read_id,
            &Resolution::EstimateAverage,
            "张三",
            "spike",
            &rules.vee,
            now,
        )
        .await
        .unwrap();
    assert_eq!(est.status, ReadStatus::Estimated, "{name}");
    let edit = s.read_edits(o.read_id).await.unwrap().remove(0);
    assert!(edit.before.contains("\"bands\""), "{name}: {}", edit.before);
    assert!(!edit.after.contains("bands"), "{name}: {}", edit.after);
    let r3 = s
        .billing_run(Period::parse("2026-11").unwrap(), false, &rules, now)
        .await
        .unwrap();
    assert_eq!((r3.bills, r3.tou_billed_at_flat), (1, 1), "{name}");
    let dec = s
        .add_read(
            &read(
                "M-TOU",
                "2026-12-31",
                est.value + 600,
                Some((8_400, 10_200, 3_200)),
            ),
            &rules.vee,
            day("2027-01-05"),
            now,
        )
        .await
        .unwrap();
    assert_eq!((dec.kwh, dec.bands), (Some(600), None), "{name}");
}

/// A reviewer corrects a time-of-use read's band registers with its total: registers that
/// do not agree with the corrected total are refused (nothing changes); ones that agree
/// are stored, split again and audited; the meter's next read is measured from them.
#[tokio::test]
async fn a_correction_can_set_the_band_registers() {
    for t in testing::all().await {
        let (s, name) = (&t.store, t.name);
        let rules = BillingRules::default();
        let today = day("2026-12-05");
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap();
        setup(s).await;
        let reads = vec![
            read("M-MIS", "2026-09-30", 5_000, Some((1_000, 3_000, 1_000))),
            // The flat register was misread (3,900 for 3,100): bands 1,000, total 200.
            read("M-MIS", "2026-10-31", 5_200, Some((1_050, 3_900, 1_050))),
            read("M-MIS", "2026-11-30", 5_500, Some((1_150, 3_250, 1_100))),
        ];
        let out = s.add_reads(&reads, &rules.vee, today, now).await.unwrap();
        assert_eq!(out[1].status, ReadStatus::Review, "{name}");
        assert_eq!(out[1].bands, None, "{name}");
        // November is measured from October's registers: its flat register went back.
        assert_eq!(out[2].status, ReadStatus::Review, "{name}: {:?}", out[2]);
        let queue = s.review_queue(10).await.unwrap();
        let oct = queue.iter().find(|q| q.read_id == out[1].read_id).unwrap();
        let regs = |peak, flat, valley| Some(BandRegisters { peak, flat, valley });
        assert_eq!(oct.bands, regs(1_050, 3_900, 1_050), "the queue shows the registers");

        // Registers that still do not agree with the total: refused, nothing written.
        let e = s
            .resolve_read(
                out[1].read_id,
                &Resolution::Correct { value: 5_200, bands: regs(1_050, 3_300, 1_050) },
                "张三",
                "flat register misread",
                &rules.vee,
                now,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, BillingError::BadResolution { .. }), "{name}: {e}");
        assert!(e.to_string().contains("flat 3300") && e.to_string().contains("400"), "{name}: {e}");
        assert!(s.read_edits(out[1].read_id).await.unwrap().is_empty(), "{name}");

        let fixed = s
            .resolve_read(
                out[1].read_id,
                &Resolution::Correct { value: 5_200, bands: regs(1_050, 3_100, 1_050) },
                "张三",
                "flat register misread",
                &rules.vee,
                now,
            )
            .await
            .unwrap();
        assert_eq!((fixed.kwh, fixed.status), (Some(200), ReadStatus::Corrected), "{name}");
        assert_eq!(fixed.bands, regs(1_050, 3_100, 1_050), "{name}");
        let edit = s.read_edits(out[1].read_id).await.unwrap().remove(0);
        assert!(edit.before.contains("3900") && edit.after.contains("3100"), "{name}: {edit:?}");
        assert!(edit.after.contains("\"band_kwh\""), "{name}: {}", edit.after);
        // November is measured again from the corrected registers: 100 / 150 / 50 of 300,
        // clean now.
        let f = fixed.follow_up.expect("the next read is measured again");
        assert_eq!((f.read_id, f.kwh_after, f.status), (out[2].read_id, Some(300), ReadStatus::Clean), "{name}");

        // October bills peak 50, flat 100, valley 50; November 100, 150, 50.
        let r = s
            .billing_run(Period::parse("2026-10").unwrap(), false, &rules, now)
            .await
            .unwrap();
        assert_eq!(r.held_for_review, 0, "{name}");
        let b = s.account_bills("A5-MISMATCH").await.unwrap().remove(0);
        assert_eq!(
            lines(&b).iter().map(|l| (l.0, l.2)).collect::<Vec<_>>(),
            vec![("peak", 50), ("flat", 100), ("valley", 50)],
            "{name}"
        );
        let r = s
            .billing_run(Period::parse("2026-11").unwrap(), false, &rules, now)
            .await
            .unwrap();
        assert_eq!(r.held_for_review, 0, "{name}");
        let b = s.account_bills("A5-MISMATCH").await.unwrap().remove(1);
        assert_eq!(
            lines(&b).iter().map(|l| (l.0, l.2)).collect::<Vec<_>>(),
            vec![("peak", 100), ("flat", 150), ("valley", 50)],
            "{name}"
        );
    }
}
