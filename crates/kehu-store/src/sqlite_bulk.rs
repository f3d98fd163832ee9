//! The SQLite bulk path: one prepared single-row upsert, bound and stepped per row through
//! the raw handle of the load's own connection (inside its transaction). Whether a row was
//! written is `sqlite3_changes()` after its step: 0 means the key was already written by
//! this load (a duplicate in the file). Customer and product references are resolved by
//! prepared lookups (the last customer and every product remembered), an unknown one
//! leaves the row unwritten. No per-row allocation in sqlx, no statement journal, no key
//! lists.
//!
//! Values are encoded exactly as sqlx encodes them (dates `%Y-%m-%d`, times RFC 3339 with
//! `+00:00`, booleans as integers), so the rest of the store reads them unchanged.

use crate::load::Batch;
use crate::{Result, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, CStr};
use std::ptr;

pub(crate) enum V<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

fn opt<'a>(s: &'a Option<String>) -> V<'a> {
    s.as_deref().map_or(V::Null, V::Text)
}

fn int(v: Option<i64>) -> V<'static> {
    v.map_or(V::Null, V::Int)
}

fn date(d: Option<NaiveDate>) -> Option<String> {
    d.map(date_text)
}

/// A date as stored: `2026-11-28` (see `push_date`).
pub(crate) fn date_text(d: NaiveDate) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, d);
    s
}

/// `2026-11-28`, written digit by digit (chrono's formatter costs more than the insert).
pub(crate) fn push_date(s: &mut String, d: NaiveDate) {
    let y = d.year();
    if !(0..=9999).contains(&y) {
        s.push_str(&d.format("%Y-%m-%d").to_string());
        return;
    }
    push_digits(s, y as u32, 4);
    s.push('-');
    push_digits(s, d.month(), 2);
    s.push('-');
    push_digits(s, d.day(), 2);
}

fn push_digits(s: &mut String, mut v: u32, width: usize) {
    let mut buf = [b'0'; 4];
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    s.push_str(std::str::from_utf8(&buf[..width]).expect("digits"));
}

/// As sqlx writes a UTC time: `2026-11-28T06:05:00+00:00` (fractions only when present).
pub(crate) fn time(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_nanos() != 0 || !(0..=9999).contains(&t.year()) {
        return t.to_rfc3339_opts(SecondsFormat::AutoSi, false);
    }
    let mut s = String::with_capacity(25);
    push_date(&mut s, t.date_naive());
    s.push('T');
    push_digits(&mut s, t.hour(), 2);
    s.push(':');
    push_digits(&mut s, t.minute(), 2);
    s.push(':');
    push_digits(&mut s, t.second(), 2);
    s.push_str("+00:00");
    s
}

pub(crate) struct Stmt {
    db: *mut ffi::sqlite3,
    st: *mut ffi::sqlite3_stmt,
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: `st` came from sqlite3_prepare_v2 on `db` and is finalized once.
        unsafe {
            ffi::sqlite3_finalize(self.st);
        }
    }
}

fn error(db: *mut ffi::sqlite3, what: &str) -> StoreError {
    // SAFETY: `db` is a valid open connection; errmsg returns a NUL-terminated string it owns.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    StoreError::Db(sqlx::Error::Protocol(format!("{what}: {msg}")))
}

