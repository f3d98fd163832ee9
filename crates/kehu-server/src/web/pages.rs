//! The staff workbench pages.

use super::auth::{self, cookie, CookieSpec, LOGIN_CSRF_COOKIE, STAFF_COOKIE};
use super::charts::{self, Datum, Frame};
use super::i18n::{Lang, Tr};
use super::nav::{self, Perm};
use super::{lang_cookie, render, request_lang, safe_next, urlencode, Client, CsrfForm, LangForm, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, Utc};
use kehu_domain::mask;
use kehu_domain::money::Fen;
use kehu_domain::state::{Direction, ProductKind, Role, Staff};
use kehu_store::{AuditAction, CustomerQuery, SubjectKind, WebSession};
use serde::Deserialize;
use std::collections::HashMap;

/// A logged-in staff member, with what every page needs.
pub struct StaffCtx {
    pub staff: Staff,
    pub t: Tr,
    pub csrf: String,
    pub token_hash: String,
    /// Path and query of this request, to come back to.
    pub here: String,
}

impl FromRequestParts<AppState> for StaffCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PageError> {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        // After logging in again, a form post is not repeated: back to the start page.
        let back = if parts.method == axum::http::Method::GET {
            here.clone()
        } else {
            "/".to_string()
        };
        let login = |expired| PageError::Login {
            next: back.clone(),
            expired,
        };
        let Some(token) = cookie(&parts.headers, STAFF_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(login(false));
        };
        let token_hash = auth::token_digest(token);
        let Some((sess, staff)) = s.store.staff_session(&token_hash).await? else {
            return Err(login(true));
        };
        if sess.kind != SubjectKind::Staff {
            return Err(login(false));
        }
        if sess.expires_at <= Utc::now() {
            s.store.delete_session(&token_hash).await?;
            return Err(login(true));
        }
        let Some(staff) = staff else {
            return Err(login(false));
        };
        Ok(StaffCtx {
            staff,
            t: Tr::new(Lang::parse(&sess.lang).unwrap_or_default(), s.cfg.offset),
            csrf: sess.csrf_token,
            token_hash,
            here,
        })
    }
}

