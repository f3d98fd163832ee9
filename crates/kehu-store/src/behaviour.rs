//! Behaviour storage: app keys, the event log (one transaction per batch; a re-sent event
//! id is refused by the unique key and reported as a duplicate), device links with the
//! attribution of a device's earlier anonymous events, and snapshots of the behaviour
//! state with the event sequence they cover.
//!
//! SQLite keeps each customer's timeline of events in `event_timeline`, filled in bulk
//! behind the log rather than by an index written with every commit (migration 0015;
//! `TimelineMark`). PostgreSQL keeps the index `events_customer`.

use crate::BeginWrite;
use crate::rows::{self, RowExt};
use crate::sqlite_bulk::{Stmt, V};
use crate::{with_pool, Backend, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use kehu_domain::behaviour::event::EventKind;
use kehu_domain::behaviour::state::{
    BehaviourState, CustomerBehaviour, Pair, ProductBehaviour, StateConfig, RECENT_DAYS,
};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;

/// An event ready for the log, its customer and product resolved to kehu's ids.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub app_id: i64,
    pub event_id: String,
    pub kind: EventKind,
    pub ts_ms: i64,
    pub device: Option<String>,
    pub customer_id: Option<i64>,
    pub product_id: Option<i64>,
    pub dwell_ms: Option<i64>,
    pub depth: Option<i64>,
    pub quantity: Option<i64>,
    pub amount_fen: Option<i64>,
    /// page, query, element, message as a JSON object.
    pub detail: Option<String>,
}

/// Where SQLite's bulk-filled customer timeline stands, as this process last saw it: the
/// events after `indexed` are read from the log by range. The database's
/// `event_timeline_meta` is the truth (another process may have filled it since); this
/// only says when to look.
#[derive(Debug)]
pub struct TimelineMark {
    /// The last seq known to be in the timeline; -1 until read from the database.
    indexed: std::sync::atomic::AtomicI64,
    batch: i64,
    /// The anonymous events after the mark, by device (SQLite): where an `identify` finds
    /// the device's events that `event_devices` does not hold yet.
    anon: std::sync::Mutex<AnonTail>,
}

impl TimelineMark {
    /// A fill (this process's) has moved the mark to `upto`.
    fn filled(&self, upto: i64) {
        self.indexed.store(upto, std::sync::atomic::Ordering::Relaxed);
        self.prune_anon(upto);
    }

    /// Drops the tail's events up to `upto`: `event_devices` holds them now.
    fn prune_anon(&self, upto: i64) {
        let mut tail = self.anon.lock().expect("lock");
        tail.by_device.retain(|_, seqs| {
            seqs.retain(|s| *s > upto);
            !seqs.is_empty()
        });
    }

    pub(crate) fn new(batch: u32) -> TimelineMark {
        TimelineMark {
            indexed: std::sync::atomic::AtomicI64::new(-1),
            batch: i64::from(batch.max(1)),
            anon: std::sync::Mutex::new(AnonTail { upto: -1, by_device: HashMap::new() }),
        }
    }
}

/// The log's anonymous events after the timeline's mark, by device, as of `upto` (the
/// log's last seq when last brought up to date; -1: not loaded). Brought up to date inside
/// each write transaction of this process (the rows another process wrote since are read
/// by range), so it is exact while the transaction holds SQLite's write lock.
#[derive(Debug)]
struct AnonTail {
    upto: i64,
    by_device: HashMap<String, Vec<i64>>,
}

/// Events per bucket of SQLite's customer timeline (the first column of its key, so that
/// a fill writes into the newest bucket only; migration 0015 says the same in SQL). Fixed
/// for a database: only a test changes it (`testing::set_timeline_bucket_events`), before
/// it writes any event.
pub(crate) static TIMELINE_BUCKET_EVENTS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000_000);

fn timeline_bucket() -> i64 {
    TIMELINE_BUCKET_EVENTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// SQLite: the timeline's mark (events up to it are filled), as a query.
const TIMELINE_MARK_SQL: &str = "SELECT indexed_seq FROM event_timeline_meta WHERE id = 1";

/// SQLite: the buckets filled so far (0 to the mark's), as a query; `size` is the bind
/// that holds `timeline_bucket()`.
fn filled_buckets_sql(size: &str) -> String {
    format!("WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b WHERE n < ({TIMELINE_MARK_SQL}) / {size}) SELECT n FROM b")
}

/// How far the SQLite customer timeline is filled (`Store::timeline_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineStatus {
    /// Events up to this seq are in the timeline.
    pub indexed_seq: i64,
    /// The log's last seq.
    pub last_seq: i64,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub seq: i64,
    pub customer_id: Option<i64>,
    pub kind: EventKind,
    pub ts_ms: i64,
    pub product_id: Option<i64>,
    pub dwell_ms: Option<i64>,
    pub depth: Option<i64>,
    pub quantity: Option<i64>,
    pub amount_fen: Option<i64>,
}

/// What a batch did: per event its sequence number (none: a duplicate), and the earlier
/// anonymous events that an `identify` in the batch attributed to a customer.
#[derive(Debug, Default)]
pub struct Inserted {
    pub seqs: Vec<Option<i64>>,
    pub attributed: Vec<StoredEvent>,
}

const INSERT_SQLITE: &str = "INSERT INTO events (app_id, event_id, kind, ts_ms, received_ms, device, customer_id, product_id, dwell_ms, depth, quantity, amount_fen, detail) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (app_id, event_id) DO NOTHING";

const EVENT_COLS: &str = "seq, customer_id, kind, ts_ms, product_id, dwell_ms, depth, quantity, amount_fen";

fn stored(r: &impl RowExt) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.i("seq")?,
        customer_id: r.oi("customer_id")?,
        kind: rows::code("events", "kind", r.s("kind")?, EventKind::parse)?,
        ts_ms: r.i("ts_ms")?,
        product_id: r.oi("product_id")?,
        dwell_ms: r.oi("dwell_ms")?,
        depth: r.oi("depth")?,
        quantity: r.oi("quantity")?,
        amount_fen: r.oi("amount_fen")?,
    })
}

/// An app allowed to send events.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AppKey {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

/// A new app key: `kehu_` and 24 random bytes from the operating system, in hex.
fn new_app_key() -> String {
    crate::api_tokens::random_secret("kehu_", 24)
}

fn key_hash(key: &str) -> String {
    crate::api_tokens::api_token_digest(key)
}

/// One stored risk assessment.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AssessmentRow {
    pub id: i64,
    pub customer_id: i64,
    pub questionnaire: String,
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    pub score: i64,
    pub level: String,
    pub assessed_on: chrono::NaiveDate,
    pub assessed_at: DateTime<Utc>,
}

/// A suitability check as recorded (passed or refused).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CheckRow {
    pub id: i64,
    pub customer_id: i64,
    pub product_id: i64,
    pub amount_fen: i64,
    pub allowed: bool,
    pub refusal: Option<String>,
    pub customer_level: Option<String>,
    pub product_level: String,
    pub elderly_rule: bool,
    pub elderly_confirmed: bool,
    pub reason: String,
    pub checked_at: DateTime<Utc>,
}

/// What a customer's decision needs besides behaviour.
#[derive(Clone, Debug, Default)]
pub struct DecisionProfile {
    pub birth_date: Option<chrono::NaiveDate>,
    pub income_band: Option<String>,
    pub personalization: bool,
    /// Current deposits, fen.
    pub liquid_fen: i64,
    /// Held product ids, sorted.
    pub held: Vec<u32>,
    /// Latest assessment: level code and date.
    pub assessment: Option<(String, chrono::NaiveDate)>,
}

