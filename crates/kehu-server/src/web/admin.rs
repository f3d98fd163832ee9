//! The administrator's pages besides staff accounts: the audit trail, app keys, and the
//! behaviour settings in use (risk questionnaire, suitability rules, recommendation
//! weights and levers). Also the one place where audit entries are written.

use super::charts::esc;
use super::i18n::Tr;
use super::nav::Perm;
use super::pages::{Chrome, StaffCtx};
use super::{render, urlencode, Client, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, NaiveDate, Utc};
use kehu_store::{AuditAction, AuditEntry, AuditQuery};
use serde::Deserialize;
use std::collections::HashMap;

// ---------------------------------------------------------------- writing the trail

/// An audit entry about to be written.
#[derive(Debug, Clone)]
pub struct Audit {
    pub staff_id: String,
    pub branch: Option<String>,
    pub action: AuditAction,
    pub customer: Option<String>,
    pub fields: Vec<String>,
    pub detail: Option<String>,
}

impl Audit {
    pub fn new(staff_id: &str, branch: Option<String>, action: AuditAction) -> Audit {
        Audit {
            staff_id: staff_id.to_string(),
            branch,
            action,
            customer: None,
            fields: Vec::new(),
            detail: None,
        }
    }

    /// Writes the entry (one insert) and mirrors it to the `kehu::audit` log target. A
    /// failed write fails the request: no login and no full view without its record.
    pub async fn record(self, s: &AppState, client: &Client) -> Result<(), PageError> {
        tracing::info!(
            target: "kehu::audit",
            staff = %self.staff_id,
            action = self.action.code(),
            customer = self.customer.as_deref().unwrap_or(""),
            fields = %self.fields.join(","),
            ip = client.ip.as_deref().unwrap_or(""),
            "audit"
        );
        s.store
            .record_audit(&AuditEntry {
                id: 0,
                at: Utc::now(),
                staff_id: self.staff_id,
                branch: self.branch,
                action: self.action,
                customer: self.customer,
                fields: self.fields,
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
                detail: self.detail,
            })
            .await?;
        Ok(())
    }
}

/// The label of an action in the reader's language.
fn action_label(t: &Tr, a: AuditAction) -> String {
    t.s(&format!("audit_action.{}", a.code())).to_string()
}

