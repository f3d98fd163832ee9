//! A customer's timeline of events (the behaviour timeline of the 360 page and the API),
//! on every backend this run has. SQLite fills its timeline in bulk behind the log
//! (`store.sqlite_timeline_batch_events`; here 4, so that batches cross it) in buckets of
//! seq (here 3 events, so that a timeline spans several), PostgreSQL
//! indexes as it writes: both must answer with every event of the customer, newest first,
//! including anonymous events that a later `identify` attributed, whether they were
//! already in the filled part or not.

use chrono::{NaiveDate, Utc};
use kehu_domain::behaviour::event::EventKind;
use kehu_domain::state::*;
use kehu_store::behaviour::NewEvent;
use kehu_store::load::LoadCounts;
use kehu_store::{testing, Store, StoreOptions};

fn cust(id: &str) -> Customer {
    Customer {
        external_id: id.into(),
        name: format!("客户{id}"),
        gender: Gender::Female,
        birth_date: NaiveDate::from_ymd_opt(1985, 6, 1),
        phone: None,
        id_number: None,
        income_band: None,
        occupation: None,
        branch: None,
        manager_id: None,
        vip_tier: VipTier::Standard,
        consent_sms: false,
        consent_push: false,
        consent_call: false,
        personalization: true,
    }
}

/// The events sent so far with the customer each ends up with: the model the store's
/// answers are checked against.
struct Log {
    app: i64,
    next: usize,
    sent: Vec<(i64, i64, Option<i64>, Option<String>)>, // seq, ts_ms, customer, device
}

impl Log {
    fn event(&mut self, kind: EventKind, ts_ms: i64, customer: Option<i64>, device: Option<&str>) -> NewEvent {
        self.next += 1;
        NewEvent {
            app_id: self.app,
            event_id: format!("e{}", self.next),
            kind,
            ts_ms,
            device: device.map(Into::into),
            customer_id: customer,
            product_id: None,
            dwell_ms: None,
            depth: None,
            quantity: None,
            amount_fen: None,
            detail: None,
        }
    }

    async fn write(&mut self, s: &Store, batch: Vec<NewEvent>) {
        let ins = s.insert_events(Utc::now().timestamp_millis(), &batch).await.unwrap();
        for (e, seq) in batch.iter().zip(&ins.seqs) {
            let seq = seq.expect("a new event id is written");
            self.sent.push((seq, e.ts_ms, e.customer_id, e.device.clone()));
            if e.kind == EventKind::Identify {
                // The device's earlier anonymous events are the customer's from now on.
                for x in self.sent.iter_mut().filter(|x| x.2.is_none() && x.3 == e.device) {
                    x.2 = e.customer_id;
                }
            }
        }
    }

    /// The customer's events newest first, at most `limit`: (seq, ts_ms).
    fn expected(&self, customer: i64, limit: usize) -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> =
            self.sent.iter().filter(|x| x.2 == Some(customer)).map(|x| (x.0, x.1)).collect();
        v.sort_by_key(|&(seq, ts)| std::cmp::Reverse((ts, seq)));
        v.truncate(limit);
        v
    }
}

async fn timeline(s: &Store, customer: i64, limit: i64) -> Vec<(i64, i64)> {
    s.customer_events(customer, limit).await.unwrap().iter().map(|e| (e.seq, e.ts_ms)).collect()
}

async fn check(s: &Store, log: &Log, customers: &[i64], name: &str, when: &str) {
    for &c in customers {
        for limit in [2usize, 100] {
            assert_eq!(
                timeline(s, c, limit as i64).await,
                log.expected(c, limit),
                "{name}, {when}: timeline of customer {c}, limit {limit}"
            );
        }
    }
}

