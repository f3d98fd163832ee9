use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kehu_domain::ingest::{EntityKind, ParseContext};
use kehu_domain::mask;
use kehu_domain::state::{Customer, ProductKind};
use kehu_ingest::read::Format;
use kehu_ingest::{ImportOptions, ImportReport};
use kehu_store::{Customer360, CustomerQuery, CustomerRow, ProductRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kehu API",
        description = "Customer operations platform: customers, products, imports, behaviour events, suitability, recommendations."
    ),
    paths(
        healthz,
        list_customers,
        get_customer,
        list_products,
        get_product,
        import,
        export,
        crate::models::list,
        crate::models::report,
        crate::models::score,
        crate::behaviour::http::collect,
        crate::behaviour::http::questionnaire,
        crate::behaviour::http::assess,
        crate::behaviour::http::get_assessment,
        crate::behaviour::http::purchase,
        crate::behaviour::http::recommendations,
        crate::behaviour::http::decisions,
        crate::behaviour::http::get_personalization,
        crate::behaviour::http::set_personalization,
        crate::behaviour::http::tags,
        crate::behaviour::http::delete_tag,
        crate::behaviour::http::customer_behaviour,
        crate::behaviour::http::product_behaviour,
        crate::behaviour::http::funnel,
        crate::behaviour::http::checks,
        crate::behaviour::http::app_keys,
        crate::behaviour::http::snapshot
    ),
    components(schemas(
        CustomerPage,
        CustomerRow,
        Customer360,
        ProductRow,
        Health,
        ImportResult,
        kehu_store::ModelInfo,
        crate::models::ScoreResponse,
        crate::behaviour::http::CollectResponse,
        crate::behaviour::http::EventResult,
        crate::behaviour::http::AnswersBody,
        crate::behaviour::http::PurchaseBody,
        crate::behaviour::http::RecResponse,
        crate::behaviour::http::PersonalizationBody,
        crate::behaviour::http::Tag
    ))
)]
pub struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/customers", get(list_customers))
        .route("/api/v1/customers/{id}", get(get_customer))
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/{code}", get(get_product))
        .route("/api/v1/import/{kind}", post(import))
        .route("/api/v1/export/{kind}", get(export))
        .route("/api/v1/models", get(crate::models::list))
        .route(
            "/api/v1/models/{purpose}/report",
            get(crate::models::report),
        )
        .route("/api/v1/models/{purpose}/score", post(crate::models::score))
        .merge(crate::behaviour::http::routes())
        .merge(crate::billing::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api_auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
        .merge(crate::web::router())
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::billing::BillingApiDoc::openapi());
    Json(doc)
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
    database: &'static str,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    s.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: s.store.backend_name(),
    }))
}

fn masked(mut c: Customer, on: bool) -> Customer {
    if on {
        c.phone = c.phone.as_deref().map(mask::phone);
        c.id_number = c.id_number.as_deref().map(mask::id_number);
    }
    c
}

#[derive(Deserialize, IntoParams)]
struct CustomerParams {
    /// Customer number (exact), last four digits of the phone, or the start of the name.
    q: Option<String>,
    /// Only this customer manager's book.
    manager: Option<String>,
    branch: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// Page size, 1–200 (default 50).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct CustomerPage {
    items: Vec<CustomerRow>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

/// Search and page through customers. Phone and ID numbers are masked.
#[utoipa::path(get, path = "/api/v1/customers", params(CustomerParams), responses((status = 200, body = CustomerPage)))]
async fn list_customers(
    State(s): State<AppState>,
    Query(p): Query<CustomerParams>,
) -> Result<Json<CustomerPage>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit}: expected 1 to 200"
        )));
    }
    let q = CustomerQuery {
        text: p.q,
        manager_id: p.manager,
        branch: p.branch,
        after: p.after,
        limit: limit + 1,
    };
    let mut items = s.store.search_customers(&q).await?;
    let next_after = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id)
    } else {
        None
    };
    let on = s.cfg.mask_personal_data;
    let items = items
        .into_iter()
        .map(|r| CustomerRow {
            id: r.id,
            customer: masked(r.customer, on),
        })
        .collect();
    Ok(Json(CustomerPage { items, next_after }))
}

/// The customer 360 basics by internal id or customer number: profile, holdings, totals by
/// asset class, net worth and recent transactions. Money is in fen.
#[utoipa::path(get, path = "/api/v1/customers/{id}", params(("id" = String, Path, description = "internal id or customer number")),
    responses((status = 200, body = Customer360), (status = 404, description = "no such customer")))]
async fn get_customer(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Customer360>, ApiError> {
    let not_found = || ApiError::NotFound {
        what: "customer",
        key: id.clone(),
    };
    let internal = s.store.customer_id(&id).await?.ok_or_else(not_found)?;
    let mut c = s
        .store
        .customer_360(internal, s.cfg.recent_transactions)
        .await?
        .ok_or_else(not_found)?;
    c.customer = masked(c.customer, s.cfg.mask_personal_data);
    Ok(Json(c))
}

#[derive(Deserialize, IntoParams)]
struct ProductParams {
    /// deposit|wealth|fund|insurance|card|loan
    kind: Option<String>,
}

/// The product shelf, optionally of one kind.
#[utoipa::path(get, path = "/api/v1/products", params(ProductParams), responses((status = 200, body = [ProductRow])))]
async fn list_products(
    State(s): State<AppState>,
    Query(p): Query<ProductParams>,
) -> Result<Json<Vec<ProductRow>>, ApiError> {
    let kind = match p.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(ProductKind::parse(k).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "kind {k:?}: expected one of {}",
                ProductKind::expected()
            ))
        })?),
    };
    Ok(Json(s.store.list_products(kind).await?))
}

