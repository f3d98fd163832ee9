//! Behaviour, suitability and recommendation over real HTTP on every backend: events in
//! (good, bad, duplicate, anonymous then identified), the state they make, the
//! questionnaire, purchases with the suitability check, recommendations with reasons,
//! personalization off, tags, the funnel, and the rebuild that equals the live state.

use chrono::FixedOffset;
use kehu_ingest::demo::{self, DemoSpec};
use kehu_server::AppState;
use kehu_store::testing;
use serde_json::{json, Value};
use support::api_client;

mod support;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

async fn start(
    store: kehu_store::Store,
) -> (String, AppState, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut cfg = support::config(std::env::temp_dir(), 5);
    cfg.behaviour.max_batch = 50;
    // The test looks for other processes' changes itself (`follow_profile_changes`).
    cfg.behaviour.profile_cache_secs = 3600;
    let state = AppState::new(store, cfg);
    let (base, tx, h) = support::serve(state.clone()).await;
    // Ready when it answers.
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (base, state, tx, h)
}

struct Client {
    base: String,
    /// Sends the API token.
    http: reqwest::Client,
    /// Sends nothing of its own: events carry an app key or none.
    bare: reqwest::Client,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn events(&self, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut rq = self.bare.post(format!("{}/api/v1/events", self.base)).json(&body);
        if let Some(k) = key {
            rq = rq.bearer_auth(k);
        }
        let r = rq.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn view(id: &str, customer: &str, product: &str, ago_ms: i64) -> Value {
    json!({"id": id, "type": "product_view", "ts": now_ms() - ago_ms, "customer": customer,
           "product": product, "dwell_ms": 45_000, "depth": 70})
}

/// Codes of the products on sale at each risk level.
async fn shelf(c: &Client) -> Vec<(String, String, String)> {
    let (_, v) = c.get("/api/v1/products").await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["risk_level"].as_str().unwrap().to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn rec_codes(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn behaviour_story_on_every_backend() {
    for t in testing::all().await {
        let spec = DemoSpec::new(200, 11, today());
        demo::load(&t.store, &spec, None).await.unwrap();
        let (_, key) = t.store.create_app_key("test-app").await.unwrap();
        let (base, state, stop, handle) = start(t.store.clone()).await;
        let c = Client { base, http: api_client(), bare: reqwest::Client::new() };
        story(&c, &spec, &key, &state, &t.store).await;
        stop.send(()).unwrap();
        handle.await.unwrap();
        eprintln!("behaviour story passed on {}", t.name);
    }
}

async fn story(c: &Client, spec: &DemoSpec, key: &str, state: &AppState, store: &kehu_store::Store) {
    let cust = demo::customer(spec, 3).external_id;
    let other = demo::customer(spec, 4).external_id;
    let products = shelf(c).await;
    let wealth_r3 = products.iter().find(|p| p.1 == "R3").expect("an R3 product").0.clone();
    let r5 = products.iter().find(|p| p.1 == "R5").expect("an R5 product").0.clone();
    let r2 = products.iter().find(|p| p.1 == "R2").expect("an R2 product").0.clone();

    // --- Authentication ---
    let (s, v) = c.events(None, json!([view("a1", &cust, &wealth_r3, 0)])).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = c.events(Some("kehu_wrong"), json!([view("a1", &cust, &wealth_r3, 0)])).await;
    assert_eq!(s, 401);

    // --- A batch with good and bad events: the good ones are kept. ---
    let batch = json!([
        view("e1", &cust, &wealth_r3, 3_600_000),
        {"id": "e2", "type": "teleport", "ts": now_ms(), "customer": cust},
        {"id": "e3", "type": "product_view", "ts": now_ms(), "customer": cust, "product": wealth_r3, "depth": 101},
        {"id": "e4", "type": "product_view", "ts": now_ms(), "customer": cust, "product": "NO-SUCH"},
        {"id": "e5", "type": "product_view", "ts": now_ms(), "customer": "C-NOBODY", "product": wealth_r3},
        {"id": "e6", "type": "product_view", "ts": now_ms() + 86_400_000, "customer": cust, "product": wealth_r3},
        {"id": "e7", "type": "product_view", "ts": "1999-01-01T00:00:00Z", "customer": cust, "product": wealth_r3},
        {"id": "e8", "type": "product_view", "ts": now_ms(), "customer": cust, "product": wealth_r3, "dwell_ms": -1},
        view("e1", &cust, &wealth_r3, 0),
        {"id": "e9", "type": "search", "ts": now_ms(), "customer": cust, "query": "理财"},
        view("e10", &cust, &wealth_r3, 7_200_000),
    ]);
    let (s, v) = c.events(Some(key), batch.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["accepted"].as_u64(), v["duplicates"].as_u64(), v["rejected"].as_u64()), (Some(3), Some(1), Some(7)), "{v}");
    let r = &v["results"];
    let field = |i: usize| r[i]["field"].as_str().unwrap_or("").to_string();
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!((r[1]["status"].as_str(), field(1).as_str()), (Some("rejected"), "type"));
    assert!(r[1]["reason"].as_str().unwrap().contains("teleport"));
    assert_eq!(field(2), "depth");
    assert_eq!(field(3), "product");
    assert_eq!(field(4), "customer");
    assert_eq!(field(5), "ts");
    assert_eq!(field(6), "ts");
    assert_eq!(field(7), "dwell_ms");
    assert_eq!(r[8]["status"], "duplicate");
    // Sent again: every good one is a duplicate, counted once.
    let (_, v) = c.events(Some(key), batch).await;
    assert_eq!((v["accepted"].as_u64(), v["duplicates"].as_u64()), (Some(0), Some(4)), "{v}");
    let (_, b) = c.get(&format!("/api/v1/customers/{cust}/behaviour")).await;
    let pair = b["state"]["products"].as_array().unwrap().iter().find(|p| p["product"] == wealth_r3.as_str()).unwrap().clone();
    assert_eq!(pair["views"], 2);
    assert_eq!(pair["dwell_ms"], 90_000);
    assert_eq!(b["state"]["events"], 3);

    // A customer unknown at first and imported afterwards: refused, then accepted (the
    // collector remembers found customers only).
    let mut later = demo::customer(spec, 7);
    later.external_id = "C-LATER-1".into();
    later.id_number = None;
    later.phone = None;
    let (_, v) = c.events(Some(key), json!([view("late1", &later.external_id, &r5, 0)])).await;
    assert_eq!(v["results"][0]["field"], "customer", "{v}");
    let mut l = store.begin_load(kehu_domain::ingest::EntityKind::Customers, "test", chrono::Utc::now()).await.unwrap();
    assert!(l.write(std::slice::from_ref(&later)).await.unwrap().is_empty());
    l.finish(true, kehu_store::load::LoadCounts::default()).await.unwrap();
    let (_, v) = c.events(Some(key), json!([view("late2", &later.external_id, &r5, 0)])).await;
    assert_eq!(v["accepted"], 1, "{v}");
    let (_, v) = c.events(Some(key), json!([view("late3", &later.external_id, &r5, 0)])).await;
    assert_eq!(v["accepted"], 1, "remembered: {v}");

    // Too many events in one request.
    let big: Vec<Value> = (0..51).map(|i| view(&format!("big{i}"), &cust, &wealth_r3, 0)).collect();
    let (s, v) = c.events(Some(key), Value::Array(big)).await;
    assert_eq!(s, 413, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("at most 50"));

    // NDJSON, and a beacon: text/plain with the key in the query.
    let nd = format!("{}\n{}\n", view("nd1", &other, &r2, 0), view("nd2", &other, &r2, 0));
    let r = c.http.post(format!("{}/api/v1/events", c.base)).bearer_auth(key)
        .header("content-type", "application/x-ndjson").body(nd).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 2);
    let r = c.bare.post(format!("{}/api/v1/events?key={key}", c.base))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!([view("b1", &other, &r2, 0)]).to_string()).send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);