fn field_label(t: &Tr, f: &str) -> String {
    match f {
        "phone" => t.s("customer.phone").to_string(),
        "id_number" => t.s("customer.id_number").to_string(),
        "birth_date" => t.s("customer.birth_date").to_string(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- the audit page

pub struct AuditLine {
    pub id: i64,
    pub time: String,
    pub staff: String,
    pub branch: String,
    pub action_code: &'static str,
    pub action: String,
    pub customer: Option<String>,
    pub fields: String,
    pub ip: String,
    pub agent: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTpl {
    c: Chrome,
    tab: &'static str,
    staff: String,
    action: String,
    from: String,
    to: String,
    actions: Vec<(&'static str, String)>,
    rows: Vec<AuditLine>,
    first_href: Option<String>,
    next_href: Option<String>,
}

const AUDIT_PAGE: i64 = 50;

fn bad(key: &'static str, v: &str) -> PageError {
    PageError::BadField {
        key,
        value: v.chars().take(64).collect(),
    }
}

/// A `YYYY-MM-DD` query value, or none when empty.
fn query_date(q: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, PageError> {
    match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => kehu_domain::ingest::fields::parse_date(v)
            .map(Some)
            .ok_or_else(|| bad("error.bad_date", v)),
    }
}

/// The start of a calendar day in the configured zone, as UTC.
pub(crate) fn day_start(s: &AppState, d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|x| x.and_local_timezone(s.cfg.offset).single())
        .map(|x| x.with_timezone(&Utc))
        .unwrap_or_default()
}

/// The audit trail, newest first, filtered by staff id, action and days; administrators
/// only (the trail names every staff member's logins and the customers they looked at).
pub async fn audit_log(
    State(s): State<AppState>,
    ctx: StaffCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    ctx.require(Perm::Audit)?;
    let t = ctx.t;
    let staff = q.get("staff").map(|v| v.trim().to_string()).unwrap_or_default();
    if staff.chars().count() > 64 {
        return Err(bad("error.bad_search", &staff));
    }
    let action_s = q.get("action").cloned().unwrap_or_default();
    let action = match action_s.as_str() {
        "" => None,
        a => Some(AuditAction::parse(a).ok_or_else(|| bad("error.bad_action", a))?),
    };
    let from = query_date(&q, "from")?;
    let to = query_date(&q, "to")?;
    if let (Some(f), Some(x)) = (from, to) {
        if f > x {
            return Err(bad("error.bad_range", &format!("{f} > {x}")));
        }
    }
    let before = match q.get("before").map(String::as_str).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad("error.bad_after", v)),
        },
    };
    let mut rows = s
        .store
        .audit_entries(&AuditQuery {
            staff_id: (!staff.is_empty()).then(|| staff.clone()),
            action,
            from: from.map(|d| day_start(&s, d)),
            to: to.map(|d| day_start(&s, d + chrono::Days::new(1))),
            before,
            limit: AUDIT_PAGE + 1,
        })
        .await?;
    let more = rows.len() as i64 > AUDIT_PAGE;
    rows.truncate(AUDIT_PAGE as usize);
    let fmt = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let base = format!(
        "/admin/audit?staff={}&action={}&from={}&to={}",
        urlencode(&staff),
        urlencode(&action_s),
        fmt(from),
        fmt(to)
    );
    let next_href = more
        .then(|| rows.last().map(|r| format!("{base}&before={}", r.id)))
        .flatten();
    let first_href = before.is_some().then(|| base.clone());
    let lines = rows
        .into_iter()
        .map(|e| AuditLine {
            id: e.id,
            time: t.datetime(e.at),
            action_code: e.action.code(),
            action: action_label(&t, e.action),
            staff: e.staff_id,
            branch: e.branch.unwrap_or_default(),
            customer: e.customer,
            fields: e
                .fields
                .iter()
                .map(|f| field_label(&t, f))
                .collect::<Vec<_>>()
                .join(" · "),
            ip: e.ip.unwrap_or_default(),
            agent: e.user_agent.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    Ok(render(&AuditTpl {
        tab: "audit",
        staff,
        action: action.map(|a| a.code().to_string()).unwrap_or_default(),
        from: fmt(from),
        to: fmt(to),
        actions: AuditAction::ALL
            .iter()
            .map(|a| (a.code(), action_label(&t, *a)))
            .collect(),
        rows: lines,
        first_href,
        next_href,
        c: ctx.chrome(),
    }))
}

// ---------------------------------------------------------------- app keys

pub struct AppKeyLine {
    pub name: String,
    pub created: String,
    pub revoked: bool,
    /// kehu's own web app: revoked on the command line only (the pages need it).
    pub own: bool,
    /// API tokens: the staff member the token acts for.
    pub staff: Option<String>,
}

/// The two kinds of credential an administrator hands out on one page shape: app keys
/// (write behaviour events only) and API tokens (call `/api/v1/*`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    AppKey,
    ApiToken,
}

impl Credential {
    pub fn path(self) -> &'static str {
        match self {
            Credential::AppKey => "/admin/app-keys",
            Credential::ApiToken => "/admin/api-tokens",
        }
    }
    /// The prefix of the page's element ids.
    pub fn id(self) -> &'static str {
        match self {
            Credential::AppKey => "app-key",
            Credential::ApiToken => "api-token",
        }
    }
    fn tab(self) -> &'static str {
        match self {
            Credential::AppKey => "app_keys",
            Credential::ApiToken => "api_tokens",
        }
    }
    /// API tokens may act for a staff member; app keys never do.
    pub fn acts_for_staff(self) -> bool {
        self == Credential::ApiToken
    }
    /// The catalog key of one of the strings that differ between the two pages.
    pub fn key(self, word: &str) -> &'static str {
        match (self, word) {
            (Credential::AppKey, "title") => "app_keys.title",
            (Credential::AppKey, "hint") => "app_keys.hint",
            (Credential::AppKey, "created") => "app_keys.created",
            (Credential::AppKey, "name") => "app_keys.name",
            (Credential::AppKey, _) => "app_keys.create",
            (Credential::ApiToken, "title") => "api_tokens.title",
            (Credential::ApiToken, "hint") => "api_tokens.hint",
            (Credential::ApiToken, "created") => "api_tokens.created",
            (Credential::ApiToken, "name") => "api_tokens.name",
            (Credential::ApiToken, _) => "api_tokens.create",
        }
    }
}

#[derive(Template)]
#[template(path = "app_keys.html")]
struct AppKeysTpl {
    c: Chrome,
    tab: &'static str,
    kind: Credential,
    rows: Vec<AppKeyLine>,
    /// A credential just created: (name, secret), shown this once.
    created: Option<(String, String)>,
}