impl Stmt {
    /// Runs a one-parameter query returning at most one integer.
    fn lookup(&self, key: &str) -> Result<Option<i64>> {
        // SAFETY: live statement; the key is bound SQLITE_STATIC and outlives the step.
        unsafe {
            let rc = ffi::sqlite3_bind_text(
                self.st,
                1,
                key.as_ptr() as *const c_char,
                key.len() as c_int,
                ffi::SQLITE_STATIC(),
            );
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, "binding a key"));
            }
            let rc = ffi::sqlite3_step(self.st);
            let out = if rc == ffi::SQLITE_ROW {
                Some(ffi::sqlite3_column_int64(self.st, 0))
            } else {
                None
            };
            ffi::sqlite3_reset(self.st);
            if rc != ffi::SQLITE_ROW && rc != ffi::SQLITE_DONE {
                return Err(error(self.db, "looking up a reference"));
            }
            Ok(out)
        }
    }

    pub(crate) fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Stmt> {
        let mut st = ptr::null_mut();
        // SAFETY: valid connection, SQL pointer and length; `st` receives the statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr() as *const c_char,
                sql.len() as c_int,
                &mut st,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, "preparing the bulk statement"));
        }
        Ok(Stmt { db, st })
    }

    /// Binds `vals` to ?1…?n, steps once, resets; true when the row was written.
    /// Like `row`, and the rowid of the written row.
    pub(crate) fn insert(&self, vals: &[V<'_>]) -> Result<Option<i64>> {
        if self.row(vals)? {
            // SAFETY: valid connection; the step above ran on it.
            Ok(Some(unsafe { ffi::sqlite3_last_insert_rowid(self.db) }))
        } else {
            Ok(None)
        }
    }

    /// Binds `vals` to ?1…?n for a query read with `next` (text bound SQLITE_TRANSIENT, so
    /// the values need not outlive the call).
    pub(crate) fn bind(&self, vals: &[V<'_>]) -> Result<()> {
        // SAFETY: live statement; SQLITE_TRANSIENT makes SQLite copy the text.
        unsafe {
            ffi::sqlite3_reset(self.st);
            ffi::sqlite3_clear_bindings(self.st);
            self.bind_values(vals, ffi::SQLITE_TRANSIENT())
        }
    }

    /// Binds `vals` to ?1…?n, text with the destructor `text` (SQLITE_STATIC: the caller
    /// keeps the text alive until the statement is reset; SQLITE_TRANSIENT: SQLite copies).
    ///
    /// # Safety
    /// The statement is live, and with SQLITE_STATIC the text outlives its use.
    unsafe fn bind_values(&self, vals: &[V<'_>], text: ffi::sqlite3_destructor_type) -> Result<()> {
        for (i, v) in vals.iter().enumerate() {
            let idx = (i + 1) as c_int;
            let rc = match v {
                V::Null => ffi::sqlite3_bind_null(self.st, idx),
                V::Int(n) => ffi::sqlite3_bind_int64(self.st, idx, *n),
                V::Real(x) => ffi::sqlite3_bind_double(self.st, idx, *x),
                V::Text(s) => ffi::sqlite3_bind_text(
                    self.st,
                    idx,
                    s.as_ptr() as *const c_char,
                    s.len() as c_int,
                    text,
                ),
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, "binding a value"));
            }
        }
        Ok(())
    }

    /// Steps a query: true while it yields a row.
    pub(crate) fn next(&self) -> Result<bool> {
        // SAFETY: live statement.
        let rc = unsafe { ffi::sqlite3_step(self.st) };
        match rc {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(error(self.db, "reading a row")),
        }
    }

    /// Column `i` of the current row as an integer (NULL reads as 0).
    pub(crate) fn int(&self, i: c_int) -> i64 {
        // SAFETY: called after `next` returned true.
        unsafe { ffi::sqlite3_column_int64(self.st, i) }
    }

    pub(crate) fn is_null(&self, i: c_int) -> bool {
        // SAFETY: called after `next` returned true.
        unsafe { ffi::sqlite3_column_type(self.st, i) == ffi::SQLITE_NULL }
    }

    /// Column `i` of the current row as text, valid until the next step.
    pub(crate) fn text(&self, i: c_int) -> &str {
        // SAFETY: called after `next` returned true; SQLite returns `len` bytes of UTF-8
        // (the text was written as UTF-8) that live until the next step or reset.
        unsafe {
            let p = ffi::sqlite3_column_text(self.st, i);
            if p.is_null() {
                return "";
            }
            let n = ffi::sqlite3_column_bytes(self.st, i) as usize;
            std::str::from_utf8(std::slice::from_raw_parts(p, n)).unwrap_or("")
        }
    }

    /// Column `i` of the current row as bytes (text without the UTF-8 check), valid until
    /// the next step.
    pub(crate) fn bytes(&self, i: c_int) -> &[u8] {
        // SAFETY: called after `next` returned true; SQLite returns `len` bytes that live
        // until the next step or reset.
        unsafe {
            let p = ffi::sqlite3_column_text(self.st, i);
            if p.is_null() {
                return &[];
            }
            let n = ffi::sqlite3_column_bytes(self.st, i) as usize;
            std::slice::from_raw_parts(p, n)
        }
    }

    pub(crate) fn row(&self, vals: &[V<'_>]) -> Result<bool> {
        // SAFETY: the statement is live; text is bound with SQLITE_STATIC and stays
        // borrowed until after the step and reset below.
        unsafe {
            self.bind_values(vals, ffi::SQLITE_STATIC())?;
            let rc = ffi::sqlite3_step(self.st);
            let changed = rc == ffi::SQLITE_DONE && ffi::sqlite3_changes(self.db) > 0;
            ffi::sqlite3_reset(self.st);
            ffi::sqlite3_clear_bindings(self.st);
            if rc != ffi::SQLITE_DONE {
                return Err(error(self.db, "writing a row"));
            }
            Ok(changed)
        }
    }
}

/// The largest id of `table` (0 when it is empty).
pub(crate) fn max_id(db: *mut ffi::sqlite3, table: &str) -> Result<i64> {
    let st = Stmt::prepare(db, &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))?;
    st.bind(&[])?;
    let id = if st.next()? { st.int(0) } else { 0 };
    st.bind(&[])?;
    Ok(id)
}

