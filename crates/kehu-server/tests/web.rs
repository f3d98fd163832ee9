//! The web pages over plain HTTP, on every backend: login and its refusals, lock-out,
//! sessions and CSRF, the navigation and data scope of each role, the 403/404/400 pages
//! in the reader's language, the 360 page's masking, and the app pages.

mod support;

use kehu_store::{testing, CustomerQuery, SubjectKind, WebSession};
use support::{hidden, login_of, Browser, Server, ROLES};

#[tokio::test]
async fn web_pages_on_every_backend() {
    for t in testing::all().await {
        let server = Server::start(t.store.clone(), support::demo_web()).await;
        search_matches_the_reference(&t.store).await;
        login_refusals(&server.base, &t.store).await;
        roles_and_scopes(&server.base, &t.store).await;
        errors_and_language(&server.base).await;
        app_pages(&server.base).await;
        app_behaviour(&server.base, &t.store).await;
        app_elderly_purchase(&server.base, &t.store).await;
        server.stop().await;
        eprintln!("web pages passed on {}", t.name);
    }
}

/// Outside the demo, `/app` does not let anyone pick a customer.
#[tokio::test]
async fn app_demo_login_is_off_by_default() {
    let t = testing::sqlite().await;
    let server = Server::start(t.store.clone(), kehu_server::web::WebConfig::default()).await;
    let mut a = Browser::new(&server.base);
    let p = a.get("/app").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"picker-off\""));
    assert!(
        !p.body.contains("name=\"customer\""),
        "no customer is listed"
    );
    let csrf = a.cookies["kehu_login_csrf"].clone();
    let refused = a
        .post("/app/login", &[("csrf", &csrf), ("customer", "C000000001")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(!a.cookies.contains_key("kehu_app"));
    server.stop().await;
}

/// The pages' search plan gives exactly the pages of the store's reference search.
async fn search_matches_the_reference(store: &kehu_store::Store) {
    let all = store
        .search_customers(&CustomerQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut texts: Vec<String> = vec![
        "王".into(),
        "李".into(),
        "欧阳".into(),
        "zz".into(),
        "C000000007".into(),
    ];
    for r in all.iter().step_by(37) {
        texts.push(r.customer.name.clone());
        texts.push(r.customer.name.chars().take(1).collect());
        if let Some(p) = &r.customer.phone {
            texts.push(p[p.len() - 4..].to_string());
        }
        texts.push(r.customer.external_id.clone());
    }
    let mut compared = 0;
    for text in &texts {
        for (manager, branch) in [(None, None), (Some("S001M01"), None), (None, Some("B002"))] {
            for (after, limit) in [(None, 5), (Some(40), 7), (Some(150), 51)] {
                let q = CustomerQuery {
                    text: Some(text.clone()),
                    manager_id: manager.map(str::to_string),
                    branch: branch.map(str::to_string),
                    after,
                    limit,
                };
                let want: Vec<i64> = store
                    .search_customers(&q)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect();
                let got: Vec<i64> = store
                    .search_customers_paged(&q)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect();
                assert_eq!(
                    got, want,
                    "{text:?} {manager:?} {branch:?} {after:?} {limit}"
                );
                compared += usize::from(!want.is_empty());
            }
        }
    }
    assert!(compared > 50, "only {compared} non-empty pages compared");
}

async fn login_refusals(base: &str, store: &kehu_store::Store) {
    let mut b = Browser::new(base);
    // Not logged in: to the login page, remembering where to come back.
    let p = b.get("/customers?q=王").await;
    assert_eq!(p.status, 303);
    assert_eq!(
        p.location.as_deref(),
        Some("/login?next=/customers%3Fq%3D%25E7%258E%258B")
    );

    // The login form sets a strict, HttpOnly CSRF cookie that the form must repeat.
    let form = b.get("/login").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("员工号"),
        "login page is Chinese by default"
    );
    let c = form
        .set_cookies
        .iter()
        .find(|c| c.starts_with("kehu_login_csrf="))
        .unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    let missing = b
        .post(
            "/login",
            &[("staff_id", "S0001"), ("password", "kehu-demo")],
        )
        .await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("表单已失效"), "{}", missing.body);
    assert!(!b.cookies.contains_key("kehu_session"));

    // Wrong password and unknown id: the same sentence, no session.
    let wrong = b.login("S0001", "not-the-password").await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("员工号或密码不正确"));
    let unknown = b.login("NOBODY", "kehu-demo").await;
    assert!(unknown.body.contains("员工号或密码不正确"));
    assert!(!b.cookies.contains_key("kehu_session"));

    // Lock-out after three failures (the test configuration): even the right password
    // is refused until the lock ends.
    let hash = kehu_server::web::auth::hash_password("kehu-demo").unwrap();
    assert!(store
        .set_staff_password("S002C", &hash, chrono::Utc::now())
        .await
        .unwrap());
    let mut x = Browser::new(base);
    for _ in 0..2 {
        assert!(x
            .login("S002C", "wrong-password")
            .await
            .body
            .contains("员工号或密码不正确"));
    }
    let third = x.login("S002C", "wrong-password").await;
    assert!(third.body.contains("账号已锁定"), "{}", third.body);
    let right = x.login("S002C", "kehu-demo").await;
    assert_eq!(right.status, 200);
    assert!(right.body.contains("账号已锁定"));
    assert!(!x.cookies.contains_key("kehu_session"));

    // A good login: HttpOnly, SameSite session cookie, then the page asked for.
    let mut ok = Browser::new(base);
    ok.get("/login?next=/products").await;
    let csrf = ok.cookies["kehu_login_csrf"].clone();
    let p = ok
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/products"),
                ("staff_id", "S0001"),
                ("password", "kehu-demo"),
            ],
        )
        .await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/products")));
    let sc = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("kehu_session="))
        .unwrap();
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Lax") && sc.contains("Max-Age="),
        "{sc}"
    );
    // An open redirect is not possible through `next`.
    let mut ev = Browser::new(base);
    ev.get("/login").await;
    let csrf = ev.cookies["kehu_login_csrf"].clone();
    let p = ev
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "//evil.example/"),
                ("staff_id", "S0001"),
                ("password", "kehu-demo"),
            ],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/"));

    // Logout needs the session's CSRF token; afterwards the cookie is worthless.
    let home = ok.get("/").await;
    assert_eq!(home.status, 200);
    let old = ok.cookies["kehu_session"].clone();
    assert_eq!(ok.post("/logout", &[("csrf", "forged")]).await.status, 403);
    assert_eq!(
        ok.get("/").await.status,
        200,
        "a forged logout changes nothing"
    );
    let token = hidden(&home.body, "csrf");
    let out = ok.post("/logout", &[("csrf", &token)]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/login")));
    ok.cookies.insert("kehu_session".into(), old);
    let after = ok.get("/").await;
    assert_eq!(after.status, 303);
    assert!(after.location.unwrap().starts_with("/login"));

    // An expired session goes to the login page, which says so.
    let token = "e".repeat(64);
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    store
        .create_session(
            &kehu_server::web::auth::token_digest(&token),
            &WebSession {
                kind: SubjectKind::Staff,
                subject_id: "S0001".into(),
                csrf_token: "c".repeat(64),
                lang: "zh-CN".into(),
                expires_at: past,
            },
            past - chrono::Duration::hours(8),
        )
        .await
        .unwrap();
    let mut exp = Browser::new(base);
    exp.cookies.insert("kehu_session".into(), token);
    let p = exp.get("/customers").await;
    assert_eq!(
        p.location.as_deref(),
        Some("/login?next=/customers&expired=1")
    );
    let page = exp.get(&p.location.unwrap()).await;
    assert!(page.body.contains("登录已过期"), "{}", page.body);
}

