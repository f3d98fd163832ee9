//! The dunning ladder (催费) and its legal gates.
//!
//! Ladder: reminder (SMS / call task) before and after the due date → written
//! disconnection notice (停电通知书) → disconnection order, approved by a second staff
//! member → notice again shortly before → executed → reconnection after payment.
//!
//! The gates are the law, enforced here and nowhere else:
//! - 《电力供应与使用条例》 art. 39: only arrears **more than 30 days** overdue, and only
//!   after a reminder (经催交仍未交付);
//! - 《供电营业规则》 art. 67: the disconnection is **approved** (kehu: by a staff member
//!   other than the one who asks); the **written notice** reaches the customer 3–7 days
//!   before; an **important customer** is reported to the authority as well; the customer
//!   is **told again 30 minutes before**; supply is **restored within three days** after
//!   the cause is removed.
//!
//! Times are business-local (`NaiveDateTime` in the configured zone); the store keeps UTC.

use super::account::CustomerClass;
use super::credit::CreditGrade;
use crate::code_enum;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

code_enum!(DunningStep {
    Reminder = "reminder", "催费提醒", "reminder (SMS / call)",
    WrittenNotice = "written_notice", "停电通知书", "written disconnection notice",
    AuthorityReport = "authority_report", "报送电力管理部门", "reported to the authority",
    DisconnectionOrder = "disconnection_order", "停电工作单", "disconnection order (approved)",
    FinalNotice = "final_notice", "停电前再次通知", "notice again before disconnection",
    Disconnected = "disconnected", "已停电", "disconnected",
    Paid = "paid", "已缴清", "arrears paid",
    Reconnected = "reconnected", "已复电", "reconnected",
});

/// One entry of an account's dunning timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub step: DunningStep,
    pub at: NaiveDateTime,
    /// The staff member who did it (or asked for it).
    pub staff: String,
    /// For a disconnection order: who approved it.
    pub approver: Option<String>,
    /// For a disconnection order: when the supply is to be cut.
    pub planned_at: Option<NaiveDateTime>,
    pub note: Option<String>,
}

/// One rung of the ladder for a customer grade: days relative to the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// Remind this many days before the due date (None: no reminder before).
    pub reminder_before_due_days: Option<u32>,
    /// Remind this many days after the due date.
    pub reminder_after_due_days: u32,
    /// Send the written notice this many days after the due date.
    pub notice_after_due_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DunningRules {
    /// Disconnection only for arrears more than this many days overdue. Default 30
    /// (电力供应与使用条例 art. 39).
    pub min_days_overdue: u32,
    /// Written notice at least / at most this many days before the disconnection.
    /// Defaults 3 and 7 (供电营业规则 art. 67).
    pub notice_min_days: u32,
    pub notice_max_days: u32,
    /// Told again at least this many minutes before. Default 30 (art. 67).
    pub final_notice_min_minutes: u32,
    /// …and not longer before than this (kehu's reading of "shortly before"). Default 240.
    pub final_notice_max_minutes: u32,
    /// Supply restored within this many hours of payment. Default 72 (art. 67: 三日内).
    pub reconnect_within_hours: u32,
    pub ladder_a: Ladder,
    pub ladder_b: Ladder,
    pub ladder_c: Ladder,
}

impl Default for DunningRules {
    fn default() -> Self {
        DunningRules {
            min_days_overdue: 30,
            notice_min_days: 3,
            notice_max_days: 7,
            final_notice_min_minutes: 30,
            final_notice_max_minutes: 240,
            reconnect_within_hours: 72,
            ladder_a: Ladder {
                reminder_before_due_days: None,
                reminder_after_due_days: 5,
                notice_after_due_days: 40,
            },
            ladder_b: Ladder {
                reminder_before_due_days: Some(3),
                reminder_after_due_days: 3,
                notice_after_due_days: 30,
            },
            ladder_c: Ladder {
                reminder_before_due_days: Some(5),
                reminder_after_due_days: 1,
                notice_after_due_days: 26,
            },
        }
    }
}

impl DunningRules {
    pub fn ladder(&self, grade: CreditGrade) -> &Ladder {
        match grade {
            CreditGrade::A => &self.ladder_a,
            CreditGrade::B => &self.ladder_b,
            CreditGrade::C => &self.ladder_c,
        }
    }
}