impl StaffCtx {
    pub fn require(&self, p: Perm) -> Result<(), PageError> {
        if nav::can(self.staff.role, p) {
            Ok(())
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// An audit entry of this staff member.
    pub fn audit(&self, action: AuditAction) -> super::admin::Audit {
        super::admin::Audit::new(&self.staff.external_id, self.staff.branch.clone(), action)
    }

    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        super::csrf_ok(Some(&self.csrf), sent)
    }

    /// The frame around every page: who, navigation, the forms in the header.
    pub fn chrome(&self) -> Chrome {
        let path = self.here.split('?').next().unwrap_or("/");
        let nav = nav::for_role(self.staff.role)
            .map(|n| NavView {
                key: n.key,
                label: self.t.s(n.key).to_string(),
                href: n.path.map(str::to_string),
                active: n.path.is_some_and(|p| {
                    // An entry into a section (`/admin/staff`) stays marked on the
                    // section's other pages (`/admin/audit`).
                    let section = p.rsplit_once('/').map(|(a, _)| a).filter(|a| !a.is_empty());
                    if p == "/" {
                        path == "/"
                    } else {
                        path == p
                            || path.starts_with(&format!("{p}/"))
                            || section.is_some_and(|sec| path.starts_with(&format!("{sec}/")))
                    }
                }),
            })
            .collect();
        Chrome {
            t: self.t,
            user_name: self.staff.name.clone(),
            role_label: self
                .t
                .label(self.staff.role.label_zh(), self.staff.role.label_en()),
            branch: self.staff.branch.clone(),
            nav,
            csrf: self.csrf.clone(),
            path: self.here.clone(),
        }
    }
}

pub struct NavView {
    pub key: &'static str,
    pub label: String,
    pub href: Option<String>,
    pub active: bool,
}

pub struct Chrome {
    pub t: Tr,
    pub user_name: String,
    pub role_label: &'static str,
    pub branch: Option<String>,
    pub nav: Vec<NavView>,
    pub csrf: String,
    pub path: String,
}

/// A section that a later capability adds to a page (risk level, behaviour timeline,
/// recommendations, bills): shown only when it has data.
pub struct Panel {
    pub id: &'static str,
    pub title: String,
    pub body_html: String,
}

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl {
    t: Tr,
    csrf: String,
    next: String,
    next_q: String,
    staff_id: String,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    lang: Option<String>,
}

fn login_page(
    s: &AppState,
    lang: Lang,
    next: &str,
    staff_id: &str,
    message: Option<String>,
    set_lang: bool,
) -> Response {
    let csrf = auth::random_token();
    let t = Tr::new(lang, s.cfg.offset);
    let mut r = render(&LoginTpl {
        t,
        csrf: csrf.clone(),
        next: next.to_string(),
        next_q: urlencode(next),
        staff_id: staff_id.to_string(),
        message,
    });
    let h = r.headers_mut();
    h.append(
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
    if set_lang {
        h.append(
            header::SET_COOKIE,
            lang_cookie(lang, s.web.cfg.secure_cookies),
        );
    }
    r
}

pub async fn login_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let chosen = q.lang.as_deref().and_then(Lang::parse);
    let lang = chosen.unwrap_or_else(|| request_lang(&headers));
    let t = Tr::new(lang, s.cfg.offset);
    let message = q.expired.is_some().then(|| t.s("auth.expired").to_string());
    login_page(
        &s,
        lang,
        &safe_next(q.next.as_deref()),
        "",
        message,
        chosen.is_some(),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    staff_id: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(s): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let lang = request_lang(&headers);
    let t = Tr::new(lang, s.cfg.offset);
    super::csrf_ok(cookie(&headers, LOGIN_CSRF_COOKIE), &f.csrf)?;
    let next = safe_next(Some(&f.next));
    let id = f.staff_id.trim().to_string();
    if id.is_empty() || id.chars().count() > 64 || f.password.len() > 256 {
        return Err(PageError::BadField {
            key: "error.bad_login_field",
            value: id.chars().take(64).collect(),
        });
    }
    let now = Utc::now();
    let login = s.store.staff_login(&id).await?;
    let wrong = || {
        login_page(
            &s,
            lang,
            &next,
            &id,
            Some(t.s("auth.wrong").to_string()),
            false,
        )
    };
    let audit = |action, branch: Option<String>| super::admin::Audit::new(&id, branch, action);
    let Some(login) = login else {
        // Same work as a wrong password, so a response time does not tell which ids exist.
        let pw = f.password.clone();
        let _ = tokio::task::spawn_blocking(move || auth::verify_password(&pw, auth::dummy_hash()))
            .await;
        audit(AuditAction::LoginFailed, None).record(&s, &client).await?;
        return Ok(wrong());
    };
    let branch = login.staff.branch.clone();
    if let Some(until) = login.locked_until.filter(|u| *u > now) {
        audit(AuditAction::LoginLocked, branch).record(&s, &client).await?;
        let msg = t.f("auth.locked", &[("time", &t.datetime(until))]);
        return Ok(login_page(&s, lang, &next, &id, Some(msg), false));
    }
    let (pw, hash) = (f.password.clone(), login.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    if !ok {
        let cfg = &s.web.cfg;
        let failed = s
            .store
            .record_failed_login(
                &id,
                cfg.max_failed_logins,
                Duration::minutes(cfg.lockout_minutes),
                now,
            )
            .await?;
        let action = if failed.locked_until.is_some() {
            AuditAction::LoginLocked
        } else {
            AuditAction::LoginFailed
        };
        audit(action, branch).record(&s, &client).await?;
        if let Some(until) = failed.locked_until {
            let msg = t.f("auth.locked", &[("time", &t.datetime(until))]);
            return Ok(login_page(&s, lang, &next, &id, Some(msg), false));
        }
        return Ok(wrong());
    }
    s.store.clear_failed_logins(&id).await?;
    let lang = Lang::parse(&login.lang).unwrap_or_default();
    let token = auth::random_token();
    let hours = s.web.cfg.session_hours.max(1);
    s.store
        .create_session(
            &auth::token_digest(&token),
            &WebSession {
                kind: SubjectKind::Staff,
                subject_id: id.clone(),
                csrf_token: auth::random_token(),
                lang: lang.code().to_string(),
                expires_at: now + Duration::hours(hours),
            },
            now,
        )
        .await?;
    audit(AuditAction::Login, branch).record(&s, &client).await?;
    let mut r = Redirect::to(&next).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        CookieSpec {
            name: STAFF_COOKIE,
            value: &token,
            path: "/",
            max_age: Some(hours * 3600),
            http_only: true,
            same_site: "Lax",
            secure: s.web.cfg.secure_cookies,
        }
        .header(),
    );
    h.append(
        header::SET_COOKIE,
        lang_cookie(lang, s.web.cfg.secure_cookies),
    );
    Ok(r)
}

pub async fn logout(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf)?;
    s.store.delete_session(&ctx.token_hash).await?;
    ctx.audit(AuditAction::Logout).record(&s, &client).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        CookieSpec {
            name: STAFF_COOKIE,
            value: "",
            path: "/",
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
    ctx: StaffCtx,
    Form(f): Form<LangForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&f.csrf)?;
    let lang = Lang::parse(&f.lang).ok_or(PageError::BadField {
        key: "error.bad_lang",
        value: f.lang.clone(),
    })?;
    s.store
        .set_session_lang(&ctx.token_hash, lang.code())
        .await?;
    s.store
        .set_staff_lang(&ctx.staff.external_id, lang.code())
        .await?;
    let mut r = Redirect::to(&safe_next(Some(&f.back))).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        lang_cookie(lang, s.web.cfg.secure_cookies),
    );
    Ok(r)
}