/// One row of [`Store::scan_decision_profiles`].
#[derive(Debug)]
pub enum ProfileRow<'a> {
    Customer { id: i64, birth_date: Option<chrono::NaiveDate>, income_band: Option<&'a str>, personalization: bool },
    /// A holding with a product or a current deposit.
    Holding { customer_id: i64, product_id: Option<i64>, current_deposit: bool, balance_fen: i64 },
    /// Assessments come in id order: the latest of a customer comes last.
    Assessment { customer_id: i64, level: &'a str, assessed_on: chrono::NaiveDate },
}

/// How many of the highest ids of a change table are looked at again (ids that a
/// concurrent transaction commits late).
pub const PROFILE_ID_WINDOW: i64 = 256;

/// How far [`Store::profile_changes`] has read one change table.
#[derive(Clone, Debug)]
pub struct ChangeMark {
    /// Highest id seen (-1: not read yet; the first read only sets the mark).
    pub last: i64,
    /// Ids seen within the window below `last`.
    pub recent: std::collections::HashSet<i64>,
}

impl Default for ChangeMark {
    fn default() -> Self {
        ChangeMark { last: -1, recent: Default::default() }
    }
}

/// Where [`Store::profile_changes`] has read up to.
#[derive(Clone, Debug)]
pub struct ProfileMarks {
    /// Committed customer and holding imports (-1: not counted yet).
    pub imports: i64,
    pub assessments: ChangeMark,
    pub purchases: ChangeMark,
    pub personalization: ChangeMark,
}

impl Default for ProfileMarks {
    fn default() -> Self {
        ProfileMarks { imports: -1, assessments: Default::default(), purchases: Default::default(), personalization: Default::default() }
    }
}

/// What [`Store::profile_changes`] found.
#[derive(Clone, Debug, Default)]
pub struct ProfileChanges {
    /// Customers whose profile is to be read again, sorted.
    pub customers: Vec<i64>,
    /// A customer or holding import was committed: read every profile again.
    pub reload: bool,
}

/// A logged recommendation.
#[derive(Clone, Debug)]
pub struct DecisionLog {
    pub customer_id: i64,
    pub decided_at: DateTime<Utc>,
    pub placement: String,
    pub personalized: bool,
    pub model: String,
    pub inputs: String,
    pub items: String,
}

/// Which customers a funnel counts: each field, when set, must match (codes as stored:
/// gender `M`/`F`/`U`, income band codes or `unknown`, age bands of `AGE_BANDS` or
/// `unknown`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunnelFilter {
    pub gender: Option<String>,
    pub age_band: Option<String>,
    pub income_band: Option<String>,
}

/// The age bands of funnels, youngest first.
pub const AGE_BANDS: &[&str] = &["<30", "30-39", "40-49", "50-59", "60+"];

/// One row of a funnel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FunnelRow {
    pub product_id: i64,
    pub code: String,
    pub name: String,
    /// The segment value (gender, age band, income band), or "all".
    pub segment: String,
    /// Distinct customers who viewed the product.
    pub viewed: i64,
    /// Distinct customers who read its detail (dwell or depth over the thresholds).
    pub detail: i64,
    /// Distinct customers who bought it.
    pub purchased: i64,
}

fn recent_pack(r: &[u8; RECENT_DAYS]) -> i64 {
    let mut v = 0i64;
    for (i, b) in r.iter().enumerate() {
        v |= (*b as i64) << (8 * i);
    }
    v
}

fn recent_unpack(v: i64) -> [u8; RECENT_DAYS] {
    let mut r = [0u8; RECENT_DAYS];
    for (i, b) in r.iter_mut().enumerate() {
        *b = (v >> (8 * i)) as u8;
    }
    r
}

impl Store {
    // ----- app keys -----

