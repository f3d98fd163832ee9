//! Bulk loading for imports and the demo generator: idempotent upserts by external id, in
//! one transaction per load. A row whose key was already written by the same load is a
//! duplicate inside the file: the first one wins and the later one is reported. Rows that
//! refer to an unknown customer or product are not written and are reported.

use crate::{Backend, Result, Store};
use chrono::{DateTime, Utc};
use kehu_domain::ingest::{EntityKind, Record};
use kehu_domain::state::*;
use sqlx::{Postgres, Transaction as DbTx};
use std::collections::HashSet;

/// Why a valid row was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The same external id came earlier in this load.
    DuplicateInFile,
    UnknownCustomer(String),
    UnknownProduct(String),
}

impl SkipReason {
    pub fn column(&self) -> &'static str {
        match self {
            SkipReason::DuplicateInFile => "external_id",
            SkipReason::UnknownCustomer(_) => "customer_id",
            SkipReason::UnknownProduct(_) => "product_code",
        }
    }
    pub fn message(&self) -> String {
        match self {
            SkipReason::DuplicateInFile => {
                "an external id not used earlier in the same file (duplicate)".into()
            }
            SkipReason::UnknownCustomer(c) => {
                format!("a known customer id (no customer {c:?}; import customers first)")
            }
            SkipReason::UnknownProduct(p) => {
                format!("a known product code (no product {p:?}; import products first)")
            }
        }
    }
}

/// A row of a batch that was not written, by its index in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub index: usize,
    pub reason: SkipReason,
}

/// A record that can be bulk-loaded.
pub trait LoadRecord: Record {
    fn customer_ref(&self) -> Option<&str> {
        None
    }
    fn product_ref(&self) -> Option<&str> {
        None
    }
    #[doc(hidden)]
    fn batch(rows: &[Self]) -> Batch<'_>;
}

#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Batch<'a> {
    Customers(&'a [Customer]),
    Staff(&'a [Staff]),
    Products(&'a [Product]),
    Holdings(&'a [Holding]),
    Transactions(&'a [Transaction]),
}

impl<'a> Batch<'a> {
    fn keys(self) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match self {
            Batch::Customers(r) => Box::new(r.iter().map(|x| x.external_id.as_str())),
            Batch::Staff(r) => Box::new(r.iter().map(|x| x.external_id.as_str())),
            Batch::Products(r) => Box::new(r.iter().map(|x| x.code.as_str())),
            Batch::Holdings(r) => Box::new(r.iter().map(|x| x.external_id.as_str())),
            Batch::Transactions(r) => Box::new(r.iter().map(|x| x.external_id.as_str())),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::Customers(r) => r.len(),
            Batch::Staff(r) => r.len(),
            Batch::Products(r) => r.len(),
            Batch::Holdings(r) => r.len(),
            Batch::Transactions(r) => r.len(),
        }
    }
}

impl LoadRecord for Customer {
    fn batch(rows: &[Self]) -> Batch<'_> {
        Batch::Customers(rows)
    }
}
impl LoadRecord for Staff {
    fn batch(rows: &[Self]) -> Batch<'_> {
        Batch::Staff(rows)
    }
}
impl LoadRecord for Product {
    fn batch(rows: &[Self]) -> Batch<'_> {
        Batch::Products(rows)
    }
}
impl LoadRecord for Holding {
    fn customer_ref(&self) -> Option<&str> {
        Some(&self.customer_id)
    }
    fn product_ref(&self) -> Option<&str> {
        self.product_code.as_deref()
    }
    fn batch(rows: &[Self]) -> Batch<'_> {
        Batch::Holdings(rows)
    }
}
impl LoadRecord for Transaction {
    fn customer_ref(&self) -> Option<&str> {
        Some(&self.customer_id)
    }
    fn product_ref(&self) -> Option<&str> {
        self.product_code.as_deref()
    }
    fn batch(rows: &[Self]) -> Batch<'_> {
        Batch::Transactions(rows)
    }
}

