//! API tokens from the administrator's page, on every backend: made and shown once,
//! accepted by the API, revoked and refused from the next call, each step in the audit
//! trail; other roles get the 403 page.

mod support;

use kehu_store::{testing, AuditAction, AuditQuery};
use support::{hidden, login_of, Browser, Server};

#[tokio::test]
async fn api_tokens_from_the_admin_page() {
    for t in testing::all().await {
        let server = Server::start(t.store.clone(), support::demo_web()).await;
        let base = server.base.clone();
        let mut admin = Browser::new(&base);
        assert_eq!(
            admin.login(login_of("admin"), kehu_server::web::DEMO_PASSWORD).await.status,
            303
        );
        let page = admin.get("/admin/api-tokens").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"api-token-create\""));
        assert!(page.body.contains("data-app=\"tests\""), "the suite's own token is listed");
        let csrf = hidden(&page.body, "csrf");

        // A forged form makes nothing.
        let r = admin.post("/admin/api-tokens", &[("csrf", "forged"), ("name", "nightly-load")]).await;
        assert_eq!(r.status, 403);
        assert!(t.store.list_api_tokens().await.unwrap().iter().all(|k| k.name != "nightly-load"));

        let made = admin.post("/admin/api-tokens", &[("csrf", &csrf), ("name", "nightly-load")]).await;
        assert_eq!(made.status, 200);
        let i = made.body.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
        let token = made.body[i..i + made.body[i..].find('<').unwrap()].to_string();
        assert!(token.starts_with("kehu_api_"), "{token}");
        let again = admin.post("/admin/api-tokens", &[("csrf", &csrf), ("name", "nightly-load")]).await;
        assert_eq!(again.status, 400, "names are unique");

        let api = reqwest::Client::new();
        let call = |tok: String| {
            let api = api.clone();
            let url = format!("{base}/api/v1/products");
            async move { api.get(url).bearer_auth(tok).send().await.unwrap().status().as_u16() }
        };
        assert_eq!(call(token.clone()).await, 200);
        let r = admin.post("/admin/api-tokens/revoke", &[("csrf", &csrf), ("name", "nightly-load")]).await;
        assert_eq!(r.status, 303);
        assert_eq!(call(token.clone()).await, 401, "refused from the next call");
        let r = admin.post("/admin/api-tokens/revoke", &[("csrf", &csrf), ("name", "no-such")]).await;
        assert_eq!(r.status, 404);

        for (action, n) in [(AuditAction::ApiTokenCreate, 1), (AuditAction::ApiTokenRevoke, 1)] {
            let rows = t
                .store
                .audit_entries(&AuditQuery {
                    staff_id: Some(login_of("admin").into()),
                    action: Some(action),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(rows.len(), n, "{}", action.code());
            assert_eq!(rows[0].detail.as_deref(), Some("nightly-load"));
        }

        // A token that acts for a staff member: only a known one.
        let r = admin
            .post("/admin/api-tokens", &[("csrf", &csrf), ("name", "desk"), ("staff", "S-NOBODY")])
            .await;
        assert_eq!(r.status, 400);
        let made = admin
            .post("/admin/api-tokens", &[("csrf", &csrf), ("name", "desk"), ("staff", login_of("collector"))])
            .await;
        assert_eq!(made.status, 200);
        let listed = t.store.list_api_tokens().await.unwrap();
        let desk = listed.iter().find(|k| k.name == "desk").expect("made");
        assert_eq!(desk.staff.as_deref(), Some(login_of("collector")));
        assert!(made.body.contains(&format!("<td class=\"token-staff\">{}</td>", login_of("collector"))));

        for role in ["branch_head", "collector", "marketer"] {
            let mut b = Browser::new(&base);
            b.login(login_of(role), kehu_server::web::DEMO_PASSWORD).await;
            let p = b.get("/admin/api-tokens").await;
            assert_eq!(p.status, 403, "{role}");
            assert!(!p.body.contains("data-app="), "{role}: no data");
        }
        server.stop().await;
    }
}