    /// Creates an app key; returns the key itself (shown once, only its hash is kept).
    pub async fn create_app_key(&self, name: &str) -> Result<(i64, String)> {
        let key = new_app_key();
        let sql = "INSERT INTO app_keys (name, key_hash, created_at) VALUES ($1, $2, $3) RETURNING id";
        let id = with_pool!(self, p => {
            sqlx::query_scalar::<_, i64>(sql).bind(name).bind(key_hash(&key)).bind(Utc::now()).fetch_one(p).await
        })
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!("an app key named {name:?} exists already")),
            e => e.into(),
        })?;
        Ok((id, key))
    }

    /// The key of one of the server's own apps (the web app's tracker tag): generated once,
    /// kept in `settings` (the same on every instance sharing the database), and registered
    /// in `app_keys` under `name` if that name is new. Returns the app id and the key.
    pub async fn ensure_own_app_key(&self, name: &str) -> Result<(i64, String)> {
        let fresh = new_app_key();
        let setting = format!("app_key:{name}");
        let ins = "INSERT INTO settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
        let key = with_pool!(self, p => {
            sqlx::query(ins).bind(&setting).bind(&fresh).bind(Utc::now()).execute(p).await?;
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE name = $1").bind(&setting).fetch_one(p).await
        })?;
        let id = self.ensure_app_key(name, &key).await?;
        Ok((id, key))
    }

    /// Stores a key chosen elsewhere (the demo's fixed key), if the name is new.
    pub async fn ensure_app_key(&self, name: &str, key: &str) -> Result<i64> {
        let sql = "INSERT INTO app_keys (name, key_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
        with_pool!(self, p => {
            sqlx::query(sql).bind(name).bind(key_hash(key)).bind(Utc::now()).execute(p).await?;
            Ok(sqlx::query_scalar::<_, i64>("SELECT id FROM app_keys WHERE name = $1").bind(name).fetch_one(p).await?)
        })
    }

    /// The app a key belongs to, unless unknown or revoked.
    pub async fn app_for_key(&self, key: &str) -> Result<Option<i64>> {
        let sql = "SELECT id FROM app_keys WHERE key_hash = $1 AND revoked_at IS NULL";
        with_pool!(self, p => Ok(sqlx::query_scalar::<_, i64>(sql).bind(key_hash(key)).fetch_optional(p).await?))
    }

    pub async fn list_app_keys(&self) -> Result<Vec<AppKey>> {
        let sql = "SELECT id, name, created_at, revoked_at FROM app_keys ORDER BY id";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).fetch_all(p).await?;
            rows.iter().map(|r| Ok(AppKey {
                id: r.i("id")?, name: r.s("name")?, created_at: r.t("created_at")?,
                revoked: r.try_get::<Option<DateTime<Utc>>, _>("revoked_at")?.is_some(),
            })).collect()
        })
    }

    pub async fn revoke_app_key(&self, name: &str) -> Result<bool> {
        let sql = "UPDATE app_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
        with_pool!(self, p => Ok(sqlx::query(sql).bind(Utc::now()).bind(name).execute(p).await?.rows_affected() > 0))
    }

    // ----- lookups for ingest -----

    /// Internal ids of customers by external id (unknown ones are absent).
    pub async fn customer_ids_by_external(
        &self,
        external: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>> {
        let mut out = std::collections::HashMap::new();
        for chunk in external.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, external_id FROM customers WHERE external_id IN ({})",
                marks.join(",")
            );
            with_pool!(self, p => {
                let mut q = sqlx::query(&sql);
                for e in chunk { q = q.bind(*e); }
                for r in q.fetch_all(p).await? { out.insert(r.s("external_id")?, r.i("id")?); }
            });
        }
        Ok(out)
    }

    /// Every device link (device → customer id).
    pub async fn device_links(&self) -> Result<Vec<(String, i64)>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT device, customer_id FROM device_links").fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.s("device")?, r.i("customer_id")?))).collect()
        })
    }

    // ----- the event log -----

    /// Writes a batch in one transaction, in order. An `identify` event links its device
    /// to its customer and attributes the device's earlier anonymous events (returned).
    pub async fn insert_events(
        &self,
        received_ms: i64,
        events: &[NewEvent],
    ) -> Result<Inserted> {
        let mut out = Inserted {
            seqs: Vec::with_capacity(events.len()),
            attributed: Vec::new(),
        };
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                // Anonymous events written by this transaction: (device, seq).
                let mut pending: Vec<(String, i64)> = Vec::new();
                let res = async {
                    sync_anon_tail(&mut conn, &self.timeline).await?;
                    let mut start = 0;
                    while start < events.len() {
                        let end = events[start..]
                            .iter()
                            .position(|e| e.kind == EventKind::Identify)
                            .map_or(events.len(), |i| start + i + 1);
                        {
                            let mut handle = conn.lock_handle().await?;
                            let db = handle.as_raw_handle().as_ptr();
                            let st = Stmt::prepare(db, INSERT_SQLITE)?;
                            for e in &events[start..end] {
                                let opt = |v: Option<i64>| v.map_or(V::Null, V::Int);
                                let s = st.insert(&[
                                    V::Int(e.app_id),
                                    V::Text(&e.event_id),
                                    V::Text(e.kind.code()),
                                    V::Int(e.ts_ms),
                                    V::Int(received_ms),
                                    e.device.as_deref().map_or(V::Null, V::Text),
                                    opt(e.customer_id),
                                    opt(e.product_id),
                                    opt(e.dwell_ms),
                                    opt(e.depth),
                                    opt(e.quantity),
                                    opt(e.amount_fen),
                                    e.detail.as_deref().map_or(V::Null, V::Text),
                                ])?;
                                if let (Some(seq), None, Some(d)) = (s, e.customer_id, e.device.as_deref()) {
                                    pending.push((d.to_string(), seq));
                                }
                                out.seqs.push(s);
                            }
                        }
                        let last = &events[end - 1];
                        if let (EventKind::Identify, Some(seq)) = (last.kind, out.seqs[end - 1]) {
                            out.attributed.extend(link_device_sqlite(&mut conn, last, seq, &self.timeline, &pending).await?);
                        }
                        start = end;
                    }
                    Ok::<(), StoreError>(())
                }
                .await;
                match res {
                    Ok(()) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                        // Another task's transaction may have begun meanwhile and read
                        // these rows from the log already (up to its `upto`).
                        let mut tail = self.timeline.anon.lock().expect("lock");
                        let seen = tail.upto;
                        for (d, seq) in pending.into_iter().filter(|(_, seq)| *seq > seen) {
                            tail.by_device.entry(d).or_default().push(seq);
                        }
                        if let Some(last) = out.seqs.iter().flatten().max() {
                            tail.upto = tail.upto.max(*last);
                        }
                    }
                    Err(e) => {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        return Err(e);
                    }
                }
                // The batch is committed: a failure to fill the timeline must not turn its
                // answer into an error (the next batch tries again; the timeline reads
                // the unfilled events from the log meanwhile).
                let last = out.seqs.iter().flatten().max().copied();
                if let Some(last) = last {
                    if let Err(e) = self.fill_timeline_if_due(&mut conn, last).await {
                        tracing::error!(error = %e, "filling the customer timeline of events");
                    }
                }
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let mut start = 0;
                while start < events.len() {
                    let end = events[start..]
                        .iter()
                        .position(|e| e.kind == EventKind::Identify)
                        .map_or(events.len(), |i| start + i + 1);
                    let seg = &events[start..end];
                    let col = |f: fn(&NewEvent) -> Option<i64>| seg.iter().map(f).collect::<Vec<_>>();
                    let rows = sqlx::query(
                        "INSERT INTO events (app_id, event_id, kind, ts_ms, received_ms, device, customer_id, product_id, dwell_ms, depth, quantity, amount_fen, detail) \
                         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[]) \
                         ON CONFLICT (app_id, event_id) DO NOTHING RETURNING app_id, event_id, seq",
                    )
                    .bind(col(|e| Some(e.app_id)))
                    .bind(seg.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>())
                    .bind(seg.iter().map(|e| e.kind.code().to_string()).collect::<Vec<_>>())
                    .bind(seg.iter().map(|e| e.ts_ms).collect::<Vec<_>>())
                    .bind(vec![received_ms; seg.len()])
                    .bind(seg.iter().map(|e| e.device.clone()).collect::<Vec<_>>())
                    .bind(col(|e| e.customer_id))
                    .bind(col(|e| e.product_id))
                    .bind(col(|e| e.dwell_ms))
                    .bind(col(|e| e.depth))
                    .bind(col(|e| e.quantity))
                    .bind(col(|e| e.amount_fen))
                    .bind(seg.iter().map(|e| e.detail.clone()).collect::<Vec<_>>())
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut by_id: std::collections::HashMap<(i64, String), i64> = rows
                        .iter()
                        .map(|r| Ok(((r.i("app_id")?, r.s("event_id")?), r.i("seq")?)))
                        .collect::<Result<_>>()?;
                    for e in seg {
                        // The first occurrence of an id in the batch is the one written.
                        out.seqs.push(by_id.remove(&(e.app_id, e.event_id.clone())));
                    }
                    let last = &events[end - 1];
                    if let (EventKind::Identify, Some(seq)) = (last.kind, out.seqs[end - 1]) {
                        out.attributed.extend(link_device_pg(&mut tx, last, seq).await?);
                    }
                    start = end;
                }
                tx.commit().await?;
            }
        }
        Ok(out)
    }

    /// SQLite: fills the customer timeline when `sqlite_timeline_batch_events` events have
    /// arrived after it (as this process knows; the fill itself reads the database's mark).
    async fn fill_timeline_if_due(&self, conn: &mut sqlx::SqliteConnection, last_seq: i64) -> Result<()> {
        use std::sync::atomic::Ordering;
        let mark = &self.timeline;
        let mut indexed = mark.indexed.load(Ordering::Relaxed);
        if indexed < 0 {
            indexed = sqlx::query_scalar(TIMELINE_MARK_SQL)
                .fetch_one(&mut *conn)
                .await?;
            mark.indexed.store(indexed, Ordering::Relaxed);
        }
        if last_seq - indexed < mark.batch {
            return Ok(());
        }
        mark.filled(fill_timeline_sqlite(conn).await?);
        Ok(())
    }

    /// Fills the customer timeline with every event logged so far (SQLite; PostgreSQL
    /// indexes events as they are written, nothing to do). Returns how far it is filled.
    pub async fn fill_timeline(&self) -> Result<TimelineStatus> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                self.timeline.filled(fill_timeline_sqlite(&mut conn).await?);
            }
            Backend::Postgres(_) => {}
        }
        self.timeline_status().await
    }

    /// How far the customer timeline is filled (PostgreSQL: always up to the last event).
    pub async fn timeline_status(&self) -> Result<TimelineStatus> {
        let last_seq = self.max_event_seq().await?;
        let indexed_seq = match &self.backend {
            Backend::Sqlite(pool) => sqlx::query_scalar(TIMELINE_MARK_SQL).fetch_one(pool).await?,
            Backend::Postgres(_) => last_seq,
        };
        Ok(TimelineStatus { indexed_seq, last_seq })
    }

    /// The plain insert of events without any state or identity work: the baseline of the
    /// ingest benchmark (same table, same statement, one transaction).
    pub async fn insert_events_plain(&self, received_ms: i64, events: &[NewEvent]) -> Result<usize> {
        let no_identify: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent { kind: if e.kind == EventKind::Identify { EventKind::AppOpen } else { e.kind }, ..e.clone() })
            .collect();
        Ok(self
            .insert_events(received_ms, &no_identify)
            .await?
            .seqs
            .iter()
            .filter(|s| s.is_some())
            .count())
    }

    /// Attributed events after `seq` in sequence order (a page of at most `limit`).
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events WHERE seq > $1 AND customer_id IS NOT NULL ORDER BY seq LIMIT $2"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(seq).bind(limit).fetch_all(p).await?;
            rows.iter().map(stored).collect()
        })
    }

    /// Events at or before `watermark` that an identify after it attributed: a snapshot
    /// taken at `watermark` does not hold them yet.
    pub async fn attributed_after(&self, watermark: i64) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events WHERE attributed_seq > $1 AND seq <= $1 ORDER BY seq"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(watermark).fetch_all(p).await?;
            rows.iter().map(stored).collect()
        })
    }

    /// (customer, product) of the purchases in `(from_ms, to_ms]`: the labels of a
    /// propensity training sample.
    pub async fn purchases_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, i64)>> {
        let sql = "SELECT DISTINCT customer_id, product_id FROM events WHERE kind = 'purchase' AND ts_ms > $1 AND ts_ms <= $2 AND customer_id IS NOT NULL AND product_id IS NOT NULL";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(from_ms).bind(to_ms).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.i("customer_id")?, r.i("product_id")?))).collect()
        })
    }

    pub async fn max_event_seq(&self) -> Result<i64> {
        with_pool!(self, p => Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM events").fetch_one(p).await?.unwrap_or(0)))
    }

    pub async fn count_events(&self) -> Result<i64> {
        with_pool!(self, p => Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events").fetch_one(p).await?))
    }

    /// A customer's latest events, newest first (the behaviour timeline). SQLite: the
    /// latest from the filled timeline and every event of the customer logged after it.
    pub async fn customer_events(&self, customer_id: i64, limit: i64) -> Result<Vec<TimelineEvent>> {
        let sql = match self.backend {
            Backend::Sqlite(_) => format!(
                "SELECT e.seq, e.kind, e.ts_ms, e.dwell_ms, e.depth, e.quantity, e.amount_fen, e.detail, p.code, p.name \
                   FROM events e LEFT JOIN products p ON p.id = e.product_id \
                   WHERE e.seq IN ( \
                     SELECT seq FROM (SELECT seq FROM event_timeline \
                       WHERE bucket IN ({}) AND customer_id = $1 ORDER BY ts_ms DESC, seq DESC LIMIT $2) \
                     UNION ALL \
                     SELECT seq FROM events WHERE seq > ({TIMELINE_MARK_SQL}) AND customer_id = $1) \
                   ORDER BY e.ts_ms DESC, e.seq DESC LIMIT $2",
                filled_buckets_sql("$3")
            ),
            Backend::Postgres(_) => "SELECT e.seq, e.kind, e.ts_ms, e.dwell_ms, e.depth, e.quantity, e.amount_fen, e.detail, p.code, p.name \
                   FROM events e LEFT JOIN products p ON p.id = e.product_id \
                   WHERE e.customer_id = $1 ORDER BY e.ts_ms DESC, e.seq DESC LIMIT $2"
                .to_string(),
        };
        with_pool!(self, p => {
            // PostgreSQL's statement has no $3: an extra bind would be refused there.
            let q = sqlx::query(&sql).bind(customer_id).bind(limit);
            let rows = if matches!(self.backend, Backend::Sqlite(_)) { q.bind(timeline_bucket()) } else { q }.fetch_all(p).await?;
            rows.iter().map(|r| Ok(TimelineEvent {
                seq: r.i("seq")?,
                kind: rows::code("events", "kind", r.s("kind")?, EventKind::parse)?,
                ts_ms: r.i("ts_ms")?,
                product_code: r.os("code")?,
                product_name: r.os("name")?,
                dwell_ms: r.oi("dwell_ms")?,
                depth: r.oi("depth")?,
                quantity: r.oi("quantity")?,
                amount_fen: r.oi("amount_fen")?,
                detail: r.os("detail")?.and_then(|d| serde_json::from_str(&d).ok()),
            })).collect()
        })
    }

    // ----- tag deletions, personalization -----

    pub async fn delete_tag(&self, customer_id: i64, tag: &str, deleted_ms: i64) -> Result<()> {
        let sql = "INSERT INTO tag_deletions (customer_id, tag, deleted_ms) VALUES ($1, $2, $3) \
                   ON CONFLICT (customer_id, tag) DO UPDATE SET deleted_ms = excluded.deleted_ms";
        with_pool!(self, p => { sqlx::query(sql).bind(customer_id).bind(tag).bind(deleted_ms).execute(p).await?; });
        Ok(())
    }

    /// Every deleted tag: (customer id, tag, deleted at ms).
    pub async fn tag_deletions(&self) -> Result<Vec<(i64, String, i64)>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT customer_id, tag, deleted_ms FROM tag_deletions").fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.i("customer_id")?, r.s("tag")?, r.i("deleted_ms")?))).collect()
        })
    }

    /// Switches personalization and records the change.
    pub async fn set_personalization(&self, customer_id: i64, on: bool, source: &str) -> Result<()> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query("UPDATE customers SET personalization = $1 WHERE id = $2").bind(on).bind(customer_id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO personalization_changes (customer_id, enabled, changed_at, source) VALUES ($1, $2, $3, $4)")
                .bind(customer_id).bind(on).bind(Utc::now()).bind(source).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    // ----- decisions -----

    /// Profile, liquid assets, held products and the latest assessment of a customer.
    pub async fn decision_profile(&self, customer_id: i64) -> Result<Option<DecisionProfile>> {
        with_pool!(self, p => {
            let Some(r) = sqlx::query("SELECT birth_date, income_band, personalization FROM customers WHERE id = $1")
                .bind(customer_id).fetch_optional(p).await? else { return Ok(None) };
            let mut prof = DecisionProfile {
                birth_date: r.od("birth_date")?,
                income_band: r.os("income_band")?,
                personalization: r.b("personalization")?,
                ..Default::default()
            };
            let hs = sqlx::query("SELECT product_id, asset_class, balance_fen FROM holdings WHERE customer_id = $1")
                .bind(customer_id).fetch_all(p).await?;
            for h in &hs {
                if h.s("asset_class")? == "current_deposit" { prof.liquid_fen += h.i("balance_fen")?; }
                if let Some(pid) = h.oi("product_id")? { prof.held.push(pid as u32); }
            }
            prof.held.sort_unstable();
            prof.held.dedup();
            if let Some(a) = sqlx::query("SELECT level, assessed_on FROM risk_assessments WHERE customer_id = $1 ORDER BY id DESC LIMIT 1")
                .bind(customer_id).fetch_optional(p).await? {
                prof.assessment = Some((a.s("level")?, a.d("assessed_on")?));
            }
            Ok(Some(prof))
        })
    }

    /// Every customer's decision profile in three streaming reads (customers, holdings,
    /// assessments in id order: the latest comes last), for a table kept in memory.
    pub async fn scan_decision_profiles(&self, f: &mut (dyn FnMut(ProfileRow<'_>) + Send)) -> Result<()> {
        use futures_util::TryStreamExt;
        with_pool!(self, p => {
            let mut rows = sqlx::query("SELECT id, birth_date, income_band, personalization FROM customers").fetch(p);
            while let Some(r) = rows.try_next().await? {
                let band: Option<String> = r.try_get(2)?;
                f(ProfileRow::Customer {
                    id: r.try_get(0)?,
                    birth_date: r.try_get(1)?,
                    income_band: band.as_deref(),
                    personalization: r.try_get(3)?,
                });
            }
            drop(rows);
            let mut rows = sqlx::query(
                "SELECT customer_id, product_id, asset_class = 'current_deposit', balance_fen FROM holdings \
                 WHERE product_id IS NOT NULL OR asset_class = 'current_deposit'").fetch(p);
            while let Some(r) = rows.try_next().await? {
                f(ProfileRow::Holding {
                    customer_id: r.try_get(0)?,
                    product_id: r.try_get(1)?,
                    current_deposit: r.try_get(2)?,
                    balance_fen: r.try_get(3)?,
                });
            }
            drop(rows);
            let mut rows = sqlx::query("SELECT customer_id, level, assessed_on FROM risk_assessments ORDER BY id").fetch(p);
            while let Some(r) = rows.try_next().await? {
                let level: String = r.try_get(1)?;
                f(ProfileRow::Assessment { customer_id: r.try_get(0)?, level: &level, assessed_on: r.try_get(2)? });
            }
        });
        Ok(())
    }

    /// What changed the decision profiles since `marks` (by any process): the customers
    /// with a new assessment, purchase or personalization switch, and whether a customer
    /// or holding import was committed (then every profile is to be read again). Moves
    /// the marks on. Rows are found by id; on PostgreSQL a transaction may commit an id
    /// below one already seen, so the last `PROFILE_ID_WINDOW` ids are looked at again.
    pub async fn profile_changes(&self, marks: &mut ProfileMarks) -> Result<ProfileChanges> {
        let mut out = ProfileChanges::default();
        let imports: i64 = with_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM import_runs WHERE status = 'committed' AND kind IN ('customers', 'holdings')")
            .fetch_one(p).await?);
        if marks.imports >= 0 && imports != marks.imports {
            out.reload = true;
        }
        marks.imports = imports;
        for (table, mark) in [
            ("risk_assessments", &mut marks.assessments),
            ("purchases", &mut marks.purchases),
            ("personalization_changes", &mut marks.personalization),
        ] {
            let fresh = mark.last < 0;
            if fresh {
                // The first read only sets the mark.
                let max_sql = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
                mark.last = with_pool!(self, p => sqlx::query_scalar::<_, i64>(&max_sql).fetch_one(p).await?);
            }
            let sql = format!("SELECT id, customer_id FROM {table} WHERE id > $1 ORDER BY id");
            let from = mark.last - PROFILE_ID_WINDOW;
            let rows: Vec<(i64, i64)> = with_pool!(self, p => sqlx::query_as(&sql).bind(from).fetch_all(p).await?);
            for (id, c) in rows {
                if id > mark.last || !mark.recent.contains(&id) {
                    if !fresh {
                        out.customers.push(c);
                    }
                    mark.recent.insert(id);
                }
                mark.last = mark.last.max(id);
            }
            let floor = mark.last - PROFILE_ID_WINDOW;
            mark.recent.retain(|id| *id > floor);
        }
        out.customers.sort_unstable();
        out.customers.dedup();
        Ok(out)
    }

    /// Per customer, the products held (for co-purchase counts), in customer order.
    pub async fn baskets(&self) -> Result<Vec<Vec<u32>>> {
        let sql = "SELECT customer_id, product_id FROM holdings WHERE product_id IS NOT NULL ORDER BY customer_id";
        let mut out: Vec<Vec<u32>> = Vec::new();
        let mut last = -1i64;
        with_pool!(self, p => {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let c: i64 = r.try_get(0)?;
                let pid: i64 = r.try_get(1)?;
                if c != last { out.push(Vec::new()); last = c; }
                out.last_mut().expect("pushed").push(pid as u32);
            }
        });
        Ok(out)
    }

    pub async fn log_decisions(&self, logs: &[DecisionLog]) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let sql = "INSERT INTO recommendation_log (customer_id, decided_at, placement, personalized, model, inputs, items) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            for l in logs {
                sqlx::query(sql).bind(l.customer_id).bind(l.decided_at).bind(&l.placement).bind(l.personalized)
                    .bind(&l.model).bind(&l.inputs).bind(&l.items).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The latest logged decisions of a customer (newest first), as JSON.
    pub async fn decisions(&self, customer_id: i64, limit: i64) -> Result<Vec<serde_json::Value>> {
        let sql = "SELECT decided_at, placement, personalized, model, inputs, items FROM recommendation_log WHERE customer_id = $1 ORDER BY id DESC LIMIT $2";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(customer_id).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(serde_json::json!({
                "decided_at": r.t("decided_at")?,
                "placement": r.s("placement")?,
                "personalized": r.b("personalized")?,
                "model": r.s("model")?,
                "inputs": serde_json::from_str::<serde_json::Value>(&r.s("inputs")?).unwrap_or_default(),
                "items": serde_json::from_str::<serde_json::Value>(&r.s("items")?).unwrap_or_default(),
            }))).collect()
        })
    }

    // ----- assessments, checks, purchases -----

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_assessment(
        &self,
        customer_id: i64,
        questionnaire: &str,
        answers: &serde_json::Value,
        score: i64,
        level: &str,
        assessed_on: chrono::NaiveDate,
    ) -> Result<i64> {
        let sql = "INSERT INTO risk_assessments (customer_id, questionnaire, answers, score, level, assessed_on, assessed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        with_pool!(self, p => Ok(sqlx::query_scalar::<_, i64>(sql).bind(customer_id).bind(questionnaire).bind(answers.to_string())
            .bind(score).bind(level).bind(assessed_on).bind(Utc::now()).fetch_one(p).await?))
    }

    /// Demo assessments (level from a product risk level's rank, score in its band),
    /// skipped for customers assessed already. Returns how many were written.
    pub async fn insert_demo_assessments(
        &self,
        rows: &[(i64, kehu_domain::state::RiskLevel, chrono::NaiveDate)],
    ) -> Result<u64> {
        let sql = "INSERT INTO risk_assessments (customer_id, questionnaire, answers, score, level, assessed_on, assessed_at) \
                   SELECT $1, 'demo', '{}', $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM risk_assessments WHERE customer_id = $1)";
        let mut n = 0;
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            for (c, level, on) in rows {
                let rank = level.rank() as i64;
                n += sqlx::query(sql).bind(*c).bind(20 + 16 * rank).bind(format!("C{rank}")).bind(*on).bind(Utc::now())
                    .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(n)
    }

    pub async fn assessments(&self, customer_id: i64) -> Result<Vec<AssessmentRow>> {
        let sql = "SELECT * FROM risk_assessments WHERE customer_id = $1 ORDER BY id DESC";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(customer_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(AssessmentRow {
                id: r.i("id")?, customer_id: r.i("customer_id")?, questionnaire: r.s("questionnaire")?,
                answers: serde_json::from_str(&r.s("answers")?).unwrap_or_default(),
                score: r.i("score")?, level: r.s("level")?, assessed_on: r.d("assessed_on")?, assessed_at: r.t("assessed_at")?,
            })).collect()
        })
    }

    /// Records a suitability check and, when it passed, the purchase and the resulting
    /// holding, in one transaction. Returns (check id, purchase id).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_purchase(
        &self,
        customer_id: i64,
        product_id: i64,
        asset_class: &str,
        amount_fen: i64,
        quantity: i64,
        check: &kehu_domain::decide::suitability::Check,
        elderly_confirmed: bool,
        today: chrono::NaiveDate,
    ) -> Result<(i64, Option<i64>)> {
        let now = Utc::now();
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let check_id: i64 = sqlx::query_scalar(
                "INSERT INTO suitability_checks (customer_id, product_id, amount_fen, allowed, refusal, customer_level, product_level, elderly_rule, elderly_confirmed, reason, checked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id")
                .bind(customer_id).bind(product_id).bind(amount_fen).bind(check.allowed)
                .bind(check.refusal.map(|r| r.code())).bind(check.level.map(|l| l.code()))
                .bind(check.product_level.code()).bind(check.elderly_rule).bind(elderly_confirmed)
                .bind(&check.reason_zh).bind(now).fetch_one(&mut *tx).await?;
            let mut purchase = None;
            if check.allowed {
                let pid: i64 = sqlx::query_scalar(
                    "INSERT INTO purchases (check_id, customer_id, product_id, quantity, amount_fen, purchased_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                    .bind(check_id).bind(customer_id).bind(product_id).bind(quantity).bind(amount_fen).bind(now)
                    .fetch_one(&mut *tx).await?;
                sqlx::query("INSERT INTO holdings (external_id, customer_id, product_id, asset_class, balance_fen, opened_on, as_of, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(format!("PUR{pid}")).bind(customer_id).bind(product_id).bind(asset_class).bind(amount_fen)
                    .bind(today).bind(today).bind(now).execute(&mut *tx).await?;
                purchase = Some(pid);
            }
            tx.commit().await?;
            Ok((check_id, purchase))
        })
    }

    pub async fn suitability_checks(&self, customer_id: i64) -> Result<Vec<CheckRow>> {
        let sql = "SELECT * FROM suitability_checks WHERE customer_id = $1 ORDER BY id DESC";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(customer_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(CheckRow {
                id: r.i("id")?, customer_id: r.i("customer_id")?, product_id: r.i("product_id")?, amount_fen: r.i("amount_fen")?,
                allowed: r.b("allowed")?, refusal: r.os("refusal")?, customer_level: r.os("customer_level")?,
                product_level: r.s("product_level")?, elderly_rule: r.b("elderly_rule")?, elderly_confirmed: r.b("elderly_confirmed")?,
                reason: r.s("reason")?, checked_at: r.t("checked_at")?,
            })).collect()
        })
    }

    // ----- analytics -----

    /// View → detail → purchase per product over `[from_ms, to_ms)`, optionally per
    /// segment (`gender`, `age_band` as of `today`, `income_band`). A detail read is a view
    /// with at least `detail_dwell_ms` of visible time or `detail_depth` % scrolled.
    pub async fn funnel(
        &self,
        from_ms: i64,
        to_ms: i64,
        segment: Option<&str>,
        product: Option<i64>,
        detail_dwell_ms: i64,
        detail_depth: i64,
        today: chrono::NaiveDate,
    ) -> Result<Vec<FunnelRow>> {
        self.funnel_filtered(from_ms, to_ms, segment, product, &FunnelFilter::default(), detail_dwell_ms, detail_depth, today)
            .await
    }

    /// The funnel of the customers matching `filter` only (gender, age band as of
    /// `today`, income band; each optional, all of them must match).
    #[allow(clippy::too_many_arguments)]
    pub async fn funnel_filtered(
        &self,
        from_ms: i64,
        to_ms: i64,
        segment: Option<&str>,
        product: Option<i64>,
        filter: &FunnelFilter,
        detail_dwell_ms: i64,
        detail_depth: i64,
        today: chrono::NaiveDate,
    ) -> Result<Vec<FunnelRow>> {
        // Age bands of ten years from the birth date, as of `today` ($6).
        let age = match self.backend {
            Backend::Sqlite(_) => "(CAST(strftime('%Y', $6) AS INTEGER) - CAST(strftime('%Y', c.birth_date) AS INTEGER) - (strftime('%m-%d', $6) < strftime('%m-%d', c.birth_date)))",
            Backend::Postgres(_) => "CAST(EXTRACT(YEAR FROM age(CAST($6 AS date), c.birth_date)) AS BIGINT)",
        };
        let age_band = format!("CASE WHEN c.birth_date IS NULL THEN 'unknown' WHEN {age} < 30 THEN '<30' WHEN {age} < 40 THEN '30-39' WHEN {age} < 50 THEN '40-49' WHEN {age} < 60 THEN '50-59' ELSE '60+' END");
        let income = "COALESCE(c.income_band, 'unknown')";
        let seg = match segment {
            None => "'all'".to_string(),
            Some("gender") => "c.gender".into(),
            Some("income_band") => income.into(),
            Some("age_band") => age_band.clone(),
            Some(other) => return Err(StoreError::Conflict(format!("unknown segment {other:?}: expected gender, age_band or income_band"))),
        };
        let group = if segment.is_some() { format!(", {seg}") } else { String::new() };
        let sql = format!(
            "SELECT e.product_id, p.code, p.name, {seg} AS segment, \
               COUNT(DISTINCT CASE WHEN e.kind = 'product_view' THEN e.customer_id END) AS viewed, \
               COUNT(DISTINCT CASE WHEN e.kind = 'product_view' AND (COALESCE(e.dwell_ms, 0) >= $3 OR COALESCE(e.depth, 0) >= $4) THEN e.customer_id END) AS detail, \
               COUNT(DISTINCT CASE WHEN e.kind = 'purchase' THEN e.customer_id END) AS purchased \
             FROM events e JOIN customers c ON c.id = e.customer_id JOIN products p ON p.id = e.product_id \
             WHERE e.ts_ms >= $1 AND e.ts_ms < $2 AND e.customer_id IS NOT NULL AND ($5 < 0 OR e.product_id = $5) \
               AND ($7 IS NULL OR c.gender = $7) AND ($8 IS NULL OR {income} = $8) AND ($9 IS NULL OR {age_band} = $9) \
             GROUP BY e.product_id, p.code, p.name{group} ORDER BY p.code, segment"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(from_ms).bind(to_ms).bind(detail_dwell_ms).bind(detail_depth)
                .bind(product.unwrap_or(-1)).bind(today)
                .bind(filter.gender.as_deref()).bind(filter.income_band.as_deref()).bind(filter.age_band.as_deref())
                .fetch_all(p).await?;
            rows.iter().map(|r| Ok(FunnelRow {
                product_id: r.i("product_id")?, code: r.s("code")?, name: r.s("name")?, segment: r.s("segment")?,
                viewed: r.i("viewed")?, detail: r.i("detail")?, purchased: r.i("purchased")?,
            })).collect()
        })
    }

    // ----- state snapshots -----

    /// Writes the state of these customers (all their pairs), all product counters and
    /// the watermark, in one transaction. `full` replaces everything first.
    pub async fn save_behaviour(
        &self,
        customers: &[(u32, CustomerBehaviour)],
        products: &[(u32, ProductBehaviour)],
        watermark: i64,
        full: bool,
    ) -> Result<()> {
        const PAIR: &str = "INSERT INTO behaviour_pairs (customer_id, product_id, views, dwell_ms, max_depth, active_days, day_bits, recent, last_seen, interest, purchases, quantity, amount_fen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        const CUST: &str = "INSERT INTO behaviour_customers (customer_id, events, product_views, purchases, active_days, day_bits, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (customer_id) DO UPDATE SET events = excluded.events, product_views = excluded.product_views, purchases = excluded.purchases, active_days = excluded.active_days, day_bits = excluded.day_bits, last_seen = excluded.last_seen";
        const PROD: &str = "INSERT INTO behaviour_products (product_id, views, viewers, purchases, buyers, amount_fen) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (product_id) DO UPDATE SET views = excluded.views, viewers = excluded.viewers, purchases = excluded.purchases, buyers = excluded.buyers, amount_fen = excluded.amount_fen";
        const META: &str = "INSERT INTO behaviour_meta (id, watermark, saved_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET watermark = excluded.watermark, saved_at = excluded.saved_at";
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let res = async {
                    if full {
                        for t in ["behaviour_pairs", "behaviour_customers", "behaviour_products"] {
                            sqlx::query(&format!("DELETE FROM {t}")).execute(&mut *conn).await?;
                        }
                    }
                    {
                        let mut handle = conn.lock_handle().await?;
                        let db = handle.as_raw_handle().as_ptr();
                        let del = Stmt::prepare(db, "DELETE FROM behaviour_pairs WHERE customer_id = ?1")?;
                        let pair = Stmt::prepare(db, &PAIR.replace('$', "?"))?;
                        let cust = Stmt::prepare(db, &CUST.replace('$', "?"))?;
                        let prod = Stmt::prepare(db, &PROD.replace('$', "?"))?;
                        for (id, c) in customers {
                            let id = *id as i64;
                            if !full {
                                del.row(&[V::Int(id)])?;
                            }
                            for p in &c.pairs {
                                pair.row(&[
                                    V::Int(id), V::Int(p.product as i64), V::Int(p.views as i64), V::Int(p.dwell_ms as i64),
                                    V::Int(p.max_depth as i64), V::Int(p.active_days as i64), V::Int(p.day_bits as i64),
                                    V::Int(recent_pack(&p.recent)), V::Int(p.last_seen as i64), V::Real(p.interest as f64),
                                    V::Int(p.purchases as i64), V::Int(p.quantity as i64), V::Int(p.amount_fen),
                                ])?;
                            }
                            cust.row(&[V::Int(id), V::Int(c.events as i64), V::Int(c.product_views as i64), V::Int(c.purchases as i64),
                                V::Int(c.active_days as i64), V::Int(c.day_bits as i64), V::Int(c.last_seen as i64)])?;
                        }
                        for (id, p) in products {
                            prod.row(&[V::Int(*id as i64), V::Int(p.views as i64), V::Int(p.viewers as i64), V::Int(p.purchases as i64),
                                V::Int(p.buyers as i64), V::Int(p.amount_fen)])?;
                        }
                    }
                    sqlx::query(META).bind(watermark).bind(Utc::now()).execute(&mut *conn).await?;
                    Ok::<(), StoreError>(())
                }
                .await;
                match res {
                    Ok(()) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                        Ok(())
                    }
                    Err(e) => {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        Err(e)
                    }
                }
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if full {
                    sqlx::query("TRUNCATE behaviour_pairs, behaviour_customers, behaviour_products").execute(&mut *tx).await?;
                }
                for chunk in customers.chunks(2000) {
                    let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id as i64).collect();
                    if !full {
                        sqlx::query("DELETE FROM behaviour_pairs WHERE customer_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
                    }
                    let pairs: Vec<(i64, &Pair)> = chunk.iter().flat_map(|(id, c)| c.pairs.iter().map(move |p| (*id as i64, p))).collect();
                    let pc = |f: fn(&Pair) -> i64| pairs.iter().map(|(_, p)| f(p)).collect::<Vec<i64>>();
                    sqlx::query(&format!("{} SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::float8[], $11::int8[], $12::int8[], $13::int8[])",
                            &PAIR[..PAIR.find(" VALUES").expect("values")]))
                        .bind(pairs.iter().map(|(c, _)| *c).collect::<Vec<i64>>())
                        .bind(pc(|p| p.product as i64)).bind(pc(|p| p.views as i64)).bind(pc(|p| p.dwell_ms as i64))
                        .bind(pc(|p| p.max_depth as i64)).bind(pc(|p| p.active_days as i64)).bind(pc(|p| p.day_bits as i64))
                        .bind(pc(|p| recent_pack(&p.recent))).bind(pc(|p| p.last_seen as i64))
                        .bind(pairs.iter().map(|(_, p)| p.interest as f64).collect::<Vec<f64>>())
                        .bind(pc(|p| p.purchases as i64)).bind(pc(|p| p.quantity as i64)).bind(pc(|p| p.amount_fen))
                        .execute(&mut *tx).await?;
                    let cc = |f: fn(&CustomerBehaviour) -> i64| chunk.iter().map(|(_, c)| f(c)).collect::<Vec<i64>>();
                    sqlx::query(&format!("{} SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) {}",
                            &CUST[..CUST.find(" VALUES").expect("values")], &CUST[CUST.find("ON CONFLICT").expect("conflict")..]))
                        .bind(&ids).bind(cc(|c| c.events as i64)).bind(cc(|c| c.product_views as i64)).bind(cc(|c| c.purchases as i64))
                        .bind(cc(|c| c.active_days as i64)).bind(cc(|c| c.day_bits as i64)).bind(cc(|c| c.last_seen as i64))
                        .execute(&mut *tx).await?;
                }
                for (id, p) in products {
                    sqlx::query(PROD).bind(*id as i64).bind(p.views as i64).bind(p.viewers as i64).bind(p.purchases as i64)
                        .bind(p.buyers as i64).bind(p.amount_fen).execute(&mut *tx).await?;
                }
                sqlx::query(META).bind(watermark).bind(Utc::now()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// Loads the last snapshot: the state and the event sequence it covers (0: none).
    pub async fn load_behaviour(&self, cfg: StateConfig) -> Result<(BehaviourState, i64)> {
        use futures_util::TryStreamExt;
        let mut state = BehaviourState::new(cfg);
        with_pool!(self, p => {
            let watermark: i64 = sqlx::query_scalar::<_, i64>("SELECT watermark FROM behaviour_meta WHERE id = 1")
                .fetch_optional(p).await?.unwrap_or(0);
            let mut rows = sqlx::query("SELECT customer_id, events, product_views, purchases, active_days, day_bits, last_seen FROM behaviour_customers").fetch(p);
            while let Some(r) = rows.try_next().await? {
                state.customers.insert(r.i("customer_id")? as u32, CustomerBehaviour {
                    pairs: Vec::new(), events: r.i("events")? as u32, product_views: r.i("product_views")? as u32,
                    purchases: r.i("purchases")? as u32, active_days: r.i("active_days")? as u16,
                    day_bits: r.i("day_bits")? as u64, last_seen: r.i("last_seen")? as u32,
                });
            }
            drop(rows);
            let mut rows = sqlx::query("SELECT * FROM behaviour_pairs ORDER BY customer_id, product_id").fetch(p);
            while let Some(r) = rows.try_next().await? {
                let c = state.customers.slot(r.i("customer_id")? as u32);
                c.pairs.push(Pair {
                    amount_fen: r.i("amount_fen")?, day_bits: r.i("day_bits")? as u32, views: r.i("views")? as u32,
                    dwell_ms: r.i("dwell_ms")? as u32, quantity: r.i("quantity")? as u32, last_seen: r.i("last_seen")? as u32,
                    interest: r.f("interest")? as f32, product: r.i("product_id")? as u32, purchases: r.i("purchases")? as u16,
                    active_days: r.i("active_days")? as u16, max_depth: r.i("max_depth")? as u8, recent: recent_unpack(r.i("recent")?),
                });
            }
            drop(rows);
            for c in state.customers.values_mut() { c.pairs.shrink_to_fit(); }
            let rows = sqlx::query("SELECT * FROM behaviour_products").fetch_all(p).await?;
            for r in &rows {
                state.products.insert(r.i("product_id")? as u32, ProductBehaviour {
                    views: r.i("views")? as u64, viewers: r.i("viewers")? as u32, purchases: r.i("purchases")? as u64,
                    buyers: r.i("buyers")? as u32, amount_fen: r.i("amount_fen")?,
                });
            }
            Ok((state, watermark))
        })
    }
}

/// One entry of a customer's behaviour timeline.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub seq: i64,
    pub kind: EventKind,
    pub ts_ms: i64,
    pub product_code: Option<String>,
    pub product_name: Option<String>,
    pub dwell_ms: Option<i64>,
    pub depth: Option<i64>,
    pub quantity: Option<i64>,
    pub amount_fen: Option<i64>,
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
}