// ---------------------------------------------------------------- home

#[derive(Template)]
#[template(path = "home.html")]
struct HomeTpl {
    c: Chrome,
    scope: String,
    customers: String,
    assets: String,
    loans: String,
    products: String,
    assets_chart: String,
    tiers_chart: String,
    show_customers_link: bool,
    /// A customer manager's largest customers: (number, name, tier, assets).
    top: Vec<(String, String, &'static str, String)>,
}

pub async fn home(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    let t = ctx.t;
    let me = &ctx.staff;
    let (summary, scope) = match me.role {
        Role::CustomerManager => (
            s.store.book_summary(Some(&me.external_id), None).await?,
            t.s("home.scope_book").to_string(),
        ),
        Role::BranchHead if me.branch.is_some() => {
            let b = me.branch.clone().unwrap_or_default();
            (
                s.web.summary(&s.store, Some(&b)).await?,
                t.f("home.scope_branch", &[("branch", &b)]),
            )
        }
        _ => (
            s.web.summary(&s.store, None).await?,
            t.s("home.scope_bank").to_string(),
        ),
    };
    let assets: Fen = summary
        .by_class
        .iter()
        .filter(|(c, _)| !c.is_liability())
        .map(|(_, f)| *f)
        .sum();
    let loans: Fen = summary
        .by_class
        .iter()
        .filter(|(c, _)| c.is_liability())
        .map(|(_, f)| *f)
        .sum();
    let products = s.store.list_products(None).await?.len() as i64;
    let class_data: Vec<Datum> = summary
        .by_class
        .iter()
        .map(|(c, f)| Datum::new(t.label(c.label_zh(), c.label_en()), f.0, t.yuan(*f)))
        .collect();
    let assets_chart = charts::bar(
        &Frame {
            id: "chart-assets",
            title: t.s("home.chart_assets"),
            desc: &t.f("home.chart_assets_desc", &[("scope", &scope)]),
            label_header: t.s("holding.class"),
            value_header: t.s("holding.balance"),
        },
        &class_data,
    );
    let tier_data: Vec<Datum> = summary
        .by_tier
        .iter()
        .map(|(v, n)| Datum::new(t.label(v.label_zh(), v.label_en()), *n, t.int(*n)))
        .collect();
    let tiers_chart = charts::donut(
        &Frame {
            id: "chart-tiers",
            title: t.s("home.chart_tiers"),
            desc: &t.f("home.chart_tiers_desc", &[("scope", &scope)]),
            label_header: t.s("customer.tier"),
            value_header: t.s("home.customers"),
        },
        &tier_data,
        &t.int(summary.customers),
    );
    let top = if me.role == Role::CustomerManager {
        s.store
            .top_customers_of_manager(&me.external_id, 10)
            .await?
            .into_iter()
            .map(|c| {
                (
                    c.external_id,
                    c.name,
                    t.label(c.vip_tier.label_zh(), c.vip_tier.label_en()),
                    t.money(c.assets),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(render(&HomeTpl {
        top,
        scope,
        customers: t.int(summary.customers),
        assets: t.yuan(assets),
        loans: t.yuan(loans),
        products: t.int(products),
        assets_chart,
        tiers_chart,
        show_customers_link: nav::can(me.role, Perm::Customers),
        c: ctx.chrome(),
    }))
}

// ---------------------------------------------------------------- customers

pub(crate) struct CustomerLine {
    pub number: String,
    pub name: String,
    pub gender: &'static str,
    pub age: String,
    pub phone: String,
    pub branch: String,
    pub manager: String,
    pub tier: &'static str,
}

#[derive(Template)]
#[template(path = "customers.html")]
struct CustomersTpl {
    c: Chrome,
    q: String,
    scope: String,
    scopes: Vec<(&'static str, String)>,
    rows: Vec<CustomerLine>,
    first_href: Option<String>,
    next_href: Option<String>,
}

const PAGE: i64 = 50;

pub async fn customers(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Customers)?;
    let t = ctx.t;
    let me = &ctx.staff;
    let text = q.get("q").map(|v| v.trim().to_string()).unwrap_or_default();
    if text.chars().count() > 64 {
        return Err(PageError::BadField {
            key: "error.bad_search",
            value: text.chars().take(64).collect(),
        });
    }
    let after = match q.get("after").map(String::as_str).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(PageError::BadField {
                    key: "error.bad_after",
                    value: v.chars().take(32).collect(),
                })
            }
        },
    };
    let default_scope = match me.role {
        Role::CustomerManager => "mine",
        Role::BranchHead if me.branch.is_some() => "branch",
        _ => "all",
    };
    let scope = q
        .get("scope")
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or(default_scope)
        .to_string();
    let (manager_id, branch) = match scope.as_str() {
        "mine" if me.role == Role::CustomerManager => (Some(me.external_id.clone()), None),
        "branch" if me.branch.is_some() => (None, me.branch.clone()),
        "all" => (None, None),
        _ => {
            return Err(PageError::BadField {
                key: "error.bad_scope",
                value: scope.chars().take(32).collect(),
            })
        }
    };
    let mut scopes = vec![("all", t.s("customers.scope_all").to_string())];
    if me.branch.is_some() {
        scopes.insert(0, ("branch", t.s("customers.scope_branch").to_string()));
    }
    if me.role == Role::CustomerManager {
        scopes.insert(0, ("mine", t.s("customers.scope_mine").to_string()));
    }
    let mut rows = s
        .store
        .search_customers_paged(&CustomerQuery {
            text: (!text.is_empty()).then(|| text.clone()),
            manager_id,
            branch,
            after,
            limit: PAGE + 1,
        })
        .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let base = format!(
        "/customers?q={}&scope={}",
        urlencode(&text),
        urlencode(&scope)
    );
    let next_href = more
        .then(|| rows.last().map(|r| format!("{base}&after={}", r.id)))
        .flatten();
    let first_href = after.is_some().then(|| base.clone());
    let today = s.today();
    let lines = rows
        .into_iter()
        .map(|r| {
            let c = r.customer;
            CustomerLine {
                age: c
                    .age_on(today)
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "—".into()),
                phone: c
                    .phone
                    .as_deref()
                    .map(mask::phone)
                    .unwrap_or_else(|| "—".into()),
                gender: t.label(c.gender.label_zh(), c.gender.label_en()),
                branch: c.branch.unwrap_or_default(),
                manager: c.manager_id.unwrap_or_default(),
                tier: t.label(c.vip_tier.label_zh(), c.vip_tier.label_en()),
                number: c.external_id,
                name: c.name,
            }
        })
        .collect();
    Ok(render(&CustomersTpl {
        c: ctx.chrome(),
        q: text,
        scope,
        scopes,
        rows: lines,
        first_href,
        next_href,
    }))
}

pub(crate) struct HoldingLine {
    pub class: &'static str,
    pub product: String,
    pub code: Option<String>,
    pub balance: String,
    pub opened: String,
    pub as_of: String,
}

pub(crate) struct TxnLine {
    pub time: String,
    pub category: &'static str,
    pub channel: &'static str,
    pub amount: String,
    pub dir: &'static str,
    pub description: String,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerTpl {
    c: Chrome,
    name: String,
    number: String,
    tier: &'static str,
    facts: Vec<(String, String)>,
    unmasked: bool,
    net_worth: String,
    assets_chart: String,
    flows_chart: String,
    holdings: Vec<HoldingLine>,
    txns: Vec<TxnLine>,
    panels: Vec<Panel>,
}

/// The allocation of a customer's assets (liabilities left out) as a donut.
pub(crate) fn allocation_chart(
    t: &Tr,
    id: &str,
    totals: &[kehu_store::ClassTotal],
    net: Fen,
) -> String {
    let data: Vec<Datum> = totals
        .iter()
        .filter(|c| !c.asset_class.is_liability())
        .map(|c| Datum::new(t.label(c.label_zh, c.label_en), c.total.0, t.money(c.total)))
        .collect();
    charts::donut(
        &Frame {
            id,
            title: t.s("customer.chart_allocation"),
            desc: t.s("customer.chart_allocation_desc"),
            label_header: t.s("holding.class"),
            value_header: t.s("holding.balance"),
        },
        &data,
        &t.yuan(net),
    )
}

pub(crate) fn holding_lines(t: &Tr, c: &kehu_store::Customer360) -> Vec<HoldingLine> {
    c.holdings
        .iter()
        .map(|h| HoldingLine {
            class: t.label(
                h.holding.asset_class.label_zh(),
                h.holding.asset_class.label_en(),
            ),
            product: h
                .product_name
                .clone()
                .or_else(|| h.holding.product_code.clone())
                .unwrap_or_else(|| "—".into()),
            code: h.holding.product_code.clone(),
            balance: t.money(h.holding.balance),
            opened: t.opt_date(&h.holding.opened_on),
            as_of: t.date(h.holding.as_of),
        })
        .collect()
}

pub async fn customer(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    // The role is checked before anything is read: a refused page holds no customer data.
    ctx.require(Perm::Customers)?;
    let t = ctx.t;
    let id = s
        .store
        .customer_id(&key)
        .await?
        .ok_or(PageError::NotFound)?;
    let c = s
        .store
        .customer_360(id, s.cfg.recent_transactions)
        .await?
        .ok_or(PageError::NotFound)?;
    let now = Utc::now();
    let today = now.with_timezone(&s.cfg.offset).date_naive();
    let cu = &c.customer;
    let unmasked = !s.cfg.mask_personal_data
        || nav::may_unmask(
            ctx.staff.role,
            &ctx.staff.external_id,
            cu.manager_id.as_deref(),
        );
    if unmasked && s.cfg.mask_personal_data {
        // Written before the page is sent: no full view without its audit row.
        let fields = [
            ("phone", cu.phone.is_some()),
            ("id_number", cu.id_number.is_some()),
            ("birth_date", cu.birth_date.is_some()),
        ];
        super::admin::Audit {
            customer: Some(cu.external_id.clone()),
            fields: fields.iter().filter(|f| f.1).map(|f| f.0.to_string()).collect(),
            ..ctx.audit(AuditAction::Unmask)
        }
        .record(&s, &client)
        .await?;
    }
    let show = |v: &Option<String>, m: fn(&str) -> String| match v {
        None => "—".to_string(),
        Some(v) if unmasked => v.clone(),
        Some(v) => m(v),
    };
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let facts = vec![
        (
            t.s("customer.gender").to_string(),
            t.label(cu.gender.label_zh(), cu.gender.label_en())
                .to_string(),
        ),
        (
            t.s("customer.age").to_string(),
            cu.age_on(today)
                .map(|a| a.to_string())
                .unwrap_or_else(|| "—".into()),
        ),
        (
            t.s("customer.birth_date").to_string(),
            if unmasked {
                t.opt_date(&cu.birth_date)
            } else {
                cu.birth_date
                    .map(|d| d.format("%Y").to_string())
                    .unwrap_or_else(|| "—".into())
            },
        ),
        (
            t.s("customer.phone").to_string(),
            show(&cu.phone, mask::phone),
        ),
        (
            t.s("customer.id_number").to_string(),
            show(&cu.id_number, mask::id_number),
        ),
        (
            t.s("customer.income").to_string(),
            cu.income_band
                .map(|b| t.label(b.label_zh(), b.label_en()).to_string())
                .unwrap_or_else(|| "—".into()),
        ),
        (t.s("customer.occupation").to_string(), dash(&cu.occupation)),
        (t.s("customer.branch").to_string(), dash(&cu.branch)),
        (t.s("customer.manager").to_string(), dash(&cu.manager_id)),
        (t.s("customer.consent").to_string(), consent_text(&t, cu)),
        (
            t.s("customer.personalization").to_string(),
            t.s(if cu.personalization {
                "common.on"
            } else {
                "common.off"
            })
            .to_string(),
        ),
    ];
    let flows = s.store.monthly_flows(id, 12, now, s.cfg.offset).await?;
    let x: Vec<String> = flows.iter().map(|f| t.short_month(f.month)).collect();
    let flows_chart = charts::line(
        &Frame {
            id: "chart-flows",
            title: t.s("customer.chart_flows"),
            desc: t.s("customer.chart_flows_desc"),
            label_header: t.s("common.month"),
            value_header: t.s("txn.amount"),
        },
        &x,
        &[
            (
                t.s("txn.in").to_string(),
                flows.iter().map(|f| f.inflow.0).collect(),
            ),
            (
                t.s("txn.out").to_string(),
                flows.iter().map(|f| f.outflow.0).collect(),
            ),
        ],
        &|v| t.yuan(Fen(v)),
    );
    let txns = c
        .recent_transactions
        .iter()
        .map(|x| TxnLine {
            time: t.datetime(x.occurred_at),
            category: t.label(x.category.label_zh(), x.category.label_en()),
            channel: t.label(x.channel.label_zh(), x.channel.label_en()),
            amount: match x.direction {
                Direction::In => format!("+{}", t.money(x.amount)),
                Direction::Out => format!("-{}", t.money(x.amount)),
            },
            dir: if x.direction == Direction::In {
                "in"
            } else {
                "out"
            },
            description: x.description.clone().unwrap_or_default(),
        })
        .collect();
    Ok(render(&CustomerTpl {
        name: cu.name.clone(),
        number: cu.external_id.clone(),
        tier: t.label(cu.vip_tier.label_zh(), cu.vip_tier.label_en()),
        facts,
        unmasked,
        net_worth: t.money(c.net_worth),
        assets_chart: allocation_chart(&t, "chart-allocation", &c.totals, c.net_worth),
        flows_chart,
        holdings: holding_lines(&t, &c),
        txns,
        // Bills join here when that capability lands.
        panels: behaviour_panels(&s, &t, id).await?,
        c: ctx.chrome(),
    }))
}

fn consent_text(t: &Tr, c: &kehu_domain::state::Customer) -> String {
    let mut parts = Vec::new();
    for (on, key) in [
        (c.consent_sms, "customer.consent_sms"),
        (c.consent_push, "customer.consent_push"),
        (c.consent_call, "customer.consent_call"),
    ] {
        if on {
            parts.push(t.s(key));
        }
    }
    if parts.is_empty() {
        t.s("common.none").to_string()
    } else {
        parts.join(" · ")
    }
}

// ---------------------------------------------------------------- products

pub(crate) struct ProductView {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub risk: String,
    pub min_purchase: String,
    pub term: String,
    pub yield_: String,
    pub window: String,
    pub status: String,
    pub repeatable: String,
}

pub(crate) fn product_view(
    t: &Tr,
    p: &kehu_domain::state::Product,
    today: chrono::NaiveDate,
) -> ProductView {
    ProductView {
        code: p.code.clone(),
        name: p.name.clone(),
        kind: t.label(p.kind.label_zh(), p.kind.label_en()),
        risk: format!(
            "{} {}",
            p.risk_level.code(),
            t.label(p.risk_level.label_zh(), p.risk_level.label_en())
        ),
        min_purchase: t.money(p.min_purchase),
        term: p
            .term_days
            .map(|d| t.f("product.days", &[("n", &d.to_string())]))
            .unwrap_or_else(|| "—".into()),
        yield_: p
            .expected_yield
            .map(|y| y.to_percent_string())
            .unwrap_or_else(|| "—".into()),
        window: format!(
            "{} – {}",
            t.opt_date(&p.sale_start),
            t.opt_date(&p.sale_end)
        ),
        status: t
            .s(if p.on_sale(today) {
                "product.on_sale"
            } else {
                "product.off_sale"
            })
            .to_string(),
        repeatable: t
            .s(if p.repeatable {
                "common.yes"
            } else {
                "common.no"
            })
            .to_string(),
    }
}

#[derive(Template)]
#[template(path = "products.html")]
struct ProductsTpl {
    c: Chrome,
    kind: String,
    kinds: Vec<(&'static str, &'static str)>,
    rows: Vec<ProductView>,
}

pub async fn products(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Products)?;
    let t = ctx.t;
    let kind_s = q.get("kind").cloned().unwrap_or_default();
    let kind = match kind_s.as_str() {
        "" => None,
        k => Some(ProductKind::parse(k).ok_or(PageError::BadField {
            key: "error.bad_kind",
            value: k.chars().take(32).collect(),
        })?),
    };
    let today = s.today();
    let rows = s
        .store
        .list_products(kind)
        .await?
        .iter()
        .map(|r| product_view(&t, &r.product, today))
        .collect();
    let kinds = ProductKind::ALL
        .iter()
        .map(|k| (k.code(), t.label(k.label_zh(), k.label_en())))
        .collect();
    Ok(render(&ProductsTpl {
        c: ctx.chrome(),
        kind: kind.map(|k| k.code().to_string()).unwrap_or_default(),
        kinds,
        rows,
    }))
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductTpl {
    c: Chrome,
    p: ProductView,
    panels: Vec<Panel>,
}

pub async fn product(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Products)?;
    let today = s.today();
    let ask = super::admin::funnel_ask(&q, today)?;
    let p = s.store.product(&code).await?.ok_or(PageError::NotFound)?;
    Ok(render(&ProductTpl {
        p: product_view(&ctx.t, &p.product, today),
        panels: funnel_panel(&s, &ctx.t, &p.product.code, p.id, &ask).await?.into_iter().collect(),
        c: ctx.chrome(),
    }))
}

// ---------------------------------------------------------------- admin

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffTpl {
    c: Chrome,
    /// (login state, id, name, role, branch)
    rows: Vec<(String, String, String, &'static str, String)>,
    truncated: bool,
    tab: &'static str,
}

pub async fn staff(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    ctx.require(Perm::StaffAdmin)?;
    let t = ctx.t;
    let now = Utc::now();
    let locks: HashMap<String, Option<chrono::DateTime<Utc>>> =
        s.store.staff_login_locks().await?.into_iter().collect();
    let all = s.store.staff_list(None).await?;
    let truncated = all.len() > 500;
    // Staff with a login first.
    let (with, without): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|m| locks.contains_key(&m.external_id));
    let rows = with
        .into_iter()
        .chain(without)
        .take(500)
        .map(|m| {
            (
                match locks.get(&m.external_id) {
                    None => t.s("staff.no_login").to_string(),
                    Some(Some(until)) if *until > now => {
                        t.f("staff.locked_until", &[("time", &t.datetime(*until))])
                    }
                    Some(_) => t.s("staff.can_log_in").to_string(),
                },
                m.external_id,
                m.name,
                t.label(m.role.label_zh(), m.role.label_en()),
                m.branch.unwrap_or_default(),
            )
        })
        .collect();
    Ok(render(&StaffTpl {
        tab: "staff",
        c: ctx.chrome(),
        rows,
        truncated,
    }))
}

// ---------------------------------------------------------------- behaviour panels

/// The customer's risk level and its expiry (or that one is needed), the latest
/// behaviour events, and the recommendations with their reasons.
async fn behaviour_panels(s: &AppState, t: &Tr, cid: i64) -> Result<Vec<Panel>, PageError> {
    use super::charts::esc;
    use kehu_domain::decide::suitability::{Assessment, RiskTolerance};
    let mut panels = Vec::new();
    let cfg = &s.behaviour.cfg.suitability;
    let today = s.today();
    let risk = match s.store.assessments(cid).await?.first() {
        Some(r) => match RiskTolerance::parse(&r.level) {
            Some(level) => {
                let a = Assessment { level, assessed_on: r.assessed_on };
                let until = t.date(a.valid_until(cfg));
                if a.valid_on(cfg, today) {
                    format!(
                        "<p id=\"risk-state\" data-level=\"{}\">{}</p>",
                        level.code(),
                        esc(&t.f("customer.risk_valid", &[("level", level.code()), ("label", t.label(level.label_zh(), level.label_en())), ("until", &until)]))
                    )
                } else {
                    format!("<p id=\"risk-state\" class=\"warn\">{}</p>", esc(&t.f("customer.risk_expired", &[("level", level.code()), ("until", &until)])))
                }
            }
            None => format!("<p id=\"risk-state\" class=\"warn\">{}</p>", esc(t.s("customer.risk_must_assess"))),
        },
        None => format!("<p id=\"risk-state\" class=\"warn\">{}</p>", esc(t.s("customer.risk_must_assess"))),
    };
    panels.push(Panel { id: "risk", title: t.s("customer.risk_title").to_string(), body_html: risk });

    let events = s.store.customer_events(cid, 15).await?;
    if !events.is_empty() {
        let mut h = format!(
            "<table class=\"list\" id=\"behaviour-timeline\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            esc(t.s("behaviour.time")),
            esc(t.s("behaviour.event")),
            esc(t.s("behaviour.product")),
            esc(t.s("behaviour.detail"))
        );
        for e in &events {
            let at = chrono::DateTime::from_timestamp_millis(e.ts_ms).map(|d| t.datetime(d)).unwrap_or_default();
            let mut detail = Vec::new();
            if let Some(d) = e.dwell_ms {
                detail.push(t.f("behaviour.dwell", &[("s", &(d / 1000).to_string())]));
            }
            if let Some(d) = e.depth {
                detail.push(t.f("behaviour.depth", &[("pct", &d.to_string())]));
            }
            if let Some(a) = e.amount_fen {
                detail.push(t.money(kehu_domain::money::Fen(a)));
            }
            h.push_str(&format!(
                "<tr data-kind=\"{}\" data-product=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.kind.code(),
                esc(e.product_code.as_deref().unwrap_or("")),
                esc(&at),
                esc(t.label(e.kind.label_zh(), e.kind.label_en())),
                esc(e.product_name.as_deref().unwrap_or("—")),
                esc(&detail.join(" · "))
            ));
        }
        h.push_str("</tbody></table>");
        panels.push(Panel { id: "behaviour", title: t.s("behaviour.title").to_string(), body_html: h });
    }

    if let Some(d) = super::app::home_decision(s, cid, 5, "staff:customer").await? {
        panels.push(Panel {
            id: "recommendations",
            title: t.s("rec.staff_title").to_string(),
            body_html: super::app::recommendations_html(t, &d, false),
        });
    }
    Ok(panels)
}

/// View → detail → purchase of one product over a date range (the last 30 days unless
/// asked), for all customers or those of a segment (distinct customers), with the form
/// that asks.
async fn funnel_panel(
    s: &AppState,
    t: &Tr,
    code: &str,
    product_id: i64,
    ask: &super::admin::FunnelAsk,
) -> Result<Option<Panel>, PageError> {
    let ms = |d| super::admin::day_start(s, d).timestamp_millis();
    let cfg = &s.behaviour.cfg;
    let rows = s
        .store
        .funnel_filtered(
            ms(ask.from),
            ms(ask.to + chrono::Days::new(1)),
            None,
            Some(product_id),
            &ask.filter,
            cfg.detail_dwell_ms,
            cfg.detail_depth,
            ask.to,
        )
        .await?;
    let r = rows.into_iter().find(|r| r.product_id == product_id).unwrap_or_default();
    let empty = r.viewed == 0 && r.purchased == 0;
    if empty && !ask.asked {
        return Ok(None);
    }
    let segment = {
        use kehu_domain::state::{Gender, IncomeBand};
        let f = &ask.filter;
        let mut parts = Vec::new();
        if let Some(g) = f.gender.as_deref().and_then(Gender::parse) {
            parts.push(t.label(g.label_zh(), g.label_en()).to_string());
        }
        if let Some(a) = &f.age_band {
            parts.push(t.f("funnel.age", &[("band", a)]));
        }
        if let Some(b) = f.income_band.as_deref().and_then(IncomeBand::parse) {
            parts.push(t.label(b.label_zh(), b.label_en()).to_string());
        }
        if parts.is_empty() {
            t.s("funnel.all_customers").to_string()
        } else {
            parts.join(" · ")
        }
    };
    let mut body = super::admin::funnel_form(t, code, ask);
    body.push_str(&format!(
        "<p id=\"funnel-counts\" data-viewed=\"{}\" data-detail=\"{}\" data-purchased=\"{}\">{}</p>",
        r.viewed,
        r.detail,
        r.purchased,
        charts::esc(&t.f("funnel.segment", &[("segment", &segment)]))
    ));
    if empty {
        body.push_str(&format!("<p class=\"muted\" id=\"funnel-empty\">{}</p>", charts::esc(t.s("funnel.none"))));
    } else {
        let steps = [
            charts::Datum::new(t.s("funnel.viewed"), r.viewed, t.int(r.viewed)),
            charts::Datum::new(t.s("funnel.detail"), r.detail, t.int(r.detail)),
            charts::Datum::new(t.s("funnel.purchased"), r.purchased, t.int(r.purchased)),
        ];
        let desc = t.f(
            "funnel.desc",
            &[("from", &t.date(ask.from)), ("to", &t.date(ask.to)), ("segment", &segment)],
        );
        body.push_str(&charts::funnel(
            &charts::Frame {
                id: "chart-funnel",
                title: t.s("funnel.title"),
                desc: &desc,
                label_header: t.s("funnel.step"),
                value_header: t.s("funnel.customers"),
            },
            &steps,
        ));
    }
    Ok(Some(Panel { id: "funnel", title: t.s("funnel.title").to_string(), body_html: body }))
}