async fn app_keys_page(
    s: &AppState,
    ctx: &StaffCtx,
    kind: Credential,
    created: Option<(String, String)>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let rows = match kind {
        Credential::AppKey => s
            .store
            .list_app_keys()
            .await?
            .into_iter()
            .map(|k| AppKeyLine {
                own: k.name == crate::behaviour::engine::WEB_APP,
                created: t.datetime(k.created_at),
                revoked: k.revoked,
                name: k.name,
                staff: None,
            })
            .collect(),
        Credential::ApiToken => s
            .store
            .list_api_tokens()
            .await?
            .into_iter()
            .map(|k| AppKeyLine {
                own: false,
                created: t.datetime(k.created_at),
                revoked: k.revoked,
                name: k.name,
                staff: k.staff,
            })
            .collect(),
    };
    Ok(render(&AppKeysTpl {
        c: ctx.chrome(),
        tab: kind.tab(),
        kind,
        rows,
        created,
    }))
}

pub async fn app_keys(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    ctx.require(Perm::AppKeys)?;
    app_keys_page(&s, &ctx, Credential::AppKey, None).await
}

pub async fn api_tokens(State(s): State<AppState>, ctx: StaffCtx) -> Result<Response, PageError> {
    ctx.require(Perm::AppKeys)?;
    app_keys_page(&s, &ctx, Credential::ApiToken, None).await
}

#[derive(Deserialize)]
pub struct AppKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// API tokens: the staff member the token acts for (empty: nobody).
    #[serde(default)]
    staff: String,
}

/// An app or token name: 1–64 letters, digits, `-`, `_` or `.`.
fn app_name(name: &str) -> Result<String, PageError> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(n.to_string())
    } else {
        Err(bad("error.bad_app_name", n))
    }
}

/// The checks of every credential form: the role, the token, the name.
fn app_key_form(ctx: &StaffCtx, f: &AppKeyForm) -> Result<String, PageError> {
    ctx.require(Perm::AppKeys)?;
    ctx.check_csrf(&f.csrf)?;
    app_name(&f.name)
}

/// Creates a credential and shows it once (the answer is the page itself, so the secret is
/// in no address and no redirect).
async fn create(
    s: AppState,
    client: Client,
    ctx: StaffCtx,
    f: AppKeyForm,
    kind: Credential,
) -> Result<Response, PageError> {
    let name = app_key_form(&ctx, &f)?;
    let made = match kind {
        Credential::AppKey => s.store.create_app_key(&name).await.map(|(_, key)| key),
        Credential::ApiToken => {
            let staff = f.staff.trim();
            if !staff.is_empty() && s.store.staff_member(staff).await?.is_none() {
                return Err(bad("error.unknown_staff", staff));
            }
            s.store.create_api_token(&name, Some(staff).filter(|st| !st.is_empty())).await
        }
    };
    let secret = match made {
        Ok(k) => k,
        Err(kehu_store::StoreError::Conflict(_)) => return Err(bad("error.app_key_exists", &name)),
        Err(e) => return Err(e.into()),
    };
    let action = match kind {
        Credential::AppKey => AuditAction::AppKeyCreate,
        Credential::ApiToken => AuditAction::ApiTokenCreate,
    };
    Audit {
        detail: Some(name.clone()),
        ..ctx.audit(action)
    }
    .record(&s, &client)
    .await?;
    app_keys_page(&s, &ctx, kind, Some((name, secret))).await
}

/// Revokes a credential; it is refused from the next request on this server.
async fn revoke(
    s: AppState,
    client: Client,
    ctx: StaffCtx,
    f: AppKeyForm,
    kind: Credential,
) -> Result<Response, PageError> {
    let name = app_key_form(&ctx, &f)?;
    let (revoked, action) = match kind {
        Credential::AppKey => {
            if name == crate::behaviour::engine::WEB_APP {
                return Err(bad("error.own_app_key", &name));
            }
            let r = s.store.revoke_app_key(&name).await?;
            // Not after the key cache's minute.
            s.behaviour.forget_app_keys();
            (r, AuditAction::AppKeyRevoke)
        }
        Credential::ApiToken => {
            let r = s.store.revoke_api_token(&name).await?;
            // Other servers sharing the database: within the lookup's 10 s.
            s.api_auth.forget();
            (r, AuditAction::ApiTokenRevoke)
        }
    };
    if !revoked {
        return Err(PageError::NotFound);
    }
    Audit {
        detail: Some(name),
        ..ctx.audit(action)
    }
    .record(&s, &client)
    .await?;
    Ok(Redirect::to(kind.path()).into_response())
}