/// Records the identify event's device link (inside the batch's transaction); `None` when
/// the event has no device or no customer. One body for both backends.
macro_rules! upsert_device_link {
    ($conn:expr, $e:expr) => {{
        let e: &NewEvent = $e;
        match (e.device.as_deref(), e.customer_id) {
            (Some(device), Some(customer)) => {
                sqlx::query(
                    "INSERT INTO device_links (device, customer_id, linked_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (device) DO UPDATE SET customer_id = excluded.customer_id, linked_ms = excluded.linked_ms",
                )
                .bind(device)
                .bind(customer)
                .bind(e.ts_ms)
                .execute(&mut *$conn)
                .await?;
                Some((device, customer))
            }
            _ => None,
        }
    }};
}

/// Links the identify event's device to its customer and attributes the device's
/// anonymous events (inside the batch's transaction); returns them in seq order.
async fn link_device_pg(conn: &mut sqlx::PgConnection, e: &NewEvent, seq: i64) -> Result<Vec<StoredEvent>> {
    let Some((device, customer)) = upsert_device_link!(conn, e) else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(&format!(
        "UPDATE events SET customer_id = $1, attributed_seq = $3 WHERE device = $2 AND customer_id IS NULL RETURNING {EVENT_COLS}"
    ))
    .bind(customer)
    .bind(device)
    .bind(seq)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<StoredEvent> = rows.iter().map(stored).collect::<Result<_>>()?;
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// The same on SQLite, where anonymous events are found by device in `event_devices` (up
/// to the timeline's mark), in the store's index of the log's tail (after it; brought up
/// to date when the transaction began) and among the events this transaction wrote
/// (`pending`).
async fn link_device_sqlite(
    conn: &mut sqlx::SqliteConnection,
    e: &NewEvent,
    seq: i64,
    mark: &TimelineMark,
    pending: &[(String, i64)],
) -> Result<Vec<StoredEvent>> {
    let Some((device, customer)) = upsert_device_link!(conn, e) else {
        return Ok(Vec::new());
    };
    let mut seqs: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT seq FROM event_devices WHERE bucket IN ({}) AND device = $1",
        filled_buckets_sql("$2")
    ))
    .bind(device)
    .bind(timeline_bucket())
    .fetch_all(&mut *conn)
    .await?;
    {
        let tail = mark.anon.lock().expect("lock");
        seqs.extend(tail.by_device.get(device).into_iter().flatten().copied());
    }
    seqs.extend(pending.iter().filter(|(d, _)| d == device).map(|(_, s)| *s));
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(&seqs).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let rows = sqlx::query(&format!(
        "UPDATE events SET customer_id = $1, attributed_seq = $3 \
         WHERE seq IN (SELECT value FROM json_each($2)) AND customer_id IS NULL RETURNING {EVENT_COLS}"
    ))
    .bind(customer)
    .bind(&list)
    .bind(seq)
    .fetch_all(&mut *conn)
    .await?;
    let mut attributed: Vec<StoredEvent> = rows.iter().map(stored).collect::<Result<_>>()?;
    attributed.sort_by_key(|e| e.seq);
    if !attributed.is_empty() {
        // Events already past the timeline's mark get their place in it now; the later
        // ones are filled with their new customer in the next bulk fill.
        sqlx::query(&format!(
            "INSERT OR IGNORE INTO event_timeline (bucket, customer_id, ts_ms, seq) \
             SELECT seq / $2, customer_id, ts_ms, seq FROM events \
             WHERE attributed_seq = $1 AND seq <= ({TIMELINE_MARK_SQL})"
        ))
        .bind(seq)
        .bind(timeline_bucket())
        .execute(&mut *conn)
        .await?;
    }
    Ok(attributed)
}

