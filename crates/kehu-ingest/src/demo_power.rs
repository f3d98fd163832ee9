//! The demo power supplier: a synthetic, deterministic (by seed) city supplier — transformer
//! areas, residential, non-residential and important accounts with their meters, 24 months
//! of monthly reads with seasonality (summer air conditioning, winter heating), a few
//! anomalies for the review queue (spikes, vacant homes reading zero, keying errors, a
//! wrong multiplier, prepaid meters left in postpaid mode), bills, and payments with
//! on-time payers, late payers and some who stop paying. Every account is generated from
//! its own index and the seed.
//!
//! Older months' anomalies are resolved by a demo reviewer (estimated, audited); the last
//! month's stay in the review queue for a person to see.

use chrono::{Datelike, NaiveDate};
use kehu_domain::billing::bill::Period;
use kehu_domain::billing::penalty::penalty;
use kehu_domain::billing::tariff::{PricePerKwh, Tariff};
use kehu_domain::billing::{BillingRules, CustomerClass, Meter, SupplyAccount};
use kehu_domain::Fen;
use kehu_store::billing::{Area, BillingError, NewPayment, NewRead, Resolution};
use kehu_store::Store;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct PowerSpec {
    pub accounts: u64,
    pub seed: u64,
    /// Reads and bills cover the `months` whole months before the month of `today`.
    pub today: NaiveDate,
    pub months: u32,
}

impl PowerSpec {
    pub fn new(accounts: u64, seed: u64, today: NaiveDate) -> Self {
        PowerSpec {
            accounts,
            seed,
            today,
            months: 24,
        }
    }

    pub fn areas(&self) -> u64 {
        (self.accounts / 150).clamp(1, 5_000)
    }

    /// The billed periods, oldest first.
    pub fn periods(&self) -> Vec<Period> {
        let mut p = Period::containing(self.today).prev();
        let mut v = Vec::with_capacity(self.months as usize);
        for _ in 0..self.months {
            v.push(p);
            p = p.prev();
        }
        v.reverse();
        v
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PowerSummary {
    pub areas: u64,
    pub accounts: u64,
    pub reads: u64,
    pub reviewed: u64,
    pub in_review: u64,
    pub bills: u64,
    pub payments: u64,
}

fn rng(spec: &PowerSpec, i: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x9e37_79b9_7f4a_7c15);
    r.set_stream(i * 8 + stream);
    r
}

/// The kind of customer an account is, beyond its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    OnTime,
    Late,
    /// Stops paying for the last months.
    Stops,
}

pub struct DemoAccount {
    pub account: SupplyAccount,
    pub meter: Meter,
    /// Typical daily use in tenths of kWh on the register (before the multiplier).
    pub daily_tenths: u64,
    pub payer: Payer,
    /// A home that stands empty from some month on (reads zero).
    pub vacant_from: Option<u32>,
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
];
const TRADES: &[&str] = &[
    "超市",
    "餐馆",
    "五金店",
    "印刷厂",
    "机械厂",
    "宾馆",
    "药店",
    "物流公司",
];
const IMPORTANT: &[&str] = &["人民医院", "自来水厂", "煤矿", "通信枢纽", "化工厂"];

