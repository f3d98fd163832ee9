//! Demo behaviour: app events for the demo bank's customers over the last 90 days, and a
//! risk assessment for most of them. Deterministic by seed and customer, like the bank.
//!
//! Each customer has a few favourite products, drawn from what suits their age (younger
//! customers lean to funds and higher risk, older ones to deposits and insurance); they
//! open the app, view their favourites (dwell 5–180 s, scroll 20–100 %), sometimes use a
//! calculator, search, and now and then buy one.

use crate::demo::{customer, DemoProgress, DemoSpec};
use chrono::{Duration, TimeZone};
use kehu_domain::behaviour::event::EventKind;
use kehu_domain::state::{Product, ProductKind, RiskLevel};
use kehu_store::behaviour::NewEvent;
use kehu_store::{Store, StoreError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Days of history the demo events cover.
pub const DAYS: i64 = 90;

fn rng_for(seed: u64, i: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i ^ (7 << 56))
}

/// One generated event (product as an index into the shelf).
#[derive(Clone, Debug, PartialEq)]
pub struct DemoEvent {
    pub kind: EventKind,
    pub ts_ms: i64,
    pub product: Option<usize>,
    pub dwell_ms: Option<i64>,
    pub depth: Option<i64>,
    pub amount_fen: Option<i64>,
}

/// The risk level a customer of this age is comfortable with (and assessed at).
fn appetite(age: u32) -> u8 {
    match age {
        0..=34 => 4,
        35..=49 => 3,
        50..=64 => 2,
        _ => 1,
    }
}

/// The events of customer `i`: about `mean` of them over the last `DAYS` days.
pub fn events(spec: &DemoSpec, i: u64, mean: u32, shelf: &[Product]) -> Vec<DemoEvent> {
    let c = customer(spec, i);
    let mut rng = rng_for(spec.seed, i);
    if mean == 0 || shelf.is_empty() {
        return Vec::new();
    }
    let age = c.age_on(spec.today).unwrap_or(40);
    let max = appetite(age);
    let suits: Vec<usize> = shelf
        .iter()
        .enumerate()
        .filter(|(_, p)| p.risk_level.rank() <= max + 1 && p.kind != ProductKind::Loan)
        .map(|(k, _)| k)
        .collect();
    let favourites: Vec<usize> = (0..rng.gen_range(1..=3))
        .map(|_| suits[rng.gen_range(0..suits.len())])
        .collect();
    // About a third of customers are barely active.
    let n = if rng.gen_bool(0.3) { rng.gen_range(0..=mean / 4 + 1) } else { rng.gen_range(mean / 2..=mean * 3 / 2 + 1) };
    let end = spec
        .offset
        .from_local_datetime(&spec.today.and_hms_opt(21, 0, 0).expect("time"))
        .single()
        .expect("fixed offset")
        .timestamp_millis();
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let ts = end - rng.gen_range(0..DAYS * 86_400_000i64);
        let roll: f64 = rng.gen();
        let fav = favourites[rng.gen_range(0..favourites.len())];
        let e = if roll < 0.12 {
            DemoEvent { kind: EventKind::AppOpen, ts_ms: ts, product: None, dwell_ms: None, depth: None, amount_fen: None }
        } else if roll < 0.17 {
            DemoEvent { kind: EventKind::CalculatorUse, ts_ms: ts, product: Some(fav), dwell_ms: None, depth: None, amount_fen: None }
        } else if roll < 0.19 {
            DemoEvent { kind: EventKind::Purchase, ts_ms: ts, product: Some(fav), dwell_ms: None, depth: None,
                amount_fen: Some(shelf[fav].min_purchase.0.max(100_00) * rng.gen_range(1..=5)) }
        } else {
            // Now and then a product outside the favourites.
            let p = if rng.gen_bool(0.2) { suits[rng.gen_range(0..suits.len())] } else { fav };
            DemoEvent { kind: EventKind::ProductView, ts_ms: ts, product: Some(p),
                dwell_ms: Some(rng.gen_range(5_000..180_000)), depth: Some(rng.gen_range(20..=100)), amount_fen: None }
        };
        out.push(e);
    }
    out.sort_by_key(|e| e.ts_ms);
    out
}

/// The level the demo assesses customer `i` at (none for about a quarter of them), and
/// when (within the last 18 months: some assessments have expired).
pub fn assessment(spec: &DemoSpec, i: u64) -> Option<(RiskLevel, chrono::NaiveDate)> {
    let c = customer(spec, i);
    let mut rng = rng_for(spec.seed ^ 0xA55E55, i);
    if rng.gen_bool(0.25) {
        return None;
    }
    let base = appetite(c.age_on(spec.today).unwrap_or(40)) as i32 + rng.gen_range(-1..=1);
    let level = RiskLevel::ALL[(base.clamp(1, 5) - 1) as usize];
    Some((level, spec.today - Duration::days(rng.gen_range(0..540))))
}

/// Writes the events and assessments of every demo customer through the store's event
/// log (as app `app_id`); returns (events, assessments).
pub async fn load(
    store: &Store,
    spec: &DemoSpec,
    mean: u32,
    app_id: i64,
    progress: Option<DemoProgress>,
) -> Result<(u64, u64), StoreError> {
    let products = store.list_products(None).await?;
    let shelf: Vec<Product> = products.iter().map(|p| p.product.clone()).collect();
    let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
    let (mut n_events, mut n_assess) = (0u64, 0u64);
    let chunk = 2_000u64;
    let mut start = 0;
    while start < spec.customers {
        let end = (start + chunk).min(spec.customers);
        let ext: Vec<String> = (start..end).map(|i| customer(spec, i).external_id).collect();
        let refs: Vec<&str> = ext.iter().map(String::as_str).collect();
        let cids = store.customer_ids_by_external(&refs).await?;
        let mut batch = Vec::new();
        let mut assessed = Vec::new();
        for (k, i) in (start..end).enumerate() {
            let Some(&cid) = cids.get(&ext[k]) else { continue };
            for (j, e) in events(spec, i, mean, &shelf).into_iter().enumerate() {
                batch.push(NewEvent {
                    app_id,
                    event_id: format!("demo-{i}-{j}"),
                    kind: e.kind,
                    ts_ms: e.ts_ms,
                    device: None,
                    customer_id: Some(cid),
                    product_id: e.product.map(|p| ids[p]),
                    dwell_ms: e.dwell_ms,
                    depth: e.depth,
                    quantity: (e.kind == EventKind::Purchase).then_some(1),
                    amount_fen: e.amount_fen,
                    detail: None,
                });
            }
            if let Some((level, on)) = assessment(spec, i) {
                assessed.push((cid, level, on));
            }
        }
        for part in batch.chunks(5_000) {
            n_events += store.insert_events(chrono::Utc::now().timestamp_millis(), part).await?.seqs.iter().filter(|s| s.is_some()).count() as u64;
        }
        n_assess += store.insert_demo_assessments(&assessed).await?;
        if let Some(p) = &progress {
            p("events", end, spec.customers);
        }
        start = end;
    }
    Ok((n_events, n_assess))
}