/// Brings the store's index of the anonymous events after the timeline's mark up to date
/// with the log (inside a write transaction, so nothing changes meanwhile): the rows
/// written since it was last brought up to date (by another process, or before this one
/// started) are read by range.
async fn sync_anon_tail(conn: &mut sqlx::SqliteConnection, mark: &TimelineMark) -> Result<()> {
    let last: i64 = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM events").fetch_one(&mut *conn).await?.unwrap_or(0);
    let upto = mark.anon.lock().expect("lock").upto;
    if upto == last {
        return Ok(());
    }
    let indexed: i64 = sqlx::query_scalar(TIMELINE_MARK_SQL).fetch_one(&mut *conn).await?;
    // Not loaded, or the log is behind what was seen (cannot happen while the log only
    // grows; read it whole then): everything after the mark. Else what came since.
    let rebuild = upto < 0 || upto > last;
    let from = if rebuild { indexed } else { upto.max(indexed) };
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, device FROM events WHERE seq > $1 AND customer_id IS NULL AND device IS NOT NULL ORDER BY seq",
    )
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let mut tail = mark.anon.lock().expect("lock");
    if rebuild {
        tail.by_device.clear();
    }
    for (seq, device) in rows {
        tail.by_device.entry(device).or_default().push(seq);
    }
    tail.upto = last;
    drop(tail);
    // Entries the database's mark has passed (another process filled): in event_devices.
    mark.prune_anon(indexed);
    Ok(())
}