/// Rows written by one statement of `Rows` (with seven columns, 224 parameters).
const ROWS_PER_STATEMENT: usize = 32;

/// Writes rows `ROWS_PER_STATEMENT` at a time through one statement of that many `VALUES`
/// tuples, and the rest one at a time: SQLite's work per statement (cursors opened and
/// closed, the statement begun and ended) costs about as much as a short row itself.
///
/// The statements are `INSERT OR FAIL`: a row refused by a constraint ends the write with
/// an error naming the constraint, and the rows before it stay written; the caller's
/// transaction is meant to be rolled back then.
pub(crate) struct Rows {
    many: Stmt,
    one: Stmt,
    cols: usize,
}

impl Rows {
    /// `into`: the table and its columns, as in `INSERT OR FAIL INTO {into} VALUES …`.
    pub(crate) fn prepare(db: *mut ffi::sqlite3, into: &str, cols: usize) -> Result<Rows> {
        let tuple = format!("({})", vec!["?"; cols].join(","));
        let many = vec![tuple.as_str(); ROWS_PER_STATEMENT].join(",");
        Ok(Rows {
            many: Stmt::prepare(db, &format!("INSERT OR FAIL INTO {into} VALUES {many}"))?,
            one: Stmt::prepare(db, &format!("INSERT OR FAIL INTO {into} VALUES {tuple}"))?,
            cols,
        })
    }

    /// Writes the rows whose values `vals` holds one after the other, in order.
    pub(crate) fn write(&self, vals: &[V<'_>]) -> Result<()> {
        debug_assert_eq!(vals.len() % self.cols, 0);
        let mut groups = vals.chunks_exact(self.cols * ROWS_PER_STATEMENT);
        for g in &mut groups {
            self.many.row(g)?;
        }
        for r in groups.remainder().chunks(self.cols) {
            self.one.row(r)?;
        }
        Ok(())
    }
}

// ---- Reading on a second connection while the transaction writes ----

/// A second connection of the pool in a read transaction, for `pipeline`. It is begun after
/// the writer's `BEGIN IMMEDIATE` and reads nothing before the pipeline does, so it sees the
/// database as the writer found it (no other writer can commit in between). `None` when the
/// pool has no connection to spare at once; the work then runs on the writer alone.
async fn reader(pool: &sqlx::SqlitePool) -> Option<sqlx::Transaction<'static, sqlx::Sqlite>> {
    tokio::time::timeout(std::time::Duration::from_millis(250), pool.begin())
        .await
        .ok()?
        .ok()
}