pub fn account(spec: &PowerSpec, i: u64) -> DemoAccount {
    let mut r = rng(spec, i, 0);
    let roll = r.gen_range(0..1000);
    let class = if roll < 880 {
        CustomerClass::Residential
    } else if roll < 995 {
        CustomerClass::NonResidential
    } else {
        CustomerClass::Important
    };
    let id = format!("PA{:08}", i + 1);
    let area = format!("TQ{:05}", r.gen_range(0..spec.areas()) + 1);
    let name = match class {
        CustomerClass::Residential => format!(
            "{}{}",
            SURNAMES[r.gen_range(0..SURNAMES.len())],
            GIVEN[r.gen_range(0..GIVEN.len())]
        ),
        CustomerClass::NonResidential => format!(
            "{}{}",
            SURNAMES[r.gen_range(0..SURNAMES.len())],
            TRADES[r.gen_range(0..TRADES.len())]
        ),
        CustomerClass::Important => format!(
            "第{}{}",
            i % 9 + 1,
            IMPORTANT[r.gen_range(0..IMPORTANT.len())]
        ),
    };
    let prepaid = class == CustomerClass::Residential && r.gen_range(0..100) < 3;
    let (ct, capacity, daily_tenths, tariff) = match class {
        CustomerClass::Residential => (1, 8, r.gen_range(30..140), "res-tiered"),
        CustomerClass::NonResidential => {
            if r.gen_bool(0.5) {
                (1, 30, r.gen_range(150..900), "commercial")
            } else {
                // Larger businesses on current transformers pay by time of use.
                (40, 200, r.gen_range(40..300), "commercial-tou")
            }
        }
        CustomerClass::Important => (40, 1000, r.gen_range(300..1500), "large"),
    };
    // One meter in 400 has a multiplier that does not match its CT.
    let multiplier = if ct > 1 && r.gen_range(0..400) == 0 {
        ct * 2
    } else {
        ct
    };
    let opened_years = r.gen_range(0..15);
    let opened_on =
        NaiveDate::from_ymd_opt(spec.today.year() - 3 - opened_years, r.gen_range(1..=12), 1)
            .expect("date");
    let payer = match r.gen_range(0..100) {
        0..=87 => Payer::OnTime,
        88..=97 => Payer::Late,
        _ => Payer::Stops,
    };
    let vacant_from = (class == CustomerClass::Residential && r.gen_range(0..300) == 0)
        .then(|| r.gen_range(6..spec.months.max(7)));
    DemoAccount {
        account: SupplyAccount {
            external_id: id.clone(),
            name,
            class,
            area: Some(area),
            tariff: tariff.into(),
            penalty_ppm: None,
            deposit: if class == CustomerClass::Residential {
                Fen::ZERO
            } else {
                Fen::from_yuan(r.gen_range(1..50) * 1_000)
            },
            prepaid,
            opened_on,
        },
        meter: Meter {
            external_id: format!("DB{:08}", i + 1),
            account: id,
            ct_ratio: ct,
            pt_ratio: 1,
            multiplier,
            register_digits: if class == CustomerClass::Residential {
                5
            } else {
                6
            },
            installed_on: opened_on,
            capacity_kva: capacity,
            // A quarter of prepaid meters were left in postpaid mode (the seed's case).
            prepaid_mode: prepaid && r.gen_range(0..4) != 0,
        },
        daily_tenths,
        payer,
        vacant_from,
    }
}

/// Seasonal factor in percent by month: air conditioning in summer, heating in winter.
fn season(month: u32, residential: bool) -> u64 {
    let f: i64 = [130, 125, 100, 85, 90, 115, 160, 165, 120, 90, 95, 120][month as usize - 1];
    (if residential { f } else { 100 + (f - 100) / 3 }) as u64
}

/// Whether the demo tariff `code` is a time-of-use tariff (its meters read peak, flat and
/// valley registers besides the total).
pub fn is_time_of_use(code: &str) -> bool {
    tariffs()
        .iter()
        .any(|(c, _, t)| *c == code && matches!(t, Tariff::TimeOfUse { .. }))
}

/// The reads of one account: a starting read before the first period, then one at the end
/// of every period. `month` indexes `spec.periods()`; index `months` is the start read.
/// Time-of-use accounts read their peak, flat and valley registers too (drawn from a
/// stream of their own, so the totals are the same as without them): peak 30–40% of the
/// month's use, valley 20–30%, flat the rest; a keying error or a spike is in the total
/// register only, so the bands disagree with it.
pub fn reads(spec: &PowerSpec, i: u64, a: &DemoAccount) -> Vec<(Option<usize>, NewRead)> {
    let mut r = rng(spec, i, 1);
    let mut band_rng = rng(spec, i, 2);
    let tou = is_time_of_use(&a.account.tariff);
    let periods = spec.periods();
    let modulus = 10u64.pow(u32::from(a.meter.register_digits));
    let mut value = r.gen_range(0..modulus / 2);
    let mut bands = [
        value * 35 / 100,
        value - value * 35 / 100 - value / 4,
        value / 4,
    ];
    let with_bands = |mut n: NewRead, b: [u64; 3]| {
        if tou {
            (n.peak, n.flat, n.valley) = (Some(b[0]), Some(b[1]), Some(b[2]));
        }
        n
    };
    let start = periods[0].first_day().pred_opt().expect("date");
    let mut out = vec![(
        None,
        with_bands(NewRead::total(&a.meter.external_id, start, value), bands),
    )];
    let residential = a.account.class == CustomerClass::Residential;
    for (m, p) in periods.iter().enumerate() {
        let days = u64::from(p.last_day().day());
        let mut tenths = a.daily_tenths * days * season(p.month, residential) / 100;
        tenths = tenths * r.gen_range(85..=115) / 100;
        let mut kwh = tenths / 10;
        if a.vacant_from.is_some_and(|v| m as u32 >= v) {
            kwh = 0;
        }
        let anomaly = r.gen_range(0..1000);
        let mut recorded = (value + kwh) % modulus;
        if anomaly < 3 {
            // A spike: a read keyed with an extra digit.
            recorded = (value + kwh * 10) % modulus;
        } else if anomaly < 5 && value > 1_000 {
            // A keying error below the previous read.
            recorded = value - 1_000;
        }
        value = (value + kwh) % modulus;
        if tou {
            let peak = kwh * band_rng.gen_range(30..=40) / 100;
            let valley = kwh * band_rng.gen_range(20..=30) / 100;
            for (b, k) in bands.iter_mut().zip([peak, kwh - peak - valley, valley]) {
                *b = (*b + k) % modulus;
            }
        }
        out.push((
            Some(m),
            with_bands(
                NewRead::total(&a.meter.external_id, p.last_day(), recorded),
                bands,
            ),
        ));
    }
    out
}