pub async fn create_app_key(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Form(f): Form<AppKeyForm>,
) -> Result<Response, PageError> {
    create(s, client, ctx, f, Credential::AppKey).await
}

pub async fn create_api_token(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Form(f): Form<AppKeyForm>,
) -> Result<Response, PageError> {
    create(s, client, ctx, f, Credential::ApiToken).await
}

pub async fn revoke_app_key(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Form(f): Form<AppKeyForm>,
) -> Result<Response, PageError> {
    revoke(s, client, ctx, f, Credential::AppKey).await
}

pub async fn revoke_api_token(
    State(s): State<AppState>,
    client: Client,
    ctx: StaffCtx,
    Form(f): Form<AppKeyForm>,
) -> Result<Response, PageError> {
    revoke(s, client, ctx, f, Credential::ApiToken).await
}

// ---------------------------------------------------------------- behaviour settings

pub struct QuestionView {
    pub id: String,
    pub text: String,
    /// (key, text, score)
    pub options: Vec<(String, String, u32)>,
}

pub struct BandView {
    pub level: &'static str,
    pub label: String,
    pub range: String,
}

#[derive(Template)]
#[template(path = "behaviour_settings.html")]
struct SettingsTpl {
    c: Chrome,
    tab: &'static str,
    /// Administrators see the admin tabs (they reach this page from there too).
    admin: bool,
    title: String,
    version: String,
    source: String,
    questions: Vec<QuestionView>,
    bands: Vec<BandView>,
    /// (setting, value)
    suitability: Vec<(&'static str, String)>,
    model: String,
    /// (setting, value) of the propensity weights and the other ranking numbers
    weights: Vec<(String, String)>,
    ranking: Vec<(String, String)>,
    levers: Vec<(String, String)>,
}

/// Numbers of a configuration section as (name, value), nested sections left out.
fn numbers(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, x)| x.is_number() || x.is_boolean() || x.is_string())
                .map(|(k, x)| (k.clone(), x.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The questionnaire, suitability rules and recommendation settings the server runs
/// with. Read-only: they come from the configuration and change with a restart.
pub async fn behaviour_settings(
    State(s): State<AppState>,
    ctx: StaffCtx,
) -> Result<Response, PageError> {
    ctx.require(Perm::BehaviourSettings)?;
    let t = ctx.t;
    let cfg = &s.behaviour.cfg;
    let q = &s.behaviour.questionnaire;
    let questions = q
        .questions
        .iter()
        .map(|x| QuestionView {
            id: x.id.clone(),
            text: t.label_owned(&x.text_zh, &x.text_en).to_string(),
            options: x
                .options
                .iter()
                .map(|o| (o.key.clone(), t.label_owned(&o.text_zh, &o.text_en).to_string(), o.score))
                .collect(),
        })
        .collect();
    let max_total: u32 = q
        .questions
        .iter()
        .map(|x| x.options.iter().map(|o| o.score).max().unwrap_or(0))
        .sum();
    let bands = q
        .bands
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let hi = q
                .bands
                .get(i + 1)
                .map(|n| n.min_score.saturating_sub(1))
                .unwrap_or(max_total);
            BandView {
                level: b.level.code(),
                label: t.label_owned(&b.label_zh, &b.label_en).to_string(),
                range: format!("{}–{}", b.min_score, hi),
            }
        })
        .collect();
    let su = &cfg.suitability;
    let suitability = vec![
        ("settings.validity_days", su.validity_days.to_string()),
        ("settings.unassessed_max", su.unassessed_max.code().to_string()),
        ("settings.elderly_age", su.elderly_age.to_string()),
        ("settings.elderly_confirm_above", su.elderly_confirm_above.code().to_string()),
    ];
    let rec = serde_json::to_value(&cfg.recommend).unwrap_or_default();
    let model = match s.behaviour.trained_model_version() {
        Some(v) => t.f("settings.model_trained", &[("version", &v.to_string())]),
        None => t.s("settings.model_default").to_string(),
    };
    let levers = cfg
        .recommend
        .levers
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    Ok(render(&SettingsTpl {
        tab: "settings",
        admin: super::nav::can(ctx.staff.role, Perm::AppKeys),
        title: t.label_owned(&q.title_zh, &q.title_en).to_string(),
        version: q.version.clone(),
        source: match &cfg.questionnaire_file {
            Some(f) => t.f("settings.source_file", &[("file", &f.display().to_string())]),
            None => t.s("settings.source_default").to_string(),
        },
        questions,
        bands,
        suitability,
        model,
        weights: numbers(&rec["weights"]),
        ranking: numbers(&rec),
        levers,
        c: ctx.chrome(),
    }))
}