    // --- Identity: anonymous views, then identify: the earlier ones count for the customer. ---
    let anon = demo::customer(spec, 5).external_id;
    let (_, v) = c.events(Some(key), json!([
        {"id": "d1", "type": "product_view", "ts": now_ms() - 5000, "device": "dev-1", "product": r2, "dwell_ms": 5000},
        {"id": "d2", "type": "product_view", "ts": now_ms() - 4000, "device": "dev-1", "product": r2, "dwell_ms": 5000},
    ])).await;
    assert_eq!(v["accepted"], 2);
    let (_, b) = c.get(&format!("/api/v1/customers/{anon}/behaviour")).await;
    assert!(b["state"].is_null(), "nothing known before identify: {b}");
    let (_, v) = c.events(Some(key), json!([
        {"id": "d3", "type": "identify", "ts": now_ms() - 3000, "device": "dev-1", "customer": anon},
        {"id": "d4", "type": "product_view", "ts": now_ms() - 2000, "device": "dev-1", "product": r2, "dwell_ms": 5000},
    ])).await;
    assert_eq!(v["accepted"], 2, "{v}");
    let (_, b) = c.get(&format!("/api/v1/customers/{anon}/behaviour")).await;
    let p = &b["state"]["products"][0];
    assert_eq!((p["product"].as_str(), p["views"].as_i64()), (Some(r2.as_str()), Some(3)), "{b}");
    assert_eq!(b["timeline"].as_array().unwrap().len(), 4);