/// One product by code.
#[utoipa::path(get, path = "/api/v1/products/{code}", params(("code" = String, Path)),
    responses((status = 200, body = ProductRow), (status = 404, description = "no such product")))]
async fn get_product(
    State(s): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<ProductRow>, ApiError> {
    s.store
        .product(&code)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound {
            what: "product",
            key: code,
        })
}

fn kind_of(k: &str) -> Result<EntityKind, ApiError> {
    EntityKind::parse(k).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "kind {k:?}: expected customers, staff, products, holdings or transactions"
        ))
    })
}

fn format_of(f: Option<&str>) -> Result<Format, ApiError> {
    match f {
        None => Ok(Format::Csv),
        Some(f) => Format::parse(f)
            .ok_or_else(|| ApiError::BadRequest(format!("format {f:?}: expected csv or jsonl"))),
    }
}

#[derive(Deserialize, IntoParams)]
struct ImportParams {
    /// csv (default) or jsonl
    format: Option<String>,
    /// utf-8 or gbk; detected when absent
    encoding: Option<String>,
    /// Load the good rows and report the bad ones (default: all or nothing).
    skip_invalid: Option<bool>,
}

/// The outcome of an import.
#[derive(Serialize, ToSchema)]
struct ImportResult {
    committed: bool,
    rows_read: u64,
    rows_loaded: u64,
    rows_rejected: u64,
    encoding: String,
    /// Each: file, line, column, value, message (what was expected).
    #[schema(value_type = Vec<Object>)]
    errors: Vec<kehu_ingest::RowError>,
    stopped_early: bool,
}

impl From<ImportReport> for ImportResult {
    fn from(r: ImportReport) -> Self {
        ImportResult {
            committed: r.committed,
            rows_read: r.rows_read,
            rows_loaded: r.rows_loaded,
            rows_rejected: r.rows_rejected,
            encoding: r.encoding.to_string(),
            errors: r.errors,
            stopped_early: r.stopped_early,
        }
    }
}

/// Import a CSV or JSON Lines file sent as the request body. Same rules as `kehu import`:
/// by default a file with errors changes nothing (HTTP 422 with every error).
#[utoipa::path(post, path = "/api/v1/import/{kind}", params(("kind" = String, Path), ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResult), (status = 422, body = ImportResult)))]
async fn import(
    State(s): State<AppState>,
    Path(kind): Path<String>,
    Query(p): Query<ImportParams>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let kind = kind_of(&kind)?;
    let format = format_of(p.format.as_deref())?;
    let encoding = match p.encoding.as_deref() {
        None => None,
        Some(e) => Some(kehu_ingest::read::encoding_by_name(e).ok_or_else(|| {
            ApiError::BadRequest(format!("encoding {e:?}: expected utf-8 or gbk"))
        })?),
    };
    std::fs::create_dir_all(&s.cfg.spool_dir)
        .map_err(|e| ApiError::BadRequest(format!("spool directory: {e}")))?;
    let spool = s.cfg.spool_dir.join(format!(
        "upload-{}-{}.{}",
        kind.name(),
        std::process::id(),
        unique()
    ));
    std::fs::write(&spool, &body)
        .map_err(|e| ApiError::BadRequest(format!("cannot spool the upload: {e}")))?;
    let ctx = ParseContext {
        today: chrono::Utc::now().with_timezone(&s.cfg.offset).date_naive(),
        offset: s.cfg.offset,
    };
    let mut opts = ImportOptions::new(kind, ctx);
    opts.format = Some(format);
    opts.encoding = encoding;
    opts.skip_invalid = p.skip_invalid.unwrap_or(false);
    opts.max_errors = s.cfg.import_max_errors;
    opts.rejects_path = Some(spool.with_extension("rejects.csv"));
    let result = kehu_ingest::import_file(&s.store, &spool, &opts).await;
    let _ = std::fs::remove_file(&spool);
    let mut report = result?;
    for e in &mut report.errors {
        e.file = "upload".into();
    }
    if report.committed {
        // New products, holdings or profiles change what may be recommended; an import
        // of customers or holdings reads every decision profile again.
        s.behaviour.refresh_shelf().await?;
        s.behaviour.follow_profile_changes().await?;
    }
    let status = if report.committed {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(ImportResult::from(report))))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[derive(Deserialize, IntoParams)]
struct ExportParams {
    /// csv (default) or jsonl
    format: Option<String>,
}

/// Export every row of a kind in the import format.
#[utoipa::path(get, path = "/api/v1/export/{kind}", params(("kind" = String, Path), ExportParams),
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn export(
    State(s): State<AppState>,
    Path(kind): Path<String>,
    Query(p): Query<ExportParams>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = kind_of(&kind)?;
    let format = format_of(p.format.as_deref())?;
    let mut buf = Vec::new();
    kehu_ingest::export::export(&s.store, kind, format, &mut buf)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let ct = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::JsonLines => "application/x-ndjson",
    };
    Ok(([(header::CONTENT_TYPE, ct)], buf))
}
