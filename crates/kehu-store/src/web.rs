//! What the web workbench keeps and reads beyond the API: staff logins (argon2 hashes are
//! made and checked by the server; the store only keeps them), lock-out counters,
//! server-side sessions, and the aggregates behind the dashboards.

use crate::rows::{self, RowExt};
use crate::{with_pool, Result, Store};
use chrono::{DateTime, Duration, Utc};
use kehu_domain::money::Fen;
use kehu_domain::state::{AssetClass, Direction, Staff, VipTier};

/// A staff member's login as stored.
#[derive(Debug, Clone)]
pub struct StaffLogin {
    pub staff: Staff,
    pub password_hash: String,
    pub lang: String,
    pub failed_attempts: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Who a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    Staff,
    /// An app customer (demo login).
    Customer,
}

impl SubjectKind {
    fn code(self) -> &'static str {
        match self {
            SubjectKind::Staff => "staff",
            SubjectKind::Customer => "customer",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebSession {
    pub kind: SubjectKind,
    pub subject_id: String,
    pub csrf_token: String,
    pub lang: String,
    pub expires_at: DateTime<Utc>,
}

/// The result of counting a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedLogin {
    pub attempts: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Totals for a dashboard: customers, assets by class, customers by VIP tier.
#[derive(Debug, Clone, Default)]
pub struct BookSummary {
    pub customers: i64,
    pub by_class: Vec<(AssetClass, Fen)>,
    pub by_tier: Vec<(VipTier, i64)>,
}

/// A customer of a book with their assets (loans left out).
#[derive(Debug, Clone)]
pub struct TopCustomer {
    pub external_id: String,
    pub name: String,
    pub vip_tier: VipTier,
    pub assets: Fen,
}

/// Money in and out per calendar month (in the given offset), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthFlow {
    pub month: chrono::NaiveDate,
    pub inflow: Fen,
    pub outflow: Fen,
}

/// Rows scanned in id order before a name-prefix search falls back to the name index.
const NAME_WINDOW: i64 = 20_000;

impl Store {
    /// The same search and keyset paging as `search_customers` (a text matches the
    /// customer number exactly, the phone's last four digits, or the start of the name;
    /// pages by id), planned for the pages people wait on: each kind of match is asked
    /// for its own first page and the pages are merged, so a common surname (a tenth of
    /// a million customers) costs a page, not every match. On SQLite a name prefix is
    /// first looked for by walking ids (common names fill a page within a few hundred
    /// rows); only when a window of ids does not fill the page does the name index
    /// answer, sorting its matches by id.
    pub async fn search_customers_paged(
        &self,
        q: &crate::CustomerQuery,
    ) -> Result<Vec<crate::CustomerRow>> {
        let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            return self.search_customers(q).await;
        };
        let limit = q.limit.clamp(1, 1000);
        let after = q.after.unwrap_or(0);
        let scope = "($2 IS NULL OR manager_id = $2) AND ($3 IS NULL OR branch = $3) AND id > $4";
        let last4 = (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit())).then_some(text);
        let hi = format!("{text}\u{10FFFF}");
        let by_key = |col: &str| {
            format!("SELECT id FROM customers WHERE {col} = $1 AND {scope} ORDER BY id LIMIT $5")
        };
        let by_name = format!("SELECT id FROM customers WHERE name >= $1 AND name < $6 AND {scope} ORDER BY id LIMIT $5");
        let by_name_window = format!(
            "SELECT id FROM customers WHERE +name >= $1 AND +name < $6 AND {scope} AND id <= $7 ORDER BY id LIMIT $5"
        );
        let (m, b) = (q.manager_id.as_deref(), q.branch.as_deref());
        let mut ids: Vec<i64> = Vec::new();
        with_pool!(self, p => {
            let ext: Vec<i64> = sqlx::query_scalar(&by_key("external_id"))
                .bind(text).bind(m).bind(b).bind(after).bind(limit).fetch_all(p).await?;
            ids.extend(ext);
            if let Some(l4) = last4 {
                let ph: Vec<i64> = sqlx::query_scalar(&by_key("phone_last4"))
                    .bind(l4).bind(m).bind(b).bind(after).bind(limit).fetch_all(p).await?;
                ids.extend(ph);
            }
        });
        let names: Vec<i64> = match &self.backend {
            crate::Backend::Sqlite(p) => {
                let first: Vec<i64> = sqlx::query_scalar(&by_name_window)
                    .bind(text)
                    .bind(m)
                    .bind(b)
                    .bind(after)
                    .bind(limit)
                    .bind(&hi)
                    .bind(after.saturating_add(NAME_WINDOW))
                    .fetch_all(p)
                    .await?;
                if first.len() as i64 >= limit {
                    first
                } else {
                    sqlx::query_scalar(&by_name)
                        .bind(text)
                        .bind(m)
                        .bind(b)
                        .bind(after)
                        .bind(limit)
                        .bind(&hi)
                        .fetch_all(p)
                        .await?
                }
            }
            crate::Backend::Postgres(p) => {
                sqlx::query_scalar(&by_name)
                    .bind(text)
                    .bind(m)
                    .bind(b)
                    .bind(after)
                    .bind(limit)
                    .bind(&hi)
                    .fetch_all(p)
                    .await?
            }
        };
        ids.extend(names);
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(limit as usize);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {} FROM customers WHERE id IN ({}) ORDER BY id",
            crate::read::CUSTOMER_COLS,
            marks.join(", ")
        );
        with_pool!(self, p => {
            let mut qq = sqlx::query(&sql);
            for id in &ids {
                qq = qq.bind(*id);
            }
            let rows = qq.fetch_all(p).await?;
            rows.iter().map(|r| Ok(crate::CustomerRow { id: r.i("id")?, customer: rows::customer(r)? })).collect()
        })
    }

    /// Creates or replaces the login of an existing staff member. Returns false when
    /// there is no staff member with that id.
    pub async fn set_staff_password(
        &self,
        staff_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let exists = "SELECT COUNT(*) FROM staff WHERE external_id = $1";
        let upsert = "INSERT INTO staff_logins (staff_id, password_hash, failed_attempts, locked_until, updated_at) \
            VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (staff_id) DO UPDATE SET \
            password_hash = excluded.password_hash, failed_attempts = 0, locked_until = NULL, updated_at = excluded.updated_at";
        with_pool!(self, p => {
            let n: i64 = sqlx::query_scalar(exists).bind(staff_id).fetch_one(p).await?;
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(upsert).bind(staff_id).bind(password_hash).bind(now).execute(p).await?;
            Ok(true)
        })
    }

    pub async fn staff_login(&self, staff_id: &str) -> Result<Option<StaffLogin>> {
        let sql = "SELECT s.*, l.password_hash, l.lang, l.failed_attempts, l.locked_until \
            FROM staff_logins l JOIN staff s ON s.external_id = l.staff_id WHERE l.staff_id = $1";
        with_pool!(self, p => {
            match sqlx::query(sql).bind(staff_id).fetch_optional(p).await? {
                None => Ok(None),
                Some(r) => Ok(Some(StaffLogin {
                    staff: rows::staff(&r)?,
                    password_hash: r.s("password_hash")?,
                    lang: r.s("lang")?,
                    failed_attempts: r.i("failed_attempts")?,
                    locked_until: sqlx::Row::try_get(&r, "locked_until")?,
                })),
            }
        })
    }

    /// Every staff login's lock: (staff id, locked until), for the accounts page.
    pub async fn staff_login_locks(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>> {
        let sql = "SELECT staff_id, locked_until FROM staff_logins ORDER BY staff_id";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).fetch_all(p).await?;
            rows.iter()
                .map(|r| Ok((r.s("staff_id")?, sqlx::Row::try_get(r, "locked_until")?)))
                .collect()
        })
    }

    /// Counts a failed login; at `max_attempts` the login is locked until `now + lock`
    /// and the counter starts again.
    pub async fn record_failed_login(
        &self,
        staff_id: &str,
        max_attempts: i64,
        lock: Duration,
        now: DateTime<Utc>,
    ) -> Result<FailedLogin> {
        let bump =
            "UPDATE staff_logins SET failed_attempts = failed_attempts + 1 WHERE staff_id = $1 \
            RETURNING failed_attempts";
        let lock_sql =
            "UPDATE staff_logins SET failed_attempts = 0, locked_until = $2 WHERE staff_id = $1";
        with_pool!(self, p => {
            let attempts: Option<i64> = sqlx::query_scalar(bump).bind(staff_id).fetch_optional(p).await?;
            let attempts = attempts.unwrap_or(0);
            if attempts >= max_attempts.max(1) {
                let until = now + lock;
                sqlx::query(lock_sql).bind(staff_id).bind(until).execute(p).await?;
                return Ok(FailedLogin { attempts, locked_until: Some(until) });
            }
            Ok(FailedLogin { attempts, locked_until: None })
        })
    }

    pub async fn clear_failed_logins(&self, staff_id: &str) -> Result<()> {
        let sql =
            "UPDATE staff_logins SET failed_attempts = 0, locked_until = NULL WHERE staff_id = $1";
        with_pool!(self, p => { sqlx::query(sql).bind(staff_id).execute(p).await?; });
        Ok(())
    }

    /// The staff member's preferred language, kept for the next login.
    pub async fn set_staff_lang(&self, staff_id: &str, lang: &str) -> Result<()> {
        let sql = "UPDATE staff_logins SET lang = $2 WHERE staff_id = $1";
        with_pool!(self, p => { sqlx::query(sql).bind(staff_id).bind(lang).execute(p).await?; });
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        s: &WebSession,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO web_sessions (token_hash, subject_kind, subject_id, csrf_token, lang, created_at, expires_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let purge = "DELETE FROM web_sessions WHERE expires_at < $1";
        with_pool!(self, p => {
            sqlx::query(purge).bind(now).execute(p).await?;
            sqlx::query(sql)
                .bind(token_hash)
                .bind(s.kind.code())
                .bind(&s.subject_id)
                .bind(&s.csrf_token)
                .bind(&s.lang)
                .bind(now)
                .bind(s.expires_at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The session of a token digest, if it exists (expired ones included: the caller
    /// decides, so it can tell "expired" from "never logged in").
    pub async fn session(&self, token_hash: &str) -> Result<Option<WebSession>> {
        let sql = "SELECT subject_kind, subject_id, csrf_token, lang, expires_at FROM web_sessions WHERE token_hash = $1";
        with_pool!(self, p => {
            match sqlx::query(sql).bind(token_hash).fetch_optional(p).await? {
                None => Ok(None),
                Some(r) => Ok(Some(WebSession {
                    kind: if r.s("subject_kind")? == "customer" { SubjectKind::Customer } else { SubjectKind::Staff },
                    subject_id: r.s("subject_id")?,
                    csrf_token: r.s("csrf_token")?,
                    lang: r.s("lang")?,
                    expires_at: r.t("expires_at")?,
                })),
            }
        })
    }

    /// A staff session with its staff member in one read (every workbench page starts
    /// here). The staff member is `None` when they no longer exist.
    pub async fn staff_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(WebSession, Option<Staff>)>> {
        let sql = "SELECT w.subject_kind, w.subject_id, w.csrf_token, w.lang, w.expires_at, \
            s.external_id, s.name, s.role, s.branch \
            FROM web_sessions w LEFT JOIN staff s ON s.external_id = w.subject_id AND w.subject_kind = 'staff' \
            WHERE w.token_hash = $1";
        with_pool!(self, p => {
            match sqlx::query(sql).bind(token_hash).fetch_optional(p).await? {
                None => Ok(None),
                Some(r) => {
                    let sess = WebSession {
                        kind: if r.s("subject_kind")? == "customer" { SubjectKind::Customer } else { SubjectKind::Staff },
                        subject_id: r.s("subject_id")?,
                        csrf_token: r.s("csrf_token")?,
                        lang: r.s("lang")?,
                        expires_at: r.t("expires_at")?,
                    };
                    let staff = match r.os("external_id")? {
                        Some(_) => Some(rows::staff(&r)?),
                        None => None,
                    };
                    Ok(Some((sess, staff)))
                }
            }
        })
    }

    pub async fn set_session_lang(&self, token_hash: &str, lang: &str) -> Result<()> {
        let sql = "UPDATE web_sessions SET lang = $2 WHERE token_hash = $1";
        with_pool!(self, p => { sqlx::query(sql).bind(token_hash).bind(lang).execute(p).await?; });
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let sql = "DELETE FROM web_sessions WHERE token_hash = $1";
        with_pool!(self, p => { sqlx::query(sql).bind(token_hash).execute(p).await?; });
        Ok(())
    }

    pub async fn staff_member(&self, staff_id: &str) -> Result<Option<Staff>> {
        let sql = "SELECT * FROM staff WHERE external_id = $1";
        with_pool!(self, p => {
            match sqlx::query(sql).bind(staff_id).fetch_optional(p).await? {
                Some(r) => Ok(Some(rows::staff(&r)?)),
                None => Ok(None),
            }
        })
    }

    /// Customers, assets by class and customers by tier: of one manager's book, of one
    /// branch, or (both `None`) of the whole bank. The whole bank scans every holding:
    /// callers cache it.
    pub async fn book_summary(
        &self,
        manager_id: Option<&str>,
        branch: Option<&str>,
    ) -> Result<BookSummary> {
        let scope = "($1 IS NULL OR c.manager_id = $1) AND ($2 IS NULL OR c.branch = $2)";
        let tiers = format!("SELECT c.vip_tier AS k, COUNT(*) AS n FROM customers c WHERE {scope} GROUP BY c.vip_tier");
        let classes = if manager_id.is_none() && branch.is_none() {
            "SELECT h.asset_class AS k, CAST(SUM(h.balance_fen) AS BIGINT) AS n FROM holdings h WHERE $1 IS NULL AND $2 IS NULL GROUP BY h.asset_class".to_string()
        } else {
            format!("SELECT h.asset_class AS k, CAST(SUM(h.balance_fen) AS BIGINT) AS n FROM holdings h \
                JOIN customers c ON c.id = h.customer_id WHERE {scope} GROUP BY h.asset_class")
        };
        with_pool!(self, p => {
            let mut out = BookSummary::default();
            for r in sqlx::query(&tiers).bind(manager_id).bind(branch).fetch_all(p).await? {
                let n = r.i("n")?;
                out.customers += n;
                if let Some(t) = VipTier::parse(&r.s("k")?) {
                    out.by_tier.push((t, n));
                }
            }
            out.by_tier.sort_by_key(|(t, _)| *t);
            for r in sqlx::query(&classes).bind(manager_id).bind(branch).fetch_all(p).await? {
                if let Some(c) = AssetClass::parse(&r.s("k")?) {
                    out.by_class.push((c, Fen(r.i("n")?)));
                }
            }
            out.by_class.sort_by_key(|(c, _)| *c);
            Ok(out)
        })
    }

    /// The customers of one manager's book with the largest assets, largest first.
    pub async fn top_customers_of_manager(
        &self,
        manager_id: &str,
        limit: i64,
    ) -> Result<Vec<TopCustomer>> {
        let sql = "SELECT c.external_id, c.name, c.vip_tier, CAST(SUM(h.balance_fen) AS BIGINT) AS assets \
            FROM customers c JOIN holdings h ON h.customer_id = c.id \
            WHERE c.manager_id = $1 AND h.asset_class <> 'loan' \
            GROUP BY c.id, c.external_id, c.name, c.vip_tier ORDER BY assets DESC, c.id LIMIT $2";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(manager_id).bind(limit).fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    Ok(TopCustomer {
                        external_id: r.s("external_id")?,
                        name: r.s("name")?,
                        vip_tier: VipTier::parse(&r.s("vip_tier")?).unwrap_or(VipTier::Standard),
                        assets: Fen(r.i("assets")?),
                    })
                })
                .collect()
        })
    }

    /// Money in and out per month over the `months` calendar months up to `now` (in
    /// `offset`), for one customer. Months without transactions are present with zeros.
    pub async fn monthly_flows(
        &self,
        customer: i64,
        months: u32,
        now: DateTime<Utc>,
        offset: chrono::FixedOffset,
    ) -> Result<Vec<MonthFlow>> {
        use chrono::{Datelike, NaiveDate, TimeZone};
        let today = now.with_timezone(&offset).date_naive();
        let mut first =
            NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("first of month");
        for _ in 1..months.max(1) {
            first = (first - Duration::days(1))
                .with_day(1)
                .expect("first of month");
        }
        let start = offset
            .from_local_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .expect("fixed offset")
            .with_timezone(&Utc);
        let sql = "SELECT amount_fen, direction, occurred_at FROM transactions \
            WHERE customer_id = $1 AND occurred_at >= $2 ORDER BY occurred_at";
        let mut out: Vec<MonthFlow> = Vec::new();
        let mut m = first;
        while m <= today {
            out.push(MonthFlow {
                month: m,
                inflow: Fen(0),
                outflow: Fen(0),
            });
            m = (m + Duration::days(32))
                .with_day(1)
                .expect("first of month");
        }
        with_pool!(self, p => {
            for r in sqlx::query(sql).bind(customer).bind(start).fetch_all(p).await? {
                let at = r.t("occurred_at")?.with_timezone(&offset).date_naive();
                let key = NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("first of month");
                if let Some(f) = out.iter_mut().find(|f| f.month == key) {
                    let amount = Fen(r.i("amount_fen")?);
                    match Direction::parse(&r.s("direction")?) {
                        Some(Direction::In) => f.inflow = f.inflow + amount,
                        _ => f.outflow = f.outflow + amount,
                    }
                }
            }
        });
        Ok(out)
    }
}
