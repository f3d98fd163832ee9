//! Behaviour benchmarks; each prints its figure and a ratio against a baseline measured in
//! the same run (see docs/benchmarks.md, bench/behaviour.sh).
//!
//! - `state [--customers N --products P --events E]`: the in-process state update on one
//!   core (baseline: counting the same events in a plain hash map), the memory per
//!   customer × product pair, and in-process decision latency (baseline: the
//!   non-personalized decision over the same shelf).
//! - `ingest --dir D [--customers N --events E --clients C]`: durable ingest over HTTP on
//!   loopback, batches of 500, state updated (baseline: the plain insert of the same events
//!   into the same kind of database in-process, no state).
//! - `http-rec --dir D [--rate R --seconds S --hot H]`: recommendations over HTTP at a
//!   fixed rate against an existing data directory, customers drawn uniformly from all
//!   of them or (`--hot H`) from the first H (baseline: /healthz at the same rate); also
//!   the bulk read and the size of the decision profiles held in memory.

use chrono::{FixedOffset, NaiveDate};
use kehu_domain::behaviour::event::EventKind;
use kehu_domain::behaviour::state::{BehaviourState, StateConfig, Touch};
use kehu_domain::decide::recommend::{self, Catalogue, CustomerView, Offer, Placement, PropensityWeights, RecommendConfig};
use kehu_domain::decide::suitability::{Assessment, RiskTolerance, SuitabilityConfig};
use kehu_domain::money::Fen;
use kehu_domain::state::{IncomeBand, ProductKind, RiskLevel};
use kehu_store::behaviour::NewEvent;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0)))
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Synthetic events: customers with a few favourite products (Zipf-like popularity).
fn touches(customers: u32, products: u32, n: u64, seed: u64) -> Vec<(u32, Touch)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let now = 1_795_000_000_000i64;
    (0..n)
        .map(|_| {
            let c = rng.gen_range(1..=customers);
            // The customer's favourites: a hash of the customer picks 1 of 4 products.
            let fav = (c.wrapping_mul(2_654_435_761) >> (8 * rng.gen_range(0..4u32))) % products;
            let p = if rng.gen_bool(0.8) { fav } else { (rng.gen::<f64>().powi(3) * products as f64) as u32 } + 1;
            let kind = if rng.gen_bool(0.02) { EventKind::Purchase } else { EventKind::ProductView };
            (c, Touch {
                kind,
                ts_ms: now - rng.gen_range(0..30 * 86_400_000i64),
                product: Some(p),
                dwell_ms: rng.gen_range(1_000..120_000),
                depth: rng.gen_range(0..=100),
                quantity: 1,
                amount_fen: 100_000,
            })
        })
        .collect()
}

