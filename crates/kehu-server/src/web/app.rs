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
    let today = s.today();
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
        panels: home_panels(&s, &ctx).await?,
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
    super::csrf_ok(cookie(&headers, LOGIN_CSRF_COOKIE), &f.csrf)?;
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

pub async fn logout(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    super::csrf_ok(Some(&ctx.csrf), &f.csrf)?;
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
    Form(f): Form<super::LangForm>,
) -> Result<Response, PageError> {
    super::csrf_ok(Some(&ctx.csrf), &f.csrf)?;
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
    let today = s.today();
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
    /// The web app's tracker key.
    key: String,
    panels: Vec<Panel>,
}

pub async fn product(
    State(s): State<AppState>,
    ctx: AppCtx,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    product_page(&s, &ctx, &code, BuyState::default()).await
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

// ---------------------------------------------------------------- behaviour in the app

use super::charts::esc;
use crate::behaviour::http::{self as bh, BuyError};
use kehu_domain::decide::recommend::{Decision, Placement, Reason};

fn reason_text<'a>(t: &Tr, r: &'a Reason) -> &'a str {
    match t.lang {
        Lang::ZhCn => &r.zh,
        Lang::En => &r.en,
    }
}

/// The recommendations of a decision with "why am I seeing this" per item; the
/// non-personalized note when personalization is off.
pub(crate) fn recommendations_html(t: &Tr, d: &Decision, link: bool) -> String {
    let mut h = String::new();
    if !d.personalized {
        h.push_str(&format!(
            "<p class=\"note\" id=\"rec-not-personalized\">{}</p>",
            esc(t.s("rec.not_personalized"))
        ));
    }
    for n in &d.notes {
        h.push_str(&format!("<p class=\"note rec-note\">{}</p>", esc(reason_text(t, n))));
    }
    if d.items.is_empty() {
        h.push_str(&format!("<p class=\"empty\">{}</p>", esc(t.s("rec.none"))));
        return h;
    }
    h.push_str("<ul class=\"recs\">");
    for it in &d.items {
        let name = if link {
            format!(
                "<a href=\"/app/products/{c}\"><strong>{n}</strong></a>",
                c = esc(&it.code),
                n = esc(&it.name)
            )
        } else {
            format!("<strong>{}</strong> <small>{}</small>", esc(&it.name), esc(&it.code))
        };
        h.push_str(&format!(
            "<li class=\"rec\" data-product=\"{c}\">{name}<br><small>{k} · {r}</small>\
             <details class=\"why\"><summary>{why}</summary><ul>",
            c = esc(&it.code),
            k = esc(t.label(it.kind.label_zh(), it.kind.label_en())),
            r = esc(it.risk_level.code()),
            why = esc(t.s("rec.why")),
        ));
        for r in &it.reasons {
            h.push_str(&format!(
                "<li data-reason=\"{}\">{}</li>",
                esc(r.code),
                esc(reason_text(t, r))
            ));
        }
        h.push_str("</ul></details></li>");
    }
    h.push_str("</ul>");
    h
}

/// One decision for the home placement (logged like every decision).
pub(crate) async fn home_decision(
    s: &AppState,
    cid: i64,
    n: usize,
    placement_name: &str,
) -> Result<Option<Decision>, PageError> {
    let Some(prof) = s.behaviour.profile(cid).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let today = now.with_timezone(&s.cfg.offset).date_naive();
    Ok(Some(s.behaviour.decide(
        cid,
        &prof,
        &Placement::Home,
        n,
        now,
        today,
        placement_name,
    )))
}

pub(crate) async fn home_panels(s: &AppState, ctx: &AppCtx) -> Result<Vec<Panel>, PageError> {
    let mut panels = Vec::new();
    if let Some(d) = home_decision(s, ctx.id, 4, "home").await? {
        panels.push(Panel {
            id: "recommendations",
            title: ctx.t.s("rec.title").to_string(),
            body_html: recommendations_html(&ctx.t, &d, true),
        });
    }
    Ok(panels)
}