async fn roles_and_scopes(base: &str, store: &kehu_store::Store) {
    for role in ROLES {
        let mut b = Browser::new(base);
        let p = b.login(login_of(role), "kehu-demo").await;
        assert_eq!(p.status, 303, "{role} logs in");
        let home = b.get("/").await;
        assert_eq!(home.status, 200, "{role}: {}", home.body);
        assert!(home.csp.as_deref().is_some_and(
            |c| c.contains("default-src 'self'") && c.contains("frame-ancestors 'none'")
        ));
        let navs: Vec<&str> =
            kehu_server::web::nav::for_role(kehu_domain::state::Role::parse(role).unwrap())
                .map(|n| n.key)
                .collect();
        for n in kehu_server::web::nav::NAV {
            let shown = home.body.contains(&format!("data-nav=\"{}\"", n.key));
            assert_eq!(shown, navs.contains(&n.key), "{role}: {}", n.key);
        }
        assert!(
            home.body.contains("id=\"chart-assets\""),
            "{role} home has its chart"
        );
    }

    let mine = "S001M01";
    let book = store
        .search_customers(&CustomerQuery {
            manager_id: Some(mine.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let other = store
        .search_customers(&CustomerQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.customer.manager_id.as_deref() != Some(mine) && r.customer.phone.is_some())
        .unwrap();
    let own = book.iter().find(|r| r.customer.phone.is_some()).unwrap();

    // A customer manager sees their own book by default …
    let mut cm = Browser::new(base);
    cm.login(mine, "kehu-demo").await;
    let home = cm.get("/").await;
    assert!(home.body.contains("id=\"top-customers\""));
    assert!(
        home.body.contains(&format!(">{}<", book.len())),
        "book size on the home page"
    );
    let list = cm.get("/customers").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body.matches("class=\"customer-link\"").count(),
        book.len().min(50)
    );
    assert!(list.body.contains(&own.customer.name));
    assert!(!list
        .body
        .contains(&format!(">{}<", other.customer.external_id)));
    // … can search the whole bank by number …
    let found = cm
        .get(&format!(
            "/customers?scope=all&q={}",
            other.customer.external_id
        ))
        .await;
    assert!(found.body.contains(&other.customer.name), "{}", found.body);
    // … sees their own customer's phone in full and everyone else's masked.
    let own_page = cm
        .get(&format!("/customers/{}", own.customer.external_id))
        .await;
    assert_eq!(own_page.status, 200);
    assert!(own_page
        .body
        .contains(own.customer.phone.as_deref().unwrap()));
    assert!(
        own_page.body.contains("id=\"chart-allocation\"") || own_page.body.contains("暂无持仓")
    );
    assert!(own_page.body.contains("id=\"chart-flows\""));
    let other_page = cm
        .get(&format!("/customers/{}", other.customer.external_id))
        .await;
    let phone = other.customer.phone.as_deref().unwrap();
    assert!(!other_page.body.contains(phone), "phone masked");
    assert!(other_page.body.contains(&kehu_domain::mask::phone(phone)));
    // Paging: the next page continues after the last id of this one.
    let mut all = Browser::new(base);
    all.login("S0001", "kehu-demo").await;
    let p1 = all.get("/customers").await;
    assert_eq!(p1.body.matches("class=\"customer-link\"").count(), 50);
    let next = p1.body.split("id=\"next-page\"").next().unwrap();
    let href = next
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let p2 = all.get(&href).await;
    eprintln!("next page: {href} -> {}", p2.status);
    assert_eq!(p2.status, 200);
    assert!(p2.body.contains("id=\"first-page\""));
    assert_eq!(p2.body.matches("class=\"customer-link\"").count(), 50);

    // A marketer may not open a customer: a 403 page without the customer's data.
    let mut mk = Browser::new(base);
    mk.login("S0011", "kehu-demo").await;
    for path in [
        format!("/customers/{}", own.customer.external_id),
        format!("/customers?q={}", own.customer.name),
    ] {
        let p = mk.get(&path).await;
        assert_eq!(p.status, 403, "{path}");
        assert!(p.body.contains("无权访问"));
        assert!(
            !p.body.contains(&own.customer.name),
            "no data in a refused page"
        );
    }
    assert_eq!(mk.get("/admin/staff").await.status, 403);
    let accounts = all.get("/admin/staff").await;
    assert_eq!(accounts.status, 200);
    assert!(
        accounts.body.contains("<td>S002C</td>") && accounts.body.contains("锁定至"),
        "the locked login shows"
    );
    assert!(accounts.body.contains("可登录") && accounts.body.contains("未开通"));
}

async fn errors_and_language(base: &str) {
    let mut b = Browser::new(base);
    b.login("S001H", "kehu-demo").await;
    let nf = b.get("/customers/C999999999").await;
    assert_eq!(nf.status, 404);
    assert!(nf.body.contains("页面不存在"));
    assert!(b.get("/no/such/page").await.body.contains("页面不存在"));
    for (path, what) in [
        ("/customers?after=-5", "翻页参数"),
        ("/customers?after=abc", "翻页参数"),
        ("/customers?scope=everything", "查询范围"),
        ("/products?kind=gold", "产品类别"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 400, "{path}");
        assert!(p.body.contains(what), "{path}: {}", p.body);
        assert!(!p.body.to_lowercase().contains("panicked"));
    }
    // A form post that is not a form: a page, not axum's plain-text answer.
    let raw = reqwest::Client::new()
        .post(format!("{base}/login"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(raw.status().is_client_error());
    let body = raw.text().await.unwrap();
    assert!(body.contains("请求格式不正确"), "{body}");
    let long = "王".repeat(65);
    assert_eq!(b.get(&format!("/customers?q={long}")).await.status, 400);
    // The API keeps answering in JSON.
    let api = b.get("/api/v1/nothing").await;
    assert_eq!(api.status, 404);
    assert!(api.body.starts_with('{'));

    // Switching language needs the CSRF token, is kept on the session and the login,
    // and the error pages follow.
    let home = b.get("/").await;
    assert!(home.body.contains("工作台"));
    assert_eq!(
        b.post("/lang", &[("lang", "en"), ("back", "/")])
            .await
            .status,
        403
    );
    let csrf = hidden(&home.body, "csrf");
    assert_eq!(
        b.post("/lang", &[("csrf", &csrf), ("lang", "xx"), ("back", "/")])
            .await
            .status,
        400
    );
    let sw = b
        .post(
            "/lang",
            &[("csrf", &csrf), ("lang", "en"), ("back", "/products")],
        )
        .await;
    assert_eq!(
        (sw.status, sw.location.as_deref()),
        (303, Some("/products"))
    );
    let en = b.get("/").await;
    assert!(
        en.body.contains("Workbench") && en.body.contains("lang=\"en\""),
        "{}",
        en.body
    );
    assert!(b
        .get("/customers/C999999999")
        .await
        .body
        .contains("Not found"));
    // The next login of the same person starts in English.
    let mut again = Browser::new(base);
    again.login("S001H", "kehu-demo").await;
    assert!(again.get("/").await.body.contains("Workbench"));
    let csrf = hidden(&en.body, "csrf");
    b.post(
        "/lang",
        &[("csrf", &csrf), ("lang", "zh-CN"), ("back", "/")],
    )
    .await;
    assert!(b.get("/").await.body.contains("工作台"));
}

async fn app_pages(base: &str) {
    let mut a = Browser::new(base);
    let picker = a.get("/app").await;
    assert_eq!(picker.status, 200);
    assert!(picker.body.contains("选择演示客户"));
    let first = picker
        .body
        .split("name=\"customer\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let csrf = hidden(&picker.body, "csrf");
    assert_eq!(
        a.post("/app/login", &[("customer", &first)]).await.status,
        403
    );
    let p = a
        .post("/app/login", &[("csrf", &csrf), ("customer", &first)])
        .await;
    assert_eq!(p.status, 303);
    let home = a.get("/app").await;
    assert!(
        home.body.contains("总资产") && home.body.contains("id=\"total-assets\""),
        "{}",
        home.body
    );
    let code = home
        .body
        .split("href=\"/app/products/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let prod = a.get(&format!("/app/products/{code}")).await;
    assert_eq!(prod.status, 200);
    assert!(
        prod.body.contains("<script src=\"/kehu.js\""),
        "the tracker is on product pages"
    );
    assert!(prod.body.contains(&format!("data-customer=\"{first}\"")));
    let assets = a.get("/app/assets").await;
    assert!(assets.body.contains("我的资产"));
    assert_eq!(a.get("/app/products/NOPE").await.status, 404);
    // The app session is not a staff session.
    assert_eq!(a.get("/customers").await.status, 303);
}

/// The app on the behaviour capability: recommendations with their reasons, the tracker
/// key, the questionnaire and its errors, purchases checked for suitability, the
/// personalization switch and tags; the staff 360 and product panels that follow.
async fn app_behaviour(base: &str, store: &kehu_store::Store) {
    let mut a = Browser::new(base);
    let picker = a.get("/app").await;
    let who = picker
        .body
        .split("name=\"customer\" value=\"")
        .nth(2)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let csrf = hidden(&picker.body, "csrf");
    assert_eq!(a.post("/app/login", &[("csrf", &csrf), ("customer", &who)]).await.status, 303);
    let home = a.get("/app").await;
    assert!(home.body.contains("id=\"panel-recommendations\""), "{}", home.body);
    assert!(home.body.contains("为什么推荐"), "{}", home.body);
    let csrf = hidden(&home.body, "csrf");

    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let products = store.list_products(None).await.unwrap();
    let on_sale = |rank: u8| {
        products
            .iter()
            .find(|p| p.product.on_sale(chrono::Utc::now().date_naive().max(today)) && p.product.risk_level.rank() == rank)
            .map(|p| p.product.clone())
    };
    let high = on_sale(4).or_else(|| on_sale(5)).or_else(|| on_sale(3)).expect("a risky product on sale");
    let low = on_sale(1).expect("an R1 product on sale");

    // The tracker tag carries the web app's key, the customer and the product.
    let prod = a.get(&format!("/app/products/{}", high.code)).await;
    assert_eq!(prod.status, 200);
    assert!(prod.body.contains("data-key=\"kehu_"), "the web app's key: {}", prod.body);
    assert!(prod.body.contains(&format!("data-product=\"{}\"", high.code)));
    assert!(prod.body.contains("id=\"buy-form\""));
    // The key is the web app's own, kept across restarts and instances.
    let (_, key) = store.ensure_own_app_key("kehu-web-app").await.unwrap();
    assert!(prod.body.contains(&format!("data-key=\"{key}\"")));
    assert!(store.list_app_keys().await.unwrap().iter().any(|k| k.name == "kehu-web-app"));

    // Not assessed: any risky purchase is refused with the reason.
    let min = |p: &kehu_domain::state::Product| format!("{}", p.min_purchase.0 / 100 + 1);
    let r = a.post(&format!("/app/products/{}/buy", high.code), &[("csrf", &csrf), ("amount", &min(&high))]).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"buy-error\"") && r.body.contains("data-refusal=\""), "{}", r.body);
    assert_eq!(a.post(&format!("/app/products/{}/buy", high.code), &[("amount", "100")]).await.status, 403);
    let bad = a.post(&format!("/app/products/{}/buy", high.code), &[("csrf", &csrf), ("amount", "abc")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("金额“abc”不正确"), "{}", bad.body);

    // The questionnaire: a missing answer is named; then the lowest options give C1.
    let q = a.get("/app/risk").await;
    assert_eq!(q.status, 200);
    assert!(q.body.contains("您尚未做风险测评"));
    let mut ids: Vec<String> = q
        .body
        .split("name=\"q_")
        .skip(1)
        .map(|x| x.split('"').next().unwrap().to_string())
        .collect();
    ids.dedup();
    assert!(ids.len() >= 2, "{ids:?}");
    let partial = a.post("/app/risk", &[("csrf", &csrf), (&format!("q_{}", ids[0]), "A")]).await;
    assert_eq!(partial.status, 422);
    assert!(partial.body.contains(&format!("请回答第 {} 题", ids[1])), "{}", partial.body);
    let names: Vec<String> = ids.iter().map(|i| format!("q_{i}")).collect();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    for n in &names {
        form.push((n, "A"));
    }
    let done = a.post("/app/risk", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("id=\"risk-level\"") && done.body.contains("有效期至"), "{}", done.body);
    let level = done.body.split("id=\"risk-level\">").nth(1).unwrap().split(' ').next().unwrap().to_string();

    // Above the level: refused; an R1 product: a receipt.
    if !level.ends_with('5') {
        let r = a.post(&format!("/app/products/{}/buy", high.code), &[("csrf", &csrf), ("amount", &min(&high))]).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.contains("data-refusal=\"above_level\""), "{}", r.body);
    }
    let ok = a.post(&format!("/app/products/{}/buy", low.code), &[("csrf", &csrf), ("amount", &min(&low))]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("id=\"buy-receipt\""), "{}", ok.body);

    // "Me": the switch and the tags.
    let me = a.get("/app/me").await;
    assert!(me.body.contains("个性化推荐：已开启"), "{}", me.body);
    assert_eq!(a.post("/app/me/personalization", &[("enabled", "off")]).await.status, 403);
    assert_eq!(a.post("/app/me/personalization", &[("csrf", &csrf), ("enabled", "maybe")]).await.status, 400);
    assert_eq!(a.post("/app/me/personalization", &[("csrf", &csrf), ("enabled", "off")]).await.status, 303);
    assert!(a.get("/app/me").await.body.contains("个性化推荐：已关闭"));
    let home = a.get("/app").await;
    assert!(home.body.contains("id=\"rec-not-personalized\""), "{}", home.body);
    assert_eq!(a.post("/app/me/tags/delete", &[("csrf", &csrf), ("tag", "product:NOPE")]).await.status, 400);
    assert_eq!(a.post("/app/me/personalization", &[("csrf", &csrf), ("enabled", "on")]).await.status, 303);

    // English.
    assert_eq!(a.post("/app/lang", &[("csrf", &csrf), ("lang", "en"), ("back", "/app")]).await.status, 303);
    let en = a.get("/app").await;
    assert!(en.body.contains("Why am I seeing this"), "{}", en.body);
    let en_risk = a.get("/app/risk").await;
    assert!(en_risk.body.contains("Your risk level:"), "{}", en_risk.body);

    // Staff: the 360 has the risk, behaviour and recommendation panels; the product
    // page its funnel.
    let mut s = Browser::new(base);
    assert_eq!(s.login("S0001", kehu_server::web::DEMO_PASSWORD).await.status, 303);
    let c = s.get(&format!("/customers/{who}")).await;
    assert_eq!(c.status, 200);
    for id in ["panel-risk", "panel-behaviour", "panel-recommendations", "risk-state"] {
        assert!(c.body.contains(&format!("id=\"{id}\"")), "{id}: {}", c.body);
    }
    assert!(c.body.contains("有效期至"), "{}", c.body);
    let p = s.get(&format!("/products/{}", low.code)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"chart-funnel\""), "{}", p.body);
}

/// An elderly customer buying above R2: the extra confirmation is asked for, a purchase
/// without it is refused, with it the receipt shows.
async fn app_elderly_purchase(base: &str, store: &kehu_store::Store) {
    let today = chrono::Utc::now().date_naive();
    let old = store
        .search_customers(&CustomerQuery { limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.customer)
        .find(|c| c.age_on(today).is_some_and(|a| a >= 70))
        .expect("an elderly demo customer");
    let r3 = store
        .list_products(None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.product)
        .find(|p| p.on_sale(today) && p.risk_level.rank() == 3)
        .expect("an R3 product on sale");
    let mut a = Browser::new(base);
    let picker = a.get("/app").await;
    let csrf = hidden(&picker.body, "csrf");
    assert_eq!(a.post("/app/login", &[("csrf", &csrf), ("customer", &old.external_id)]).await.status, 303);
    let q = a.get("/app/risk").await;
    let csrf = hidden(&q.body, "csrf");
    // The last option of each question: the boldest answers.
    let mut last: Vec<(String, String)> = Vec::new();
    for part in q.body.split("name=\"q_").skip(1) {
        let id = format!("q_{}", part.split('"').next().unwrap());
        let v = part.split("value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        match last.iter_mut().find(|(k, _)| *k == id) {
            Some(x) => x.1 = v,
            None => last.push((id, v)),
        }
    }
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    for (k, v) in &last {
        form.push((k, v));
    }
    let done = a.post("/app/risk", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let prod = a.get(&format!("/app/products/{}", r3.code)).await;
    assert!(prod.body.contains("id=\"buy-elderly\""), "{}", prod.body);
    let amount = (r3.min_purchase.0 / 100).to_string();
    let path = format!("/app/products/{}/buy", r3.code);
    let no = a.post(&path, &[("csrf", &csrf), ("amount", &amount)]).await;
    assert_eq!(no.status, 422, "{}", no.body);
    assert!(no.body.contains("data-refusal=\"elderly_confirmation_missing\""), "{}", no.body);
    let yes = a.post(&path, &[("csrf", &csrf), ("amount", &amount), ("elderly_confirmed", "1")]).await;
    assert_eq!(yes.status, 200, "{}", yes.body);
    assert!(yes.body.contains("id=\"buy-receipt\""), "{}", yes.body);
    // The staff 360 shows the attempt in the behaviour timeline (the purchase event).
    let mut s = Browser::new(base);
    assert_eq!(s.login("S0001", kehu_server::web::DEMO_PASSWORD).await.status, 303);
    let c = s.get(&format!("/customers/{}", old.external_id)).await;
    assert!(c.body.contains(&format!("data-kind=\"purchase\" data-product=\"{}\"", r3.code)), "{}", c.body);
}

/// The number in `data-{name}="…"` of the funnel counts on a product page.
fn funnel_count(body: &str, name: &str) -> i64 {
    let counts = body
        .split("id=\"funnel-counts\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no funnel counts in {body}"));
    let pat = format!("data-{name}=\"");
    let i = counts.find(&pat).unwrap() + pat.len();
    counts[i..i + counts[i..].find('"').unwrap()].parse().unwrap()
}

/// The audit trail (logins, failures, logouts, full views of personal data, app keys)
/// and who may read it; app keys created and revoked on the page; the behaviour
/// settings page; the product funnel for a segment against the store's own grouping.
#[tokio::test]
async fn audit_trail_app_keys_settings_and_funnel_segments() {
    for t in testing::all().await {
        audit_story(&t.store).await;
        eprintln!("audit, app keys, settings and segment funnel passed on {}", t.name);
    }
}

async fn audit_story(store: &kehu_store::Store) {
    use kehu_store::{AuditAction, AuditQuery};
    let server = Server::start(store.clone(), support::demo_web()).await;
    let base = server.base.clone();

    // --- A failed and a successful login, both in the trail with the address. ---
    let mut bad = Browser::new(&base);
    assert!(bad.login("S0001", "not-the-password").await.body.contains("员工号或密码不正确"));
    let mut adm = Browser::new(&base);
    assert_eq!(adm.login("S0001", "kehu-demo").await.status, 303);
    let page = adm.get("/admin/audit?staff=S0001").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"audit-table\""));
    assert!(page.body.contains("data-nav=\"nav.platform\" class=\"active\""), "the section stays marked");
    assert!(page.body.contains("data-action=\"login_failed\" data-staff=\"S0001\""), "{}", page.body);
    assert!(page.body.contains("data-action=\"login\" data-staff=\"S0001\""));
    assert!(page.body.contains("登录失败") && page.body.contains("127.0.0.1"));
    // Filters: one action; a day range (today in the server's zone, and one long ago).
    let failed = adm.get("/admin/audit?action=login_failed").await;
    assert!(failed.body.contains("data-action=\"login_failed\""));
    assert!(!failed.body.contains("data-action=\"login\""));
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let day = adm.get(&format!("/admin/audit?from={today}&to={today}")).await;
    assert!(day.body.contains("data-action=\"login\""));
    let old = adm.get("/admin/audit?from=2020-01-01&to=2020-01-31").await;
    assert!(old.body.contains("id=\"audit-empty\"") && !old.body.contains("data-action="));
    for q in ["from=2026-13-01", "action=coffee", "from=2026-11-02&to=2026-11-01", "before=x"] {
        assert_eq!(adm.get(&format!("/admin/audit?{q}")).await.status, 400, "{q}");
    }

    // --- A customer manager opens their own customer: phone and ID in full, audited. ---
    let own = store
        .search_customers(&CustomerQuery { manager_id: Some("S001M01".into()), limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.customer.phone.is_some())
        .unwrap();
    let number = own.customer.external_id.clone();
    let mut cm = Browser::new(&base);
    cm.login("S001M01", "kehu-demo").await;
    let p = cm.get(&format!("/customers/{number}")).await;
    assert!(p.body.contains(own.customer.phone.as_deref().unwrap()));
    let rows = store
        .audit_entries(&AuditQuery { staff_id: Some("S001M01".into()), action: Some(AuditAction::Unmask), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].customer.as_deref(), Some(number.as_str()));
    assert!(rows[0].fields.contains(&"phone".to_string()), "{rows:?}");
    assert!(rows[0].branch.is_some(), "{rows:?}");
    let seen = adm.get("/admin/audit?staff=S001M01&action=unmask").await;
    assert!(seen.body.contains(&format!("data-customer=\"{number}\"")), "{}", seen.body);
    assert!(seen.body.contains("手机号"));
    // A masked view (a customer of another manager) writes nothing.
    let other = store
        .search_customers(&CustomerQuery { limit: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.customer.manager_id.as_deref() != Some("S001M01"))
        .unwrap();
    cm.get(&format!("/customers/{}", other.customer.external_id)).await;
    let rows = store
        .audit_entries(&AuditQuery { action: Some(AuditAction::Unmask), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only the full view is audited: {rows:?}");

    // --- Nobody but the administrator reads the trail or manages app keys. ---
    for role in ROLES.iter().filter(|r| **r != "admin") {
        let mut b = Browser::new(&base);
        b.login(login_of(role), "kehu-demo").await;
        for path in ["/admin/audit", "/admin/audit?staff=S0001", "/admin/app-keys"] {
            let p = b.get(path).await;
            assert_eq!(p.status, 403, "{role} {path}");
            assert!(p.body.contains("无权访问"));
            assert!(!p.body.contains("data-action=") && !p.body.contains("127.0.0.1") && !p.body.contains(&number), "{role}: no data");
        }
        let csrf = hidden(&b.get("/").await.body, "csrf");
        assert_eq!(b.post("/admin/app-keys", &[("csrf", &csrf), ("name", "sneaky")]).await.status, 403, "{role}");
    }
    assert!(store.list_app_keys().await.unwrap().iter().all(|k| k.name != "sneaky"));

    // --- App keys: create (shown once), use, revoke (refused at once), all audited. ---
    let keys = adm.get("/admin/app-keys").await;
    assert_eq!(keys.status, 200);
    assert!(keys.body.contains("data-app=\"kehu-web-app\""), "{}", keys.body);
    let csrf = hidden(&keys.body, "csrf");
    assert_eq!(adm.post("/admin/app-keys", &[("name", "branch-kiosk")]).await.status, 403, "no CSRF token");
    assert_eq!(adm.post("/admin/app-keys", &[("csrf", &csrf), ("name", "bad name!")]).await.status, 400);
    let made = adm.post("/admin/app-keys", &[("csrf", &csrf), ("name", "branch-kiosk")]).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let key = made.body.split("id=\"new-key\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(key.starts_with("kehu_"), "{key}");
    assert!(store.app_for_key(&key).await.unwrap().is_some());
    assert_eq!(adm.post("/admin/app-keys", &[("csrf", &csrf), ("name", "branch-kiosk")]).await.status, 400, "name taken");
    let http = reqwest::Client::new();
    let send = |id: &'static str| {
        let (http, key, base, who) = (http.clone(), key.clone(), base.clone(), number.clone());
        async move {
            let ev = serde_json::json!([{ "id": id, "type": "app_open", "ts": chrono::Utc::now().timestamp_millis(), "customer": who }]);
            http.post(format!("{base}/api/v1/events")).bearer_auth(key).json(&ev).send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(send("kiosk-1").await, 200);
    assert_eq!(adm.post("/admin/app-keys/revoke", &[("csrf", &csrf), ("name", "kehu-web-app")]).await.status, 400, "the pages' own key stays");
    let out = adm.post("/admin/app-keys/revoke", &[("csrf", &csrf), ("name", "branch-kiosk")]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/admin/app-keys")));
    assert!(store.app_for_key(&key).await.unwrap().is_none());
    assert_eq!(send("kiosk-2").await, 401, "a revoked key is refused at once");
    let keys = adm.get("/admin/app-keys").await;
    assert!(keys.body.contains("data-app=\"branch-kiosk\" data-revoked=\"true\""), "{}", keys.body);
    let trail = adm.get("/admin/audit?staff=S0001").await;
    assert!(trail.body.contains("data-action=\"app_key_create\"") && trail.body.contains("data-action=\"app_key_revoke\""));
    assert!(trail.body.contains("<code>branch-kiosk</code>"));

    // --- The behaviour settings: the questionnaire and weights in use, read-only. ---
    let mut mk = Browser::new(&base);
    mk.login("S0011", "kehu-demo").await;
    let set = mk.get("/behaviour/settings").await;
    assert_eq!(set.status, 200, "{}", set.body);
    let q = kehu_domain::decide::suitability::Questionnaire::default_zh();
    for question in &q.questions {
        assert!(set.body.contains(&format!("data-question=\"{}\"", question.id)));
        assert!(set.body.contains(&question.text_zh));
    }
    for band in &q.bands {
        assert!(set.body.contains(&format!("data-level=\"{}\"", band.level.code())) && set.body.contains(&band.label_zh));
    }
    assert!(set.body.contains("id=\"settings-readonly\"") && set.body.contains("ln_interest"));
    assert!(!set.body.contains("id=\"admin-tabs\""), "a marketer gets no admin tabs");
    assert_eq!(cm.get("/behaviour/settings").await.status, 403);
    assert!(adm.get("/behaviour/settings").await.body.contains("id=\"admin-tabs\""));

    // --- The funnel for a segment, against the store's grouping by segment. ---
    let app = store.ensure_app_key("demo-events", "kehu_test_demo_events").await.unwrap();
    kehu_ingest::demo_events::load(store, &server.spec, 30, app, None).await.unwrap();
    let to = server.spec.today;
    let from = to - chrono::Days::new(95);
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let ms = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_local_timezone(offset).unwrap().timestamp_millis();
    let cfg = kehu_server::BehaviourConfig::default();
    let (lo, hi) = (ms(from), ms(to + chrono::Days::new(1)));
    let all = store.funnel(lo, hi, None, None, cfg.detail_dwell_ms, cfg.detail_depth, to).await.unwrap();
    let top = all.iter().max_by_key(|r| r.viewed).unwrap();
    let grouped = |seg: &'static str| {
        let pid = top.product_id;
        async move { store.funnel(lo, hi, Some(seg), Some(pid), cfg.detail_dwell_ms, cfg.detail_depth, to).await.unwrap() }
    };
    let by_gender = grouped("gender").await;
    let by_age = grouped("age_band").await;
    let female = by_gender.iter().find(|r| r.segment == "F").unwrap();
    let path = |q: &str| format!("/products/{}?from={from}&to={to}{q}", top.code);
    let whole = adm.get(&path("")).await;
    assert_eq!(whole.status, 200);
    assert_eq!(
        (funnel_count(&whole.body, "viewed"), funnel_count(&whole.body, "detail"), funnel_count(&whole.body, "purchased")),
        (top.viewed, top.detail, top.purchased)
    );
    let seg = adm.get(&path("&gender=F")).await;
    assert!(seg.body.contains("id=\"chart-funnel\""), "{}", seg.body);
    let got = (funnel_count(&seg.body, "viewed"), funnel_count(&seg.body, "detail"), funnel_count(&seg.body, "purchased"));
    assert_eq!(got, (female.viewed, female.detail, female.purchased));
    assert_ne!(got.0, top.viewed, "the segment is a part of the whole");
    assert!(seg.body.contains("<option value=\"F\" selected>"));
    // Two filters at once: women of one age band, counted from the age grouping of the
    // women only.
    let band = by_age.iter().max_by_key(|r| r.viewed).unwrap().segment.clone();
    let women_by_age = store
        .funnel_filtered(lo, hi, Some("age_band"), Some(top.product_id),
            &kehu_store::behaviour::FunnelFilter { gender: Some("F".into()), ..Default::default() },
            cfg.detail_dwell_ms, cfg.detail_depth, to)
        .await
        .unwrap();
    let want = women_by_age.iter().find(|r| r.segment == band).map(|r| r.viewed).unwrap_or(0);
    let both = adm.get(&path(&format!("&gender=F&age_band={}", band.replace('<', "%3C").replace('+', "%2B")))).await;
    assert_eq!(funnel_count(&both.body, "viewed"), want, "{band}");
    assert_eq!(adm.get(&path("&gender=X")).await.status, 400);
    assert_eq!(adm.get(&format!("/products/{}?from={to}&to={from}", top.code)).await.status, 400);

    // --- The same pages in English. ---
    let csrf = hidden(&adm.get("/").await.body, "csrf");
    let sw = adm.post("/lang", &[("csrf", &csrf), ("lang", "en"), ("back", "/admin/audit")]).await;
    assert_eq!(sw.status, 303);
    let en = adm.get("/admin/audit?action=login_failed").await;
    assert!(en.body.contains("<h1>Audit log</h1>") && en.body.contains("Failed login"), "{}", en.body);
    let en = adm.get("/behaviour/settings").await;
    assert!(en.body.contains("Read-only") && en.body.contains(&q.questions[0].text_en) && en.body.contains(&q.bands[0].label_en));
    let en = adm.get(&path("&gender=F")).await;
    assert!(en.body.contains("Customers: female"), "{}", en.body);
    let csrf = hidden(&en.body, "csrf");
    adm.post("/lang", &[("csrf", &csrf), ("lang", "zh-CN"), ("back", "/")]).await;

    // --- A lock-out (three failures in the test configuration) and a try while locked. ---
    let mut x = Browser::new(&base);
    for _ in 0..3 {
        x.login("S001C", "wrong-password").await;
    }
    assert!(x.login("S001C", "kehu-demo").await.body.contains("账号已锁定"));
    let rows = store
        .audit_entries(&AuditQuery { staff_id: Some("S001C".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    let actions: Vec<&str> = rows.iter().take(4).map(|r| r.action.code()).collect();
    assert_eq!(actions, ["login_locked", "login_locked", "login_failed", "login_failed"], "{rows:?}");
    let locked = adm.get("/admin/audit?action=login_locked").await;
    assert_eq!(locked.body.matches("data-action=\"login_locked\" data-staff=\"S001C\"").count(), 2);

    // --- Logging out is in the trail too. ---
    let csrf = hidden(&mk.get("/").await.body, "csrf");
    assert_eq!(mk.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    let rows = store
        .audit_entries(&AuditQuery { staff_id: Some("S0011".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rows.first().map(|r| r.action), Some(AuditAction::Logout), "{rows:?}");
    assert_eq!(rows.get(1).map(|r| r.action), Some(AuditAction::Login));
    server.stop().await;
}