enum Tx {
    /// A connection of its own, taken out of the pool, with an explicit transaction:
    /// foreign keys are off on it, since the load resolves every reference itself.
    /// Dropped unfinished, it closes and SQLite rolls the transaction back.
    Sqlite(sqlx::SqliteConnection),
    Postgres(DbTx<'static, Postgres>),
}

/// One load in progress: everything it writes becomes visible at `commit`, or not at all.
pub struct Load {
    tx: Tx,
    run_id: i64,
    kind: EntityKind,
    now: DateTime<Utc>,
    store: Store,
    /// Non-unique indexes dropped for this load (their `CREATE INDEX`), built again at
    /// the end: inside the transaction on PostgreSQL, right after commit on SQLite.
    deferred: Vec<String>,
    /// The table had no rows when the load began.
    empty_at_start: bool,
}

/// Counts recorded with the load in `import_runs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadCounts {
    pub read: u64,
    pub loaded: u64,
    pub rejected: u64,
}

impl Store {
    /// Starts a load of `kind` from `source` (a file name or `api`/`demo`). The run is
    /// recorded in `import_runs` whatever its outcome.
    pub async fn begin_load(
        &self,
        kind: EntityKind,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Load> {
        let sql =
            "INSERT INTO import_runs (kind, source, started_at) VALUES ($1, $2, $3) RETURNING id";
        let (run_id, tx) = match &self.backend {
            Backend::Sqlite(p) => {
                let id: i64 = sqlx::query_scalar(sql)
                    .bind(kind.name())
                    .bind(source)
                    .bind(now)
                    .fetch_one(p)
                    .await?;
                let mut conn = p.acquire().await?.detach();
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
                (id, Tx::Sqlite(conn))
            }
            Backend::Postgres(p) => {
                let id: i64 = sqlx::query_scalar(sql)
                    .bind(kind.name())
                    .bind(source)
                    .bind(now)
                    .fetch_one(p)
                    .await?;
                (id, Tx::Postgres(p.begin().await?))
            }
        };
        let mut load = Load {
            tx,
            run_id,
            kind,
            now,
            store: self.clone(),
            deferred: Vec::new(),
            empty_at_start: false,
        };
        load.defer_indexes().await?;
        Ok(load)
    }
}

impl Load {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Loading into an empty table: its non-unique indexes are dropped inside the load's
    /// transaction and built again at the end (sorted, far faster than row by row). On
    /// PostgreSQL that happens before commit; on SQLite right after it, from a record in
    /// `pending_indexes` written in the load's transaction (so a crash in between is
    /// repaired when the store is next opened). A rollback brings them back with
    /// everything else. The unique key stays, since the upsert needs it. The index
    /// definitions are read from the database, so they always match the migrations.
    async fn defer_indexes(&mut self) -> Result<()> {
        let table = self.kind.name();
        let probe = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) t");
        let ddl: Vec<(String, String)> = match &mut self.tx {
            Tx::Sqlite(tx) => {
                let n: i64 = sqlx::query_scalar(&probe).fetch_one(&mut *tx).await?;
                if n > 0 {
                    return Ok(());
                }
                self.empty_at_start = true;
                sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
                     AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
                )
                .bind(table)
                .fetch_all(&mut *tx)
                .await?
            }
            Tx::Postgres(tx) => {
                let n: i64 = sqlx::query_scalar(&probe).fetch_one(&mut **tx).await?;
                if n > 0 {
                    return Ok(());
                }
                self.empty_at_start = true;
                sqlx::query_as(
                    "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                     AND tablename = $1 AND indexdef NOT LIKE 'CREATE UNIQUE%'",
                )
                .bind(table)
                .fetch_all(&mut **tx)
                .await?
            }
        };
        for (name, create) in ddl {
            let drop = format!("DROP INDEX {name}");
            match &mut self.tx {
                Tx::Sqlite(tx) => drop_result(sqlx::query(&drop).execute(&mut *tx).await?),
                Tx::Postgres(tx) => drop_result(sqlx::query(&drop).execute(&mut **tx).await?),
            }
            if let Tx::Sqlite(tx) = &mut self.tx {
                sqlx::query("INSERT INTO pending_indexes (name, ddl) VALUES ($1, $2)")
                    .bind(&name)
                    .bind(&create)
                    .execute(&mut *tx)
                    .await?;
            }
            self.deferred.push(create);
        }
        Ok(())
    }

    /// Writes a batch; returns the rows that were not written and why.
    pub async fn write<R: LoadRecord>(&mut self, rows: &[R]) -> Result<Vec<Skip>> {
        assert_eq!(R::KIND, self.kind, "a load takes one kind of record");
        let mut skips = Vec::new();
        // Duplicates inside the batch: PostgreSQL refuses to upsert a row twice in one
        // statement, so the later ones are taken out here.
        let mut seen = HashSet::with_capacity(rows.len());
        let mut keep: Vec<usize> = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if seen.insert(r.external_id()) {
                keep.push(i);
            } else {
                skips.push(Skip {
                    index: i,
                    reason: SkipReason::DuplicateInFile,
                });
            }
        }
        let written = if keep.len() == rows.len() {
            self.write_rows(R::batch(rows)).await?
        } else {
            let kept: Vec<R> = keep.iter().map(|&i| rows[i].clone()).collect();
            self.write_rows(R::batch(&kept)).await?
        };
        if let Some(written) = written {
            let missing: Vec<usize> = keep
                .iter()
                .copied()
                .filter(|&i| !written.contains(rows[i].external_id()))
                .collect();
            let custs: Vec<&str> = missing
                .iter()
                .filter_map(|&i| rows[i].customer_ref())
                .collect();
            let prods: Vec<&str> = missing
                .iter()
                .filter_map(|&i| rows[i].product_ref())
                .collect();
            let known_c = self.existing("customers", "external_id", &custs).await?;
            let known_p = self.existing("products", "code", &prods).await?;
            for i in missing {
                let r = &rows[i];
                let reason = match (r.customer_ref(), r.product_ref()) {
                    (Some(c), _) if !known_c.contains(c) => {
                        SkipReason::UnknownCustomer(c.to_string())
                    }
                    (_, Some(p)) if !known_p.contains(p) => {
                        SkipReason::UnknownProduct(p.to_string())
                    }
                    _ => SkipReason::DuplicateInFile,
                };
                skips.push(Skip { index: i, reason });
            }
        }
        skips.sort_by_key(|s| s.index);
        Ok(skips)
    }

    async fn existing(&mut self, table: &str, col: &str, keys: &[&str]) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in keys.chunks(500) {
            if chunk.is_empty() {
                continue;
            }
            let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {col} FROM {table} WHERE {col} IN ({})",
                ph.join(",")
            );
            let found: Vec<String> = match &mut self.tx {
                Tx::Sqlite(tx) => {
                    let mut q = sqlx::query_scalar(&sql);
                    for k in chunk {
                        q = q.bind(*k);
                    }
                    q.fetch_all(&mut *tx).await?
                }
                Tx::Postgres(tx) => {
                    let mut q = sqlx::query_scalar(&sql);
                    for k in chunk {
                        q = q.bind(*k);
                    }
                    q.fetch_all(&mut **tx).await?
                }
            };
            out.extend(found);
        }
        Ok(out)
    }

    /// Writes a batch; `None` when every row was written, else the keys that were.
    ///
    /// SQLite: a prepared single-row upsert per row, which says by itself whether the row
    /// was written (see `sqlite_bulk`). PostgreSQL: one `UNNEST` statement per chunk whose
    /// changed-row count is compared with the batch; only when some rows were not written
    /// (a duplicate or an unknown reference) is the batch undone to a savepoint and written
    /// again, asking the database for each written key.
    async fn write_rows(&mut self, batch: Batch<'_>) -> Result<Option<HashSet<String>>> {
        let (run, now) = (self.run_id, self.now);
        let n = batch.len() as u64;
        match &mut self.tx {
            Tx::Sqlite(tx) => {
                let flags = crate::sqlite_bulk::write(&mut *tx, run, now, batch).await?;
                if flags.iter().all(|w| *w) {
                    return Ok(None);
                }
                Ok(Some(
                    batch
                        .keys()
                        .zip(flags)
                        .filter(|(_, w)| *w)
                        .map(|(k, _)| k.to_string())
                        .collect(),
                ))
            }
            Tx::Postgres(tx) => {
                // Into a table that was empty when the load began, a plain INSERT is enough
                // unless the file repeats a key, which the unique index then refuses.
                let plain = self.empty_at_start;
                sqlx::query("SAVEPOINT kehu_batch")
                    .execute(&mut **tx)
                    .await?;
                match postgres::write(tx, run, now, batch, false, plain).await {
                    Ok((affected, _)) if affected == n => {
                        sqlx::query("RELEASE SAVEPOINT kehu_batch")
                            .execute(&mut **tx)
                            .await?;
                        return Ok(None);
                    }
                    Ok(_) => {}
                    Err(crate::StoreError::Db(sqlx::Error::Database(e)))
                        if plain && e.code().as_deref() == Some("23505") => {}
                    Err(e) => return Err(e),
                }
                sqlx::query("ROLLBACK TO SAVEPOINT kehu_batch")
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT kehu_batch")
                    .execute(&mut **tx)
                    .await?;
                let (_, keys) = postgres::write(tx, run, now, batch, true, false).await?;
                Ok(Some(keys.into_iter().collect()))
            }
        }
    }

    /// Makes the load visible (or discards it) and records the outcome.
    pub async fn finish(mut self, commit: bool, counts: LoadCounts) -> Result<()> {
        match self.tx {
            Tx::Sqlite(mut conn) => {
                if commit {
                    sqlx::query("COMMIT").execute(&mut conn).await?;
                    if !self.deferred.is_empty() {
                        // The rows are committed; the indexes are built from the database
                        // file (after a checkpoint), which is much faster than from the
                        // write-ahead log inside the load's transaction. Until then the
                        // table answers without them, and `pending_indexes` makes sure a
                        // crash in between cannot lose them.
                        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                            .execute(&mut conn)
                            .await?;
                        crate::build_pending_indexes(&mut conn).await?;
                    }
                } else {
                    sqlx::query("ROLLBACK").execute(&mut conn).await?;
                }
                sqlx::Connection::close(conn).await?;
            }
            Tx::Postgres(mut tx) => {
                if commit {
                    for create in std::mem::take(&mut self.deferred) {
                        sqlx::query(&create).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
            }
        }
        let status = if commit { "committed" } else { "rolled_back" };
        let sql = "UPDATE import_runs SET finished_at = $1, status = $2, rows_read = $3, rows_loaded = $4, rows_rejected = $5 WHERE id = $6";
        crate::with_pool!(self.store, p => {
            sqlx::query(sql)
                .bind(Utc::now())
                .bind(status)
                .bind(counts.read as i64)
                .bind(if commit { counts.loaded as i64 } else { 0 })
                .bind(counts.rejected as i64)
                .bind(self.run_id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}

fn drop_result<T>(_: T) {}

/// Runs a bulk statement: with `returning`, collects the written keys; without, counts.
macro_rules! run_chunk {
    ($q:expr, $tx:expr, $returning:expr, $keys:expr, $affected:expr) => {
        if $returning {
            use sqlx::Row;
            for r in $q.fetch_all(&mut *$tx).await? {
                $keys.push(r.try_get::<String, _>(0)?);
            }
        } else {
            $affected += $q.execute(&mut *$tx).await?.rows_affected();
        }
    };
}

fn last4(phone: &Option<String>) -> Option<&str> {
    phone
        .as_deref()
        .filter(|p| p.len() >= 4)
        .map(|p| &p[p.len() - 4..])
}

mod postgres {
    use super::*;
    use sqlx::PgConnection;

    /// Rows per statement: arrays are one parameter each, so this only bounds memory.
    const CHUNK: usize = 5_000;

    pub(super) async fn write(
        tx: &mut PgConnection,
        run: i64,
        now: DateTime<Utc>,
        batch: Batch<'_>,
        returning: bool,
        plain: bool,
    ) -> Result<(u64, Vec<String>)> {
        let mut keys = Vec::new();
        let mut affected = 0u64;
        let ret = if returning { "RETURNING" } else { "--" };
        match batch {
            Batch::Customers(rows) => {
                for c in rows.chunks(CHUNK) {
                    let conflict = "ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, gender = excluded.gender, \
                         birth_date = excluded.birth_date, phone = excluded.phone, phone_last4 = excluded.phone_last4, \
                         id_number = excluded.id_number, income_band = excluded.income_band, occupation = excluded.occupation, \
                         branch = excluded.branch, manager_id = excluded.manager_id, vip_tier = excluded.vip_tier, \
                         consent_sms = excluded.consent_sms, consent_push = excluded.consent_push, \
                         consent_call = excluded.consent_call, personalization = excluded.personalization, \
                         import_run = excluded.import_run, updated_at = excluded.updated_at \
                         WHERE customers.import_run <> excluded.import_run";
                    let sql = format!(
                        "INSERT INTO customers (external_id, name, gender, birth_date, phone, phone_last4, id_number, \
                         income_band, occupation, branch, manager_id, vip_tier, consent_sms, consent_push, consent_call, \
                         personalization, import_run, updated_at) \
                         SELECT v.*, $17::bigint, $18::timestamptz FROM UNNEST($1::text[], $2::text[], $3::text[], \
                         $4::date[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                         $12::text[], $13::bool[], $14::bool[], $15::bool[], $16::bool[]) AS v \
                         {} {ret} external_id",
                        if plain { "" } else { conflict }
                    );
                    let q = sqlx::query(&sql)
                        .bind(c.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.gender.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.birth_date).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.phone.as_deref()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| last4(&r.phone)).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.id_number.as_deref()).collect::<Vec<_>>())
                        .bind(
                            c.iter()
                                .map(|r| r.income_band.map(|b| b.code()))
                                .collect::<Vec<_>>(),
                        )
                        .bind(
                            c.iter()
                                .map(|r| r.occupation.as_deref())
                                .collect::<Vec<_>>(),
                        )
                        .bind(c.iter().map(|r| r.branch.as_deref()).collect::<Vec<_>>())
                        .bind(
                            c.iter()
                                .map(|r| r.manager_id.as_deref())
                                .collect::<Vec<_>>(),
                        )
                        .bind(c.iter().map(|r| r.vip_tier.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.consent_sms).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.consent_push).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.consent_call).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.personalization).collect::<Vec<_>>())
                        .bind(run)
                        .bind(now);
                    run_chunk!(q, tx, returning, keys, affected);
                }
            }
            Batch::Staff(rows) => {
                for c in rows.chunks(CHUNK) {
                    let conflict = "ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, role = excluded.role, \
                         branch = excluded.branch, import_run = excluded.import_run, updated_at = excluded.updated_at \
                         WHERE staff.import_run <> excluded.import_run";
                    let sql = format!(
                        "INSERT INTO staff (external_id, name, role, branch, import_run, updated_at) \
                         SELECT v.*, $5::bigint, $6::timestamptz FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS v \
                         {} {ret} external_id",
                        if plain { "" } else { conflict }
                    );
                    let q = sqlx::query(&sql)
                        .bind(c.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.role.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.branch.as_deref()).collect::<Vec<_>>())
                        .bind(run)
                        .bind(now);
                    run_chunk!(q, tx, returning, keys, affected);
                }
            }
            Batch::Products(rows) => {
                for c in rows.chunks(CHUNK) {
                    let conflict = "ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                         risk_level = excluded.risk_level, min_purchase_fen = excluded.min_purchase_fen, \
                         term_days = excluded.term_days, expected_yield_bp = excluded.expected_yield_bp, \
                         sale_start = excluded.sale_start, sale_end = excluded.sale_end, repeatable = excluded.repeatable, \
                         import_run = excluded.import_run, updated_at = excluded.updated_at \
                         WHERE products.import_run <> excluded.import_run";
                    let sql = format!(
                        "INSERT INTO products (code, name, kind, risk_level, min_purchase_fen, term_days, expected_yield_bp, \
                         sale_start, sale_end, repeatable, import_run, updated_at) \
                         SELECT v.*, $11::bigint, $12::timestamptz FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
                         $5::bigint[], $6::bigint[], $7::bigint[], $8::date[], $9::date[], $10::bool[]) AS v \
                         {} {ret} code",
                        if plain { "" } else { conflict }
                    );
                    let q = sqlx::query(&sql)
                        .bind(c.iter().map(|r| r.code.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.kind.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.risk_level.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.min_purchase.0).collect::<Vec<_>>())
                        .bind(
                            c.iter()
                                .map(|r| r.term_days.map(i64::from))
                                .collect::<Vec<_>>(),
                        )
                        .bind(
                            c.iter()
                                .map(|r| r.expected_yield.map(|b| i64::from(b.0)))
                                .collect::<Vec<_>>(),
                        )
                        .bind(c.iter().map(|r| r.sale_start).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.sale_end).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.repeatable).collect::<Vec<_>>())
                        .bind(run)
                        .bind(now);
                    run_chunk!(q, tx, returning, keys, affected);
                }
            }
            Batch::Holdings(rows) => {
                for c in rows.chunks(CHUNK) {
                    let conflict = "ON CONFLICT (external_id) DO UPDATE SET customer_id = excluded.customer_id, \
                         product_id = excluded.product_id, asset_class = excluded.asset_class, \
                         balance_fen = excluded.balance_fen, opened_on = excluded.opened_on, as_of = excluded.as_of, \
                         import_run = excluded.import_run, updated_at = excluded.updated_at \
                         WHERE holdings.import_run <> excluded.import_run";
                    let sql = format!(
                        "INSERT INTO holdings (external_id, customer_id, product_id, asset_class, balance_fen, opened_on, \
                         as_of, import_run, updated_at) \
                         SELECT v.ext, c.id, p.id, v.class, v.bal, v.opened, v.asof, $8::bigint, $9::timestamptz \
                         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::date[], $7::date[]) \
                         AS v(ext, cust, prod, class, bal, opened, asof) \
                         JOIN customers c ON c.external_id = v.cust LEFT JOIN products p ON p.code = v.prod \
                         WHERE v.prod IS NULL OR p.id IS NOT NULL \
                         {} {ret} external_id",
                        if plain { "" } else { conflict }
                    );
                    let q = sqlx::query(&sql)
                        .bind(c.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.customer_id.as_str()).collect::<Vec<_>>())
                        .bind(
                            c.iter()
                                .map(|r| r.product_code.as_deref())
                                .collect::<Vec<_>>(),
                        )
                        .bind(c.iter().map(|r| r.asset_class.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.balance.0).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.opened_on).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.as_of).collect::<Vec<_>>())
                        .bind(run)
                        .bind(now);
                    run_chunk!(q, tx, returning, keys, affected);
                }
            }
            Batch::Transactions(rows) => {
                for c in rows.chunks(CHUNK) {
                    let conflict = "ON CONFLICT (external_id) DO UPDATE SET customer_id = excluded.customer_id, \
                         amount_fen = excluded.amount_fen, direction = excluded.direction, category = excluded.category, \
                         channel = excluded.channel, occurred_at = excluded.occurred_at, product_id = excluded.product_id, \
                         description = excluded.description, import_run = excluded.import_run \
                         WHERE transactions.import_run <> excluded.import_run";
                    let sql = format!(
                        "INSERT INTO transactions (external_id, customer_id, amount_fen, direction, category, channel, \
                         occurred_at, product_id, description, import_run) \
                         SELECT v.ext, c.id, v.amount, v.dir, v.cat, v.chan, v.at, p.id, v.descr, $10::bigint \
                         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
                         $7::timestamptz[], $8::text[], $9::text[]) AS v(ext, cust, amount, dir, cat, chan, at, prod, descr) \
                         JOIN customers c ON c.external_id = v.cust LEFT JOIN products p ON p.code = v.prod \
                         WHERE v.prod IS NULL OR p.id IS NOT NULL \
                         {} {ret} external_id",
                        if plain { "" } else { conflict }
                    );
                    let q = sqlx::query(&sql)
                        .bind(c.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.customer_id.as_str()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.amount.0).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.direction.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.category.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.channel.code()).collect::<Vec<_>>())
                        .bind(c.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
                        .bind(
                            c.iter()
                                .map(|r| r.product_code.as_deref())
                                .collect::<Vec<_>>(),
                        )
                        .bind(
                            c.iter()
                                .map(|r| r.description.as_deref())
                                .collect::<Vec<_>>(),
                        )
                        .bind(run);
                    run_chunk!(q, tx, returning, keys, affected);
                }
            }
        }
        Ok((affected, keys))
    }
}
