//! The real server on 127.0.0.1:0, driven over HTTP as a client would, on every backend.

use chrono::NaiveDate;
use kehu_ingest::demo::{self, DemoSpec};
use kehu_server::AppState;
use kehu_store::testing;
use serde_json::Value;
use support::api_client;

mod support;

async fn start(
    store: kehu_store::Store,
    spool: std::path::PathBuf,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    support::serve(AppState::new(store, support::config(spool, 5))).await
}

#[tokio::test]
async fn api_over_http_on_every_backend() {
    for t in testing::all().await {
        let spec = DemoSpec::new(300, 7, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        let sum = demo::load(&t.store, &spec, None).await.unwrap();
        assert_eq!(sum.customers, 300);
        let spool =
            std::env::temp_dir().join(format!("kehu-spool-{}-{}", std::process::id(), t.name));
        let (base, stop, handle) = start(t.store.clone(), spool).await;
        api_tokens(&base, &t.store).await;
        story(&base, &spec, t.name).await;
        models(&base, &t.store).await;
        stop.send(()).unwrap();
        handle.await.unwrap(); // graceful shutdown returns
        eprintln!("http story passed on {}", t.name);
    }
}

/// `/api/v1/*` answers only with a live API token; the health check, the API description
/// and the event collector (app keys) do not take one.
async fn api_tokens(base: &str, store: &kehu_store::Store) {
    let bare = reqwest::Client::new();
    let r = bare.get(format!("{base}/api/v1/customers")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("kehu api-token create"), "{v}");
    let r = bare
        .get(format!("{base}/api/v1/customers/C000000001"))
        .bearer_auth("kehu_api_not_a_token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A token made and revoked before its first use is refused.
    let token = store.create_api_token("short-lived", None).await.unwrap();
    assert!(store.revoke_api_token("short-lived").await.unwrap());
    let r = bare.get(format!("{base}/api/v1/products")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A live one works; so does the lower-case scheme.
    let token = store.create_api_token("integration", None).await.unwrap();
    let r = bare.get(format!("{base}/api/v1/products")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = bare
        .get(format!("{base}/api/v1/products"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(store.create_api_token("integration", None).await.is_err(), "names are unique");
    let names: Vec<_> = store.list_api_tokens().await.unwrap().into_iter().map(|t| (t.name, t.revoked)).collect();
    assert!(names.contains(&("short-lived".to_string(), true)));
    assert!(names.contains(&("integration".to_string(), false)));
    for open in ["/healthz", "/api/openapi.json"] {
        assert_eq!(bare.get(format!("{base}{open}")).send().await.unwrap().status(), 200, "{open}");
    }
    // The event collector wants an app key, not an API token.
    let r = bare.post(format!("{base}/api/v1/events")).json(&serde_json::json!([])).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

async fn get(url: &str) -> (u16, Value) {
    let r = api_client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn story(base: &str, spec: &DemoSpec, backend: &str) {
    let (s, v) = get(&format!("{base}/healthz")).await;
    assert_eq!(
        (s, v["status"].as_str(), v["database"].as_str()),
        (200, Some("ok"), Some(backend))
    );

    // Paging through every customer with the cursor gives each exactly once.
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let url = match after {
            Some(a) => format!("{base}/api/v1/customers?limit=120&after={a}"),
            None => format!("{base}/api/v1/customers?limit=120"),
        };
        let (s, v) = get(&url).await;
        assert_eq!(s, 200);
        for c in v["items"].as_array().unwrap() {
            seen.push(c["external_id"].as_str().unwrap().to_string());
            let phone = c["phone"].as_str().unwrap();
            assert!(phone.contains("****"), "phone masked in lists: {phone}");
            assert!(c["id_number"].as_str().unwrap().contains("*******"));
        }
        match v["next_after"].as_i64() {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    assert_eq!(seen.len(), 300);
    seen.dedup();
    assert_eq!(seen.len(), 300);

    // Search by name prefix finds the generated customer; by phone suffix too.
    let c7 = demo::customer(spec, 6);
    let prefix: String = c7.name.chars().take(1).collect();
    let (_, v) = get(&format!("{base}/api/v1/customers?q={prefix}&limit=200")).await;
    let items = v["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|c| c["external_id"] == c7.external_id.as_str()));
    assert!(items
        .iter()
        .all(|c| c["name"].as_str().unwrap().starts_with(&prefix)));
    let last4 = &c7.phone.as_deref().unwrap()[7..];
    let (_, v) = get(&format!("{base}/api/v1/customers?q={last4}")).await;
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["external_id"] == c7.external_id.as_str()));

    // The 360 view by customer number: holdings add up to the totals.
    let (s, v) = get(&format!("{base}/api/v1/customers/{}", c7.external_id)).await;
    assert_eq!(s, 200);
    assert_eq!(v["customer"]["name"], c7.name.as_str());
    let holdings = demo::holdings(spec, 6);
    let sum: i64 = v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["total"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, holdings.iter().map(|h| h.balance.0).sum::<i64>());
    assert!(v["recent_transactions"].as_array().unwrap().len() <= 5);

    // Errors are JSON with a code and a message.
    let (s, v) = get(&format!("{base}/api/v1/customers/C999999999")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("C999999999"));
    let (s, v) = get(&format!("{base}/api/v1/customers?limit=5000")).await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("1 to 200"));
    let (s, _) = get(&format!("{base}/api/v1/products?kind=gold")).await;
    assert_eq!(s, 400);

    let (_, v) = get(&format!("{base}/api/v1/products?kind=fund")).await;
    assert!(v.as_array().unwrap().iter().all(|p| p["kind"] == "fund"));
    let (s, v) = get(&format!("{base}/api/v1/products/WM-R3-1Y")).await;
    assert_eq!((s, v["risk_level"].as_str()), (200, Some("R3")));

    let (_, v) = get(&format!("{base}/api/openapi.json")).await;
    for p in [
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/products",
        "/api/v1/import/{kind}",
        "/healthz",
    ] {
        assert!(v["paths"].get(p).is_some(), "OpenAPI documents {p}");
    }

    // Import over HTTP: errors → 422 and nothing written; a good file → 200.
    let client = api_client();
    let r = client
        .post(format!("{base}/api/v1/import/staff"))
        .body("external_id,name,role\nS9001,新员工,customer_manager\nS9002,坏角色,boss\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["line"], 3);
    assert_eq!(v["errors"][0]["column"], "role");
    assert_eq!(v["errors"][0]["value"], "boss");
    let r = client
        .post(format!("{base}/api/v1/import/staff?format=csv"))
        .body("external_id,name,role\nS9001,新员工,customer_manager\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csv = client
        .get(format!("{base}/api/v1/export/staff"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("external_id,name,role,branch\n"));
    assert!(csv.contains("S9001,新员工,customer_manager,"));
}

/// Registry → active model → scoring over HTTP, with the reasons.
async fn models(base: &str, store: &kehu_store::Store) {
    let data = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("../../../shared/datasets/germancredit.csv");
    assert!(
        data.exists(),
        "{} is missing (the shared datasets sit beside the repository)",
        data.display()
    );
    let ds = kehu_scorecard::Dataset::from_csv(&data, "creditability", "bad").unwrap();
    let model = kehu_scorecard::train(
        &ds,
        &kehu_scorecard::TrainConfig::default(),
        &mut |_: &str| {},
    )
    .unwrap();
    let json = serde_json::to_string(&model).unwrap();
    let new = |report| kehu_store::NewModel {
        purpose: "credit_grade",
        name: "german",
        description: "UCI German credit, all rows",
        metrics: serde_json::json!([{"sample": "train", "auc": 0.8}]),
        model_json: &json,
        report_html: report,
    };
    let client = api_client();
    let record = serde_json::json!({"status_of_existing_checking_account": "no checking account",
        "duration_in_month": 12, "credit_amount": 2096, "age_in_years": 49, "purpose": "education"});
    // Nothing active yet: 404.
    let r = client
        .post(format!("{base}/api/v1/models/credit_grade/score"))
        .json(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        store
            .register_model(&new(Some("<html>v1</html>")), false, chrono::Utc::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .register_model(&new(Some("<html>v2</html>")), true, chrono::Utc::now())
            .await
            .unwrap(),
        2
    );
    assert!(!store.activate_model("credit_grade", 9).await.unwrap());

    let (_, v) = get(&format!("{base}/api/v1/models?purpose=credit_grade")).await;
    let listed: Vec<(i64, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_i64().unwrap(),
                m["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(2, true), (1, false)]);
    let html = client
        .get(format!("{base}/api/v1/models/credit_grade/report"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html, "<html>v2</html>");

    let r = client
        .post(format!("{base}/api/v1/models/credit_grade/score"))
        .json(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 2);
    let sc = &v["scores"][0];
    let mut row = std::collections::HashMap::new();
    for (k, val) in record.as_object().unwrap() {
        row.insert(
            k.clone(),
            val.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| val.to_string()),
        );
    }
    let expected = model.score_row(&row).unwrap();
    assert!(
        (sc["score"].as_f64().unwrap() - expected.total).abs() < 1e-9,
        "{sc}"
    );
    assert!((sc["p_event"].as_f64().unwrap() - expected.p_event).abs() < 1e-12);
    let reasons = sc["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), model.variables.len());
    let sum: f64 = reasons.iter().map(|r| r["points"].as_f64().unwrap()).sum();
    assert!(sum.abs() > 0.0 && reasons.iter().all(|r| r["variable"].is_string()));

    // Activating version 1 switches scoring to it.
    assert!(store.activate_model("credit_grade", 1).await.unwrap());
    let r = client
        .post(format!("{base}/api/v1/models/credit_grade/score"))
        .json(&serde_json::json!([record, record]))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["version"].as_i64(), v["scores"].as_array().unwrap().len()),
        (Some(1), 2)
    );
    let r = client
        .post(format!("{base}/api/v1/models/credit_grade/score"))
        .json(&serde_json::json!({"duration_in_month": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