    // --- Questionnaire and suitability ---
    let (_, q) = c.get("/api/v1/questionnaire").await;
    let questions = q["questions"].as_array().unwrap();
    assert!(questions.len() >= 10);
    assert!(questions[0]["options"][0].get("score").is_none(), "scores are not shown to the app");
    let mut answers = serde_json::Map::new();
    for x in questions {
        answers.insert(x["id"].as_str().unwrap().into(), json!("C"));
    }
    let mut missing = answers.clone();
    missing.remove("Q7");
    let (s, v) = c.send(reqwest::Method::POST, &format!("/api/v1/customers/{cust}/assessment"), json!({"answers": missing})).await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("Q7"), "{v}");
    let mut wrong = answers.clone();
    wrong.insert("Q2".into(), json!("Z"));
    let (s, v) = c.send(reqwest::Method::POST, &format!("/api/v1/customers/{cust}/assessment"), json!({"answers": wrong})).await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("Q2"), "{v}");

    // Before any assessment only R1 is recommended.
    let (_, rec) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=50")).await;
    assert!(rec["items"].as_array().unwrap().iter().all(|i| i["risk_level"] == "R1"), "{rec}");
    let (s, v) = c.send(reqwest::Method::POST, &format!("/api/v1/customers/{cust}/assessment"), json!({"answers": answers})).await;
    assert_eq!((s, v["level"].as_str()), (200, Some("C3")), "{v}");
    // The profile held in memory has the assessment at once.
    let cid = store.customer_id(&cust).await.unwrap().unwrap();
    assert!(state.behaviour.known_customer(cid), "every customer's profile is loaded at start");
    let prof = state.behaviour.profile(cid).await.unwrap().unwrap();
    assert_eq!(prof.assessment.as_ref().map(|(l, on)| (l.as_str(), *on)), Some(("C3", today())));
    let (_, a) = c.get(&format!("/api/v1/customers/{cust}/assessment")).await;
    assert_eq!((a["current"]["valid"].as_bool(), a["must_assess"].as_bool()), (Some(true), Some(false)));

    // --- Recommendations: the viewed R3 product is first, with a reason naming the views. ---
    let (s, rec) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=50")).await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["personalized"], true);
    let items = rec["items"].as_array().unwrap();
    assert!(items.iter().all(|i| ["R1", "R2", "R3"].contains(&i["risk_level"].as_str().unwrap())), "never above C3: {rec}");
    assert!(!rec_codes(&rec).contains(&r5));
    let first = &items[0];
    assert_eq!(first["code"], wealth_r3.as_str(), "{rec}");
    let reasons: Vec<&str> = first["reasons"].as_array().unwrap().iter().map(|r| r["zh"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"近7天浏览2次"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("符合您的风险等级C3")), "{reasons:?}");
    assert!(first["reasons"][0]["en"].as_str().unwrap().contains("viewed 2 times"));
    assert!(first["components"]["propensity"].as_f64().unwrap() > 0.0);
    // More views move another product up.
    let target = items
        .iter()
        .filter(|i| ["wealth", "fund"].contains(&i["kind"].as_str().unwrap()) && i["code"] != wealth_r3.as_str())
        .map(|i| i["code"].as_str().unwrap().to_string())
        .last()
        .unwrap();
    let before = rec_codes(&rec).iter().position(|x| x == &target).unwrap();
    let views: Vec<Value> = (0..6).map(|i| view(&format!("mv{i}"), &cust, &target, 60_000 * i)).collect();
    assert_eq!(c.events(Some(key), Value::Array(views)).await.1["accepted"], 6);
    let (_, rec2) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=50")).await;
    let after = rec_codes(&rec2).iter().position(|x| x == &target).unwrap();
    assert!(after < before, "{target} moved from {before} to {after}");
    assert_eq!(after, 0);
    // Every response is logged with its inputs.
    let (_, log) = c.get(&format!("/api/v1/customers/{cust}/decisions?limit=5")).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, log2) = c.get(&format!("/api/v1/customers/{cust}/decisions?limit=5")).await;
    assert!(log2.as_array().unwrap().len() >= log.as_array().unwrap().len().max(1));
    assert_eq!(log2[0]["inputs"]["assessment"][0], "C3");

    // --- Purchases: an unsuitable one is refused with the reason, and recorded. ---
    let (s, v) = c.send(reqwest::Method::POST, "/api/v1/purchases", json!({"customer": cust, "product": r5, "amount": "1000000"})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "above_level");
    assert!(v["error"]["message_zh"].as_str().unwrap().contains("R5"));
    let (s, v) = c.send(reqwest::Method::POST, "/api/v1/purchases", json!({"customer": cust, "product": r2, "amount": "1,000,000.00"})).await;
    assert_eq!(s, 201, "{v}");
    // The purchase is in the profile held in memory: the product is held now.
    let r2_id = state.behaviour.shelf().by_code[&r2] as u32;
    assert!(state.behaviour.profile(cid).await.unwrap().unwrap().held.contains(&r2_id));
    let (_, checks) = c.get(&format!("/api/v1/customers/{cust}/suitability-checks")).await;
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!((checks[0]["allowed"].as_bool(), checks[1]["allowed"].as_bool()), (Some(true), Some(false)));
    let (s, _) = c.send(reqwest::Method::POST, "/api/v1/purchases", json!({"customer": cust, "product": r2, "amount": "0"})).await;
    assert_eq!(s, 400);
    let (_, pb) = c.get(&format!("/api/v1/products/{r2}/behaviour")).await;
    assert!(pb["buyers"].as_u64().unwrap() >= 1, "{pb}");

    // --- Personalization off changes the very next response. ---
    let (s, _) = c.send(reqwest::Method::PUT, &format!("/api/v1/customers/{cust}/personalization"), json!({"enabled": false})).await;
    assert_eq!(s, 200);
    let (_, off) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=50")).await;
    assert_eq!(off["personalized"], false);
    assert_eq!(off["notes"][0]["code"], "personalization_off");
    assert!(!state.behaviour.profile(cid).await.unwrap().unwrap().personalization);
    assert!(off["items"].as_array().unwrap().iter().all(|i| i["reasons"].as_array().unwrap().iter().all(|r| r["code"] != "recent_views" && r["code"] != "ability")));
    assert!(off["items"].as_array().unwrap().iter().all(|i| ["R1", "R2", "R3"].contains(&i["risk_level"].as_str().unwrap())), "suitability still applies");
    // The same as a customer with no behaviour at all at the same level.
    c.send(reqwest::Method::PUT, &format!("/api/v1/customers/{cust}/personalization"), json!({"enabled": true})).await;
    let (_, on) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=3")).await;
    assert_eq!(on["personalized"], true);
    assert!(state.behaviour.profile(cid).await.unwrap().unwrap().personalization);

    // --- Changes by another process reach the profiles held in memory. ---
    let third = store.customer_id(&demo::customer(spec, 5).external_id).await.unwrap().unwrap();
    let was = state.behaviour.profile(third).await.unwrap().unwrap();
    store.set_personalization(third, !was.personalization, "cli").await.unwrap();
    store.insert_assessment(third, "cli", &json!({}), 10, "C1", today()).await.unwrap();
    let stale = state.behaviour.profile(third).await.unwrap().unwrap();
    assert_eq!(stale.personalization, was.personalization, "decisions read the memory, not the store");
    state.behaviour.follow_profile_changes().await.unwrap();
    let now = state.behaviour.profile(third).await.unwrap().unwrap();
    assert_eq!(now.personalization, !was.personalization);
    assert_eq!(now.assessment.as_ref().map(|(l, _)| l.as_str()), Some("C1"));
    store.set_personalization(third, was.personalization, "cli").await.unwrap();
    state.behaviour.follow_profile_changes().await.unwrap();
    assert_eq!(state.behaviour.profile(third).await.unwrap().unwrap().personalization, was.personalization);

    // --- Tags: listed, deleted, and no longer used. ---
    let (_, tags) = c.get(&format!("/api/v1/customers/{cust}/tags")).await;
    let tag = format!("product:{target}");
    assert!(tags.as_array().unwrap().iter().any(|t| t["tag"] == tag.as_str()), "{tags}");
    let r = c.http.delete(format!("{}/api/v1/customers/{cust}/tags/{tag}", c.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, tags) = c.get(&format!("/api/v1/customers/{cust}/tags")).await;
    assert!(!tags.as_array().unwrap().iter().any(|t| t["tag"] == tag.as_str()));
    let (_, rec3) = c.get(&format!("/api/v1/customers/{cust}/recommendations?n=50")).await;
    let it = rec3["items"].as_array().unwrap().iter().find(|i| i["code"] == target.as_str()).unwrap();
    assert!(it["reasons"].as_array().unwrap().iter().all(|r| r["code"] != "recent_views"), "{it}");
    let r = c.http.delete(format!("{}/api/v1/customers/{cust}/tags/colour:red", c.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // --- Funnel ---
    let (s, f) = c.get(&format!("/api/v1/analytics/funnel?product={wealth_r3}")).await;
    assert_eq!(s, 200, "{f}");
    let row = &f["rows"][0];
    assert_eq!((row["viewed"].as_i64(), row["detail"].as_i64()), (Some(1), Some(1)), "{f}");
    let (s, f) = c.get(&format!("/api/v1/analytics/funnel?segment=age_band&product={r2}")).await;
    assert_eq!(s, 200, "{f}");
    let viewed: i64 = f["rows"].as_array().unwrap().iter().map(|r| r["viewed"].as_i64().unwrap()).sum();
    assert_eq!(viewed, 2);
    let purchased: i64 = f["rows"].as_array().unwrap().iter().map(|r| r["purchased"].as_i64().unwrap()).sum();
    assert_eq!(purchased, 1);
    let (s, _) = c.get("/api/v1/analytics/funnel?segment=star_sign").await;
    assert_eq!(s, 400);

    // --- The rebuild from the event log equals the live state. ---
    let cfg = state.behaviour.state_cfg;
    let (rebuilt, _) = kehu_server::behaviour::rebuild(store, cfg, &|_| {}).await.unwrap();
    state.behaviour.with_state(|live, _| {
        assert_eq!(live.products, rebuilt.products);
        assert_eq!(live.customers.len(), rebuilt.customers.len());
        for (id, a) in live.customers.iter() {
            let b = &rebuilt.customers[&id];
            assert_eq!((a.events, a.product_views, a.purchases, a.active_days), (b.events, b.product_views, b.purchases, b.active_days));
            assert_eq!(a.pairs.len(), b.pairs.len());
            for (x, y) in a.pairs.iter().zip(&b.pairs) {
                assert!((x.interest - y.interest).abs() < 1e-4 * x.interest.max(1.0));
                assert_eq!((x.product, x.views, x.dwell_ms, x.purchases, x.amount_fen, x.recent), (y.product, y.views, y.dwell_ms, y.purchases, y.amount_fen, y.recent));
            }
        }
        assert!(live.pair_count() >= 4);
    });
    // And the saved snapshot loads back to the same state.
    state.behaviour.snapshot().await.unwrap();
    let (loaded, wm) = store.load_behaviour(cfg).await.unwrap();
    state.behaviour.with_state(|live, live_wm| {
        assert_eq!(wm, live_wm);
        assert_eq!(loaded.products, live.products);
        for (id, a) in live.customers.iter() {
            assert_eq!(&loaded.customers[&id].pairs, &a.pairs);
        }
    });
}
