//! The deposit worklist (电费保证金): every postpaid account whose credit grade calls for
//! more deposit or guarantee than it holds, with what to ask for, on every backend this run
//! has. Accounts are read one at a time here, so every account crosses a statement.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kehu_domain::billing::credit::CreditGrade;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass, Meter, Period, SupplyAccount};
use kehu_domain::Fen;
use kehu_store::billing::{DepositItem, NewPayment, NewRead};
use kehu_store::{testing, Store};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(d: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(d).and_hms_opt(9, 0, 0).unwrap())
}

/// An account opened on `opened` holding `deposit`, with one meter read 100 kWh a month
/// from June to October 2026 (four bills of ¥50.00 at ¥0.50/kWh once billed).
async fn account(s: &Store, ext: &str, opened: &str, deposit: i64, prepaid: bool) {
    s.upsert_supply_account(&SupplyAccount {
        external_id: ext.into(),
        name: format!("用户{ext}"),
        class: CustomerClass::Residential,
        area: Some("T1".into()),
        tariff: "flat".into(),
        penalty_ppm: None,
        deposit: Fen(deposit),
        prepaid,
        opened_on: day(opened),
    })
    .await
    .unwrap();
    s.upsert_meter(&Meter {
        external_id: format!("M-{ext}"),
        account: ext.into(),
        ct_ratio: 1,
        pt_ratio: 1,
        multiplier: 1,
        register_digits: 6,
        installed_on: day(opened),
        capacity_kva: 10,
        prepaid_mode: prepaid,
    })
    .await
    .unwrap();
    if prepaid {
        // Its balance pays each bill as it is issued.
        s.record_payment(
            &NewPayment {
                external_id: format!("TOPUP-{ext}"),
                account: ext.into(),
                amount: Fen(100_000),
                paid_on: day("2026-06-30"),
                channel: "app".into(),
            },
            &BillingRules::default(),
            at("2026-06-30"),
        )
        .await
        .unwrap();
    }
    for (i, on) in ["2026-06-30", "2026-07-31", "2026-08-31", "2026-09-30", "2026-10-31"]
        .iter()
        .enumerate()
    {
        s.add_read(
            &NewRead::total(&format!("M-{ext}"), day(on), 1_000 + 100 * i as u64),
            &BillingRules::default().vee,
            day(on),
            at(on),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_deposit_worklist_asks_what_each_grade_calls_for_less_what_is_held() {
    testing::set_worklist_chunk(1);
    for t in testing::all().await {
        let s = &t.store;
        let rules = BillingRules::default();
        s.upsert_tariff("flat", "平价", &Tariff::Flat { price: PricePerKwh(5_000) })
            .await
            .unwrap();
        // Pays on time, five years a customer: A, asked for nothing.
        account(s, "GOOD", "2020-01-01", 0, false).await;
        // Never pays: C, asked for two months of its average bill; ¥50 held.
        account(s, "LATE", "2020-01-01", 5_000, false).await;
        // Opened in June: B in its first year, asked for one month; ¥10 held.
        account(s, "NEW", "2026-06-01", 1_000, false).await;
        // Prepaid and new: B, but it pays before it uses and is not asked.
        account(s, "PRE", "2026-06-01", 0, true).await;
        for p in ["2026-07", "2026-08", "2026-09", "2026-10"] {
            let report = s
                .billing_run(Period::parse(p).unwrap(), false, &rules, at("2026-11-01"))
                .await
                .unwrap();
            assert_eq!(report.bills, 4, "{p} ({})", t.name);
        }
        for acc in ["GOOD", "NEW"] {
            for b in s.account_bills(acc).await.unwrap() {
                assert_eq!(b.total, Fen(5_000));
                s.record_payment(
                    &NewPayment {
                        external_id: format!("PAY-{acc}-{}", b.period),
                        account: acc.into(),
                        amount: b.total,
                        paid_on: b.due_on,
                        channel: "bank".into(),
                    },
                    &rules,
                    at("2026-11-02"),
                )
                .await
                .unwrap();
            }
        }
        let today = day("2026-12-05");
        let mut grades = Vec::new();
        for acc in ["GOOD", "LATE", "NEW", "PRE"] {
            grades.push(s.credit_grade(acc, today, &rules).await.unwrap().grade);
        }
        assert_eq!(
            grades,
            [CreditGrade::A, CreditGrade::C, CreditGrade::B, CreditGrade::B],
            "{}",
            t.name
        );
        let item = |account: &str, grade, required, held, shortfall| DepositItem {
            account: account.into(),
            class: CustomerClass::Residential,
            grade,
            average_bill: Fen(5_000),
            required: Fen(required),
            held: Fen(held),
            shortfall: Fen(shortfall),
        };
        assert_eq!(
            s.deposit_worklist(today, &rules).await.unwrap(),
            vec![
                item("LATE", CreditGrade::C, 10_000, 5_000, 5_000),
                item("NEW", CreditGrade::B, 5_000, 1_000, 4_000),
            ],
            "{}",
            t.name
        );
        // A deposit paid in full takes the account off the list.
        let mut late = s.supply_account("LATE").await.unwrap().unwrap().account;
        late.deposit = Fen(10_000);
        s.upsert_supply_account(&late).await.unwrap();
        let left: Vec<String> = s
            .deposit_worklist(today, &rules)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.account)
            .collect();
        assert_eq!(left, vec!["NEW".to_string()], "{}", t.name);
    }
}