/// A legal gate that is not met, with what would satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    #[error("nothing is owed")]
    NothingOwed,
    #[error("the oldest arrears are {days} days overdue on {on}: disconnection only after more than {min} days")]
    NotOverdueLongEnough { days: i64, min: u32, on: NaiveDate },
    #[error("no reminder was sent after the due date {due}")]
    NoReminder { due: NaiveDate },
    #[error("no written notice sent between {min} and {max} days before the planned disconnection on {planned}")]
    NoWrittenNotice {
        planned: NaiveDate,
        min: u32,
        max: u32,
    },
    #[error("the order needs an approver")]
    NotApproved,
    #[error("the approver {staff} asked for the order: a different staff member must approve")]
    SelfApproved { staff: String },
    #[error("an important customer must be reported to the authority before disconnection")]
    NoAuthorityReport,
    #[error("no approved disconnection order")]
    NoOrder,
    #[error("the customer was not told again between {min} and {max} minutes before")]
    NoFinalNotice { min: u32, max: u32 },
    #[error("the planned time {planned} has not come yet")]
    TooEarly { planned: NaiveDateTime },
}

impl Gate {
    /// The same message in Chinese, for the workbench.
    pub fn zh(&self) -> String {
        match self {
            Gate::NothingOwed => "该户没有欠费".into(),
            Gate::NotOverdueLongEnough { days, min, on } => {
                format!("截至{on}最早欠费逾期{days}天：逾期超过{min}天方可停电")
            }
            Gate::NoReminder { due } => format!("到期日{due}之后尚未催费提醒"),
            Gate::NoWrittenNotice { planned, min, max } => {
                format!("计划停电日{planned}前{min}至{max}天内未送达停电通知书")
            }
            Gate::NotApproved => "停电工作单需要审批人".into(),
            Gate::SelfApproved { staff } => {
                format!("审批人{staff}即申请人：须由另一名员工审批")
            }
            Gate::NoAuthorityReport => "重要用户停电前须报送电力管理部门".into(),
            Gate::NoOrder => "没有已审批的停电工作单".into(),
            Gate::NoFinalNotice { min, max } => {
                format!("停电前{min}至{max}分钟内未再次通知用户")
            }
            Gate::TooEarly { planned } => format!("未到计划停电时间{planned}"),
        }
    }
}

/// The account's situation when a disconnection is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrears {
    pub class: CustomerClass,
    /// Due date of the oldest unpaid bill.
    pub oldest_due: NaiveDate,
    /// Principal still owed, in fen.
    pub outstanding_fen: i64,
}

