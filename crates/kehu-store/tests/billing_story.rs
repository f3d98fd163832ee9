//! Billing and collections, told against every backend this run has: SQLite always,
//! PostgreSQL when KEHU_TEST_DATABASE_URL is set.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use kehu_domain::billing::dunning::{DunningStep, Gate, TimelineEvent};
use kehu_domain::billing::tariff::{PricePerKwh, Tariff, Tier, TierPeriod};
use kehu_domain::billing::{BillingRules, CustomerClass, Meter, Period, SupplyAccount, VeeFlag};
use kehu_domain::Fen;
use kehu_store::billing::{
    AgeingGroup, Area, BillingError, NewPayment, NewRead, ReadStatus, Resolution,
};
use kehu_store::{testing, Store};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

fn account(
    id: &str,
    class: CustomerClass,
    area: &str,
    tariff: &str,
    prepaid: bool,
) -> SupplyAccount {
    SupplyAccount {
        external_id: id.into(),
        name: format!("用户{id}"),
        class,
        area: Some(area.into()),
        tariff: tariff.into(),
        penalty_ppm: None,
        deposit: Fen::ZERO,
        prepaid,
        opened_on: day("2020-01-01"),
    }
}

fn meter(id: &str, account: &str, ct: u32, capacity: u32) -> Meter {
    Meter {
        external_id: id.into(),
        account: account.into(),
        ct_ratio: ct,
        pt_ratio: 1,
        multiplier: ct,
        register_digits: 6,
        installed_on: day("2020-01-01"),
        capacity_kva: capacity,
        prepaid_mode: false,
    }
}

async fn read(
    s: &Store,
    meter: &str,
    on: &str,
    value: u64,
) -> Result<kehu_store::billing::ReadOutcome, BillingError> {
    let rules = BillingRules::default();
    s.add_read(
        &NewRead {
            external_id: None,
            meter: meter.into(),
            read_on: day(on),
            value,
            peak: None,
            flat: None,
            valley: None,
        },
        &rules.vee,
        day("2026-11-05"),
        Utc::now(),
    )
    .await
}

#[tokio::test]
async fn billing_story() {
    for ts in testing::all().await {
        story(&ts.store).await;
        eprintln!("billing story passed on {}", ts.name);
    }
}