fn shelf(products: u32) -> Catalogue {
    let kinds = [ProductKind::Deposit, ProductKind::Wealth, ProductKind::Fund, ProductKind::Insurance, ProductKind::Card, ProductKind::Loan];
    let offers: Vec<Offer> = (1..=products)
        .map(|id| Offer {
            id,
            code: format!("P{id:04}"),
            name: format!("产品{id}"),
            kind: kinds[id as usize % 6],
            risk: RiskLevel::ALL[id as usize % 5],
            min_purchase: Fen(100_00 * (id as i64 % 50 + 1)),
            repeatable: id % 6 != 4,
            sale_start: None,
            sale_end: None,
            lever: 1.0,
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let baskets = (0..100_000).map(|_| (0..rng.gen_range(1..4)).map(|_| rng.gen_range(1..=products.min(60))).collect::<Vec<u32>>());
    Catalogue::new(offers, baskets)
}

fn state(args: &[String]) {
    let customers: u32 = arg(args, "--customers", 1_000_000);
    let products: u32 = arg(args, "--products", 300);
    let n: u64 = arg(args, "--events", 20_000_000);
    eprintln!("generating {n} events for {customers} customers × {products} products…");
    let ev = touches(customers, products, n, 1);
    // The state first, so its memory is measured on a fresh heap.
    let rss0 = rss_kib();
    let t = Instant::now();
    let mut st = BehaviourState::new(StateConfig::default());
    // As the engine applies each committed batch: batches of 500 events.
    for b in ev.chunks(500) {
        st.apply_all(b);
    }
    let s = t.elapsed().as_secs_f64();
    let rss1 = rss_kib();
    // Baseline: count the same events in a plain hash map keyed by pair.
    let t = Instant::now();
    let mut counts: std::collections::HashMap<u64, u32> = std::collections::HashMap::with_capacity(0);
    for (c, e) in &ev {
        *counts.entry(((*c as u64) << 32) | e.product.unwrap_or(0) as u64).or_default() += 1;
    }
    let base_s = t.elapsed().as_secs_f64();
    let pairs_base = counts.len();
    drop(counts);
    let pairs = st.pair_count();
    assert_eq!(pairs, pairs_base);
    println!("state update: {n} events in {s:.2} s = {:.0} events/s on one core (target ≥ 1,000,000)", n as f64 / s);
    println!("  baseline hash-map count of the same events: {base_s:.2} s = {:.0} events/s  → ratio {:.2}×", n as f64 / base_s, base_s / s);
    let state_bytes = (rss1.saturating_sub(rss0)) * 1024;
    println!(
        "memory: {pairs} pairs, {} customers; state RSS growth {:.0} MiB = {:.1} bytes per pair (target ≤ 64; pair struct {} bytes); process RSS {:.0} MiB",
        st.customers.len(),
        state_bytes as f64 / 1048576.0,
        state_bytes as f64 / pairs as f64,
        std::mem::size_of::<kehu_domain::behaviour::state::Pair>(),
        rss1 as f64 / 1024.0
    );
    // The same update one event at a time, without fetching ahead (`apply` alone).
    let t = Instant::now();
    let mut one = BehaviourState::new(StateConfig::default());
    for (c, e) in &ev {
        one.apply(*c, e);
    }
    let one_s = t.elapsed().as_secs_f64();
    assert_eq!(one.pair_count(), pairs);
    drop(one);
    println!("  the same events applied one at a time (`apply`, nothing fetched ahead): {one_s:.2} s = {:.0} events/s", n as f64 / one_s);
    drop(ev);

    // Decisions in process.
    let cat = shelf(products);
    let (cfg, sc, stc, w) = (RecommendConfig::default(), SuitabilityConfig::default(), StateConfig::default(), PropensityWeights::default());
    let ctx = recommend::Context {
        catalogue: &cat,
        cfg: &cfg,
        suitability: &sc,
        state: &stc,
        propensity: &w,
        today: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
        now_secs: 1_795_000_000,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let held: Vec<Vec<u32>> = (0..1000).map(|_| { let mut h: Vec<u32> = (0..rng.gen_range(0..4)).map(|_| rng.gen_range(1..=products)).collect(); h.sort_unstable(); h.dedup(); h }).collect();
    let run = |personal: bool, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
        (0..200_000)
            .map(|k| {
                let c = rng.gen_range(1..=customers);
                let view = CustomerView {
                    customer_id: c,
                    age: Some(20 + c % 60),
                    income: Some(IncomeBand::From10kTo20k),
                    liquid: Fen(5_000_000),
                    held: &held[k % 1000],
                    assessment: Some(Assessment { level: RiskTolerance::from_rank((c % 5 + 1) as u8).unwrap(), assessed_on: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap() }),
                    personalization: personal,
                    behaviour: st.customer(c),
                    forgotten: &[],
                };
                let t = Instant::now();
                let d = recommend::recommend(&ctx, &view, &Placement::Home, 5);
                let us = t.elapsed().as_secs_f64() * 1e6;
                std::hint::black_box(d);
                us
            })
            .collect()
    };
    let mut p = run(true, &mut rng);
    let mut b = run(false, &mut rng);
    let (p50, p99) = (pct(&mut p, 0.5), pct(&mut p, 0.99));
    let (b50, b99) = (pct(&mut b, 0.5), pct(&mut b, 0.99));
    println!("decision in process ({products} products, top 5 with reasons): p50 {p50:.1} µs, p99 {p99:.1} µs (targets 50 / 200 µs)");
    println!("  baseline non-personalized decision: p50 {b50:.1} µs, p99 {b99:.1} µs  → personalized costs {:.2}× at p50", p50 / b50);
}

async fn ingest(args: &[String]) {
    let dir: std::path::PathBuf = arg(args, "--dir", std::env::temp_dir().join("kehu-ingest-bench"));
    let customers: u64 = arg(args, "--customers", 10_000);
    let total: usize = arg(args, "--events", 1_000_000);
    let clients: usize = arg(args, "--clients", 4);
    // Event ids: `random` (32 hex digits, as a random UUID), `tracker` (as kehu.js makes
    // them: time first, then random) or `sequential` (b0, b1, …).
    let id_kind: String = arg(args, "--ids", "tracker".to_string());
    // Events already in the log before the measured ones (a bank's history).
    let history: usize = arg(args, "--history", 0);
    let rounds: usize = arg(args, "--rounds", 3);
    // Send every event from a device without a customer (before login), one device of
    // `--customers` per event as customers are drawn.
    let anonymous = args.iter().any(|a| a == "--anonymous");
    let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let prepare = |name: &str| {
        let d = dir.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let spec = kehu_ingest::demo::DemoSpec::new(customers, 42, today);
    let products: Vec<String> = kehu_ingest::demo::products(today).into_iter().map(|p| p.code).collect();
    let ext: Vec<String> = (0..customers).map(|i| kehu_ingest::demo::customer(&spec, i).external_id).collect();
    let now = chrono::Utc::now().timestamp_millis();
    let mix = |k: usize| {
        let mut z = (k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let device_of = |k: usize| format!("{:016x}-dev", mix(k * 7919 % customers as usize + (1 << 45)));
    let event_id = |k: usize| match id_kind.as_str() {
        "sequential" => format!("b{k}"),
        // 1,000 events a millisecond from 4 clients: the time part moves every 1,000 ids.
        "tracker" => format!("{}-{:016x}", radix36((now + k as i64 / 1000) as u64), mix(k)),
        _ => format!("{:016x}{:016x}", mix(k), mix(k + (1 << 40))),
    };
    let event = |k: usize| {
        let mut e = serde_json::json!({"id": event_id(k), "type": "product_view", "ts": now - (k as i64 % 86_400_000),
            "customer": ext[k * 7919 % ext.len()], "product": products[k % products.len()], "dwell_ms": 15_000, "depth": 60});
        if anonymous {
            let o = e.as_object_mut().unwrap();
            o.remove("customer");
            o.insert("device".into(), device_of(k).into());
        }
        e
    };

    // One database with the customers, products and `--history` earlier events (written
    // through the store, untimed), copied for the baseline and for kehu.
    let seed = prepare("seed");
    {
        let store = kehu_store::Store::open(&kehu_store::Store::sqlite_url_for_dir(&seed), &Default::default()).await.unwrap();
        kehu_ingest::demo::load(&store, &spec, None).await.unwrap();
        let app = store.ensure_app_key("bench", "kehu_bench").await.unwrap();
        if history > 0 {
            let t = Instant::now();
            let ids = store.customer_ids_by_external(&ext.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
            let cust: Vec<i64> = ext.iter().map(|e| ids[e]).collect();
            let pids: Vec<i64> = store.list_products(None).await.unwrap().into_iter().map(|p| p.id).collect();
            let mut k = 0;
            while k < history {
                let batch: Vec<NewEvent> = (k..(k + 10_000).min(history))
                    .map(|h| NewEvent {
                        app_id: app,
                        // Ids as the tracker makes them, 30 days back.
                        event_id: format!("{}-{:016x}", radix36((now - 30 * 86_400_000 + h as i64 / 10) as u64), mix(h + (1 << 50))),
                        kind: EventKind::ProductView,
                        ts_ms: now - 30 * 86_400_000 + h as i64 / 10,
                        device: None,
                        customer_id: Some(cust[(h * 104_729) % cust.len()]),
                        product_id: Some(pids[h % pids.len()]),
                        dwell_ms: Some(9_000),
                        depth: Some(40),
                        quantity: None,
                        amount_fen: None,
                        detail: None,
                    })
                    .collect();
                store.insert_events(now, &batch).await.unwrap();
                k += batch.len();
            }
            println!("history: {history} earlier events written in {:.1} s (untimed)", t.elapsed().as_secs_f64());
        }
        store.close().await;
    }
    let copy_seed = |name: &str| {
        let d = prepare(name);
        std::fs::copy(seed.join("kehu.db"), d.join("kehu.db")).unwrap();
        d
    };

    // The events as rows for the baseline (the seed's ids) and as request bodies for kehu,
    // made before any clock starts. The bodies are shared, not copied, per request; the
    // clients read only the count they need from each answer (an app on a phone costs the
    // server none of its CPU; the load generator here shares the two cores).
    let rows: Vec<NewEvent> = {
        let store = kehu_store::Store::open(&kehu_store::Store::sqlite_url_for_dir(&seed), &Default::default()).await.unwrap();
        let app = store.ensure_app_key("bench", "kehu_bench").await.unwrap();
        let ids = store.customer_ids_by_external(&ext.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
        let pids: std::collections::HashMap<String, i64> = store.list_products(None).await.unwrap().into_iter().map(|p| (p.product.code, p.id)).collect();
        store.close().await;
        (0..total)
            .map(|k| NewEvent {
                app_id: app,
                event_id: event_id(k),
                kind: EventKind::ProductView,
                ts_ms: now - (k as i64 % 86_400_000),
                device: anonymous.then(|| device_of(k)),
                customer_id: (!anonymous).then(|| ids[&ext[k * 7919 % ext.len()]]),
                product_id: Some(pids[&products[k % products.len()]]),
                dwell_ms: Some(15_000),
                depth: Some(60),
                quantity: None,
                amount_fen: None,
                detail: None,
            })
            .collect()
    };
    let bodies: Vec<axum::body::Bytes> = (0..total).step_by(500).map(|s| serde_json::Value::Array((s..(s + 500).min(total)).map(event).collect()).to_string().into()).collect();
    let bodies = std::sync::Arc::new(bodies);

    // Rounds alternate the baseline and kehu, each on a fresh copy of the seed, so that
    // both see the same spells of load from other work on the machine.
    let mut base_rates = Vec::new();
    let mut rates = Vec::new();
    for round in 1..=rounds {
        // Baseline: the plain insert of the same events, same batches, no state.
        let d = copy_seed("baseline");
        let store = kehu_store::Store::open(&kehu_store::Store::sqlite_url_for_dir(&d), &Default::default()).await.unwrap();
        let t = Instant::now();
        for b in rows.chunks(500) {
            store.insert_events_plain(now, b).await.unwrap();
        }
        let base = total as f64 / t.elapsed().as_secs_f64();
        store.close().await;

        // kehu over HTTP.
        let d = copy_seed("kehu");
        let store = kehu_store::Store::open(&kehu_store::Store::sqlite_url_for_dir(&d), &Default::default()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = kehu_server::AppState::new(store.clone(), kehu_server::ServerConfig {
            mask_personal_data: true,
            recent_transactions: 5,
            spool_dir: d.clone(),
            import_max_errors: 10,
            offset: FixedOffset::east_opt(8 * 3600).unwrap(),
            behaviour: Default::default(),
        });
        let engine = state.behaviour.clone();
        // The state of the history is loaded before the clock starts (serve would start it too).
        engine.start().await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(kehu_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (bodies, next) = (bodies.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut accepted = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { break };
                    let r = http.post(format!("http://{addr}/api/v1/events")).bearer_auth("kehu_bench").header("content-type", "application/json").body(b.clone()).send().await.unwrap();
                    #[derive(serde::Deserialize)]
                    struct Ack {
                        accepted: u64,
                    }
                    let v: Ack = r.json().await.unwrap();
                    accepted += v.accepted;
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(accepted as usize, total);
        let rate = total as f64 / secs;
        let pairs = engine.with_state(|s, _| s.pair_count());
        let _ = stop.send(());
        let _ = server.await;
        store.close().await;
        println!("round {round}: kehu over HTTP {rate:.0} events/s ({total} events in {secs:.2} s, {pairs} pairs in the state); baseline {base:.0} events/s; ratio {:.2}×", rate / base);
        rates.push(rate);
        base_rates.push(base);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (rate, base) = (median(&mut rates), median(&mut base_rates));
    let who = if anonymous { "anonymous devices" } else { "customers" };
    println!("ingest over HTTP (SQLite, batches of 500, {clients} clients, {id_kind} event ids, events of {who}, {history} earlier events, state updated), median of {rounds} rounds: {rate:.0} events/s (target ≥ 50,000)");
    println!("  baseline plain insert of the same events in process, no state, median: {base:.0} events/s  → ratio {:.2}× (target ≥ 0.8×)", rate / base);
}

async fn http_rec(args: &[String]) {
    let dir: std::path::PathBuf = arg(args, "--dir", std::path::PathBuf::from("data"));
    let rate: u64 = arg(args, "--rate", 5000);
    let seconds: u64 = arg(args, "--seconds", 10);
    // Draw customers from the first `--hot` ids only (an active set, warmed by a first
    // pass), or from the whole bank (0).
    let hot: i64 = arg(args, "--hot", 0);
    let store = kehu_store::Store::open(&kehu_store::Store::sqlite_url_for_dir(&dir), &Default::default()).await.unwrap();
    let customers: i64 = store.counts().await.unwrap().iter().find(|(k, _)| *k == kehu_domain::ingest::EntityKind::Customers).map(|x| x.1).unwrap_or(0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rss0 = rss_kib();
    // The API wants a token; the load generator sends it like an integration would.
    store.ensure_api_token("bench", "kehu_bench_api_token").await.unwrap();
    let api_client = || {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::AUTHORIZATION, "Bearer kehu_bench_api_token".parse().unwrap());
        reqwest::Client::builder().default_headers(h).pool_max_idle_per_host(256).build().unwrap()
    };
    let t = Instant::now();
    let state = kehu_server::AppState::new(store.clone(), kehu_server::ServerConfig {
        mask_personal_data: true,
        recent_transactions: 5,
        spool_dir: dir.clone(),
        import_max_errors: 10,
        offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        behaviour: Default::default(),
    });
    let engine = state.behaviour.clone();
    engine.start().await.unwrap();
    let pairs = engine.with_state(|s, _| s.pair_count());
    println!("state and profiles loaded in {:.1} s: {pairs} pairs; RSS {:.0} MiB (+{:.0} MiB for the state, profiles and shelf)", t.elapsed().as_secs_f64(), rss_kib() as f64 / 1024.0, (rss_kib() - rss0) as f64 / 1024.0);
    let t = Instant::now();
    engine.reload_profiles().await.unwrap();
    let (np, bytes) = engine.profile_stats();
    println!("decision profiles in memory: {np} customers read in bulk in {:.1} s; {:.1} MiB = {:.1} bytes per customer (records and held-product lists)",
        t.elapsed().as_secs_f64(), bytes as f64 / 1048576.0, bytes as f64 / np.max(1) as f64);
    tokio::spawn(kehu_server::serve(listener, state, std::future::pending()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let run = |path: fn(i64) -> String| async move {
        let http = api_client();
        let lat = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        let n = rate * seconds;
        let mut handles = Vec::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // At most this many requests in flight (connections); a request that waits for one
        // still counts from when it was due.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
        for k in 0..n {
            let due = start + std::time::Duration::from_secs_f64(k as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let c = rng.gen_range(1..=if hot > 0 { hot.min(customers) } else { customers }.max(1));
            let (http, lat, slots) = (http.clone(), lat.clone(), slots.clone());
            let url = format!("http://{addr}{}", path(c));
            handles.push(tokio::spawn(async move {
                let _slot = slots.acquire().await.unwrap();
                let t = Instant::now();
                let r = http.get(url).send().await.unwrap();
                let ok = r.status().is_success();
                let _ = r.bytes().await;
                // From when it was due, so a late start counts (no coordinated omission).
                let ms = (Instant::now() - due.max(t.min(due))).as_secs_f64() * 1e3;
                assert!(ok);
                lat.lock().unwrap().push(ms);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let achieved = n as f64 / start.elapsed().as_secs_f64();
        let mut v = std::mem::take(&mut *lat.lock().unwrap());
        (pct(&mut v, 0.5), pct(&mut v, 0.99), achieved)
    };
    if hot > 0 {
        eprintln!("warming the profiles of {hot} customers…");
        let http = api_client();
        for c in 1..=hot {
            let _ = http.get(format!("http://{addr}/api/v1/customers/{c}/recommendations?n=1")).send().await.unwrap().bytes().await;
        }
    }
    let (b50, b99, brate) = run(|_| "/healthz".to_string()).await;
    let (p50, p99, prate) = run(|c| format!("/api/v1/customers/{c}/recommendations?n=5")).await;
    let drawn = if hot > 0 { format!("a warmed active set of {hot} of them") } else { "uniformly over all of them, no warm-up".to_string() };
    println!("recommendations over HTTP on {customers} customers ({drawn}) at {rate}/s for {seconds} s: p50 {p50:.2} ms, p99 {p99:.2} ms, {prate:.0} req/s achieved (target p99 < 5 ms at 5,000/s)");
    println!("  baseline /healthz at the same rate: p50 {b50:.2} ms, p99 {b99:.2} ms, {brate:.0} req/s  → p99 ratio {:.2}×", p99 / b99);
    println!("  process RSS {:.0} MiB", rss_kib() as f64 / 1024.0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("state") => state(&args),
        Some("ingest") => tokio::runtime::Runtime::new().unwrap().block_on(ingest(&args)),
        Some("http-rec") => tokio::runtime::Runtime::new().unwrap().block_on(http_rec(&args)),
        _ => eprintln!("usage: behaviour_bench state|ingest|http-rec [options] (see the file's header)"),
    }
}

/// Base 36, as JavaScript's `Number.prototype.toString(36)`.
fn radix36(mut v: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}