/// Fills SQLite's customer timeline with the events logged after its mark, sorted by its
/// key (each leaf page written once), and moves the mark, in one transaction. Returns the
/// new mark.
async fn fill_timeline_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<i64> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let res = async {
        let from: i64 = sqlx::query_scalar(TIMELINE_MARK_SQL).fetch_one(&mut *conn).await?;
        let upto: i64 = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM events").fetch_one(&mut *conn).await?.unwrap_or(0).max(from);
        if upto > from {
            sqlx::query(
                "INSERT OR IGNORE INTO event_timeline (bucket, customer_id, ts_ms, seq) \
                 SELECT seq / $3, customer_id, ts_ms, seq FROM events WHERE seq > $1 AND seq <= $2 AND customer_id IS NOT NULL \
                 ORDER BY seq / $3, customer_id, ts_ms, seq",
            )
            .bind(from)
            .bind(upto)
            .bind(timeline_bucket())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT OR IGNORE INTO event_devices (bucket, device, seq) \
                 SELECT seq / $3, device, seq FROM events WHERE seq > $1 AND seq <= $2 AND customer_id IS NULL AND device IS NOT NULL \
                 ORDER BY seq / $3, device, seq",
            )
            .bind(from)
            .bind(upto)
            .bind(timeline_bucket())
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE event_timeline_meta SET indexed_seq = $1 WHERE id = 1").bind(upto).execute(&mut *conn).await?;
        }
        Ok::<i64, StoreError>(upto)
    }
    .await;
    match res {
        Ok(upto) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(upto)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

