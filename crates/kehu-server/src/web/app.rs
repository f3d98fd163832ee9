//! The customer app pages at `/app`: a mobile-sized demo of the bank's app and the
//! reference for integrators. In demo mode (`web.app_demo_login`) a visitor picks a demo
//! customer; the app session then lives in its own cookie, apart from any staff login.
//! Product pages carry the behaviour tracker (`/kehu.js`).

use super::auth::{self, cookie, CookieSpec, APP_COOKIE, LOGIN_CSRF_COOKIE};
use super::i18n::{Lang, Tr};
use super::pages::{
    allocation_chart, holding_lines, product_view, HoldingLine, Panel, ProductView,
};
use super::{lang_cookie, render, request_lang, safe_next, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, Utc};
use kehu_domain::money::Fen;
use kehu_store::{CustomerQuery, SubjectKind, WebSession};
use serde::Deserialize;

/// The customer of an app session.
pub struct AppCtx {
    pub id: i64,
    pub number: String,
    pub name: String,
    pub t: Tr,
    pub csrf: String,
    pub token_hash: String,
    pub path: String,
}

impl FromRequestParts<AppState> for AppCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PageError> {
        let token = cookie(&parts.headers, APP_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or(PageError::AppLogin)?;
        let token_hash = auth::token_digest(token);
        let sess = s
            .store
            .session(&token_hash)
            .await?
            .ok_or(PageError::AppLogin)?;
        if sess.kind != SubjectKind::Customer || sess.expires_at <= Utc::now() {
            return Err(PageError::AppLogin);
        }
        let id = s
            .store
            .customer_id(&sess.subject_id)
            .await?
            .ok_or(PageError::AppLogin)?;
        let rows = s
            .store
            .search_customers(&CustomerQuery {
                text: Some(sess.subject_id.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        let name = rows
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.customer.name)
            .unwrap_or_default();
        Ok(AppCtx {
            id,
            number: sess.subject_id,
            name,
            t: Tr::new(Lang::parse(&sess.lang).unwrap_or_default(), s.cfg.offset),
            csrf: sess.csrf_token,
            token_hash,
            path: parts.uri.path().to_string(),
        })
    }
}

/// The frame of every app page.
pub struct AppChrome {
    pub t: Tr,
    pub name: String,
    pub csrf: String,
    pub path: String,
    pub tab: &'static str,
}

impl AppChrome {
    pub fn hello(&self) -> String {
        self.t.f("app.hello", &[("name", &self.name)])
    }
}

impl AppCtx {
    fn chrome(&self, tab: &'static str) -> AppChrome {
        AppChrome {
            t: self.t,
            name: self.name.clone(),
            csrf: self.csrf.clone(),
            path: self.path.clone(),
            tab,
        }
    }
}

#[derive(Template)]
#[template(path = "app/picker.html")]
struct PickerTpl {
    t: Tr,
    enabled: bool,
    csrf: String,
    people: Vec<(String, String, &'static str)>,
}

#[derive(Template)]
#[template(path = "app/home.html")]
struct HomeTpl {
    a: AppChrome,
    total: String,
    products: Vec<ProductView>,
    panels: Vec<Panel>,
}

pub async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    ctx: Result<AppCtx, PageError>,
) -> Result<Response, PageError> {
    let ctx = match ctx {
        Ok(c) => c,
        Err(PageError::AppLogin) => return picker(&s, &headers).await,
        Err(e) => return Err(e),
    };
    let c = s
        .store
        .customer_360(ctx.id, 0)
        .await?
        .ok_or(PageError::AppLogin)?;
    let assets: Fen = c
        .totals
        .iter()
        .filter(|x| !x.asset_class.is_liability())
        .map(|x| x.total)
        .sum();
    let today = Utc::now().with_timezone(&s.cfg.offset).date_naive();
    // Investment products on sale, highest expected yield first (the recommendation
    // capability replaces this shelf with ranked, explained picks).
    use kehu_domain::state::ProductKind;
    let mut shelf: Vec<_> = s
        .store
        .list_products(None)
        .await?
        .into_iter()
        .filter(|p| p.product.on_sale(today))
        .filter(|p| {
            matches!(
                p.product.kind,
                ProductKind::Wealth | ProductKind::Fund | ProductKind::Deposit
            )
        })
        .collect();
    shelf.sort_by_key(|p| std::cmp::Reverse(p.product.expected_yield.map(|y| y.0).unwrap_or(0)));
    let products = shelf
        .iter()
        .take(4)
        .map(|p| product_view(&ctx.t, &p.product, today))
        .collect();
    Ok(render(&HomeTpl {
        total: ctx.t.money(assets),
        products,
        // Recommendations with "why am I seeing this", the banner and the message box join
        // here from the recommendation capability.
        panels: Vec::new(),
        a: ctx.chrome("home"),
    }))
}

async fn picker(s: &AppState, headers: &HeaderMap) -> Result<Response, PageError> {
    let lang = request_lang(headers);
    let t = Tr::new(lang, s.cfg.offset);
    let enabled = s.web.cfg.app_demo_login;
    let people = if enabled {
        s.store
            .search_customers(&CustomerQuery {
                limit: 8,
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|r| {
                let c = r.customer;
                (
                    c.external_id,
                    c.name,
                    t.label(c.vip_tier.label_zh(), c.vip_tier.label_en()),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let csrf = auth::random_token();
    let mut r = render(&PickerTpl {
        t,
        enabled,
        csrf: csrf.clone(),
        people,
    });
    r.headers_mut().append(
        header::SET_COOKIE,
        CookieSpec {
            name: LOGIN_CSRF_COOKIE,
            value: &csrf,
            path: "/",
            max_age: Some(3600),
            http_only: true,
            same_site: "Strict",
            secure: s.web.cfg.secure_cookies,
        }
        .header(),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub struct PickForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    customer: String,
}

pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<PickForm>,
) -> Result<Response, PageError> {
    if !cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| auth::same(c, &f.csrf)) {
        return Err(PageError::Csrf);
    }
    if !s.web.cfg.app_demo_login {
        return Err(PageError::Forbidden);
    }
    s.store
        .customer_id(f.customer.trim())
        .await?
        .ok_or(PageError::NotFound)?;
    let now = Utc::now();
    let token = auth::random_token();
    let lang = request_lang(&headers);
    s.store
        .create_session(
            &auth::token_digest(&token),
            &WebSession {
                kind: SubjectKind::Customer,
                subject_id: f.customer.trim().to_string(),
                csrf_token: auth::random_token(),
                lang: lang.code().into(),
                expires_at: now + Duration::hours(s.web.cfg.session_hours.max(1)),
            },
            now,
        )
        .await?;
    let mut r = Redirect::to("/app").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        CookieSpec {
            name: APP_COOKIE,
            value: &token,
            path: "/app",
            max_age: Some(s.web.cfg.session_hours.max(1) * 3600),
            http_only: true,
            same_site: "Lax",
            secure: s.web.cfg.secure_cookies,
        }
        .header(),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
}

pub async fn logout(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if !auth::same(&ctx.csrf, &f.csrf) {
        return Err(PageError::Csrf);
    }
    s.store.delete_session(&ctx.token_hash).await?;
    let mut r = Redirect::to("/app").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        CookieSpec {
            name: APP_COOKIE,
            value: "",
            path: "/app",
            max_age: Some(0),
            http_only: true,
            same_site: "Lax",
            secure: s.web.cfg.secure_cookies,
        }
        .header(),
    );
    Ok(r)
}

pub async fn set_lang(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if !auth::same(&ctx.csrf, &f.csrf) {
        return Err(PageError::Csrf);
    }
    let lang = Lang::parse(&f.lang).ok_or(PageError::BadField {
        key: "error.bad_lang",
        value: f.lang.clone(),
    })?;
    s.store
        .set_session_lang(&ctx.token_hash, lang.code())
        .await?;
    let back = safe_next(Some(&f.back));
    let back = if back.starts_with("/app") {
        back
    } else {
        "/app".into()
    };
    let mut r = Redirect::to(&back).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        lang_cookie(lang, s.web.cfg.secure_cookies),
    );
    Ok(r)
}

#[derive(Template)]
#[template(path = "app/products.html")]
struct ProductsTpl {
    a: AppChrome,
    products: Vec<ProductView>,
}

pub async fn products(State(s): State<AppState>, ctx: AppCtx) -> Result<Response, PageError> {
    let today = Utc::now().with_timezone(&s.cfg.offset).date_naive();
    let products = s
        .store
        .list_products(None)
        .await?
        .iter()
        .filter(|p| p.product.on_sale(today))
        .map(|p| product_view(&ctx.t, &p.product, today))
        .collect();
    Ok(render(&ProductsTpl {
        products,
        a: ctx.chrome("products"),
    }))
}

#[derive(Template)]
#[template(path = "app/product.html")]
struct ProductTpl {
    a: AppChrome,
    p: ProductView,
    customer: String,
    panels: Vec<Panel>,
}

pub async fn product(
    State(s): State<AppState>,
    ctx: AppCtx,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    let today = Utc::now().with_timezone(&s.cfg.offset).date_naive();
    let p = s.store.product(&code).await?.ok_or(PageError::NotFound)?;
    Ok(render(&ProductTpl {
        p: product_view(&ctx.t, &p.product, today),
        customer: ctx.number.clone(),
        // Suitability check and purchase join here from the risk capability.
        panels: Vec::new(),
        a: ctx.chrome("products"),
    }))
}

#[derive(Template)]
#[template(path = "app/assets.html")]
struct AssetsTpl {
    a: AppChrome,
    net_worth: String,
    chart: String,
    holdings: Vec<HoldingLine>,
}

pub async fn assets(State(s): State<AppState>, ctx: AppCtx) -> Result<Response, PageError> {
    let c = s
        .store
        .customer_360(ctx.id, 0)
        .await?
        .ok_or(PageError::AppLogin)?;
    Ok(render(&AssetsTpl {
        net_worth: ctx.t.money(c.net_worth),
        chart: allocation_chart(&ctx.t, "chart-my-assets", &c.totals, c.net_worth),
        holdings: holding_lines(&ctx.t, &c),
        a: ctx.chrome("assets"),
    }))
}
