//! Import end to end on every backend: good files load idempotently, each kind of bad
//! input gets a precise error, and a file with errors changes nothing.

use chrono::{FixedOffset, NaiveDate};
use kehu_domain::ingest::{EntityKind, ParseContext};
use kehu_ingest::{import_file, ImportError, ImportOptions, ImportReport};
use kehu_store::{testing, Store};
use std::path::{Path, PathBuf};

fn ctx() -> ParseContext {
    ParseContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        offset: FixedOffset::east_opt(8 * 3600).unwrap(),
    }
}

struct Files(PathBuf);
impl Files {
    fn new() -> Files {
        let d = std::env::temp_dir().join(format!(
            "kehu-import-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Files(d)
    }
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}
impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn import(
    store: &Store,
    kind: EntityKind,
    path: &Path,
    skip: bool,
) -> Result<ImportReport, ImportError> {
    let mut o = ImportOptions::new(kind, ctx());
    o.skip_invalid = skip;
    o.batch_rows = 3; // several batches even in small files
    import_file(store, path, &o).await
}

async fn count(s: &Store, kind: EntityKind) -> i64 {
    s.counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .unwrap()
        .1
}

const CUSTOMERS: &str =
    "external_id,name,gender,birth_date,phone,income_band,vip_tier,consent_sms\n\
C1,张三,男,1980-01-02,13800001111,10k-20k,gold,true\n\
C2,\"李四, Jr\",F,1990/3/1,13900002222,5k-10k,standard,false\n\
C3,王五,M,19750607,,,,\n\
C4,赵六,F,,,,,\n";

#[tokio::test]
async fn imports_on_every_backend() {
    for t in testing::all().await {
        story(&t.store).await;
        eprintln!("import story passed on {}", t.name);
    }
}

async fn story(s: &Store) {
    let f = Files::new();
    // Good CSV with Chinese, quotes and three date forms; re-import is idempotent.
    let p = f.write("customers.csv", CUSTOMERS);
    let r = import(s, EntityKind::Customers, &p, false).await.unwrap();
    assert!(r.committed && r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.rows_read, r.rows_loaded), (4, 4));
    let r = import(s, EntityKind::Customers, &p, false).await.unwrap();
    assert_eq!(r.rows_loaded, 4);
    assert_eq!(count(s, EntityKind::Customers).await, 4);

    // GBK with Chinese headers, detected.
    let (gbk, _, _) = encoding_rs::GBK.encode("客户号,姓名,性别\nC5,钱七,女\nC6,孙八,男\n");
    let p = f.write("gbk.csv", &gbk);
    let r = import(s, EntityKind::Customers, &p, false).await.unwrap();
    assert_eq!((r.encoding, r.rows_loaded), ("gb18030", 2));
    let id = s.customer_id("C5").await.unwrap().unwrap();
    assert_eq!(
        s.customer_360(id, 1).await.unwrap().unwrap().customer.name,
        "钱七"
    );

    // JSON Lines.
    let p = f.write("products.jsonl", "{\"code\":\"WM1\",\"name\":\"稳利\",\"kind\":\"wealth\",\"risk_level\":\"R2\",\"min_purchase\":\"10,000\",\"expected_yield\":3.1}\n\n{\"code\":\"FD1\",\"name\":\"基金\",\"kind\":\"fund\",\"risk_level\":\"R4\",\"min_purchase\":10,\"repeatable\":true}\n");
    let r = import(s, EntityKind::Products, &p, false).await.unwrap();
    assert_eq!(r.rows_loaded, 2, "{:?}", r.errors);
    assert_eq!(
        s.product("WM1")
            .await
            .unwrap()
            .unwrap()
            .product
            .min_purchase
            .0,
        1_000_000
    );

    // A file with errors changes nothing and reports each error with line, column, value.
    let before = count(s, EntityKind::Holdings).await;
    let p = f.write(
        "holdings.csv",
        "external_id,customer_id,product_code,asset_class,balance,as_of\n\
         A1,C1,,current_deposit,\"1,234.50\",2026-11-01\n\
         A2,C1,WM1,wealth,-5,2026-11-01\n\
         A3,C404,,current_deposit,1,2026-11-01\n\
         A4,C1,XX,fund,1,2026-11-01\n\
         A1,C2,,current_deposit,1,2026-11-01\n\
         A5,C1,,current_deposit,1,2026-02-30\n\
         A6,C1,,current_deposit\n",
    );
    let r = import(s, EntityKind::Holdings, &p, false).await.unwrap();
    assert!(!r.committed);
    assert_eq!(r.rows_loaded, 0);
    assert_eq!(
        count(s, EntityKind::Holdings).await,
        before,
        "nothing half-written"
    );
    let got: Vec<(u64, Option<&str>, Option<&str>)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_deref(), e.value.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, Some("balance"), Some("-5")),
            (4, Some("customer_id"), Some("C404")),
            (5, Some("product_code"), Some("XX")),
            (6, Some("external_id"), Some("A1")),
            (7, Some("as_of"), Some("2026-02-30")),
            (8, None, None),
        ]
    );
    assert!(r.errors[0].message.contains("negative"), "{}", r.errors[0]);
    assert!(
        r.errors[1].message.contains("import customers first"),
        "{}",
        r.errors[1]
    );
    assert!(r.errors[3].message.contains("duplicate"), "{}", r.errors[3]);
    assert!(
        r.errors[5].message.contains("expected 6 fields"),
        "{}",
        r.errors[5]
    );
    assert_eq!(
        r.errors[0].to_string(),
        format!(
            "{}:3: column balance, value \"-5\": expected {}",
            p.display(),
            r.errors[0].message
        )
    );

    // --skip-invalid loads the good rows and writes the bad ones with the reason.
    let r = import(s, EntityKind::Holdings, &p, true).await.unwrap();
    assert!(r.committed);
    assert_eq!((r.rows_read, r.rows_loaded, r.rows_rejected), (7, 1, 6));
    assert_eq!(count(s, EntityKind::Holdings).await, before + 1);
    let rejects = std::fs::read_to_string(r.rejects_file.unwrap()).unwrap();
    assert_eq!(rejects.lines().count(), 7, "{rejects}");
    assert!(
        rejects.contains("C404") && rejects.contains("A2,C1,WM1,wealth,-5"),
        "{rejects}"
    );

    // Whole-file problems.
    let e = import(s, EntityKind::Customers, &f.write("empty.csv", ""), false)
        .await
        .unwrap_err();
    assert!(matches!(e, ImportError::Empty { .. }), "{e}");
    let e = import(
        s,
        EntityKind::Customers,
        &f.write("img.csv", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not a text file"), "{e}");
    let e = import(
        s,
        EntityKind::Customers,
        &f.write("cols.csv", "external_id,name,salary\nC9,x,1\n"),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains(":1: unknown column(s) [\"salary\"]"),
        "{e}"
    );
    let e = import(
        s,
        EntityKind::Customers,
        &f.write("req.csv", "external_id,gender\nC9,M\n"),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("required column(s) [\"name\"] missing"),
        "{e}"
    );
    let e = import(
        s,
        EntityKind::Customers,
        &f.write("latin1.csv", b"external_id,name\nC9,Jos\xe9\xff\xfe\n"),
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("neither UTF-8 nor GBK"), "{e}");
    let e = import(s, EntityKind::Customers, &f.write("x.xlsx", "a"), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--format"), "{e}");

    // Malformed quoting and a non-JSON line are row errors with their line.
    let p = f.write("quotes.csv", "external_id,name\nC7,\"unclosed\nC8,ok\n");
    let r = import(s, EntityKind::Customers, &p, false).await.unwrap();
    assert!(!r.committed);
    assert_eq!(r.errors[0].line, 2, "{:?}", r.errors);
    let p = f.write("bad.jsonl", "{\"external_id\":\"C9\",\"name\":\"x\"}\nnot json\n{\"external_id\":\"C10\",\"name\":\"y\",\"age\":3}\n");
    let r = import(s, EntityKind::Customers, &p, false).await.unwrap();
    let lines: Vec<u64> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3], "{:?}", r.errors);
    assert!(r.errors[1].message.contains("\"age\""), "{}", r.errors[1]);
    assert_eq!(
        s.customer_id("C9").await.unwrap(),
        None,
        "nothing from a file with errors"
    );
}