/// The funnel form and chart of a product page, for the customers of a segment.
pub(crate) struct FunnelAsk {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub filter: kehu_store::behaviour::FunnelFilter,
    /// Anything asked beyond the default (the panel shows even when empty).
    pub asked: bool,
}

/// Reads and checks the funnel fields of a product page's query.
pub(crate) fn funnel_ask(q: &HashMap<String, String>, today: NaiveDate) -> Result<FunnelAsk, PageError> {
    use kehu_domain::state::{Gender, IncomeBand};
    let to = query_date(q, "to")?.unwrap_or(today);
    let from = query_date(q, "from")?.unwrap_or(to - chrono::Days::new(30));
    if from > to {
        return Err(bad("error.bad_range", &format!("{from} > {to}")));
    }
    // Each value as stored (a code), or a 400 page naming it.
    let pick = |name: &str, code: &dyn Fn(&str) -> Option<String>| -> Result<Option<String>, PageError> {
        match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => code(v).map(Some).ok_or_else(|| bad("error.bad_segment", v)),
        }
    };
    let filter = kehu_store::behaviour::FunnelFilter {
        gender: pick("gender", &|v| Gender::parse(v).map(|g| g.code().to_string()))?,
        age_band: pick("age_band", &|v| {
            kehu_store::behaviour::AGE_BANDS.iter().find(|b| **b == v).map(|b| b.to_string())
        })?,
        income_band: pick("income_band", &|v| IncomeBand::parse(v).map(|b| b.code().to_string()))?,
    };
    let asked = ["from", "to", "gender", "age_band", "income_band"]
        .iter()
        .any(|k| q.get(*k).is_some_and(|v| !v.trim().is_empty()));
    Ok(FunnelAsk { from, to, filter, asked })
}

/// The GET form above the funnel chart.
pub(crate) fn funnel_form(t: &Tr, code: &str, a: &FunnelAsk) -> String {
    use kehu_domain::state::{Gender, IncomeBand};
    let select = |name: &str, label: &str, current: &Option<String>, opts: Vec<(String, String)>| {
        let mut h = format!(
            "<label>{} <select name=\"{name}\" id=\"funnel-{name}\"><option value=\"\">{}</option>",
            esc(label),
            esc(t.s("funnel.any"))
        );
        for (v, l) in opts {
            let sel = if current.as_deref() == Some(v.as_str()) { " selected" } else { "" };
            h.push_str(&format!("<option value=\"{}\"{sel}>{}</option>", esc(&v), esc(&l)));
        }
        h.push_str("</select></label> ");
        h
    };
    let genders = Gender::ALL
        .iter()
        .map(|g| (g.code().to_string(), t.label(g.label_zh(), g.label_en()).to_string()))
        .collect();
    let ages = kehu_store::behaviour::AGE_BANDS
        .iter()
        .map(|a| (a.to_string(), t.f("funnel.age", &[("band", a)])))
        .collect();
    let incomes = IncomeBand::ALL
        .iter()
        .map(|b| (b.code().to_string(), t.label(b.label_zh(), b.label_en()).to_string()))
        .collect();
    format!(
        "<form method=\"get\" action=\"/products/{code}\" class=\"search\" id=\"funnel-form\">\
         <label>{from_l} <input type=\"date\" name=\"from\" value=\"{from}\"></label> \
         <label>{to_l} <input type=\"date\" name=\"to\" value=\"{to}\"></label> {g}{ag}{inc}\
         <button type=\"submit\">{apply}</button></form>",
        code = urlencode(code),
        from_l = esc(t.s("funnel.from")),
        to_l = esc(t.s("funnel.to")),
        from = a.from,
        to = a.to,
        g = select("gender", t.s("funnel.gender"), &a.filter.gender, genders),
        ag = select("age_band", t.s("funnel.age_band"), &a.filter.age_band, ages),
        inc = select("income_band", t.s("funnel.income_band"), &a.filter.income_band, incomes),
        apply = esc(t.s("funnel.apply")),
    )
}