/// Checks every gate for a disconnection order asked by `requested_by`, approved by
/// `approver`, to be executed at `planned_at`. Returns the order event, or every gate not
/// met.
pub fn order_disconnection(
    rules: &DunningRules,
    arrears: &Arrears,
    timeline: &[TimelineEvent],
    requested_by: &str,
    approver: Option<&str>,
    planned_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<TimelineEvent, Vec<Gate>> {
    let mut failed = Vec::new();
    if arrears.outstanding_fen <= 0 {
        failed.push(Gate::NothingOwed);
    }
    // More than N days overdue both now and at the planned time.
    let today = now.date();
    let days = (today - arrears.oldest_due).num_days();
    if days <= i64::from(rules.min_days_overdue) {
        failed.push(Gate::NotOverdueLongEnough {
            days,
            min: rules.min_days_overdue,
            on: today,
        });
    }
    let since_due = |e: &&TimelineEvent| e.at.date() > arrears.oldest_due && e.at <= now;
    if !timeline
        .iter()
        .filter(since_due)
        .any(|e| e.step == DunningStep::Reminder)
    {
        failed.push(Gate::NoReminder {
            due: arrears.oldest_due,
        });
    }
    let planned = planned_at.date();
    let notice_ok = timeline.iter().filter(since_due).any(|e| {
        let before = (planned - e.at.date()).num_days();
        e.step == DunningStep::WrittenNotice
            && before >= i64::from(rules.notice_min_days)
            && before <= i64::from(rules.notice_max_days)
    });
    if !notice_ok {
        failed.push(Gate::NoWrittenNotice {
            planned,
            min: rules.notice_min_days,
            max: rules.notice_max_days,
        });
    }
    match approver.map(str::trim).filter(|a| !a.is_empty()) {
        None => failed.push(Gate::NotApproved),
        Some(a) if a == requested_by.trim() => failed.push(Gate::SelfApproved {
            staff: a.to_string(),
        }),
        Some(_) => {}
    }
    if arrears.class == CustomerClass::Important
        && !timeline
            .iter()
            .filter(since_due)
            .any(|e| e.step == DunningStep::AuthorityReport)
    {
        failed.push(Gate::NoAuthorityReport);
    }
    if !failed.is_empty() {
        return Err(failed);
    }
    Ok(TimelineEvent {
        step: DunningStep::DisconnectionOrder,
        at: now,
        staff: requested_by.trim().to_string(),
        approver: approver.map(|a| a.trim().to_string()),
        planned_at: Some(planned_at),
        note: None,
    })
}

/// Checks the gates for executing the latest disconnection order at `now`: the order
/// exists and no payment came after it, its time has come, the written notice is still
/// inside its 3–7 day window, and the customer was told again shortly before.
pub fn execute_disconnection(
    rules: &DunningRules,
    arrears: &Arrears,
    timeline: &[TimelineEvent],
    staff: &str,
    now: NaiveDateTime,
) -> Result<TimelineEvent, Vec<Gate>> {
    let mut failed = Vec::new();
    if arrears.outstanding_fen <= 0 {
        failed.push(Gate::NothingOwed);
    }
    let last_paid = timeline
        .iter()
        .filter(|e| e.step == DunningStep::Paid)
        .map(|e| e.at)
        .max();
    let order = timeline
        .iter()
        .filter(|e| {
            e.step == DunningStep::DisconnectionOrder
                && e.at <= now
                && last_paid.map_or(true, |p| e.at > p)
        })
        .max_by_key(|e| e.at);
    match order {
        None => failed.push(Gate::NoOrder),
        Some(o) => {
            let planned = o.planned_at.unwrap_or(o.at);
            if now < planned {
                failed.push(Gate::TooEarly { planned });
            }
            // Re-check the order gates at execution time (days overdue, notice window
            // measured against the actual day, approval).
            if let Err(g) = order_disconnection(
                rules,
                arrears,
                timeline,
                &o.staff,
                o.approver.as_deref(),
                now,
                now,
            ) {
                failed.extend(g);
            }
        }
    }
    let final_ok = timeline.iter().any(|e| {
        let mins = (now - e.at).num_minutes();
        e.step == DunningStep::FinalNotice
            && mins >= i64::from(rules.final_notice_min_minutes)
            && mins <= i64::from(rules.final_notice_max_minutes)
    });
    if !final_ok {
        failed.push(Gate::NoFinalNotice {
            min: rules.final_notice_min_minutes,
            max: rules.final_notice_max_minutes,
        });
    }
    if !failed.is_empty() {
        failed.dedup();
        return Err(failed);
    }
    Ok(TimelineEvent {
        step: DunningStep::Disconnected,
        at: now,
        staff: staff.to_string(),
        approver: None,
        planned_at: None,
        note: None,
    })
}

/// When supply must be restored at the latest after the arrears were paid.
pub fn reconnect_by(rules: &DunningRules, paid_at: NaiveDateTime) -> NaiveDateTime {
    paid_at + chrono::Duration::hours(i64::from(rules.reconnect_within_hours))
}

/// What the dunning worklist suggests for one account on `today`, by the ladder of its
/// grade and what the timeline already shows. Disconnection itself is never suggested
/// before its gates can be met; it still has to pass [`order_disconnection`].
pub fn next_step(
    rules: &DunningRules,
    grade: CreditGrade,
    arrears: &Arrears,
    timeline: &[TimelineEvent],
    today: NaiveDate,
) -> Option<DunningStep> {
    if arrears.outstanding_fen <= 0 {
        let disconnected = timeline
            .iter()
            .rev()
            .find(|e| matches!(e.step, DunningStep::Disconnected | DunningStep::Reconnected));
        return match disconnected {
            Some(e) if e.step == DunningStep::Disconnected => Some(DunningStep::Reconnected),
            _ => None,
        };
    }
    let ladder = rules.ladder(grade);
    let due = arrears.oldest_due;
    let days = (today - due).num_days();
    let done_since = |step: DunningStep, from: NaiveDate| {
        timeline
            .iter()
            .any(|e| e.step == step && e.at.date() >= from)
    };
    if let Some(before) = ladder.reminder_before_due_days {
        if days < 0
            && -days <= i64::from(before)
            && !done_since(
                DunningStep::Reminder,
                due - chrono::Duration::days(i64::from(before)),
            )
        {
            return Some(DunningStep::Reminder);
        }
    }
    if days <= 0 {
        return None;
    }
    let after_due = due + chrono::Duration::days(1);
    if days >= i64::from(ladder.reminder_after_due_days)
        && !done_since(DunningStep::Reminder, after_due)
    {
        return Some(DunningStep::Reminder);
    }
    if days >= i64::from(ladder.notice_after_due_days)
        && !done_since(DunningStep::WrittenNotice, after_due)
    {
        return Some(DunningStep::WrittenNotice);
    }
    if arrears.class == CustomerClass::Important
        && done_since(DunningStep::WrittenNotice, after_due)
        && !done_since(DunningStep::AuthorityReport, after_due)
    {
        return Some(DunningStep::AuthorityReport);
    }
    if days > i64::from(rules.min_days_overdue)
        && done_since(DunningStep::WrittenNotice, after_due)
        && !done_since(DunningStep::DisconnectionOrder, after_due)
    {
        return Some(DunningStep::DisconnectionOrder);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn ev(step: DunningStep, at: &str) -> TimelineEvent {
        TimelineEvent {
            step,
            at: t(at),
            staff: "s1".into(),
            approver: None,
            planned_at: None,
            note: None,
        }
    }

    fn arrears(class: CustomerClass) -> Arrears {
        Arrears {
            class,
            oldest_due: "2026-08-15".parse().unwrap(),
            outstanding_fen: 35_000,
        }
    }

    fn full_timeline() -> Vec<TimelineEvent> {
        vec![
            ev(DunningStep::Reminder, "2026-08-20 10:00"),
            ev(DunningStep::WrittenNotice, "2026-09-14 09:00"),
            ev(DunningStep::AuthorityReport, "2026-09-14 11:00"),
        ]
    }

    #[test]
    fn an_order_with_every_gate_met() {
        let r = DunningRules::default();
        let o = order_disconnection(
            &r,
            &arrears(CustomerClass::Important),
            &full_timeline(),
            "s1",
            Some("s2"),
            t("2026-09-18 09:00"),
            t("2026-09-16 17:00"),
        )
        .unwrap();
        assert_eq!(o.step, DunningStep::DisconnectionOrder);
        assert_eq!(o.approver.as_deref(), Some("s2"));
    }

    #[test]
    fn each_gate_refuses_on_its_own() {
        let r = DunningRules::default();
        let a = arrears(CustomerClass::Important);
        let tl = full_timeline();
        let order = |a: &Arrears,
                     tl: &[TimelineEvent],
                     req: &str,
                     appr: Option<&str>,
                     planned: &str,
                     now: &str| {
            order_disconnection(&r, a, tl, req, appr, t(planned), t(now)).unwrap_err()
        };
        // 30 days overdue on 14 Sep is not more than 30.
        assert_eq!(
            order(
                &a,
                &tl,
                "s1",
                Some("s2"),
                "2026-09-18 09:00",
                "2026-09-14 17:00"
            ),
            vec![Gate::NotOverdueLongEnough {
                days: 30,
                min: 30,
                on: "2026-09-14".parse().unwrap()
            }]
        );
        assert_eq!(
            order(
                &a,
                &tl[1..],
                "s1",
                Some("s2"),
                "2026-09-18 09:00",
                "2026-09-16 17:00"
            ),
            vec![Gate::NoReminder { due: a.oldest_due }]
        );
        // Notice 2 days before is too late; 8 days before too early.
        let g = order(
            &a,
            &tl,
            "s1",
            Some("s2"),
            "2026-09-16 18:00",
            "2026-09-16 17:00",
        );
        assert!(matches!(g[..], [Gate::NoWrittenNotice { .. }]), "{g:?}");
        let g = order(
            &a,
            &tl,
            "s1",
            Some("s2"),
            "2026-09-22 09:00",
            "2026-09-16 17:00",
        );
        assert!(matches!(g[..], [Gate::NoWrittenNotice { .. }]), "{g:?}");
        assert_eq!(
            order(&a, &tl, "s1", None, "2026-09-18 09:00", "2026-09-16 17:00"),
            vec![Gate::NotApproved]
        );
        assert_eq!(
            order(
                &a,
                &tl,
                "s1",
                Some(" s1 "),
                "2026-09-18 09:00",
                "2026-09-16 17:00"
            ),
            vec![Gate::SelfApproved { staff: "s1".into() }]
        );
        assert_eq!(
            order(
                &a,
                &tl[..2],
                "s1",
                Some("s2"),
                "2026-09-18 09:00",
                "2026-09-16 17:00"
            ),
            vec![Gate::NoAuthorityReport]
        );
        // A non-important customer needs no report.
        assert!(order_disconnection(
            &r,
            &arrears(CustomerClass::NonResidential),
            &tl[..2],
            "s1",
            Some("s2"),
            t("2026-09-18 09:00"),
            t("2026-09-16 17:00")
        )
        .is_ok());
        // A reminder before the due date does not count as 经催交.
        let early = vec![
            ev(DunningStep::Reminder, "2026-08-10 10:00"),
            tl[1].clone(),
            tl[2].clone(),
        ];
        assert_eq!(
            order(
                &a,
                &early,
                "s1",
                Some("s2"),
                "2026-09-18 09:00",
                "2026-09-16 17:00"
            ),
            vec![Gate::NoReminder { due: a.oldest_due }]
        );
        let paid = Arrears {
            outstanding_fen: 0,
            ..a.clone()
        };
        assert_eq!(
            order(
                &paid,
                &tl,
                "s1",
                Some("s2"),
                "2026-09-18 09:00",
                "2026-09-16 17:00"
            ),
            vec![Gate::NothingOwed]
        );
    }

    #[test]
    fn execution_needs_the_order_and_the_final_notice() {
        let r = DunningRules::default();
        let a = arrears(CustomerClass::NonResidential);
        let mut tl = full_timeline();
        let o = order_disconnection(
            &r,
            &a,
            &tl,
            "s1",
            Some("s2"),
            t("2026-09-18 09:00"),
            t("2026-09-16 17:00"),
        )
        .unwrap();
        assert_eq!(
            execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 09:00")).unwrap_err()[0],
            Gate::NoOrder
        );
        tl.push(o);
        let g = execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 09:00")).unwrap_err();
        assert!(matches!(g[..], [Gate::NoFinalNotice { .. }]), "{g:?}");
        // Told again only 10 minutes before: not enough.
        tl.push(ev(DunningStep::FinalNotice, "2026-09-18 08:50"));
        assert!(execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 09:00")).is_err());
        tl.pop();
        tl.push(ev(DunningStep::FinalNotice, "2026-09-18 08:20"));
        assert_eq!(
            execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 09:00"))
                .unwrap()
                .step,
            DunningStep::Disconnected
        );
        // Too early.
        assert!(
            execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 08:55"))
                .unwrap_err()
                .contains(&Gate::TooEarly {
                    planned: t("2026-09-18 09:00")
                })
        );
        // A payment after the order cancels it.
        tl.push(ev(DunningStep::Paid, "2026-09-17 12:00"));
        assert!(
            execute_disconnection(&r, &a, &tl, "s3", t("2026-09-18 09:00"))
                .unwrap_err()
                .contains(&Gate::NoOrder)
        );
        assert_eq!(
            reconnect_by(&r, t("2026-09-20 10:00")),
            t("2026-09-23 10:00")
        );
    }

    #[test]
    fn the_worklist_follows_the_ladder() {
        let r = DunningRules::default();
        let a = arrears(CustomerClass::Residential);
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            next_step(&r, CreditGrade::C, &a, &[], d("2026-08-12")),
            Some(DunningStep::Reminder)
        );
        assert_eq!(
            next_step(&r, CreditGrade::A, &a, &[], d("2026-08-12")),
            None
        );
        assert_eq!(
            next_step(&r, CreditGrade::A, &a, &[], d("2026-08-20")),
            Some(DunningStep::Reminder)
        );
        let tl = vec![ev(DunningStep::Reminder, "2026-08-20 10:00")];
        assert_eq!(
            next_step(&r, CreditGrade::A, &a, &tl, d("2026-09-10")),
            None
        );
        assert_eq!(
            next_step(&r, CreditGrade::B, &a, &tl, d("2026-09-14")),
            Some(DunningStep::WrittenNotice)
        );
        let mut tl2 = tl.clone();
        tl2.push(ev(DunningStep::WrittenNotice, "2026-09-14 09:00"));
        assert_eq!(
            next_step(&r, CreditGrade::B, &a, &tl2, d("2026-09-14")),
            None
        );
        assert_eq!(
            next_step(&r, CreditGrade::B, &a, &tl2, d("2026-09-16")),
            Some(DunningStep::DisconnectionOrder)
        );
        tl2.push(ev(DunningStep::Disconnected, "2026-09-20 09:00"));
        let paid = Arrears {
            outstanding_fen: 0,
            ..a
        };
        assert_eq!(
            next_step(&r, CreditGrade::B, &paid, &tl2, d("2026-09-21")),
            Some(DunningStep::Reconnected)
        );
    }

    /// A timeline drawn at random: any of the steps, on any day around the due date.
    fn timeline() -> impl Strategy<Value = Vec<TimelineEvent>> {
        let steps = prop_oneof![
            Just(DunningStep::Reminder),
            Just(DunningStep::WrittenNotice),
            Just(DunningStep::AuthorityReport),
            Just(DunningStep::FinalNotice),
            Just(DunningStep::Paid),
        ];
        proptest::collection::vec((steps, -20i64..80, 0i64..1440), 0..6).prop_map(|v| {
            v.into_iter()
                .map(|(step, day, min)| TimelineEvent {
                    step,
                    at: t("2026-08-15 00:00")
                        + chrono::Duration::days(day)
                        + chrono::Duration::minutes(min),
                    staff: "s1".into(),
                    approver: None,
                    planned_at: None,
                    note: None,
                })
                .collect()
        })
    }

    proptest! {
        /// No disconnection order without every gate: whenever one is granted, the gates
        /// hold when checked directly against the timeline.
        #[test]
        fn no_disconnection_without_the_gates(
            tl in timeline(),
            class in prop_oneof![Just(CustomerClass::Residential), Just(CustomerClass::NonResidential), Just(CustomerClass::Important)],
            now_day in 0i64..90, plan_days in 0i64..10,
            approver in prop_oneof![Just(None), Just(Some("s1")), Just(Some("s2"))],
            owed in 0i64..3,
        ) {
            let r = DunningRules::default();
            let due: NaiveDate = "2026-08-15".parse().unwrap();
            let a = Arrears { class, oldest_due: due, outstanding_fen: owed * 10_000 };
            let now = t("2026-08-15 12:00") + chrono::Duration::days(now_day);
            let planned = now + chrono::Duration::days(plan_days);
            if order_disconnection(&r, &a, &tl, "s1", approver, planned, now).is_ok() {
                prop_assert!(owed > 0);
                prop_assert!((now.date() - due).num_days() > 30);
                prop_assert!(approver.is_some_and(|x| x != "s1"));
                prop_assert!(tl.iter().any(|e| e.step == DunningStep::Reminder && e.at.date() > due && e.at <= now));
                prop_assert!(tl.iter().any(|e| e.step == DunningStep::WrittenNotice && e.at <= now
                    && (3..=7).contains(&(planned.date() - e.at.date()).num_days())));
                if class == CustomerClass::Important {
                    prop_assert!(tl.iter().any(|e| e.step == DunningStep::AuthorityReport && e.at.date() > due));
                }
            }
            // Execution is granted only with a final notice 30–240 minutes before and an order.
            if execute_disconnection(&r, &a, &tl, "s3", now).is_ok() {
                prop_assert!(false, "no order in the timeline, yet execution was allowed");
            }
        }

        /// Starting from an order that passes, taking away any one gate gets it refused.
        #[test]
        fn removing_any_gate_refuses(which in 0usize..6, extra_days in 0i64..30) {
            let r = DunningRules::default();
            let mut a = arrears(CustomerClass::Important);
            let mut tl = full_timeline();
            // Shift everything by the same number of days: still a valid order.
            let shift = chrono::Duration::days(extra_days);
            for e in &mut tl { e.at += shift; }
            let mut now = t("2026-09-16 17:00") + shift;
            let planned = t("2026-09-18 09:00") + shift;
            let mut approver = Some("s2");
            prop_assert!(order_disconnection(&r, &a, &tl, "s1", approver, planned, now).is_ok());
            match which {
                0 => { tl.retain(|e| e.step != DunningStep::Reminder); }
                1 => { tl.retain(|e| e.step != DunningStep::WrittenNotice); }
                2 => { tl.retain(|e| e.step != DunningStep::AuthorityReport); }
                3 => approver = Some("s1"),
                4 => a.outstanding_fen = 0,
                _ => {
                    // Asked for on day 30 or earlier.
                    a.oldest_due = now.date() - chrono::Duration::days(30 - extra_days.min(30));
                    for e in &mut tl { e.at = e.at.max(a.oldest_due.and_hms_opt(8, 0, 0).unwrap() + chrono::Duration::days(1)); }
                    now = now.max(tl.iter().map(|e| e.at).max().unwrap());
                }
            }
            prop_assert!(order_disconnection(&r, &a, &tl, "s1", approver, planned, now).is_err());
        }
    }
}
