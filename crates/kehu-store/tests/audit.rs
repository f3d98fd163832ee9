//! The audit trail on every backend: entries written, read back newest first, filtered
//! by staff, action and time, paged by id.

use chrono::{Duration, TimeZone, Utc};
use kehu_store::{testing, AuditAction, AuditEntry, AuditQuery};

#[tokio::test]
async fn audit_trail_on_every_backend() {
    for t in testing::all().await {
        let s = &t.store;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 2, 0, 0).unwrap();
        let entry = |i: i64, staff: &str, action| AuditEntry {
            id: 0,
            at: t0 + Duration::hours(i),
            staff_id: staff.into(),
            branch: Some("B001".into()),
            action,
            customer: (action == AuditAction::Unmask).then(|| format!("C{i:09}")),
            fields: if action == AuditAction::Unmask { vec!["phone".into(), "id_number".into()] } else { vec![] },
            ip: Some("127.0.0.1".into()),
            user_agent: Some("x".repeat(1000)),
            detail: None,
        };
        for i in 0..30 {
            let (staff, action) = match i % 3 {
                0 => ("S001M01", AuditAction::Login),
                1 => ("S001M01", AuditAction::Unmask),
                _ => ("NOBODY", AuditAction::LoginFailed),
            };
            s.record_audit(&entry(i, staff, action)).await.unwrap();
        }
        let all = s.audit_entries(&AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 30, "{}", t.name);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(all[0].at, t0 + Duration::hours(29));
        assert_eq!(all[0].user_agent.as_ref().map(|a| a.len()), Some(256), "long agents are cut");
        let unmask = s
            .audit_entries(&AuditQuery { action: Some(AuditAction::Unmask), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(unmask.len(), 10);
        assert_eq!(unmask[0].fields, vec!["phone".to_string(), "id_number".to_string()]);
        assert_eq!(unmask[0].customer.as_deref(), Some("C000000028"));
        let nobody = s
            .audit_entries(&AuditQuery { staff_id: Some("NOBODY".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert!(nobody.len() == 10 && nobody.iter().all(|e| e.action == AuditAction::LoginFailed));
        // Hours 5..10 (the end is exclusive).
        let window = s
            .audit_entries(&AuditQuery {
                from: Some(t0 + Duration::hours(5)),
                to: Some(t0 + Duration::hours(10)),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(window.iter().map(|e| e.at).collect::<Vec<_>>(), (5..10).rev().map(|h| t0 + Duration::hours(h)).collect::<Vec<_>>());
        // Paging: the next page starts below the last id of this one, nothing twice.
        let p1 = s.audit_entries(&AuditQuery { limit: 12, ..Default::default() }).await.unwrap();
        let p2 = s
            .audit_entries(&AuditQuery { limit: 12, before: p1.last().map(|e| e.id), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(p1.len() + p2.len(), 24);
        assert!(p2[0].id < p1[11].id);
        assert_eq!(p2[0].id, all[12].id);
    }
}