async fn story(s: &Store) {
    let rules = BillingRules::default();
    let now = Utc.with_ymd_and_hms(2026, 11, 5, 2, 0, 0).unwrap();

    // Tariffs: overlapping tiers are refused with a clear error, nothing stored.
    let bad = Tariff::Tiered {
        period: TierPeriod::Monthly,
        tiers: vec![
            Tier {
                up_to_kwh: Some(200),
                price: PricePerKwh(5_000),
            },
            Tier {
                up_to_kwh: Some(150),
                price: PricePerKwh(6_000),
            },
            Tier {
                up_to_kwh: None,
                price: PricePerKwh(9_000),
            },
        ],
    };
    let e = s.upsert_tariff("bad", "坏", &bad).await.unwrap_err();
    assert!(
        e.to_string().contains("\"bad\"") && e.to_string().contains("overlap"),
        "{e}"
    );
    assert!(s.tariffs().await.unwrap().is_empty());
    s.upsert_tariff("res", "居民阶梯", &Tariff::default_residential_tiered())
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
    s.upsert_area(&Area {
        code: "T1".into(),
        name: "一号台区".into(),
    })
    .await
    .unwrap();

    let e = s
        .upsert_supply_account(&account(
            "X",
            CustomerClass::Residential,
            "T1",
            "nope",
            false,
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, BillingError::UnknownTariff { .. }), "{e}");
    for a in [
        account("R1", CustomerClass::Residential, "T1", "res", false),
        account("B1", CustomerClass::NonResidential, "T1", "biz", false),
        account("I1", CustomerClass::Important, "T2", "biz", false),
        account("P1", CustomerClass::Residential, "T2", "res", true),
    ] {
        s.upsert_supply_account(&a).await.unwrap();
    }
    for m in [
        meter("M-R1", "R1", 1, 8),
        meter("M-B1", "B1", 40, 200),
        meter("M-I1", "I1", 1, 500),
        meter("M-P1", "P1", 1, 8),
    ] {
        s.upsert_meter(&m).await.unwrap();
    }
    assert!(matches!(
        s.upsert_meter(&meter("M-X", "nobody", 1, 8))
            .await
            .unwrap_err(),
        BillingError::UnknownAccount { .. }
    ));

    // Reads: June to October, monthly.
    let dates = [
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
    ];
    for (i, d) in dates.iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            read(s, "M-R1", d, 10_000 + 1_500 * i).await.unwrap().status,
            ReadStatus::Clean
        );
        assert_eq!(
            read(s, "M-B1", d, 100 + 50 * i).await.unwrap().status,
            ReadStatus::Clean
        );
        assert_eq!(
            read(s, "M-P1", d, 500 + 100 * i).await.unwrap().status,
            ReadStatus::Clean
        );
        if i < 4 {
            read(s, "M-I1", d, 5_000 + 1_000 * i).await.unwrap();
        }
    }
    // Important customer: the register went back in October → review queue.
    let neg = read(s, "M-I1", "2026-10-31", 7_500).await.unwrap();
    assert_eq!(
        (neg.status, neg.flags.clone()),
        (ReadStatus::Review, vec![VeeFlag::Negative])
    );
    // Bad input: unknown meter, out of order; a re-send is harmless.
    assert!(matches!(
        read(s, "M-NONE", "2026-10-31", 1).await.unwrap_err(),
        BillingError::UnknownMeter { .. }
    ));
    let e = read(s, "M-R1", "2026-09-15", 1).await.unwrap_err();
    assert!(
        e.to_string().contains("M-R1") && e.to_string().contains("2026-10-31"),
        "{e}"
    );
    let again = read(s, "M-R1", "2026-10-31", 16_000).await.unwrap();
    assert_eq!(again.kwh, Some(1_500));
    // An earlier read sent again (behind the latest) is answered as stored, not refused as
    // out of order; changed, it is refused as a conflicting re-send.
    let old = read(s, "M-R1", "2026-08-31", 13_000).await.unwrap();
    assert_eq!((old.status, old.kwh), (ReadStatus::Clean, Some(1_500)));
    assert!(matches!(
        read(s, "M-R1", "2026-08-31", 13_001).await.unwrap_err(),
        BillingError::ConflictingResend { .. }
    ));
    assert!(matches!(
        read(s, "M-R1", "2026-10-31", 16_001).await.unwrap_err(),
        BillingError::ConflictingResend { .. }
    ));

    // A batch of reads is all or nothing.
    let batch = [
        NewRead {
            external_id: None,
            meter: "M-R1".into(),
            read_on: day("2026-11-30"),
            value: 17_500,
            peak: None,
            flat: None,
            valley: None,
        },
        NewRead {
            external_id: None,
            meter: "M-NONE".into(),
            read_on: day("2026-11-30"),
            value: 1,
            peak: None,
            flat: None,
            valley: None,
        },
    ];
    let e = s
        .add_reads(&batch, &rules.vee, day("2026-12-05"), now)
        .await
        .unwrap_err();
    assert!(matches!(e, BillingError::UnknownMeter { .. }), "{e}");
    assert_eq!(
        s.meter_latest_read("M-R1").await.unwrap(),
        Some(Some(day("2026-10-31")))
    );
    assert_eq!(s.meter_latest_read("M-NONE").await.unwrap(), None);

    // Bill July to September: everything clean.
    for m in ["2026-07", "2026-08", "2026-09"] {
        let r = s
            .billing_run(Period::parse(m).unwrap(), false, &rules, now)
            .await
            .unwrap();
        assert_eq!(r.bills, 4, "{m}: {r:?}");
        assert_eq!(r.prepaid_mode_mismatches, vec!["P1".to_string()]);
        if m == "2026-07" {
            // P1 bought nothing: its balance cannot pay the bill.
            assert_eq!(r.prepaid_alerts.len(), 1, "{r:?}");
            assert!(matches!(
                r.prepaid_alerts[0].alert,
                kehu_domain::billing::prepaid::PrepaidAlert::Exhausted { .. }
            ));
            // A top-up of ¥1,000 pays July's bill; the rest is the balance for August.
            let top_up = NewPayment {
                external_id: "top-up".into(),
                account: "P1".into(),
                amount: Fen(100_000),
                paid_on: day("2026-08-05"),
                channel: "card".into(),
            };
            let rc = s.record_payment(&top_up, &rules, now).await.unwrap();
            assert!(rc.credit.0 > 0 && rc.credit.0 < 100_000, "{rc:?}");
        }
        if m == "2026-08" {
            // The balance paid August's bill as it was issued.
            assert!(r.prepaid_alerts.is_empty(), "{r:?}");
            let aug = &s.account_bills("P1").await.unwrap()[1];
            assert_eq!(aug.paid_principal, aug.total);
        }
    }
    // October: one read waits for review → refused with the count and the read.
    let e = s
        .billing_run(Period::parse("2026-10").unwrap(), false, &rules, now)
        .await
        .unwrap_err();
    match &e {
        BillingError::UnreviewedReads { count, first, .. } => {
            assert_eq!(*count, 1);
            assert!(
                first[0].contains("M-I1") && first[0].contains("negative"),
                "{first:?}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        s.account_bills("R1").await.unwrap().len(),
        3,
        "nothing half-applied"
    );
    let r = s
        .billing_run(Period::parse("2026-10").unwrap(), true, &rules, now)
        .await
        .unwrap();
    assert_eq!((r.bills, r.held_for_review), (3, 1));
    assert_eq!(r.meters_without_read, 0);
    // Idempotent re-run.
    let r2 = s
        .billing_run(Period::parse("2026-10").unwrap(), true, &rules, now)
        .await
        .unwrap();
    assert_eq!((r2.bills, r2.already_billed), (0, 3), "{r2:?}");
    assert_eq!(s.account_bills("R1").await.unwrap().len(), 4);

    // Review: accepting a negative read is refused; a correction is audited.
    let q = s.review_queue(10).await.unwrap();
    assert_eq!(q.len(), 1);
    let e = s
        .resolve_read(
            q[0].read_id,
            &Resolution::Accept,
            "s1",
            "checked",
            &rules.vee,
            now,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be computed"), "{e}");
    let fixed = s
        .resolve_read(
            q[0].read_id,
            &Resolution::Correct { value: 9_500, bands: None },
            "s1",
            "meter photo shows 9500",
            &rules.vee,
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (fixed.status, fixed.kwh),
        (ReadStatus::Corrected, Some(1_500))
    );
    let edits = s.read_edits(q[0].read_id).await.unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(
        (edits[0].staff.as_str(), edits[0].action.as_str()),
        ("s1", "correct")
    );
    assert!(
        edits[0].before.contains("7500")
            && edits[0].after.contains("9500")
            && edits[0].reason.contains("photo")
    );
    assert!(s.review_queue(10).await.unwrap().is_empty());
    let r = s
        .billing_run(Period::parse("2026-10").unwrap(), false, &rules, now)
        .await
        .unwrap();
    assert_eq!((r.bills, r.already_billed), (1, 3));

    // Missing reads: no meter has a November read yet; one is estimated (audited).
    let nov = Period::parse("2026-11").unwrap();
    assert_eq!(
        s.missing_reads(nov, 10).await.unwrap(),
        (
            4,
            vec!["M-B1".into(), "M-I1".into(), "M-P1".into(), "M-R1".into()]
        )
    );
    let est = s
        .estimate_missing_read(
            "M-B1",
            day("2026-11-30"),
            false,
            "s1",
            "meter not reachable",
            &rules.vee,
            now,
        )
        .await
        .unwrap();
    // 8,000 kWh over 123 days, for 30 days: 1,951 kWh → 48 on the register × 40 = 1,920.
    assert_eq!(
        (est.status, est.kwh, est.flags.clone()),
        (ReadStatus::Estimated, Some(1_920), vec![VeeFlag::Missing])
    );
    assert_eq!(
        s.read_edits(est.read_id).await.unwrap()[0].action,
        "estimate_missing"
    );
    assert_eq!(s.missing_reads(nov, 10).await.unwrap().0, 3);
    assert!(s
        .estimate_missing_read("M-B1", day("2026-11-15"), false, "s1", "x", &rules.vee, now)
        .await
        .is_err());

    // Bills: tiers accumulate over the year (R1 uses 1,500 kWh a month from July: the
    // 2,760 kWh of tier 1 run out in September).
    let bills = s.account_bills("R1").await.unwrap();
    assert_eq!(
        bills.iter().map(|b| b.kwh).collect::<Vec<_>>(),
        vec![1_500; 4]
    );
    assert_eq!(bills[0].lines.len(), 1);
    assert_eq!(
        bills[1]
            .lines
            .iter()
            .map(|l| (l.item.as_str(), l.kwh))
            .collect::<Vec<_>>(),
        vec![("tier1", 1_260), ("tier2", 240)]
    );
    for b in &bills {
        assert_eq!(b.total, b.lines.iter().map(|l| l.amount).sum::<Fen>());
    }
    assert_eq!(bills[0].due_on, day("2026-08-15"));
    // B1: 50 kWh × multiplier 40 = 2,000 kWh at 0.65 = ¥1,300.00 a month.
    let b1 = s.account_bills("B1").await.unwrap();
    assert!(b1.iter().all(|b| b.total == Fen(130_000)), "{b1:?}");

    // Payments: bad ones refused.
    let pay = |id: &str, acc: &str, fen: i64, on: &str| NewPayment {
        external_id: id.into(),
        account: acc.into(),
        amount: Fen(fen),
        paid_on: day(on),
        channel: "bank".into(),
    };
    assert!(matches!(
        s.record_payment(&pay("p0", "R1", 0, "2026-08-20"), &rules, now)
            .await
            .unwrap_err(),
        BillingError::NotPositive { .. }
    ));
    assert!(matches!(
        s.record_payment(&pay("p0", "R1", -5, "2026-08-20"), &rules, now)
            .await
            .unwrap_err(),
        BillingError::NotPositive { .. }
    ));
    assert!(matches!(
        s.record_payment(&pay("p0", "NOPE", 100, "2026-08-20"), &rules, now)
            .await
            .unwrap_err(),
        BillingError::UnknownAccount { .. }
    ));

    // B1 pays its July bill 10 days late: penalty 1,300 × 10 × 2‰ = ¥26.00, paid first.
    let rc = s
        .record_payment(&pay("p1", "B1", 132_600, "2026-08-25"), &rules, now)
        .await
        .unwrap();
    assert_eq!(rc.lines.len(), 1);
    assert_eq!(
        (
            rc.lines[0].period.as_str(),
            rc.lines[0].penalty,
            rc.lines[0].principal
        ),
        ("2026-07", Fen(2_600), Fen(130_000))
    );
    assert_eq!(rc.credit, Fen::ZERO);
    // Re-sent: the same receipt, nothing paid twice.
    assert_eq!(
        s.record_payment(&pay("p1", "B1", 132_600, "2026-08-25"), &rules, now)
            .await
            .unwrap(),
        rc
    );
    // R1 overpays everything on 2026-11-20 (the October bill is not yet due on 11-15? it is due then).
    let owed: i64 = s
        .account_bills("R1")
        .await
        .unwrap()
        .iter()
        .map(|b| b.total.0)
        .sum();
    let rc = s
        .record_payment(
            &pay("p2", "R1", owed + 1_000_000, "2026-08-10"),
            &rules,
            now,
        )
        .await
        .unwrap();
    let allocated: i64 = rc.lines.iter().map(|l| l.principal.0 + l.penalty.0).sum();
    assert_eq!(
        allocated + rc.credit.0,
        rc.amount.0 + rc.credit_used.0,
        "money conserved"
    );
    assert_eq!(rc.credit, Fen(1_000_000));
    assert_eq!(s.account_credit("R1").await.unwrap(), Fen(1_000_000));
    // Reversal brings back the bills and the credit.
    s.reverse_payment("p2", "s2", "bounced transfer", now)
        .await
        .unwrap();
    assert_eq!(s.account_credit("R1").await.unwrap(), Fen::ZERO);
    assert!(s
        .account_bills("R1")
        .await
        .unwrap()
        .iter()
        .all(|b| b.paid_principal == Fen::ZERO));
    assert!(matches!(
        s.reverse_payment("p2", "s2", "again", now)
            .await
            .unwrap_err(),
        BillingError::AlreadyReversed { .. }
    ));
    // Only the latest payment in force can be reversed.
    s.record_payment(&pay("p3", "B1", 1_000, "2026-09-30"), &rules, now)
        .await
        .unwrap();
    assert!(matches!(
        s.reverse_payment("p1", "s2", "x", now).await.unwrap_err(),
        BillingError::LaterPayments { .. }
    ));

    // Ageing: totals match the bills exactly.
    let today = day("2026-11-30");
    let by_account = s.ageing(today, AgeingGroup::Account).await.unwrap();
    let mut expected = 0;
    for acc in ["R1", "B1", "I1", "P1"] {
        let owed: i64 = s
            .account_bills(acc)
            .await
            .unwrap()
            .iter()
            .map(|b| b.total.0 - b.paid_principal.0)
            .sum();
        let aged = by_account
            .iter()
            .find(|r| r.key == acc)
            .map_or(0, |r| r.total.0);
        assert_eq!(aged, owed, "{acc}");
        expected += owed;
    }
    // The prepaid account's balance paid all its bills.
    assert!(!by_account.iter().any(|r| r.key == "P1"));
    let by_area = s.ageing(today, AgeingGroup::Area).await.unwrap();
    assert_eq!(by_area.iter().map(|r| r.total.0).sum::<i64>(), expected);
    assert_eq!(
        by_area.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        vec!["T1", "T2"]
    );
    // By area and by class (summed as they are read on SQLite, by the database on
    // PostgreSQL) the buckets and bill counts add up to the accounts' (summed by the
    // database on both).
    let by_class = s.ageing(today, AgeingGroup::Class).await.unwrap();
    let all = |rows: &[kehu_store::billing::AgeingRow]| {
        let mut t = kehu_domain::billing::ageing::AgeingTotals::default();
        rows.iter().for_each(|r| t.merge(&r.totals));
        (rows.iter().map(|r| r.bills).sum::<u64>(), t)
    };
    assert_eq!(all(&by_area), all(&by_account));
    assert_eq!(all(&by_class), all(&by_account));
    assert_eq!(
        by_class.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        vec!["important", "non_residential", "residential"]
    );
    let r1 = by_account.iter().find(|r| r.key == "R1").unwrap();
    assert_eq!(r1.totals.current, Fen::ZERO);
    assert!(r1.totals.over_90.0 > 0 && r1.totals.d1_30.0 > 0);

    // Dunning: the gates hold in the store too; a refusal writes nothing.
    let ev = |step, when: &str, staff: &str, approver: Option<&str>, planned: Option<&str>| {
        TimelineEvent {
            step,
            at: at(when),
            staff: staff.into(),
            approver: approver.map(Into::into),
            planned_at: planned.map(at),
            note: None,
        }
    };
    let e = s
        .record_dunning(
            "I1",
            &ev(
                DunningStep::DisconnectionOrder,
                "2026-11-26 10:00",
                "s1",
                Some("s2"),
                Some("2026-11-30 09:00"),
            ),
            &rules,
        )
        .await
        .unwrap_err();
    match &e {
        BillingError::Gates { gates, .. } => {
            assert!(
                gates.iter().any(|g| matches!(g, Gate::NoReminder { .. })),
                "{gates:?}"
            );
            assert!(gates.contains(&Gate::NoAuthorityReport), "{gates:?}");
        }
        other => panic!("{other}"),
    }
    assert!(s.dunning_timeline("I1").await.unwrap().is_empty());
    s.record_dunning(
        "I1",
        &ev(DunningStep::Reminder, "2026-11-16 10:00", "s1", None, None),
        &rules,
    )
    .await
    .unwrap();
    s.record_dunning(
        "I1",
        &ev(
            DunningStep::WrittenNotice,
            "2026-11-25 10:00",
            "s1",
            None,
            None,
        ),
        &rules,
    )
    .await
    .unwrap();
    s.record_dunning(
        "I1",
        &ev(
            DunningStep::AuthorityReport,
            "2026-11-25 11:00",
            "s1",
            None,
            None,
        ),
        &rules,
    )
    .await
    .unwrap();
    // I1's oldest unpaid bill is July's (due 2026-08-15): long overdue.
    let e = s
        .record_dunning(
            "I1",
            &ev(
                DunningStep::DisconnectionOrder,
                "2026-11-26 10:00",
                "s1",
                Some("s1"),
                Some("2026-11-30 09:00"),
            ),
            &rules,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("different staff member"), "{e}");
    s.record_dunning(
        "I1",
        &ev(
            DunningStep::DisconnectionOrder,
            "2026-11-26 10:00",
            "s1",
            Some("s2"),
            Some("2026-11-30 09:00"),
        ),
        &rules,
    )
    .await
    .unwrap();
    assert_eq!(s.dunning_timeline("I1").await.unwrap().len(), 4);

    let work = s.dunning_worklist(today, &rules).await.unwrap();
    assert!(
        work.iter()
            .any(|w| w.account == "R1" && w.step == DunningStep::Reminder),
        "{work:?}"
    );
    assert!(
        !work
            .iter()
            .any(|w| w.account == "I1" && w.step == DunningStep::DisconnectionOrder),
        "{work:?}"
    );

    // Disconnected, then paid in full: the worklist asks for the reconnection (an account
    // that owes nothing is listed only for that).
    for (step, when) in [
        (DunningStep::FinalNotice, "2026-11-30 07:00"),
        (DunningStep::Disconnected, "2026-11-30 09:00"),
    ] {
        s.record_dunning("I1", &ev(step, when, "s1", None, None), &rules)
            .await
            .unwrap();
    }
    let owed: i64 = s
        .account_bills("I1")
        .await
        .unwrap()
        .iter()
        .map(|b| b.total.0 - b.paid_principal.0)
        .sum();
    s.record_payment(
        &NewPayment {
            external_id: "I1-ALL".into(),
            account: "I1".into(),
            amount: Fen(owed * 2),
            paid_on: day("2026-11-30"),
            channel: "bank".into(),
        },
        &rules,
        chrono::Utc.from_utc_datetime(&at("2026-11-30 02:00")),
    )
    .await
    .unwrap();
    let work = s.dunning_worklist(day("2026-11-30"), &rules).await.unwrap();
    let i1: Vec<_> = work.iter().filter(|w| w.account == "I1").collect();
    assert_eq!(i1.len(), 1, "{work:?}");
    assert_eq!((i1[0].step, i1[0].outstanding), (DunningStep::Reconnected, Fen::ZERO), "{work:?}");

    // Credit grade: R1 has four unpaid bills, three months in arrears this year → C.
    let g = s.credit_grade("R1", today, &rules).await.unwrap();
    assert_eq!(g.grade, kehu_domain::billing::CreditGrade::C, "{g:?}");
}