#[tokio::test]
async fn the_timeline_holds_every_event_of_the_customer_filled_or_not() {
    let dir = std::env::temp_dir().join(format!("kehu-timeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = StoreOptions { sqlite_timeline_batch_events: 4, ..StoreOptions::default() };
    // Buckets of 3 events: the filled timeline spans several, and an identify puts older
    // events back into earlier ones.
    testing::set_timeline_bucket_events(3);
    let sqlite = Store::open(&Store::sqlite_url_for_dir(&dir), &opts).await.unwrap();
    // Another process writing to the same SQLite file (its own memory of the log's tail).
    let other = Store::open(&Store::sqlite_url_for_dir(&dir), &opts).await.unwrap();
    let mut stores = vec![(sqlite, other, "sqlite")];
    let pg = testing::postgres().await;
    if let Some(p) = &pg {
        stores.push((p.store.clone(), p.store.clone(), "postgres"));
    }
    for (s, other, name) in &stores {
        story(s, other, name).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn story(s: &Store, other: &Store, name: &str) {
    let mut l = s.begin_load(kehu_domain::ingest::EntityKind::Customers, "test", Utc::now()).await.unwrap();
    assert!(l.write(&[cust("T1"), cust("T2")]).await.unwrap().is_empty());
    l.finish(true, LoadCounts::default()).await.unwrap();
    let ids = s.customer_ids_by_external(&["T1", "T2"]).await.unwrap();
    let (c1, c2) = (ids["T1"], ids["T2"]);
    let app = s.ensure_app_key("timeline", "kehu_timeline_key").await.unwrap();
    let mut log = Log { app, next: 0, sent: Vec::new() };
    let t0 = 1_790_000_000_000i64;
    let sqlite = name == "sqlite";

    // Three events below the fill size: nothing filled yet on SQLite, all answered.
    let b = vec![
        log.event(EventKind::AppOpen, t0 + 5, Some(c1), None),
        log.event(EventKind::PageView, t0 + 1, None, Some("d1")),
        log.event(EventKind::PageView, t0 + 2, Some(c2), None),
    ];
    log.write(s, b).await;
    let st = s.timeline_status().await.unwrap();
    assert_eq!(st.last_seq, log.sent.last().unwrap().0);
    if sqlite {
        assert!(st.indexed_seq < st.last_seq, "{name}: not filled below the batch size: {st:?}");
    }
    check(s, &log, &[c1, c2], name, "before any fill").await;

    // Crossing the fill size fills everything logged so far, in the same call.
    let b = vec![
        log.event(EventKind::PageView, t0 + 3, None, Some("d1")),
        log.event(EventKind::AppOpen, t0 + 9, Some(c1), None),
        // Same time as an earlier event: the later seq comes first.
        log.event(EventKind::PageView, t0 + 5, Some(c1), None),
    ];
    log.write(s, b).await;
    let st = s.timeline_status().await.unwrap();
    assert_eq!(st.indexed_seq, st.last_seq, "{name}: filled once the batch size was reached");
    check(s, &log, &[c1, c2], name, "after a fill").await;

    // d1's anonymous events are in the filled part's range: identify puts them in the
    // timeline in its own transaction. d2's events come after the mark.
    let b = vec![
        log.event(EventKind::Identify, t0 + 10, Some(c2), Some("d1")),
        log.event(EventKind::PageView, t0 + 4, None, Some("d2")),
    ];
    log.write(s, b).await;
    check(s, &log, &[c1, c2], name, "identify of a filled device").await;
    let b = vec![log.event(EventKind::Identify, t0 + 11, Some(c1), Some("d2"))];
    log.write(s, b).await;
    check(s, &log, &[c1, c2], name, "identify of an unfilled device").await;
    let st = s.timeline_status().await.unwrap();
    if sqlite {
        assert!(st.indexed_seq < st.last_seq, "{name}: the last events are not filled: {st:?}");
    }

    // Anonymous events and the identify in one batch; anonymous events written by another
    // process, identified here; an identify of a device with nothing anonymous left.
    let b = vec![
        log.event(EventKind::PageView, t0 + 12, None, Some("d3")),
        log.event(EventKind::PageView, t0 + 13, None, Some("d3")),
        log.event(EventKind::Identify, t0 + 14, Some(c2), Some("d3")),
    ];
    log.write(s, b).await;
    check(s, &log, &[c1, c2], name, "identify in the batch of the anonymous events").await;
    let b = vec![log.event(EventKind::PageView, t0 + 15, None, Some("d4")), log.event(EventKind::AppOpen, t0 + 16, None, Some("d4"))];
    log.write(other, b).await;
    let b = vec![log.event(EventKind::Identify, t0 + 17, Some(c1), Some("d4"))];
    let ins = s.insert_events(Utc::now().timestamp_millis(), &b).await.unwrap();
    let attributed: Vec<i64> = ins.attributed.iter().map(|e| e.seq).collect();
    let d4: Vec<i64> = log.sent.iter().filter(|x| x.3.as_deref() == Some("d4")).map(|x| x.0).collect();
    assert_eq!(attributed, d4, "{name}: the other process's anonymous events are attributed");
    log.sent.push((ins.seqs[0].unwrap(), t0 + 17, Some(c1), Some("d4".into())));
    for x in log.sent.iter_mut().filter(|x| x.3.as_deref() == Some("d4")) {
        x.2 = Some(c1);
    }
    check(s, &log, &[c1, c2], name, "identify of another process's device").await;
    let b = vec![log.event(EventKind::Identify, t0 + 18, Some(c2), Some("d1"))];
    let ins = s.insert_events(Utc::now().timestamp_millis(), &b).await.unwrap();
    assert!(ins.attributed.is_empty(), "{name}: d1 has nothing anonymous left");
    log.sent.push((ins.seqs[0].unwrap(), t0 + 18, Some(c2), Some("d1".into())));

    // Filling on demand changes nothing in the answers.
    let st = s.fill_timeline().await.unwrap();
    assert_eq!(st.indexed_seq, st.last_seq);
    check(s, &log, &[c1, c2], name, "after filling on demand").await;
    assert_eq!(log.expected(c2, 100).len(), 8, "{name}: c2 has its own event, d1's two and identify, d3's two and identify, d1's identify again");
    assert_eq!(log.expected(c1, 100).len(), 8, "{name}: c1 has three of its own, d2's one and identify, d4's two and identify");
    // A device identified after everything is filled: its anonymous events come from the
    // filled part (SQLite: event_devices).
    let b = vec![log.event(EventKind::PageView, t0 + 19, None, Some("d5"))];
    log.write(s, b).await;
    s.fill_timeline().await.unwrap();
    let b = vec![log.event(EventKind::Identify, t0 + 20, Some(c1), Some("d5"))];
    log.write(s, b).await;
    check(s, &log, &[c1, c2], name, "identify of a filled device after a fill on demand").await;
    assert_eq!(log.expected(c1, 100).len(), 10);
}