/// Runs `work` on the raw handle of the transaction's connection `conn` and, when
/// `read_too` and the pool has one to spare, of another connection in a read transaction
/// (see `reader`), which is ended after. Both are locked before `work` runs, and `work`
/// cannot await, so no raw handle is held across an await (the caller's future stays
/// `Send`).
pub(crate) async fn on_raw<R>(
    pool: &sqlx::SqlitePool,
    conn: &mut sqlx::SqliteConnection,
    read_too: bool,
    work: impl FnOnce(*mut ffi::sqlite3, Option<*mut ffi::sqlite3>) -> R,
) -> std::result::Result<R, sqlx::Error> {
    let mut second = if read_too { reader(pool).await } else { None };
    let done = {
        let mut handle = conn.lock_handle().await?;
        let mut other = match second.as_deref_mut() {
            Some(r) => Some(r.lock_handle().await?),
            None => None,
        };
        let reader = other.as_mut().map(|h| h.as_raw_handle().as_ptr());
        work(handle.as_raw_handle().as_ptr(), reader)
    };
    if let Some(r) = second {
        r.rollback().await?;
    }
    Ok(done)
}

/// A connection handed to the reading thread of `pipeline`.
struct Handle(*mut ffi::sqlite3);

// SAFETY: a SQLite connection may be used from any thread, by one thread at a time. The
// pipeline gives the reader's connection to exactly one thread, which ends before the
// pipeline returns; nothing else uses that connection meanwhile (its sqlx handle is locked).
unsafe impl Send for Handle {}

