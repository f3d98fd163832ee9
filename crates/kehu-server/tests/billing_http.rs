//! Billing and collections over HTTP: the real server on 127.0.0.1:0 with a small demo
//! power supplier, on every backend.

use chrono::{NaiveDate, Utc};
use kehu_domain::billing::BillingRules;
use kehu_ingest::demo_power::{self, PowerSpec};
use kehu_server::AppState;
use kehu_store::testing;
use serde_json::{json, Value};
use support::api_client;

mod support;

/// Tokens made in `billing_over_http_on_every_backend` for staff of the small demo bank.
struct Tokens {
    collector: String,
    branch_head: String,
    marketer: String,
}

/// An API client sending `token`.
fn client_for(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

async fn post_as(token: &str, url: &str, body: Value) -> (u16, Value) {
    let r = client_for(token).post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn start(
    store: kehu_store::Store,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let spool = std::env::temp_dir().join(format!("kehu-billing-spool-{}", std::process::id()));
    let state = AppState::new(store, support::config(spool, 5))
        .with_billing_rules(BillingRules::default());
    support::serve(state).await
}

async fn get(url: &str) -> (u16, Value) {
    let r = api_client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = api_client()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn billing_over_http_on_every_backend() {
    for t in testing::all().await {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let spec = PowerSpec {
            months: 6,
            ..PowerSpec::new(40, 11, today)
        };
        let sum = demo_power::load(&t.store, &spec, &BillingRules::default(), Utc::now())
            .await
            .unwrap();
        assert_eq!(sum.accounts, 40);
        assert!(sum.bills >= 40 * 5, "{sum:?}");
        // Staff for the tokens that act for someone (a small demo bank brings them).
        kehu_ingest::demo::load(&t.store, &kehu_ingest::demo::DemoSpec::new(20, 3, today), None)
            .await
            .unwrap();
        let tokens = Tokens {
            collector: t.store.create_api_token("collector-desk", Some(support::login_of("collector"))).await.unwrap(),
            branch_head: t.store.create_api_token("branch-head", Some(support::login_of("branch_head"))).await.unwrap(),
            marketer: t.store.create_api_token("marketing", Some(support::login_of("marketer"))).await.unwrap(),
        };
        assert!(
            t.store.create_api_token("ghost", Some("S-NOBODY")).await.is_err(),
            "a token acts only for a known staff member"
        );
        let (base, stop, handle) = start(t.store.clone()).await;
        story(&base, &tokens).await;
        stop.send(()).unwrap();
        handle.await.unwrap();
        eprintln!("billing http story passed on {}", t.name);
    }
}

async fn story(base: &str, tokens: &Tokens) {
    // The penalty calculator: a worked example from docs/billing.md.
    let (s, v) = get(&format!("{base}/api/v1/billing/penalty?class=non-residential&amount=10000&due=2025-12-25&paid=2026-01-04")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["penalty"].as_str(),
            v["days_in_due_year"].as_i64(),
            v["days_in_later_years"].as_i64()
        ),
        (Some("240.00"), Some(6), Some(4))
    );
    let (s, v) = get(&format!(
        "{base}/api/v1/billing/penalty?class=farm&amount=1&due=2026-01-01&paid=2026-01-02"
    ))
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("farm"),
        "{v}"
    );

    // Bills, ageing and the worklist.
    let (s, v) = get(&format!("{base}/api/v1/billing/accounts/PA00000001/bills")).await;
    assert_eq!(s, 200, "{v}");
    let bills = v.as_array().unwrap();
    assert!(!bills.is_empty());
    for b in bills {
        let lines: i64 = b["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(
            lines,
            b["total"].as_i64().unwrap(),
            "bill lines add up to the total"
        );
    }
    let (s, _) = get(&format!("{base}/api/v1/billing/accounts/NOBODY/bills")).await;
    assert_eq!(s, 404);
    let (s, v) = get(&format!(
        "{base}/api/v1/billing/ageing?by=area&as_of=2027-03-31"
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    for row in v.as_array().unwrap() {
        let t = &row["totals"];
        let sum: i64 = ["current", "d1_30", "d31_60", "d61_90", "over_90"]
            .iter()
            .map(|k| t[k].as_i64().unwrap())
            .sum();
        assert_eq!(sum, row["total"].as_i64().unwrap());
    }
    let (s, v) = get(&format!("{base}/api/v1/billing/ageing?by=street")).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = get(&format!(
        "{base}/api/v1/billing/dunning/worklist?as_of=2027-03-31"
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        !v.as_array().unwrap().is_empty(),
        "four months after the last bills, someone owes: {v}"
    );
    // Whom to ask for a deposit: what the grade calls for less what is held, the largest
    // shortfall first.
    let (s, v) = get(&format!("{base}/api/v1/billing/deposits?as_of=2027-03-31")).await;
    assert_eq!(s, 200, "{v}");
    let asked = v.as_array().unwrap();
    assert!(!asked.is_empty(), "the late payers hold too little: {v}");
    let shortfalls: Vec<i64> = asked.iter().map(|i| i["shortfall"].as_i64().unwrap()).collect();
    for i in asked {
        let (required, held) = (i["required"].as_i64().unwrap(), i["held"].as_i64().unwrap());
        assert_eq!(i["shortfall"].as_i64().unwrap(), required - held, "{i}");
        assert!(required > held && ["B", "C"].contains(&i["grade"].as_str().unwrap()), "{i}");
    }
    assert!(shortfalls.windows(2).all(|w| w[0] >= w[1]), "{shortfalls:?}");
    let (s, v) = get(&format!("{base}/api/v1/billing/deposits?as_of=March")).await;
    assert_eq!(s, 400, "{v}");
    // Bills to adjust: a count and the newest items (none changed after billing here).
    let (s, v) = get(&format!("{base}/api/v1/billing/rebills?limit=5")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"].as_i64(), Some(v["items"].as_array().unwrap().len() as i64), "{v}");

    // Payments: bad ones refused, a good one gives a receipt.
    let (s, v) = post(&format!("{base}/api/v1/billing/payments"), json!({"external_id": "H1", "account": "PA00000001", "amount": 0, "paid_on": "2026-11-20", "channel": "app"})).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(&format!("{base}/api/v1/billing/payments"), json!({"external_id": "H1", "account": "NOBODY", "amount": 100, "paid_on": "2026-11-20", "channel": "app"})).await;
    assert_eq!(s, 404);
    let (s, v) = post(&format!("{base}/api/v1/billing/payments"), json!({"external_id": "H2", "account": "PA00000002", "amount": 1_000_000, "paid_on": "2026-11-20", "channel": "app"})).await;
    assert_eq!(s, 200, "{v}");
    let allocated: i64 = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["principal"].as_i64().unwrap() + l["penalty"].as_i64().unwrap())
        .sum();
    assert_eq!(
        allocated + v["credit"].as_i64().unwrap(),
        1_000_000 + v["credit_used"].as_i64().unwrap()
    );
    // A reversal records who did it: not with a token that acts for nobody, not in
    // someone else's name, and only by a role that works the collections desk.
    let reversal = format!("{base}/api/v1/billing/payments/H2/reversal");
    let (s, v) = post(&reversal, json!({"staff": "s9", "reason": "bounced"})).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--staff"), "{v}");
    let (s, v) = post_as(&tokens.collector, &reversal, json!({"staff": "s9", "reason": "bounced"})).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("\"s9\""), "{v}");
    let (s, _) = post_as(&tokens.collector, &reversal, json!({"reason": "bounced"})).await;
    assert_eq!(s, 204);
    let (s, _) = post_as(&tokens.collector, &reversal, json!({"staff": support::login_of("collector"), "reason": "bounced"})).await;
    assert_eq!(s, 409);

    // Reads: an unknown meter is 404; one out of order 409.
    let (s, _) = post(
        &format!("{base}/api/v1/billing/reads"),
        json!({"meter": "NOPE", "read_on": "2026-11-20", "value": 5}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = post(
        &format!("{base}/api/v1/billing/reads"),
        json!({"meter": "DB00000001", "read_on": "2026-01-01", "value": 5}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = get(&format!("{base}/api/v1/billing/review?limit=10")).await;
    assert_eq!(s, 200, "{v}");

    // Missing reads for November (none read yet): estimate one.
    let (s1, v) = get(&format!(
        "{base}/api/v1/billing/missing?period=2026-11&limit=5"
    ))
    .await;
    assert_eq!(s1, 200, "{v}");
    assert_eq!(v["count"].as_i64(), Some(40));
    let estimate = format!("{base}/api/v1/billing/meters/DB00000005/estimate");
    let body = json!({"read_on": "2026-11-27", "reason": "no access"});
    let (s1, v) = post_as(&tokens.branch_head, &estimate, body.clone()).await;
    assert_eq!(s1, 403, "a branch head does not review reads: {v}");
    let (s1, v) = post_as(&tokens.collector, &estimate, body).await;
    assert_eq!(s1, 200, "{v}");
    assert_eq!(v["status"].as_str(), Some("estimated"));
    let (_, v) = get(&format!("{base}/api/v1/billing/missing?period=2026-11")).await;
    assert_eq!(v["count"].as_i64(), Some(39));

    // Time-of-use registers: all three or none; a lone band or a negative one is refused
    // and nothing is stored; with the previous read's bands the answer splits the use.
    let url = format!("{base}/api/v1/billing/reads");
    let (s, v) = post(
        &url,
        json!({"meter": "DB00000006", "read_on": "2026-11-27", "value": 999_000, "peak": 120}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("peak 120") && msg.contains("flat missing") && msg.contains("valley missing"),
        "{msg}"
    );
    let (s, v) = post(
        &url,
        json!({"meter": "DB00000006", "read_on": "2026-11-27", "value": 999_000, "peak": -1, "flat": 1, "valley": 1}),
    )
    .await;
    assert!((400..500).contains(&s), "{s} {v}");
    let (_, v) = get(&format!("{base}/api/v1/billing/missing?period=2026-11&limit=100")).await;
    assert!(
        v["meters"].as_array().unwrap().iter().any(|m| m == "DB00000006"),
        "nothing stored: {v}"
    );
    let (s, v) = post(
        &url,
        json!({"meter": "DB00000006", "read_on": "2026-11-27", "value": 0, "peak": 100, "flat": 200, "valley": 50}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &url,
        json!({"meter": "DB00000006", "read_on": "2026-11-28", "value": 0, "peak": 100, "flat": 200, "valley": 50}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Nothing used since the day before, by band too.
    assert_eq!(v["kwh"].as_u64(), Some(0), "{v}");
    assert_eq!(v["bands"], json!({"peak": 0, "flat": 0, "valley": 0}), "{v}");

    // Billing run: a bad period is 400; re-running the last period bills nothing.
    let (s, _) = post(
        &format!("{base}/api/v1/billing/runs"),
        json!({"period": "2026-13"}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = post_as(&tokens.marketer, &format!("{base}/api/v1/billing/runs"), json!({"period": "2026-10"})).await;
    assert_eq!(s, 403, "a marketer's token does not bill: {v}");
    let (s, v) = post(
        &format!("{base}/api/v1/billing/runs"),
        json!({"period": "2026-10", "only_clean": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["bills"].as_u64(), Some(0), "{v}");

    // Dunning: a disconnection order without its gates is refused with each gate named.
    // The approver of a disconnection order is the staff member the token acts for: a
    // collector cannot approve, nobody can name another approver, and a branch head asking
    // for their own order meets the "different staff member" gate.
    let dunning = format!("{base}/api/v1/billing/accounts/PA00000003/dunning");
    let head = support::login_of("branch_head");
    let order = |staff: &str, approver: Option<&str>| {
        json!({"step": "disconnection_order", "at": "2027-03-31T10:00:00", "staff": staff, "approver": approver, "planned_at": "2027-04-02T09:00:00", "note": null})
    };
    let (s, v) = post(&dunning, order("s1", Some("s2"))).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = post_as(&tokens.collector, &dunning, order("s1", None)).await;
    assert_eq!(s, 403, "a collector cannot approve: {v}");
    let (s, v) = post_as(&tokens.branch_head, &dunning, order("s1", Some("s2"))).await;
    assert_eq!(s, 403, "the approval cannot be typed in: {v}");
    let (s, v) = post_as(&tokens.branch_head, &dunning, order(head, None)).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"].as_str(), Some("legal_gates"));
    let gates: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gate"].as_str().unwrap())
        .collect();
    assert!(gates.contains(&"self_approved"), "{gates:?}");
    let (s, v) = get(&format!(
        "{base}/api/v1/billing/accounts/PA00000003/dunning"
    ))
    .await;
    assert_eq!(
        (s, v.as_array().map(Vec::len)),
        (200, Some(0)),
        "nothing written: {v}"
    );
    let (s, v) = get(&format!(
        "{base}/api/v1/billing/accounts/PA00000003/credit?as_of=2026-11-28"
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(["A", "B", "C"].contains(&v["grade"].as_str().unwrap()));

    // OpenAPI describes the billing routes.
    let (_, v) = get(&format!("{base}/api/openapi.json")).await;
    assert!(v["paths"]["/api/v1/billing/runs"].is_object());
    for band in ["peak", "flat", "valley"] {
        assert!(
            v["components"]["schemas"]["NewRead"]["properties"][band].is_object(),
            "{band}: {}",
            v["components"]["schemas"]["NewRead"]
        );
    }
    assert!(v["components"]["schemas"]["BandUse"].is_object());
    assert!(v["paths"]["/api/v1/customers"].is_object());
}