/// Yuan as typed in a form: `10000` or `10000.50`.
fn plain_yuan(f: Fen) -> String {
    if f.0 % 100 == 0 {
        (f.0 / 100).to_string()
    } else {
        format!("{}.{:02}", f.0 / 100, (f.0 % 100).abs())
    }
}

/// The buy form of a product page, and the outcome of the last attempt.
#[derive(Default)]
pub struct BuyState {
    amount: String,
    /// (ok, html)
    outcome: Option<(bool, String)>,
}

async fn product_page(
    s: &AppState,
    ctx: &AppCtx,
    code: &str,
    buy: BuyState,
) -> Result<Response, PageError> {
    let today = s.today();
    let p = s.store.product(code).await?.ok_or(PageError::NotFound)?;
    let t = &ctx.t;
    let mut panels = Vec::new();
    if let Some((ok, html)) = &buy.outcome {
        panels.push(Panel {
            id: if *ok { "receipt" } else { "refusal" },
            title: t.s(if *ok { "buy.receipt" } else { "buy.refused" }).to_string(),
            body_html: html.clone(),
        });
    }
    if p.product.on_sale(today) {
        let elderly = bh::elderly_rule(s, ctx.id, p.product.risk_level).await?;
        let amount = if buy.amount.is_empty() && p.product.min_purchase.0 > 0 {
            plain_yuan(p.product.min_purchase)
        } else {
            buy.amount.clone()
        };
        let mut form = format!(
            "<form method=\"post\" action=\"/app/products/{c}/buy\" id=\"buy-form\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"buy-amount\">{al}</label> \
             <input id=\"buy-amount\" name=\"amount\" inputmode=\"decimal\" value=\"{amount}\" required>",
            c = esc(&p.product.code),
            csrf = esc(&ctx.csrf),
            al = esc(t.s("buy.amount")),
            amount = esc(&amount),
        );
        if elderly {
            form.push_str(&format!(
                "<p><label><input type=\"checkbox\" name=\"elderly_confirmed\" value=\"1\" id=\"buy-elderly\"> {}</label></p>",
                esc(t.s("buy.elderly_confirm"))
            ));
        }
        form.push_str(&format!(
            "<p class=\"hint\">{}</p><button type=\"submit\" id=\"buy-submit\">{}</button></form>",
            esc(&t.f("buy.hint", &[("level", p.product.risk_level.code())])),
            esc(t.s("buy.submit"))
        ));
        panels.push(Panel {
            id: "buy",
            title: t.s("buy.title").to_string(),
            body_html: form,
        });
    }
    let r = render(&ProductTpl {
        p: product_view(t, &p.product, today),
        customer: ctx.number.clone(),
        key: s.behaviour.web_app_key().unwrap_or_default(),
        panels,
        a: ctx.chrome("products"),
    });
    Ok(r)
}

#[derive(Deserialize)]
pub struct BuyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    elderly_confirmed: Option<String>,
}