/// The standard tariffs of the demo supplier.
pub fn tariffs() -> Vec<(&'static str, &'static str, Tariff)> {
    vec![
        (
            "res-tiered",
            "居民生活阶梯电价",
            Tariff::default_residential_tiered(),
        ),
        (
            "commercial",
            "一般工商业",
            Tariff::Flat {
                price: PricePerKwh(6_352),
            },
        ),
        (
            "commercial-tou",
            "一般工商业(分时)",
            Tariff::TimeOfUse {
                peak: PricePerKwh(9_528),
                flat: PricePerKwh(6_352),
                valley: PricePerKwh(3_176),
            },
        ),
        (
            "large",
            "大工业(分时)",
            Tariff::TimeOfUse {
                peak: PricePerKwh(9_851),
                flat: PricePerKwh(6_322),
                valley: PricePerKwh(3_096),
            },
        ),
    ]
}

/// Generates the supplier into `store`: everything above, month by month.
pub async fn load(
    store: &Store,
    spec: &PowerSpec,
    rules: &BillingRules,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PowerSummary, BillingError> {
    let mut sum = PowerSummary::default();
    for (code, name, t) in tariffs() {
        store.upsert_tariff(code, name, &t).await?;
    }
    for a in 0..spec.areas() {
        store
            .upsert_area(&Area {
                code: format!("TQ{:05}", a + 1),
                name: format!("{}号台区", a + 1),
            })
            .await?;
        sum.areas += 1;
    }
    let accounts: Vec<DemoAccount> = (0..spec.accounts).map(|i| account(spec, i)).collect();
    for a in &accounts {
        store.upsert_supply_account(&a.account).await?;
        store.upsert_meter(&a.meter).await?;
        sum.accounts += 1;
    }
    let reads: Vec<Vec<(Option<usize>, NewRead)>> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| reads(spec, i as u64, a))
        .collect();
    for rs in &reads {
        store
            .add_read(&rs[0].1, &rules.vee, spec.today, now)
            .await?;
        sum.reads += 1;
    }
    let periods = spec.periods();
    let last = periods.len() - 1;
    for (m, p) in periods.iter().enumerate() {
        let month: Vec<NewRead> = reads.iter().map(|rs| rs[m + 1].1.clone()).collect();
        let outcomes = store.add_reads(&month, &rules.vee, spec.today, now).await?;
        sum.reads += outcomes.len() as u64;
        for o in outcomes {
            if o.status == kehu_store::billing::ReadStatus::Review && m < last {
                // The demo reviewer estimates older anomalies; the audit keeps who and why.
                let est = store
                    .resolve_read(
                        o.read_id,
                        &Resolution::EstimateAverage,
                        "demo-reviewer",
                        "implausible read, estimated from history",
                        &rules.vee,
                        now,
                    )
                    .await;
                let res = match est {
                    Ok(x) => Ok(x),
                    Err(_) => {
                        store
                            .resolve_read(
                                o.read_id,
                                &Resolution::Accept,
                                "demo-reviewer",
                                "checked on site",
                                &rules.vee,
                                now,
                            )
                            .await
                    }
                };
                if res.is_err() {
                    store
                        .resolve_read(
                            o.read_id,
                            &Resolution::Reject,
                            "demo-reviewer",
                            "void read",
                            &rules.vee,
                            now,
                        )
                        .await?;
                }
                sum.reviewed += 1;
            }
        }
        let run = store.billing_run(*p, true, rules, now).await?;
        sum.bills += run.bills;
        // Payments for this period's bills.
        let bills: std::collections::HashMap<String, (Fen, NaiveDate)> = store
            .period_bills(*p)
            .await?
            .into_iter()
            .map(|(a, _, t, d)| (a, (t, d)))
            .collect();
        let mut pays = Vec::new();
        for (i, a) in accounts.iter().enumerate() {
            let Some(&(total, due_on)) = bills.get(&a.account.external_id) else {
                continue;
            };
            let mut r = rng(spec, i as u64, 100 + m as u64);
            let months_left = last - m;
            let paid_on = match a.payer {
                Payer::Stops if months_left < 4 => continue,
                Payer::Late => due_on + chrono::Duration::days(r.gen_range(3..70)),
                _ => due_on - chrono::Duration::days(r.gen_range(0..12)),
            };
            if paid_on >= spec.today {
                continue;
            }
            let rates = rules
                .penalty
                .with_contract_ppm(a.account.class, a.account.penalty_ppm);
            let pen = penalty(&rates, a.account.class, total, due_on, paid_on);
            // People round up to the yuan; the rest stays as credit.
            let amount = Fen(((total.0 + pen.0) + 99) / 100 * 100);
            if amount.0 <= 0 {
                continue;
            }
            pays.push(NewPayment {
                external_id: format!("PAY-{}-{}", a.account.external_id, p),
                account: a.account.external_id.clone(),
                amount,
                paid_on,
                channel: ["counter", "bank", "app", "wechat", "alipay"][r.gen_range(0..5)].into(),
            });
        }
        // One payment per account: recorded together, in batches as an import does.
        for batch in pays.chunks(crate::billing_import::PAYMENT_BATCH) {
            for answer in store.record_payments(batch, rules, now).await? {
                answer?;
                sum.payments += 1;
            }
        }
    }
    sum.in_review = store.review_queue(1_000_000).await?.len() as u64;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_by_seed_with_every_class() {
        let spec = PowerSpec::new(2_000, 7, NaiveDate::from_ymd_opt(2026, 11, 15).unwrap());
        let a: Vec<_> = (0..2_000).map(|i| account(&spec, i)).collect();
        let b: Vec<_> = (0..2_000).map(|i| account(&spec, i)).collect();
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.account == y.account && x.meter == y.meter));
        for c in CustomerClass::ALL {
            assert!(a.iter().any(|x| x.account.class == *c), "{c}");
        }
        assert!(
            a.iter().any(|x| x.payer == Payer::Late) && a.iter().any(|x| x.payer == Payer::Stops)
        );
        assert!(a.iter().any(|x| x.meter.prepaid_mode_mismatch(&x.account)));
        // Time-of-use accounts read peak, flat and valley, adding up to the total's use;
        // the others read the total only, the same totals as without bands.
        let tou = a
            .iter()
            .position(|x| is_time_of_use(&x.account.tariff))
            .expect("some accounts pay by time of use");
        let rs = reads(&spec, tou as u64, &a[tou]);
        let modulus = 10u64.pow(u32::from(a[tou].meter.register_digits));
        let diff = |x: u64, y: u64| (y + modulus - x) % modulus;
        let mut consistent = 0;
        for w in rs.windows(2) {
            let (p, c) = (&w[0].1, &w[1].1);
            let band_sum = diff(p.peak.unwrap(), c.peak.unwrap())
                + diff(p.flat.unwrap(), c.flat.unwrap())
                + diff(p.valley.unwrap(), c.valley.unwrap());
            consistent += usize::from(band_sum == diff(p.value, c.value));
        }
        assert!(consistent >= 20, "{consistent} of 24 months add up");
        let res = a
            .iter()
            .position(|x| !is_time_of_use(&x.account.tariff))
            .unwrap();
        assert!(reads(&spec, res as u64, &a[res])
            .iter()
            .all(|(_, r)| r.peak.is_none() && r.flat.is_none() && r.valley.is_none()));
        let other = PowerSpec {
            seed: 8,
            ..spec.clone()
        };
        assert_ne!(account(&other, 1).account, a[1].account);
        // Seasonality: a residential home uses more in August than in April.
        let i = a
            .iter()
            .position(|x| x.account.class == CustomerClass::Residential && x.vacant_from.is_none())
            .unwrap();
        let rs = reads(&spec, i as u64, &a[i]);
        assert_eq!(rs.len(), 25);
        assert_eq!(spec.periods().first().unwrap().to_string(), "2024-11");
        assert_eq!(spec.periods().last().unwrap().to_string(), "2026-10");
    }
}