/// Runs `produce` and `consume` at the same time on the two cores: `produce` on a thread of
/// its own, reading through `reader`, hands items through a short channel to `consume`,
/// which writes here through the writer's connection. `produce` gets a sink that answers
/// false once nothing more is wanted (`consume` failed); it should then stop.
///
/// Without a reader both run here, `produce` reading through `writer` and each item consumed
/// as soon as it is made; `produce` must then leave no statement open when it hands one over
/// (so no table is read while it is written).
///
/// `produce` may only read what `consume` does not write, or what it writes only after the
/// item that needed it was produced: the reader does not see the writer's changes.
pub(crate) fn pipeline<T: Send, R: Send, E: Send>(
    writer: *mut ffi::sqlite3,
    reader: Option<*mut ffi::sqlite3>,
    produce: impl FnOnce(*mut ffi::sqlite3, &mut dyn FnMut(T) -> bool) -> std::result::Result<R, E> + Send,
    mut consume: impl FnMut(T) -> std::result::Result<(), E>,
) -> std::result::Result<R, E> {
    let mut failed = None;
    let Some(reader) = reader else {
        let made = produce(writer, &mut |t| match consume(t) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        return match failed {
            Some(e) => Err(e),
            None => made,
        };
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
    let handle = Handle(reader);
    std::thread::scope(|s| {
        let made = s.spawn(move || {
            let handle = handle;
            produce(handle.0, &mut |t| tx.send(t).is_ok())
        });
        for t in rx.iter() {
            if let Err(e) = consume(t) {
                failed = Some(e);
                break;
            }
        }
        // The producer's next send fails once the receiver is gone, and it stops.
        drop(rx);
        let made = made.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        match failed {
            Some(e) => Err(e),
            None => made,
        }
    })
}

/// Steps of reading kept by `shared_steps` for the writer, at most (the reading thread waits
/// when the writer is that far behind).
const SHARED_AHEAD: usize = 8;

/// Runs `steps` steps of reading on two connections at once and hands each step's result to
/// `consume` in order, on this thread, which writes through `writer`.
///
/// A thread of its own takes the steps in order and reads them through `reader`. Whenever
/// `consume` would wait for a step the thread has not finished, this thread takes the next
/// step nobody has taken and reads it through `writer` itself, keeping the result until its
/// turn: both cores read while there is reading left, and the writer never idles while the
/// reader is the slower side. `prepare` makes a connection's state (its statements) for
/// `step`, once per connection; `consume` gets the writer's too, for reading of its own.
///
/// `step` must read the same through either connection: only what `consume` does not write,
/// or writes only after every step that reads it has run. Without a reader every step runs
/// here in order. Stops at the first error of `consume` (or of `prepare` on the writer),
/// which it returns; a reader that cannot prepare leaves every step to the writer.
pub(crate) fn shared_steps<S, T: Send, E: Send>(
    writer: *mut ffi::sqlite3,
    reader: Option<*mut ffi::sqlite3>,
    steps: usize,
    prepare: impl Fn(*mut ffi::sqlite3) -> std::result::Result<S, E> + Sync,
    step: impl Fn(&S, usize) -> T + Sync,
    mut consume: impl FnMut(T, &S) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let own = prepare(writer)?;
    let Some(reader) = reader.filter(|_| steps > 1) else {
        return (0..steps).try_for_each(|j| consume(step(&own, j), &own));
    };
    // The next step nobody has taken; set once the writer wants no more.
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) =
        std::sync::mpsc::sync_channel::<std::result::Result<(usize, T), E>>(SHARED_AHEAD);
    let handle = Handle(reader);
    let (next, stop, prepare, step) = (&next, &stop, &prepare, &step);
    std::thread::scope(|s| {
        s.spawn(move || {
            let handle = handle;
            let state = match prepare(handle.0) {
                Ok(state) => state,
                Err(e) => {
                    // The writer takes every step itself.
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            while !stop.load(Ordering::Relaxed) {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= steps || tx.send(Ok((j, step(&state, j)))).is_err() {
                    break;
                }
            }
        });
        let mut kept: std::collections::BTreeMap<usize, T> = Default::default();
        let result = (|| {
            for j in 0..steps {
                let t = loop {
                    if let Some(t) = kept.remove(&j) {
                        break t;
                    }
                    // The reader's results come in the order it took them; one after `j`
                    // means `j` was taken here (and is kept already). Once it has stopped
                    // (done, or unable to prepare) and its results are taken, every step
                    // left is taken here.
                    let got = match rx.try_recv() {
                        Ok(got) => got,
                        Err(_) => {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k < steps {
                                kept.insert(k, step(&own, k));
                                continue;
                            }
                            // Every step is taken: `j` is the reader's, still being read.
                            rx.recv().expect("the reading thread stopped inside a step it took")
                        }
                    };
                    // An error: the reader could not prepare, and took no step.
                    if let Ok((k, t)) = got {
                        kept.insert(k, t);
                    }
                };
                consume(t, &own)?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        // The reader's next send fails once the receiver is gone, and it stops.
        drop(rx);
        result
    })
}

const CUSTOMERS: &str = "INSERT INTO customers (external_id, name, gender, birth_date, phone, phone_last4, id_number, \
    income_band, occupation, branch, manager_id, vip_tier, consent_sms, consent_push, consent_call, personalization, \
    import_run, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
    ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, gender = excluded.gender, \
    birth_date = excluded.birth_date, phone = excluded.phone, phone_last4 = excluded.phone_last4, \
    id_number = excluded.id_number, income_band = excluded.income_band, occupation = excluded.occupation, \
    branch = excluded.branch, manager_id = excluded.manager_id, vip_tier = excluded.vip_tier, \
    consent_sms = excluded.consent_sms, consent_push = excluded.consent_push, consent_call = excluded.consent_call, \
    personalization = excluded.personalization, import_run = excluded.import_run, updated_at = excluded.updated_at \
    WHERE customers.import_run <> excluded.import_run";

const STAFF: &str = "INSERT INTO staff (external_id, name, role, branch, import_run, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, \
    role = excluded.role, branch = excluded.branch, import_run = excluded.import_run, updated_at = excluded.updated_at \
    WHERE staff.import_run <> excluded.import_run";

const PRODUCTS: &str = "INSERT INTO products (code, name, kind, risk_level, min_purchase_fen, term_days, \
    expected_yield_bp, sale_start, sale_end, repeatable, import_run, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (code) DO UPDATE SET \
    name = excluded.name, kind = excluded.kind, risk_level = excluded.risk_level, \
    min_purchase_fen = excluded.min_purchase_fen, term_days = excluded.term_days, \
    expected_yield_bp = excluded.expected_yield_bp, sale_start = excluded.sale_start, sale_end = excluded.sale_end, \
    repeatable = excluded.repeatable, import_run = excluded.import_run, updated_at = excluded.updated_at \
    WHERE products.import_run <> excluded.import_run";

const HOLDINGS: &str = "INSERT INTO holdings (external_id, customer_id, product_id, asset_class, balance_fen, \
    opened_on, as_of, import_run, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    ON CONFLICT (external_id) DO UPDATE SET customer_id = excluded.customer_id, product_id = excluded.product_id, \
    asset_class = excluded.asset_class, balance_fen = excluded.balance_fen, opened_on = excluded.opened_on, \
    as_of = excluded.as_of, import_run = excluded.import_run, updated_at = excluded.updated_at \
    WHERE holdings.import_run <> excluded.import_run";

const TRANSACTIONS: &str = "INSERT INTO transactions (external_id, customer_id, amount_fen, direction, category, \
    channel, occurred_at, product_id, description, import_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
    ON CONFLICT (external_id) DO UPDATE SET customer_id = excluded.customer_id, amount_fen = excluded.amount_fen, \
    direction = excluded.direction, category = excluded.category, channel = excluded.channel, \
    occurred_at = excluded.occurred_at, product_id = excluded.product_id, description = excluded.description, \
    import_run = excluded.import_run WHERE transactions.import_run <> excluded.import_run";

/// Resolves the external keys of customers and products to internal ids, remembering the
/// last customer (rows of one customer come together) and every product (a short list).
struct Refs {
    customer: Stmt,
    product: Stmt,
    last_customer: Option<(String, Option<i64>)>,
    products: std::collections::HashMap<String, Option<i64>>,
}

impl Refs {
    fn new(db: *mut ffi::sqlite3) -> Result<Refs> {
        Ok(Refs {
            customer: Stmt::prepare(db, "SELECT id FROM customers WHERE external_id = ?1")?,
            product: Stmt::prepare(db, "SELECT id FROM products WHERE code = ?1")?,
            last_customer: None,
            products: Default::default(),
        })
    }

    fn customer(&mut self, ext: &str) -> Result<Option<i64>> {
        if let Some((k, id)) = &self.last_customer {
            if k == ext {
                return Ok(*id);
            }
        }
        let id = self.customer.lookup(ext)?;
        self.last_customer = Some((ext.to_string(), id));
        Ok(id)
    }

    fn product(&mut self, code: &str) -> Result<Option<i64>> {
        if let Some(id) = self.products.get(code) {
            return Ok(*id);
        }
        let id = self.product.lookup(code)?;
        self.products.insert(code.to_string(), id);
        Ok(id)
    }

    /// The customer's id and the product's (if the row names one); `None` when either
    /// reference is unknown, and the row is then not written.
    fn resolve(
        &mut self,
        customer: &str,
        product: Option<&str>,
    ) -> Result<Option<(i64, Option<i64>)>> {
        let Some(c) = self.customer(customer)? else {
            return Ok(None);
        };
        match product {
            None => Ok(Some((c, None))),
            Some(code) => Ok(self.product(code)?.map(|p| (c, Some(p)))),
        }
    }
}

/// Writes every row of `batch`; for each, whether it was written.
pub(crate) async fn write(
    conn: &mut sqlx::SqliteConnection,
    run: i64,
    now: DateTime<Utc>,
    batch: Batch<'_>,
) -> Result<Vec<bool>> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let now = time(now);
    let b = |v: bool| V::Int(i64::from(v));
    let mut out = Vec::with_capacity(batch.len());
    match batch {
        Batch::Customers(rows) => {
            let st = Stmt::prepare(db, CUSTOMERS)?;
            for c in rows {
                let birth = date(c.birth_date);
                let last4 = c
                    .phone
                    .as_deref()
                    .filter(|p| p.len() >= 4)
                    .map(|p| &p[p.len() - 4..]);
                out.push(st.row(&[
                    V::Text(&c.external_id),
                    V::Text(&c.name),
                    V::Text(c.gender.code()),
                    opt(&birth),
                    opt(&c.phone),
                    last4.map_or(V::Null, V::Text),
                    opt(&c.id_number),
                    c.income_band.map_or(V::Null, |x| V::Text(x.code())),
                    opt(&c.occupation),
                    opt(&c.branch),
                    opt(&c.manager_id),
                    V::Text(c.vip_tier.code()),
                    b(c.consent_sms),
                    b(c.consent_push),
                    b(c.consent_call),
                    b(c.personalization),
                    V::Int(run),
                    V::Text(&now),
                ])?);
            }
        }
        Batch::Staff(rows) => {
            let st = Stmt::prepare(db, STAFF)?;
            for s in rows {
                out.push(st.row(&[
                    V::Text(&s.external_id),
                    V::Text(&s.name),
                    V::Text(s.role.code()),
                    opt(&s.branch),
                    V::Int(run),
                    V::Text(&now),
                ])?);
            }
        }
        Batch::Products(rows) => {
            let st = Stmt::prepare(db, PRODUCTS)?;
            for p in rows {
                let (start, end) = (date(p.sale_start), date(p.sale_end));
                out.push(st.row(&[
                    V::Text(&p.code),
                    V::Text(&p.name),
                    V::Text(p.kind.code()),
                    V::Text(p.risk_level.code()),
                    V::Int(p.min_purchase.0),
                    int(p.term_days.map(i64::from)),
                    int(p.expected_yield.map(|y| i64::from(y.0))),
                    opt(&start),
                    opt(&end),
                    b(p.repeatable),
                    V::Int(run),
                    V::Text(&now),
                ])?);
            }
        }
        Batch::Holdings(rows) => {
            let st = Stmt::prepare(db, HOLDINGS)?;
            let mut refs = Refs::new(db)?;
            for h in rows {
                let Some((cust, product)) =
                    refs.resolve(&h.customer_id, h.product_code.as_deref())?
                else {
                    out.push(false);
                    continue;
                };
                let (opened, as_of) = (date(h.opened_on), date(Some(h.as_of)));
                out.push(st.row(&[
                    V::Text(&h.external_id),
                    V::Int(cust),
                    int(product),
                    V::Text(h.asset_class.code()),
                    V::Int(h.balance.0),
                    opt(&opened),
                    opt(&as_of),
                    V::Int(run),
                    V::Text(&now),
                ])?);
            }
        }
        Batch::Transactions(rows) => {
            let st = Stmt::prepare(db, TRANSACTIONS)?;
            let mut refs = Refs::new(db)?;
            for t in rows {
                let Some((cust, product)) =
                    refs.resolve(&t.customer_id, t.product_code.as_deref())?
                else {
                    out.push(false);
                    continue;
                };
                let at = time(t.occurred_at);
                out.push(st.row(&[
                    V::Text(&t.external_id),
                    V::Int(cust),
                    V::Int(t.amount.0),
                    V::Text(t.direction.code()),
                    V::Text(t.category.code()),
                    V::Text(t.channel.code()),
                    V::Text(&at),
                    int(product),
                    opt(&t.description),
                    V::Int(run),
                ])?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rows_writes_groups_and_the_rest_in_order_and_stops_at_a_refused_row() {
        let mut db = ptr::null_mut();
        let name = c":memory:";
        // SAFETY: a fresh in-memory connection, closed at the end of the test.
        assert_eq!(unsafe { ffi::sqlite3_open(name.as_ptr(), &mut db) }, ffi::SQLITE_OK);
        Stmt::prepare(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, label TEXT NOT NULL)")
            .unwrap()
            .row(&[])
            .unwrap();
        let rows = Rows::prepare(db, "t (k, label)", 2).unwrap();
        // Two statements of 32 rows and 6 rows one by one.
        let labels: Vec<String> = (0..70).map(|k| format!("第{k}行")).collect();
        let vals: Vec<V> = (0..70)
            .flat_map(|k| [V::Int(k), V::Text(&labels[k as usize])])
            .collect();
        rows.write(&vals).unwrap();
        let all = Stmt::prepare(db, "SELECT k, label FROM t ORDER BY rowid").unwrap();
        all.bind(&[]).unwrap();
        let mut got = Vec::new();
        while all.next().unwrap() {
            got.push((all.int(0), all.text(1).to_string()));
        }
        all.bind(&[]).unwrap();
        assert_eq!(got, (0..70).map(|k| (k, format!("第{k}行"))).collect::<Vec<_>>());
        // Row 40 of the next write repeats a key: an error that names the constraint, and
        // the rows before it (one whole statement and eight of the next) are kept.
        let vals: Vec<V> = (100..170)
            .map(|k| if k == 140 { 5 } else { k })
            .flat_map(|k| [V::Int(k), V::Text("x")])
            .collect();
        let err = rows.write(&vals).unwrap_err().to_string();
        assert!(err.contains("UNIQUE constraint failed: t.k"), "{err}");
        let count = Stmt::prepare(db, "SELECT COUNT(*), MAX(k) FROM t WHERE k >= 100").unwrap();
        count.bind(&[]).unwrap();
        assert!(count.next().unwrap());
        assert_eq!((count.int(0), count.int(1)), (40, 139));
        drop((rows, all, count));
        // SAFETY: every statement on `db` is finalized above.
        unsafe { ffi::sqlite3_close(db) };
    }

    // `shared_steps` only hands the connections to `prepare`; these tests tell them apart by
    // address and never open them.
    const W: *mut ffi::sqlite3 = 8 as *mut ffi::sqlite3;
    const R: *mut ffi::sqlite3 = 16 as *mut ffi::sqlite3;

    /// Runs 40 steps with a reader that takes `reader_ms` per step; the steps in the order
    /// consumed, with the connection that read each.
    fn shared_run(
        reader_ms: u64,
        fail_at: Option<usize>,
        reader_prepares: bool,
    ) -> (std::result::Result<(), String>, Vec<(usize, usize)>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut seen = Vec::new();
        // The writer's steps wait until the reader has begun one (when it can).
        let reader_began = AtomicBool::new(!reader_prepares);
        let r = shared_steps(
            W,
            Some(R),
            40,
            |db| {
                if db == R && !reader_prepares {
                    return Err("the reader cannot prepare".to_string());
                }
                Ok(db as usize)
            },
            |&db, j| {
                if db == R as usize {
                    reader_began.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(reader_ms));
                } else {
                    while !reader_began.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                }
                (j, db)
            },
            |(j, db), _| {
                seen.push((j, db));
                match fail_at {
                    Some(f) if f == j => Err(format!("step {j} refused")),
                    _ => Ok(()),
                }
            },
        );
        (r, seen)
    }

    #[test]
    fn shared_steps_hands_every_step_once_in_order_and_the_writer_reads_when_the_reader_is_slower()
    {
        let (r, seen) = shared_run(3, None, true);
        assert_eq!(r, Ok(()));
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        let by_writer = seen.iter().filter(|s| s.1 == W as usize).count();
        // The writer's steps take no time once the reader has begun: it reads most of them
        // while the reader sleeps through each of its own.
        assert!(by_writer >= 20, "the writer read {by_writer} of 40 steps");
        assert!(by_writer < 40, "the reader read none");
    }

    #[test]
    fn shared_steps_stops_at_the_first_refusal_and_without_a_reader_runs_every_step_here() {
        let (r, seen) = shared_run(1, Some(5), true);
        assert_eq!(r, Err("step 5 refused".to_string()));
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..=5).collect::<Vec<_>>()
        );
        // A reader that cannot prepare leaves every step to the writer.
        let (r, seen) = shared_run(0, None, false);
        assert_eq!(r, Ok(()));
        assert_eq!(seen, (0..40).map(|j| (j, W as usize)).collect::<Vec<_>>());
        // No reader at all: the same, in order.
        let mut order = Vec::new();
        shared_steps(
            W,
            None,
            7,
            |db| Ok::<_, ()>(db as usize),
            |&db, j| (j, db),
            |s, _| {
                order.push(s);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(order, (0..7).map(|j| (j, W as usize)).collect::<Vec<_>>());
    }

    #[test]
    fn hand_written_times_match_the_encoding_sqlx_uses() {
        for t in [
            Utc.with_ymd_and_hms(2026, 11, 28, 6, 5, 0).unwrap(),
            Utc.with_ymd_and_hms(1999, 1, 2, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 123_000_000).unwrap(),
        ] {
            assert_eq!(time(t), t.to_rfc3339_opts(SecondsFormat::AutoSi, false));
        }
        let d = NaiveDate::from_ymd_opt(987, 3, 4).unwrap();
        assert_eq!(date(Some(d)).unwrap(), d.format("%Y-%m-%d").to_string());
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2023, 12, 1)).unwrap(),
            "2023-12-01"
        );
    }
}
