//! The store's story, told against every backend this run has: SQLite always, PostgreSQL
//! when KEHU_TEST_DATABASE_URL is set.

use chrono::{NaiveDate, TimeZone, Utc};
use kehu_domain::ingest::EntityKind;
use kehu_domain::money::{Bp, Fen};
use kehu_domain::state::*;
use kehu_store::load::LoadCounts;
use kehu_store::{testing, CustomerQuery, SkipReason, Store};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn cust(id: &str, name: &str, phone: &str, manager: Option<&str>) -> Customer {
    Customer {
        external_id: id.into(),
        name: name.into(),
        gender: Gender::Female,
        birth_date: Some(day(1985, 6, 1)),
        phone: Some(phone.into()),
        id_number: None,
        income_band: Some(IncomeBand::From10kTo20k),
        occupation: Some("教师".into()),
        branch: Some("B001".into()),
        manager_id: manager.map(Into::into),
        vip_tier: VipTier::Gold,
        consent_sms: true,
        consent_push: false,
        consent_call: false,
        personalization: true,
    }
}

fn product(code: &str, kind: ProductKind, risk: RiskLevel) -> Product {
    Product {
        code: code.into(),
        name: format!("产品{code}"),
        kind,
        risk_level: risk,
        min_purchase: Fen::from_yuan(10_000),
        term_days: Some(90),
        expected_yield: Some(Bp(285)),
        sale_start: Some(day(2026, 1, 1)),
        sale_end: None,
        repeatable: true,
    }
}

fn holding(id: &str, cust: &str, prod: Option<&str>, class: AssetClass, fen: i64) -> Holding {
    Holding {
        external_id: id.into(),
        customer_id: cust.into(),
        product_code: prod.map(Into::into),
        asset_class: class,
        balance: Fen(fen),
        opened_on: Some(day(2024, 1, 1)),
        as_of: day(2026, 11, 1),
    }
}

fn txn(id: &str, cust: &str, fen: i64, hour: u32) -> Transaction {
    Transaction {
        external_id: id.into(),
        customer_id: cust.into(),
        amount: Fen(fen),
        direction: Direction::Out,
        category: TxnCategory::Dining,
        channel: Channel::App,
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0).unwrap(),
        product_code: None,
        description: Some("午餐".into()),
    }
}

async fn load_all<R: kehu_store::LoadRecord>(store: &Store, rows: &[R]) -> Vec<kehu_store::Skip> {
    let mut l = store.begin_load(R::KIND, "test", Utc::now()).await.unwrap();
    let skips = l.write(rows).await.unwrap();
    l.finish(true, LoadCounts::default()).await.unwrap();
    skips
}

async fn count(store: &Store, kind: EntityKind) -> i64 {
    store
        .counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .unwrap()
        .1
}

#[tokio::test]
async fn store_story_on_every_backend() {
    let stores = testing::all().await;
    if std::env::var("KEHU_TEST_DATABASE_URL").is_ok() {
        assert_eq!(
            stores.len(),
            2,
            "KEHU_TEST_DATABASE_URL is set, so PostgreSQL must be tested too"
        );
    }
    for t in &stores {
        story(&t.store).await;
        eprintln!("store story passed on {}", t.name);
    }
}