pub async fn buy(
    State(s): State<AppState>,
    ctx: AppCtx,
    Path(code): Path<String>,
    Form(f): Form<BuyForm>,
) -> Result<Response, PageError> {
    super::csrf_ok(Some(&ctx.csrf), &f.csrf)?;
    let t = ctx.t;
    let fail = |msg: String| (false, format!("<p class=\"error\" id=\"buy-error\">{}</p>", esc(&msg)));
    let outcome = match Fen::parse_yuan(&f.amount.trim().replace([',', '，'], "")) {
        Err(_) => fail(t.f("buy.bad_amount", &[("value", f.amount.trim())])),
        Ok(amount) => match bh::buy(&s, ctx.id, &code, amount, 1, f.elderly_confirmed.is_some()).await {
            Ok(b) => match b.purchase_id {
                Some(pid) => (
                    true,
                    format!(
                        "<dl class=\"facts\" id=\"buy-receipt\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
                         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl><p class=\"ok\">{}</p>",
                        esc(t.s("buy.receipt_no")),
                        pid,
                        esc(t.s("buy.product")),
                        esc(&b.product_name),
                        esc(t.s("buy.amount")),
                        esc(&t.money(b.amount)),
                        esc(t.s("buy.date")),
                        esc(&t.date(b.on)),
                        esc(t.label_owned(&b.check.reason_zh, &b.check.reason_en)),
                    ),
                ),
                None => (
                    false,
                    format!(
                        "<p class=\"error\" id=\"buy-error\" data-refusal=\"{}\">{}</p>{}",
                        b.check.refusal.map(|r| r.code()).unwrap_or(""),
                        esc(t.label_owned(&b.check.reason_zh, &b.check.reason_en)),
                        if b.check.refusal.is_some_and(|r| r.code() != "elderly_confirmation_missing") {
                            format!("<p><a href=\"/app/risk\" id=\"buy-assess\">{}</a></p>", esc(t.s("risk.take")))
                        } else {
                            String::new()
                        }
                    ),
                ),
            },
            Err(BuyError::NoProduct) => return Err(PageError::NotFound),
            Err(BuyError::NoCustomer) => return Err(PageError::AppLogin),
            Err(BuyError::Store(e)) => return Err(e.into()),
            Err(BuyError::NotPositive) | Err(BuyError::Quantity) => {
                fail(t.f("buy.bad_amount", &[("value", f.amount.trim())]))
            }
            Err(BuyError::NotOnSale { .. }) => fail(t.s("buy.not_on_sale").to_string()),
            Err(BuyError::BelowMinimum { min }) => {
                fail(t.f("buy.below_minimum", &[("min", &t.money(min))]))
            }
        },
    };
    let ok = outcome.0;
    let mut r = product_page(
        &s,
        &ctx,
        &code,
        BuyState {
            amount: if ok { String::new() } else { f.amount.trim().to_string() },
            outcome: Some(outcome),
        },
    )
    .await?;
    if !ok {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

// ---------------------------------------------------------------- risk questionnaire

pub struct QuestionView {
    pub id: String,
    pub text: String,
    /// (key, text, checked)
    pub options: Vec<(String, String, bool)>,
    pub missing: bool,
}

#[derive(Template)]
#[template(path = "app/risk.html")]
struct RiskTpl {
    a: AppChrome,
    title: String,
    current: String,
    questions: Vec<QuestionView>,
    error: String,
    result: Option<(String, String, String)>,
}

async fn current_assessment(s: &AppState, t: &Tr, cid: i64) -> Result<String, PageError> {
    let cfg = &s.behaviour.cfg.suitability;
    let today = s.today();
    let all = s.store.assessments(cid).await?;
    Ok(match all.first().and_then(|r| {
        let level = kehu_domain::decide::suitability::RiskTolerance::parse(&r.level)?;
        Some((level, kehu_domain::decide::suitability::Assessment { level, assessed_on: r.assessed_on }))
    }) {
        Some((level, a)) if a.valid_on(cfg, today) => t.f(
            "risk.current",
            &[
                ("level", level.code()),
                ("label", t.label(level.label_zh(), level.label_en())),
                ("until", &t.date(a.valid_until(cfg))),
            ],
        ),
        Some((_, a)) => t.f("risk.expired", &[("on", &t.date(a.valid_until(cfg)))]),
        None => t.s("risk.must_assess").to_string(),
    })
}

fn questions(s: &AppState, t: &Tr, answers: &[(String, String)], missing: Option<&str>) -> Vec<QuestionView> {
    s.behaviour
        .questionnaire
        .questions
        .iter()
        .map(|q| QuestionView {
            id: q.id.clone(),
            text: t.label_owned(&q.text_zh, &q.text_en).to_string(),
            options: q
                .options
                .iter()
                .map(|o| {
                    let checked = answers.iter().any(|(k, v)| k == &q.id && v == &o.key);
                    (o.key.clone(), t.label_owned(&o.text_zh, &o.text_en).to_string(), checked)
                })
                .collect(),
            missing: missing == Some(q.id.as_str()),
        })
        .collect()
}

pub async fn risk(State(s): State<AppState>, ctx: AppCtx) -> Result<Response, PageError> {
    let q = &s.behaviour.questionnaire;
    Ok(render(&RiskTpl {
        title: ctx.t.label_owned(&q.title_zh, &q.title_en).to_string(),
        current: current_assessment(&s, &ctx.t, ctx.id).await?,
        questions: questions(&s, &ctx.t, &[], None),
        error: String::new(),
        result: None,
        a: ctx.chrome("me"),
    }))
}

pub async fn risk_submit(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let csrf = f.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
    super::csrf_ok(Some(&ctx.csrf), csrf)?;
    let t = ctx.t;
    let q = &s.behaviour.questionnaire;
    let answers: Vec<(String, String)> = f
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("q_").map(|id| (id.to_string(), v.clone())))
        .collect();
    let title = t.label_owned(&q.title_zh, &q.title_en).to_string();
    match bh::submit_assessment(&s, ctx.id, &answers).await? {
        Ok(a) => Ok(render(&RiskTpl {
            title,
            current: current_assessment(&s, &t, ctx.id).await?,
            questions: questions(&s, &t, &answers, None),
            error: String::new(),
            result: Some((
                a.level.code().to_string(),
                t.label_owned(&a.label_zh, &a.label_en).to_string(),
                t.date(a.valid_until),
            )),
            a: ctx.chrome("me"),
        })),
        Err(e) => {
            use kehu_domain::decide::suitability::AnswerError;
            let (error, missing) = match &e {
                AnswerError::Missing(id) => {
                    let text = q
                        .questions
                        .iter()
                        .find(|x| &x.id == id)
                        .map(|x| t.label_owned(&x.text_zh, &x.text_en).to_string())
                        .unwrap_or_default();
                    (t.f("risk.missing", &[("id", id), ("text", &text)]), Some(id.clone()))
                }
                other => (t.f("risk.invalid", &[("detail", &other.to_string())]), None),
            };
            let mut r = render(&RiskTpl {
                title,
                current: current_assessment(&s, &t, ctx.id).await?,
                questions: questions(&s, &t, &answers, missing.as_deref()),
                error,
                result: None,
                a: ctx.chrome("me"),
            });
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

// ---------------------------------------------------------------- "my" page

#[derive(Template)]
#[template(path = "app/me.html")]
struct MeTpl {
    a: AppChrome,
    personalized: bool,
    risk: String,
    /// (tag, label)
    tags: Vec<(String, String)>,
}

pub async fn me(State(s): State<AppState>, ctx: AppCtx) -> Result<Response, PageError> {
    let prof = s.behaviour.profile(ctx.id).await?.ok_or(PageError::AppLogin)?;
    let tags = bh::customer_tags(&s, ctx.id)
        .into_iter()
        .map(|g| {
            let l = match ctx.t.lang {
                Lang::ZhCn => g.label_zh,
                Lang::En => g.label_en,
            };
            (g.tag, l)
        })
        .collect();
    Ok(render(&MeTpl {
        personalized: prof.personalization,
        risk: current_assessment(&s, &ctx.t, ctx.id).await?,
        tags,
        a: ctx.chrome("me"),
    }))
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

pub async fn set_personalization(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<SwitchForm>,
) -> Result<Response, PageError> {
    super::csrf_ok(Some(&ctx.csrf), &f.csrf)?;
    let enabled = match f.enabled.as_str() {
        "on" => true,
        "off" => false,
        v => {
            return Err(PageError::BadField {
                key: "error.bad_switch",
                value: v.to_string(),
            })
        }
    };
    s.store.set_personalization(ctx.id, enabled, "app").await?;
    s.behaviour.refresh_profile(ctx.id).await?;
    Ok(Redirect::to("/app/me").into_response())
}

#[derive(Deserialize)]
pub struct TagForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tag: String,
}

pub async fn delete_tag(
    State(s): State<AppState>,
    ctx: AppCtx,
    Form(f): Form<TagForm>,
) -> Result<Response, PageError> {
    super::csrf_ok(Some(&ctx.csrf), &f.csrf)?;
    let known = bh::customer_tags(&s, ctx.id).iter().any(|g| g.tag == f.tag);
    if !known {
        return Err(PageError::BadField {
            key: "error.bad_tag",
            value: f.tag,
        });
    }
    s.behaviour
        .delete_tag(ctx.id, &f.tag, Utc::now().timestamp_millis())
        .await?;
    Ok(Redirect::to("/app/me").into_response())
}
