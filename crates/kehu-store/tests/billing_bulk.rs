//! The billing run and read intake over more accounts than one batch, on every backend
//! this run has: the bills equal the tariff applied to each account's reads, reads of one
//! meter in one call are checked one after the other, a refused call leaves nothing, and a
//! re-run bills nothing twice.

use chrono::{NaiveDate, Utc};
use kehu_domain::billing::bill::{bill_period, Consumption};
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass, Period};
use kehu_domain::Fen;
use kehu_store::billing::{BillingError, NewPayment, NewRead, ReadStatus};
use kehu_store::testing;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Accounts; each meter reads twice in October (one call for all reads), so the run sees
/// two reads per account: more rows than one cursor fetch, more bills than one batch.
const ACCOUNTS: usize = 5_200;

fn used(i: usize, k: usize) -> u64 {
    100 + (i as u64 * 7) % 300 + k as u64
}

#[tokio::test]
async fn a_large_run_bills_each_account_its_reads_once() {
    // SQLite's run takes the accounts in steps: make this run cross several (and end on a
    // partial one).
    testing::set_billing_run_chunk(1_500);
    for t in testing::all().await {
        let s = &t.store;
        let rules = BillingRules::default();
        let now = Utc::now();
        let flat = Tariff::Flat {
            price: PricePerKwh(5_283),
        };
        let tiered = Tariff::default_residential_tiered();
        s.upsert_tariff("flat", "平价", &flat).await.unwrap();
        s.upsert_tariff("tiered", "阶梯", &tiered).await.unwrap();
        let tariff_of = |i: usize| {
            if i % 2 == 0 {
                ("flat", &flat)
            } else {
                ("tiered", &tiered)
            }
        };
        for i in 0..ACCOUNTS {
            testing::supply_account_with_meter(s, &format!("A{i:05}"), CustomerClass::Residential, tariff_of(i).0, &format!("M{i:05}"), 1, 50).await;
        }
        // September's closing read, then two October reads per meter, in one call each.
        let sept: Vec<NewRead> = (0..ACCOUNTS)
            .map(|i| NewRead {
                external_id: None,
                meter: format!("M{i:05}"),
                read_on: day("2026-09-30"),
                value: 1_000 + i as u64,
                peak: None,
                flat: None,
                valley: None,
            })
            .collect();
        s.add_reads(&sept, &rules.vee, day("2026-11-05"), now)
            .await
            .unwrap();
        // Three more meters that read nothing in October (漏抄): counted by the run.
        for i in 0..3 {
            testing::supply_account_with_meter(s, &format!("X{i}"), CustomerClass::Residential, "flat", &format!("MX{i}"), 1, 50).await;
        }
        let mut oct = Vec::new();
        for i in 0..ACCOUNTS {
            let v1 = 1_000 + i as u64 + used(i, 1);
            oct.push(NewRead {
                external_id: None,
                meter: format!("M{i:05}"),
                read_on: day("2026-10-15"),
                value: v1,
                peak: None,
                flat: None,
                valley: None,
            });
            oct.push(NewRead {
                external_id: None,
                meter: format!("M{i:05}"),
                read_on: day("2026-10-31"),
                value: v1 + used(i, 2),
                peak: None,
                flat: None,
                valley: None,
            });
        }
        // A batch whose last read goes back in time is refused whole.
        let mut bad = oct.clone();
        bad.push(NewRead {
            external_id: None,
            meter: "M00003".into(),
            read_on: day("2026-10-20"),
            value: 5_000,
            peak: None,
            flat: None,
            valley: None,
        });
        let e = s
            .add_reads(&bad, &rules.vee, day("2026-11-05"), now)
            .await
            .unwrap_err();
        assert!(
            matches!(e, BillingError::OutOfOrder { .. }),
            "{}: {e}",
            t.name
        );
        assert_eq!(
            s.meter_latest_read("M00003").await.unwrap(),
            Some(Some(day("2026-09-30"))),
            "{}",
            t.name
        );
        // The same batch without it: the second read of each meter is measured from the first.
        let out = s
            .add_reads(&oct, &rules.vee, day("2026-11-05"), now)
            .await
            .unwrap();
        assert_eq!(out.len(), 2 * ACCOUNTS);
        for (k, o) in out.iter().enumerate() {
            let (i, half) = (k / 2, k % 2 + 1);
            assert_eq!(o.kwh, Some(used(i, half)), "{}: read {k}", t.name);
            assert_ne!(
                o.status,
                ReadStatus::Review,
                "{}: read {k} {:?}",
                t.name,
                o.flags
            );
        }
        // Re-sending is harmless and returns the same reads, a few or the whole batch.
        for resend in [&oct[..4], &oct[..]] {
            let again = s
                .add_reads(resend, &rules.vee, day("2026-11-05"), now)
                .await
                .unwrap();
            assert_eq!(
                again.iter().map(|o| (o.read_id, o.kwh, o.status)).collect::<Vec<_>>(),
                out[..resend.len()].iter().map(|o| (o.read_id, o.kwh, o.status)).collect::<Vec<_>>(),
                "{}",
                t.name
            );
        }
        // An unknown meter in the middle of a large batch: refused whole, named.
        let mut nov: Vec<NewRead> = (0..1_000)
            .map(|i| NewRead {
                external_id: None,
                meter: format!("M{i:05}"),
                read_on: day("2026-11-30"),
                value: 9_000 + i as u64,
                peak: None,
                flat: None,
                valley: None,
            })
            .collect();
        nov[600].meter = "M-NOPE".into();
        let e = s
            .add_reads(&nov, &rules.vee, day("2026-12-05"), now)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, BillingError::UnknownMeter { meter } if meter == "M-NOPE"),
            "{}: {e}",
            t.name
        );
        assert_eq!(
            s.meter_latest_read("M00000").await.unwrap(),
            Some(Some(day("2026-10-31"))),
            "{}: nothing of the refused batch stays",
            t.name
        );

        let period = Period::parse("2026-10").unwrap();
        let r = s.billing_run(period, false, &rules, now).await.unwrap();
        assert_eq!(
            (r.bills, r.already_billed, r.held_for_review, r.meters_without_read),
            (ACCOUNTS as u64, 0, 0, 3),
            "{}",
            t.name
        );
        let mut total = Fen::ZERO;
        let bills = s.period_bills(period).await.unwrap();
        assert_eq!(bills.len(), ACCOUNTS);
        for (i, (account, _, bill_total, due)) in bills.iter().enumerate() {
            assert_eq!(account, &format!("A{i:05}"));
            let kwh = used(i, 1) + used(i, 2);
            let want = bill_period(
                tariff_of(i).1,
                period,
                Consumption::Total(kwh),
                0,
                rules.due_days_after_period_end,
            )
            .unwrap();
            assert_eq!(
                (*bill_total, *due),
                (want.total, want.due_on),
                "{}: account {i}",
                t.name
            );
            total = total + want.total;
        }
        assert_eq!(r.total, total);
        for i in [0, 1, ACCOUNTS / 2, ACCOUNTS - 1] {
            let b = &s.account_bills(&format!("A{i:05}")).await.unwrap()[0];
            assert_eq!(b.kwh, used(i, 1) + used(i, 2));
            assert_eq!(
                b.lines.iter().map(|l| l.amount.0).sum::<i64>(),
                b.total.0,
                "lines add up to the total"
            );
        }
        assert!(s.review_queue(10).await.unwrap().is_empty());
        // Re-running bills nothing twice.
        let r2 = s.billing_run(period, false, &rules, now).await.unwrap();
        assert_eq!(
            (r2.bills, r2.already_billed),
            (0, ACCOUNTS as u64),
            "{}",
            t.name
        );
        assert_eq!(s.period_bills(period).await.unwrap().len(), ACCOUNTS);

        // Payments in one batch, before the bills fall due (no penalty): each answered on
        // its own, each paying what the ones before it left.
        let owed = |i: usize| bills[i].2;
        let pay = |id: &str, acc: &str, fen: i64| NewPayment {
            external_id: id.into(),
            account: acc.into(),
            amount: Fen(fen),
            paid_on: day("2026-11-10"),
            channel: "bank".into(),
        };
        let half = owed(0).0 / 2;
        let batch = vec![
            pay("pA", "A00000", half),
            pay("pX", "NOBODY", 100),
            pay("pZ", "A00001", 0),
            pay("pA", "A00000", half),
            pay("pB", "A00000", owed(0).0 - half + 1_000),
            pay("pC", "A00001", owed(1).0),
        ];
        let answers = s.record_payments(&batch, &rules, now).await.unwrap();
        let a: Vec<_> = answers.iter().map(|a| a.as_ref().ok().cloned()).collect();
        assert!(matches!(answers[1], Err(BillingError::UnknownAccount { .. })), "{}", t.name);
        assert!(matches!(answers[2], Err(BillingError::NotPositive { .. })), "{}", t.name);
        let first = a[0].clone().expect("pA recorded");
        assert_eq!(a[3].as_ref(), Some(&first), "{}: the same id again is the same receipt", t.name);
        assert_eq!(first.lines[0].principal, Fen(half));
        let b = a[4].clone().expect("pB recorded");
        assert_eq!(
            (b.lines[0].principal, b.credit),
            (Fen(owed(0).0 - half), Fen(1_000)),
            "{}: the second payment pays what the first left, the rest is credit",
            t.name
        );
        assert_eq!(a[5].as_ref().map(|r| r.credit), Some(Fen::ZERO));
        let paid = |acc: &'static str| async move {
            let b = &s.account_bills(acc).await.unwrap()[0];
            (b.paid_principal, b.total)
        };
        let (p0, t0) = paid("A00000").await;
        assert_eq!(p0, t0, "{}", t.name);
        assert_eq!(s.account_credit("A00000").await.unwrap(), Fen(1_000));
        // The whole batch again: the same answers, nothing paid twice.
        let again = s.record_payments(&batch, &rules, now).await.unwrap();
        for k in [0, 3, 4, 5] {
            assert_eq!(again[k].as_ref().ok(), a[k].as_ref(), "{}: payment {k}", t.name);
        }
        assert_eq!(s.account_credit("A00000").await.unwrap(), Fen(1_000));
        assert_eq!(paid("A00001").await.0, owed(1));
    }
}