async fn story(s: &Store) {
    // Customers: a duplicate inside the batch is refused, the first row wins.
    let skips = load_all(
        s,
        &[
            cust("C1", "王芳", "13800001111", Some("S01")),
            cust("C2", "王小明", "13900002222", None),
            cust("C1", "重复", "13700000000", None),
            cust("C3", "李娜", "13600001111", Some("S01")),
        ],
    )
    .await;
    assert_eq!(skips.len(), 1);
    assert_eq!(
        (skips[0].index, &skips[0].reason),
        (2, &SkipReason::DuplicateInFile)
    );
    assert_eq!(count(s, EntityKind::Customers).await, 3);

    // A duplicate across batches of the same load is refused too.
    let mut l = s
        .begin_load(EntityKind::Customers, "test", Utc::now())
        .await
        .unwrap();
    assert!(l
        .write(&[cust("C4", "赵敏", "13500004444", None)])
        .await
        .unwrap()
        .is_empty());
    let again = l
        .write(&[cust("C4", "赵敏二", "13500004444", None)])
        .await
        .unwrap();
    assert_eq!(again[0].reason, SkipReason::DuplicateInFile);
    // …and a rolled-back load leaves nothing behind.
    l.finish(false, LoadCounts::default()).await.unwrap();
    assert_eq!(count(s, EntityKind::Customers).await, 3);

    // Re-loading is an idempotent upsert by external id.
    let mut renamed = cust("C2", "王晓明", "13900002222", None);
    renamed.vip_tier = VipTier::Platinum;
    assert!(load_all(s, &[renamed.clone()]).await.is_empty());
    assert_eq!(count(s, EntityKind::Customers).await, 3);

    load_all(
        s,
        &[
            product("WM1", ProductKind::Wealth, RiskLevel::R2),
            product("FD1", ProductKind::Fund, RiskLevel::R4),
        ],
    )
    .await;
    load_all(
        s,
        &[Staff {
            external_id: "S01".into(),
            name: "周经理".into(),
            role: Role::CustomerManager,
            branch: Some("B001".into()),
        }],
    )
    .await;

    // Holdings: unknown customer and unknown product are reported, not written.
    let skips = load_all(
        s,
        &[
            holding("A1", "C1", None, AssetClass::CurrentDeposit, 1_234_56),
            holding("A2", "C1", Some("WM1"), AssetClass::Wealth, 5_000_000),
            holding("A3", "C1", None, AssetClass::Loan, 2_000_000),
            holding("A4", "C9", None, AssetClass::CurrentDeposit, 100),
            holding("A5", "C1", Some("NOPE"), AssetClass::Fund, 100),
        ],
    )
    .await;
    let reasons: Vec<(usize, SkipReason)> =
        skips.into_iter().map(|k| (k.index, k.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (3, SkipReason::UnknownCustomer("C9".into())),
            (4, SkipReason::UnknownProduct("NOPE".into()))
        ]
    );
    let skips = load_all(
        s,
        &[
            txn("T1", "C1", 3_500, 3),
            txn("T2", "C1", 8_800, 5),
            txn("T3", "C2", 100, 4),
        ],
    )
    .await;
    assert!(skips.is_empty());

    // The 360 view: totals by class, net worth, recent transactions newest first.
    let id = s.customer_id("C1").await.unwrap().unwrap();
    assert_eq!(s.customer_id(&id.to_string()).await.unwrap(), Some(id));
    assert_eq!(s.customer_id("C404").await.unwrap(), None);
    let v = s.customer_360(id, 10).await.unwrap().unwrap();
    assert_eq!(v.customer.name, "王芳");
    assert_eq!(v.holdings.len(), 3);
    assert_eq!(
        v.holdings
            .iter()
            .find(|h| h.holding.external_id == "A2")
            .unwrap()
            .product_name
            .as_deref(),
        Some("产品WM1")
    );
    let totals: Vec<(AssetClass, Fen)> =
        v.totals.iter().map(|t| (t.asset_class, t.total)).collect();
    assert_eq!(
        totals,
        vec![
            (AssetClass::CurrentDeposit, Fen(123_456)),
            (AssetClass::Wealth, Fen(5_000_000)),
            (AssetClass::Loan, Fen(2_000_000))
        ]
    );
    assert_eq!(v.net_worth, Fen(123_456 + 5_000_000 - 2_000_000));
    let ids: Vec<&str> = v
        .recent_transactions
        .iter()
        .map(|t| t.external_id.as_str())
        .collect();
    assert_eq!(ids, ["T2", "T1"]);
    assert_eq!(
        v.recent_transactions[0].occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 1, 5, 0, 0).unwrap()
    );

    // Search: name prefix, phone suffix, external id, manager's book, keyset paging.
    let search =
        |text: Option<&str>, manager: Option<&str>, after: Option<i64>, limit: i64| CustomerQuery {
            text: text.map(Into::into),
            manager_id: manager.map(Into::into),
            branch: None,
            after,
            limit,
        };
    let names = |rows: Vec<kehu_store::CustomerRow>| {
        rows.into_iter()
            .map(|r| r.customer.external_id)
            .collect::<Vec<_>>()
    };
    let found = |text: Option<&'static str>, manager: Option<&'static str>| {
        let q = search(text, manager, None, 10);
        async move { names(s.search_customers(&q).await.unwrap()) }
    };
    assert_eq!(found(Some("王"), None).await, ["C1", "C2"]);
    assert_eq!(found(Some("王晓"), None).await, ["C2"]);
    assert_eq!(found(Some("1111"), None).await, ["C1", "C3"]);
    assert_eq!(found(Some("C3"), None).await, ["C3"]);
    assert_eq!(found(Some("1111"), Some("S01")).await, ["C1", "C3"]);
    assert_eq!(found(None, Some("S01")).await, ["C1", "C3"]);
    let first = s
        .search_customers(&search(None, None, None, 2))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = s
        .search_customers(&search(None, None, Some(first[1].id), 2))
        .await
        .unwrap();
    assert_eq!(names(rest), ["C3"]);
    assert!(found(Some("nobody"), None).await.is_empty());

    // Export pages give back the import values, and what was stored is what was loaded.
    let (_, rows) = s.export_page(EntityKind::Customers, 0, 10).await.unwrap();
    let c2 = rows.iter().find(|r| r[0] == "C2").unwrap();
    use kehu_domain::ingest::Record;
    assert_eq!(c2, &renamed.to_values());
    let (_, hs) = s.export_page(EntityKind::Holdings, 0, 10).await.unwrap();
    let a1 = hs.iter().find(|r| r[0] == "A1").unwrap();
    assert_eq!(
        a1,
        &holding("A1", "C1", None, AssetClass::CurrentDeposit, 1_234_56).to_values()
    );

    let prods = s.list_products(Some(ProductKind::Fund)).await.unwrap();
    assert_eq!(prods.len(), 1);
    assert_eq!(
        prods[0].product,
        product("FD1", ProductKind::Fund, RiskLevel::R4)
    );
    assert!(s.product("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn unreachable_database_is_named_with_the_password_hidden() {
    let err = Store::open(
        "postgres://kehu:s3cret@127.0.0.1:9/kehu",
        &kehu_store::StoreOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("postgres://kehu:***@127.0.0.1:9/kehu"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    let err = Store::open("mysql://x", &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported"), "{err}");
}

#[tokio::test]
async fn sqlite_bulk_load_rebuilds_its_indexes_even_after_a_crash() {
    use sqlx::Connection;
    let t = testing::sqlite().await;
    let s = &t.store;
    let indexes = |url: String| async move {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customers' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_indexes")
            .fetch_one(&mut c)
            .await
            .unwrap();
        (names, pending, c)
    };
    let url = s.url().to_string();
    // A load into the empty table drops the indexes and builds them again after commit.
    assert!(load_all(s, &[cust("C1", "王芳", "13800001111", None)])
        .await
        .is_empty());
    let (names, pending, mut c) = indexes(url.clone()).await;
    assert_eq!(
        names,
        [
            "customers_manager",
            "customers_name",
            "customers_phone_last4"
        ]
    );
    assert_eq!(pending, 0);
    // A crash between the commit and the rebuild leaves the record: the next open builds it.
    sqlx::query("DROP INDEX customers_name")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO pending_indexes VALUES ('customers_name', 'CREATE INDEX customers_name ON customers (name)')")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    s.close().await;
    let reopened = Store::open(&url, &Default::default()).await.unwrap();
    let (names, pending, _) = indexes(url.clone()).await;
    assert_eq!(
        names,
        [
            "customers_manager",
            "customers_name",
            "customers_phone_last4"
        ]
    );
    assert_eq!(pending, 0);
    reopened.close().await;
}
