//! The collections workbench over plain HTTP, on every backend: arrears by age and the
//! dunning worklist (collector and branch head only), the meter-read review queue with
//! its audited decisions, the supply account page, and dunning steps whose legal gates
//! are checked with the logged-in approver, and payments taken at the desk with their
//! receipt.

mod support;

use chrono::{Duration, FixedOffset, Utc};
use kehu_domain::billing::{BillingRules, DunningStep};
use kehu_ingest::demo_power::{self, PowerSpec};
use kehu_store::billing::AgeingGroup;
use kehu_store::testing;
use support::{hidden, login_of, Browser, Server};

fn business_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

async fn logged_in(base: &str, role: &str) -> Browser {
    let mut b = Browser::new(base);
    let p = b
        .login(login_of(role), kehu_server::web::DEMO_PASSWORD)
        .await;
    assert_eq!(p.status, 303, "{role} logs in");
    b
}

/// The number inside the element with `id`, digits only (`¥12,345.67` → 1234567).
fn digits_of(html: &str, id: &str) -> i64 {
    let pat = format!("id=\"{id}\">");
    let i = html.find(&pat).unwrap_or_else(|| panic!("no #{id}")) + pat.len();
    let end = i + html[i..].find('<').unwrap();
    html[i..end]
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn collections_pages_on_every_backend() {
    // The worklist reads 7 accounts per statement here, so it crosses many reads.
    testing::set_worklist_chunk(7);
    for t in testing::all().await {
        let rules = BillingRules::default();
        let spec = PowerSpec::new(120, 11, business_today());
        demo_power::load(&t.store, &spec, &rules, Utc::now())
            .await
            .unwrap();
        let server = Server::start(t.store.clone(), support::demo_web()).await;
        overview(&server.base, &t.store).await;
        review(&server.base, &t.store).await;
        account_and_dunning(&server.base, &t.store).await;
        desk_payment(&server.base, &t.store).await;
        billing_runs(&server.base, &t.store).await;
        server.stop().await;
        eprintln!("collections pages passed on {}", t.name);
    }
}

async fn overview(base: &str, store: &kehu_store::Store) {
    let today = business_today();
    let mut c = logged_in(base, "collector").await;
    let home = c.get("/").await;
    assert!(home.body.contains("href=\"/billing\""), "collector nav");
    assert!(home.body.contains("href=\"/meter-review\""));
    let p = c.get("/billing").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"ageing-chart\""), "the ageing chart");
    assert!(p.body.contains("<svg"));
    // The headline total is the sum over every account's unpaid principal.
    let by_account = store.ageing(today, AgeingGroup::Account).await.unwrap();
    let expected: i64 = by_account.iter().map(|r| r.total.0).sum();
    assert!(expected > 0, "the demo supplier has arrears");
    assert_eq!(digits_of(&p.body, "ageing-total"), expected);
    // The worklist holds what the store's worklist holds.
    let work = store
        .dunning_worklist(today, &BillingRules::default())
        .await
        .unwrap();
    // The worklist reads credit rows and timelines for many accounts per statement: each
    // line's grade is the one the account's own credit page computes, and the lines come
    // in account order.
    assert!(work.len() > 7, "more lines than one read of the worklist: {}", work.len());
    for w in &work {
        let own = store.credit_grade(&w.account, today, &BillingRules::default()).await.unwrap();
        assert_eq!(own.grade, w.grade, "{}", w.account);
    }
    assert!(work.windows(2).all(|p| p[0].account < p[1].account));
    assert_eq!(digits_of(&p.body, "work-total"), work.len() as i64);
    if let Some(w) = work.first() {
        assert!(p.body.contains(&format!("/billing/accounts/{}", w.account)));
    }
    let queue = store.review_queue(100_000).await.unwrap();
    assert_eq!(digits_of(&p.body, "review-count"), queue.len() as i64);
    // Filtered by a step: only that step's lines.
    if let Some(w) = work.first() {
        let f = c.get(&format!("/billing?step={}", w.step.code())).await;
        let n = work.iter().filter(|x| x.step == w.step).count();
        assert_eq!(digits_of(&f.body, "work-total"), n as i64);
        assert_eq!(
            f.body.matches("data-step=\"").count(),
            n.min(200),
            "only {:?} lines",
            w.step
        );
    }
    let by_area = c.get("/billing?group=area").await;
    assert_eq!(by_area.status, 200);
    assert_eq!(digits_of(&by_area.body, "ageing-total"), expected);
    let bad = c.get("/billing?group=planet").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("planet"), "the page names the value");
    // Whom to ask for a deposit: linked from the overview; the store's list, its total,
    // a chart by grade, each line's grade the account's own.
    assert!(p.body.contains("href=\"/billing/deposits\""));
    let d = c.get("/billing/deposits").await;
    assert_eq!(d.status, 200);
    assert!(d.body.contains("id=\"deposit-chart\"") && d.body.contains("<svg"));
    let asked = store
        .deposit_worklist(today, &BillingRules::default())
        .await
        .unwrap();
    assert!(!asked.is_empty(), "the demo's late payers hold too little");
    assert_eq!(digits_of(&d.body, "deposit-count"), asked.len() as i64);
    let short: i64 = asked.iter().map(|i| i.shortfall.0).sum();
    assert_eq!(digits_of(&d.body, "deposit-total"), short);
    assert_eq!(d.body.matches("data-grade=\"").count(), asked.len().min(200));
    for i in asked.iter().take(5) {
        let own = store.credit_grade(&i.account, today, &BillingRules::default()).await.unwrap();
        assert_eq!(own.grade, i.grade, "{}", i.account);
        assert!(d.body.contains(&format!("/billing/accounts/{}", i.account)));
    }
    // In English too.
    let csrf = hidden(&p.body, "csrf");
    c.post("/lang", &[("csrf", &csrf), ("lang", "en"), ("back", "/billing")])
        .await;
    let en = c.get("/billing").await;
    assert!(en.body.contains("Dunning worklist"));
    assert!(en.body.contains("over 90 days"));
    assert!(c.get("/billing/deposits").await.body.contains("Deposit still to ask for, by credit grade"));

    // Roles without the collections work see a 403 page and no figures.
    for role in ["marketer", "customer_manager", "analyst"] {
        let mut b = logged_in(base, role).await;
        let p = b.get("/billing").await;
        assert_eq!(p.status, 403, "{role}");
        assert!(!p.body.contains("ageing-total"), "{role}: no data");
        let p = b.get("/meter-review").await;
        assert_eq!(p.status, 403, "{role}");
        let p = b.get("/billing/deposits").await;
        assert_eq!(p.status, 403, "{role}");
        assert!(!p.body.contains("deposit-total"), "{role}: no data");
    }
    let mut head = logged_in(base, "branch_head").await;
    assert_eq!(head.get("/billing").await.status, 200);
    assert_eq!(
        head.get("/meter-review").await.status,
        403,
        "reviewing reads is the collector's work"
    );
}

async fn review(base: &str, store: &kehu_store::Store) {
    let mut c = logged_in(base, "collector").await;
    let queue = store.review_queue(100_000).await.unwrap();
    assert!(!queue.is_empty(), "the demo has reads to review");
    let p = c.get("/meter-review").await;
    assert_eq!(p.status, 200);
    assert_eq!(digits_of(&p.body, "review-count"), queue.len() as i64);
    let first = &queue[0];
    assert!(p.body.contains(&format!("id=\"read-{}\"", first.read_id)));
    let csrf = hidden(&p.body, "csrf");
    let path = format!("/meter-review/{}", first.read_id);

    // No reason: refused, nothing changes.
    let r = c
        .post(&path, &[("csrf", &csrf), ("action", "reject"), ("reason", " ")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"review-error\""));
    assert!(store.read_edits(first.read_id).await.unwrap().is_empty());
    // A corrected register that is not a number: refused, naming the value.
    let r = c
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("action", "correct"),
                ("value", "12a4"),
                ("reason", "现场复核"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("12a4"));
    // Band registers: all three or none, whole numbers; otherwise refused, naming them.
    let r = c
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("action", "correct"),
                ("value", "1000"),
                ("peak", "300"),
                ("flat", ""),
                ("valley", "100"),
                ("reason", "现场复核"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("300 /  / 100"), "{}", r.body);
    assert!(store.read_edits(first.read_id).await.unwrap().is_empty());
    // A time-of-use read in the queue offers its band registers for correction.
    let form_of = |id: i64| {
        p.body
            .split(&format!("id=\"read-{id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .unwrap_or("")
            .to_string()
    };
    for q in queue.iter().take(200) {
        let row = form_of(q.read_id);
        assert_eq!(row.contains("name=\"peak\""), q.bands.is_some(), "read {}: {row}", q.read_id);
    }
    // A forged form: 403, nothing changes.
    let r = c
        .post(
            &path,
            &[("csrf", "forged"), ("action", "reject"), ("reason", "x")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(store.read_edits(first.read_id).await.unwrap().is_empty());

    // Rejected with a reason: audited with the logged-in collector, out of the queue.
    let r = c
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("action", "reject"),
                ("reason", "重复抄表，现场核实"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let edits = store.read_edits(first.read_id).await.unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].staff, login_of("collector"));
    assert_eq!(edits[0].action, "reject");
    assert_eq!(edits[0].reason, "重复抄表，现场核实");
    let after = store.review_queue(100_000).await.unwrap();
    assert_eq!(after.len(), queue.len() - 1);
    assert!(after.iter().all(|r| r.read_id != first.read_id));
    let done = c.get(r.location.as_deref().unwrap()).await;
    assert!(done.body.contains("id=\"review-done\""));
    // The notice also says what became of the meter's next read (see `FollowUp`).
    let next = c
        .get("/meter-review?done=7&next=8&on=2026-11-30&before=150&after=50&status=review&rebill=false")
        .await;
    assert!(next.body.contains("150 → 50 kWh, status: waiting for review"), "{}", next.body);
    let rebill = c
        .get("/meter-review?done=7&next=8&on=2026-11-30&before=150&after=100&status=billed&rebill=true")
        .await;
    assert!(rebill.body.contains("billed with 150 kWh") && rebill.body.contains("it is 100 kWh: its bill needs an adjustment"), "{}", rebill.body);
    // Deciding it again: it is no longer in review.
    let again = c
        .post(
            &path,
            &[("csrf", &csrf), ("action", "accept"), ("reason", "again")],
        )
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(store.read_edits(first.read_id).await.unwrap().len(), 1);

    // A time-of-use read whose flat register was misread: the form offers the band
    // registers, and a correction with them splits the read again.
    testing::supply_account_with_meter(store, "WEB-TOU", kehu_domain::billing::CustomerClass::NonResidential, "commercial-tou", "M-WEB-TOU", 1, 200).await;
    let vee = &BillingRules::default().vee;
    let today = business_today();
    let mut tou = Vec::new();
    for (on, total, regs) in [(today - Duration::days(31), 5_000, (1_000, 3_000, 1_000)), (today, 5_200, (1_050, 3_900, 1_050))] {
        let mut r = kehu_store::billing::NewRead::total("M-WEB-TOU", on, total);
        (r.peak, r.flat, r.valley) = (Some(regs.0), Some(regs.1), Some(regs.2));
        tou.push(store.add_read(&r, vee, today, Utc::now()).await.unwrap());
    }
    assert_eq!(tou[1].status, kehu_store::billing::ReadStatus::Review);
    let id = tou[1].read_id;
    let p = c.get("/meter-review").await;
    let row = p.body.split(&format!("id=\"read-{id}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("name=\"peak\"") && row.contains("3,900"), "{row}");
    let r = c
        .post(
            &format!("/meter-review/{id}"),
            &[
                ("csrf", &csrf),
                ("action", "correct"),
                ("value", "5200"),
                ("peak", "1050"),
                ("flat", "3,100"),
                ("valley", "1050"),
                ("reason", "平段示数抄错"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let edit = store.read_edits(id).await.unwrap().remove(0);
    assert!(edit.after.contains("3100") && edit.after.contains("\"band_kwh\""), "{edit:?}");

    // A read rejected after the next one was billed: the overview lists the bill to adjust.
    testing::supply_account_with_meter(store, "WEB-RB", kehu_domain::billing::CustomerClass::Residential, "res-tiered", "M-WEB-RB", 1, 10).await;
    let mut rb = Vec::new();
    for (on, v) in [(today - Duration::days(62), 1_000), (today - Duration::days(31), 900), (today, 1_150)] {
        let r = kehu_store::billing::NewRead::total("M-WEB-RB", on, v);
        rb.push(store.add_read(&r, vee, today, Utc::now()).await.unwrap());
    }
    assert_eq!(rb[1].status, kehu_store::billing::ReadStatus::Review);
    use chrono::Datelike;
    let period = kehu_domain::billing::Period { year: today.year(), month: today.month() };
    store.billing_run(period, true, &BillingRules::default(), Utc::now()).await.unwrap();
    assert_eq!(store.account_bills("WEB-RB").await.unwrap().len(), 1, "the next read is billed");
    let before = store.rebills(1).await.unwrap().0;
    let r = c
        .post(
            &format!("/meter-review/{}", rb[1].read_id),
            &[("csrf", &csrf), ("action", "reject"), ("reason", "表码抄错，作废")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(store.rebills(1).await.unwrap().0, before + 1);
    let o = c.get("/billing").await;
    assert_eq!(digits_of(&o.body, "rebill-count"), before + 1);
    let table = o.body.split("id=\"rebill-table\"").nth(1).expect("the bills to adjust");
    let row = table.split("<tr>").find(|r| r.contains("WEB-RB")).expect("its row");
    assert!(row.contains("250") && row.contains("150") && row.contains("表码抄错，作废"), "{row}");
}

async fn account_and_dunning(base: &str, store: &kehu_store::Store) {
    let today = business_today();
    let rules = BillingRules::default();
    let work = store.dunning_worklist(today, &rules).await.unwrap();
    // An account more than 30 days in arrears, so that a disconnection may be ordered.
    let late = work
        .iter()
        .find(|w| w.days_overdue > i64::from(rules.dunning.min_days_overdue) + 1)
        .expect("the demo has an account long in arrears");
    let acct = late.account.clone();
    let mut c = logged_in(base, "collector").await;
    let p = c.get(&format!("/billing/accounts/{acct}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"consumption-chart\""));
    let bills = store.account_bills(&acct).await.unwrap();
    let table = p.body.split("id=\"bill-table\"").nth(1).unwrap();
    let tbody = table.split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap();
    assert_eq!(tbody.matches("<tr").count(), bills.len(), "one row per bill");
    let owed: i64 = bills
        .iter()
        .map(|b| (b.total.0 - b.paid_principal.0).max(0))
        .sum();
    assert_eq!(digits_of(&p.body, "owed"), owed);
    let grade = store.credit_grade(&acct, today, &rules).await.unwrap();
    assert!(p.body.contains(&grade.reason));
    // The deposit the grade calls for: months of the average of the last 12 bills.
    let last: Vec<i64> = bills.iter().rev().take(12).map(|b| b.total.0).collect();
    let n = last.len() as i64;
    let average = kehu_domain::Fen((last.iter().sum::<i64>() + n / 2) / n);
    let held = store.supply_account(&acct).await.unwrap().unwrap().account.deposit;
    let (required, missing) =
        kehu_domain::billing::credit::deposit_required(&rules.credit, grade.grade, average, held);
    let rule = p.body.split("id=\"deposit-rule\"").nth(1).unwrap().split("</p>").next().unwrap();
    assert!(rule.contains(&required.to_display()), "{rule}");
    assert!(rule.contains(&missing.to_display()), "{rule}");
    assert_eq!(c.get("/billing/accounts/NO-SUCH").await.status, 404);
    assert!(
        !p.body.contains("id=\"order-form\""),
        "a collector does not approve orders"
    );
    let csrf = hidden(&p.body, "csrf");
    let dunning = format!("/billing/accounts/{acct}/dunning");

    // A collector cannot order a disconnection, whatever the form says.
    let planned = (Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        + Duration::days(i64::from(rules.dunning.notice_min_days) + 1))
    .format("%Y-%m-%dT%H:%M")
    .to_string();
    let r = c
        .post(
            &dunning,
            &[
                ("csrf", &csrf),
                ("step", "disconnection_order"),
                ("requested_by", "S001C"),
                ("planned", &planned),
            ],
        )
        .await;
    assert_eq!(r.status, 403);

    // The branch head approves too early: refused, the gates named, nothing written.
    let mut head = logged_in(base, "branch_head").await;
    let hp = head.get(&format!("/billing/accounts/{acct}")).await;
    assert!(hp.body.contains("id=\"order-form\""));
    let hcsrf = hidden(&hp.body, "csrf");
    let before = store.dunning_timeline(&acct).await.unwrap().len();
    let order = |by: &'static str| {
        vec![
            ("csrf", hcsrf.clone()),
            ("step", "disconnection_order".to_string()),
            ("requested_by", by.to_string()),
            ("planned", planned.clone()),
        ]
    };
    let form: Vec<(&str, String)> = order("S001C");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let has_reminder = store
        .dunning_timeline(&acct)
        .await
        .unwrap()
        .iter()
        .any(|e| e.step == DunningStep::Reminder);
    let r = head.post(&dunning, &pairs).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"gates\""));
    assert!(r.body.contains("停电通知书"), "the written notice gate, in Chinese");
    if !has_reminder {
        assert!(r.body.contains("催费提醒"));
    }
    assert_eq!(store.dunning_timeline(&acct).await.unwrap().len(), before);

    // The collector sends the reminder and the written notice.
    for step in ["reminder", "written_notice"] {
        let r = c
            .post(
                &dunning,
                &[("csrf", &csrf), ("step", step), ("note", "电话已通知")],
            )
            .await;
        assert_eq!(r.status, 303, "{step}: {}", r.body);
    }
    let tl = store.dunning_timeline(&acct).await.unwrap();
    assert_eq!(tl.len(), before + 2);
    assert_eq!(tl.last().unwrap().step, DunningStep::WrittenNotice);
    assert_eq!(tl.last().unwrap().staff, login_of("collector"));

    // The branch head cannot approve an order they asked for themselves.
    let form = order("S001H");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = head.post(&dunning, &pairs).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("另一名员工"), "{}", r.body);
    // Asked for by the collector, approved by the logged-in branch head: recorded.
    let form = order("S001C");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = head.post(&dunning, &pairs).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let tl = store.dunning_timeline(&acct).await.unwrap();
    let o = tl.last().unwrap();
    assert_eq!(o.step, DunningStep::DisconnectionOrder);
    assert_eq!(o.staff, "S001C");
    assert_eq!(o.approver.as_deref(), Some(login_of("branch_head")));
    let shown = head.get(r.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("id=\"account-message\""));
    assert!(shown.body.contains("停电工作单"));
}

/// Unpaid principal of an account, from the store.
async fn owed(store: &kehu_store::Store, acct: &str) -> i64 {
    store
        .account_bills(acct)
        .await
        .unwrap()
        .iter()
        .map(|b| (b.total.0 - b.paid_principal.0).max(0))
        .sum()
}

async fn desk_payment(base: &str, store: &kehu_store::Store) {
    use kehu_store::{AuditAction, AuditQuery};
    let today = business_today();
    let work = store.dunning_worklist(today, &BillingRules::default()).await.unwrap();
    let acct = work.last().expect("someone owes").account.clone();
    let before = owed(store, &acct).await;
    let credit_before = store.account_credit(&acct).await.unwrap().0;
    assert!(before > 100, "{acct} owes {before}");
    let mut c = logged_in(base, "collector").await;
    let page = c.get(&format!("/billing/accounts/{acct}")).await;
    assert!(page.body.contains("id=\"payment-form\""));
    let csrf = hidden(&page.body, "csrf");
    let payment_id = hidden(&page.body, "payment_id");
    let path = format!("/billing/accounts/{acct}/payments");
    let today_s = today.to_string();
    // Refused: no amount, a negative one, a date after today, a forged form, a bad channel.
    for (amount, on) in [("", today_s.as_str()), ("-5", today_s.as_str()), ("1.234", today_s.as_str()), ("1.00", "2999-01-01")] {
        let r = c
            .post(&path, &[("csrf", &csrf), ("payment_id", &payment_id), ("amount", amount), ("paid_on", on), ("channel", "counter")])
            .await;
        assert_eq!(r.status, 422, "{amount} {on}: {}", r.body);
        assert!(r.body.contains("id=\"gates\""), "the reason is shown");
    }
    let r = c
        .post(&path, &[("csrf", "forged"), ("payment_id", &payment_id), ("amount", "1.00"), ("paid_on", &today_s), ("channel", "counter")])
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .post(&path, &[("csrf", &csrf), ("payment_id", &payment_id), ("amount", "1.00"), ("paid_on", &today_s), ("channel", "cash-in-pocket")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(owed(store, &acct).await, before, "nothing recorded");
    // A marketer cannot take payments.
    let mut m = logged_in(base, "marketer").await;
    let mp = m.get("/").await;
    let r = m
        .post(&path, &[("csrf", &hidden(&mp.body, "csrf")), ("payment_id", &payment_id), ("amount", "1.00"), ("paid_on", &today_s), ("channel", "counter")])
        .await;
    assert_eq!(r.status, 403);

    // One yuan: it pays the oldest bill's late fee and principal first.
    let form = [("csrf", csrf.as_str()), ("payment_id", payment_id.as_str()), ("amount", "1.00"), ("paid_on", today_s.as_str()), ("channel", "counter")];
    let r = c.post(&path, &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.clone().unwrap();
    assert!(to.ends_with(&format!("?receipt={payment_id}")), "{to}");
    let receipt = store.receipt(&payment_id).await.unwrap().expect("stored");
    assert_eq!(receipt.amount.0, 100);
    let allocated: i64 = receipt.lines.iter().map(|l| l.principal.0 + l.penalty.0).sum();
    assert_eq!(allocated + receipt.credit.0, 100 + receipt.credit_used.0, "money conserved");
    let principal: i64 = receipt.lines.iter().map(|l| l.principal.0).sum();
    assert_eq!(owed(store, &acct).await, before - principal);
    let shown = c.get(&to).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains(&format!("id=\"receipt-no\">{payment_id}<")), "the receipt is shown");
    assert_eq!(
        shown.body.split("id=\"receipt-lines\"").nth(1).unwrap().split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap().matches("<tr>").count(),
        receipt.lines.len()
    );
    // The same form sent again records nothing more.
    let again = c.post(&path, &form).await;
    assert_eq!(again.status, 303);
    assert_eq!(owed(store, &acct).await, before - principal);
    // Another account's page does not show this receipt.
    let other = &work.first().unwrap().account;
    if *other != acct {
        let p = c.get(&format!("/billing/accounts/{other}?receipt={payment_id}")).await;
        assert!(!p.body.contains("id=\"receipt-no\""));
    }
    let audit = store
        .audit_entries(&AuditQuery {
            staff_id: Some(login_of("collector").into()),
            action: Some(AuditAction::PaymentRecord),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!audit.is_empty() && audit[0].detail.as_deref().unwrap().starts_with(&payment_id));
    desk_reversal(base, store, &acct, &payment_id, before, credit_before).await;
}

/// The payment just taken is listed on the account's page and reversed there: the bills
/// and credit go back to what they were before it; a reason is required; only the latest
/// payment in force carries the form; another account's page cannot reverse it.
async fn desk_reversal(base: &str, store: &kehu_store::Store, acct: &str, payment_id: &str, owed_before: i64, credit_before: i64) {
    use kehu_store::{AuditAction, AuditQuery};
    let mut c = logged_in(base, "collector").await;
    let page = c.get(&format!("/billing/accounts/{acct}")).await;
    let row = page.body.split(&format!("data-payment=\"{payment_id}\"")).nth(1).expect("the payment is listed");
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("reversal-form"), "the latest payment in force can be reversed: {row}");
    assert_eq!(page.body.matches("reversal-form").count(), 1, "only the latest payment in force");
    let csrf = hidden(&page.body, "csrf");
    let path = format!("/billing/accounts/{acct}/payments/{payment_id}/reversal");
    // Refused: no reason, a forged form, a marketer.
    let r = c.post(&path, &[("csrf", &csrf), ("reason", "  ")]).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"gates\""));
    assert_eq!(c.post(&path, &[("csrf", "forged"), ("reason", "错收")]).await.status, 403);
    let mut m = logged_in(base, "marketer").await;
    let mp = m.get("/").await;
    assert_eq!(m.post(&path, &[("csrf", &hidden(&mp.body, "csrf")), ("reason", "错收")]).await.status, 403);
    // Not this account's payment: not found, and nothing changes.
    let work = store.dunning_worklist(business_today(), &BillingRules::default()).await.unwrap();
    if let Some(other) = work.iter().map(|w| &w.account).find(|a| a.as_str() != acct) {
        let r = c.post(&format!("/billing/accounts/{other}/payments/{payment_id}/reversal"), &[("csrf", &csrf), ("reason", "错收")]).await;
        assert_eq!(r.status, 404);
    }
    assert!(store.account_payments(acct, 5).await.unwrap()[0].reversed_at.is_none(), "nothing reversed yet");

    let r = c.post(&path, &[("csrf", &csrf), ("reason", "金额录错")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.clone().unwrap();
    assert!(to.ends_with(&format!("?reversed={payment_id}")), "{to}");
    assert_eq!(owed(store, acct).await, owed_before, "the bills owe what they owed before the payment");
    assert_eq!(store.account_credit(acct).await.unwrap().0, credit_before, "the credit is what it was");
    let listed = &store.account_payments(acct, 5).await.unwrap()[0];
    assert_eq!((listed.payment.as_str(), listed.reversed_by.as_deref(), listed.reversal_reason.as_deref()), (payment_id, Some(login_of("collector")), Some("金额录错")));
    let shown = c.get(&to).await;
    let notice = shown.body.split("id=\"account-message\"").nth(1).expect("a notice").split("</p>").next().unwrap();
    assert!(notice.contains(payment_id), "the notice names the payment: {notice}");
    let row = shown.body.split(&format!("data-payment=\"{payment_id}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("金额录错") && !row.contains("reversal-form"), "{row}");
    // The notice is not shown for a payment that was not reversed.
    let fake = c.get(&format!("/billing/accounts/{acct}?reversed=WB-0000000000000000")).await;
    assert!(!fake.body.contains("id=\"account-message\""));
    // Reversing it again is refused with the reason.
    let again = c.post(&path, &[("csrf", &csrf), ("reason", "再次")]).await;
    assert_eq!(again.status, 422);
    let audit = store
        .audit_entries(&AuditQuery {
            staff_id: Some(login_of("collector").into()),
            action: Some(AuditAction::PaymentReverse),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].detail.as_deref().unwrap().starts_with(payment_id) && audit[0].detail.as_deref().unwrap().ends_with("金额录错"));
}

async fn billing_runs(base: &str, store: &kehu_store::Store) {
    use kehu_store::{AuditAction, AuditQuery};
    let mut c = logged_in(base, "collector").await;
    assert_eq!(c.get("/billing/runs").await.status, 403, "a collector does not bill");
    assert!(!c.get("/billing").await.body.contains("id=\"open-runs\""));
    let mut head = logged_in(base, "branch_head").await;
    assert!(head.get("/billing").await.body.contains("id=\"open-runs\""));
    let page = head.get("/billing/runs").await;
    assert_eq!(page.status, 200);
    let csrf = hidden(&page.body, "csrf");
    let r = head.post("/billing/runs", &[("csrf", &csrf), ("period", "2026-13")]).await;
    assert_eq!(r.status, 400);
    let r = head.post("/billing/runs", &[("csrf", "forged"), ("period", "2026-10")]).await;
    assert_eq!(r.status, 403);
    // A period with a read waiting for review: refused, the count and the reads shown.
    let work = store.dunning_worklist(business_today(), &BillingRules::default()).await.unwrap();
    let view = store.supply_account(&work[0].account).await.unwrap().unwrap();
    let meter = view.meters[0].0.clone();
    let last = store.meter_latest_read(&meter).await.unwrap().unwrap().unwrap();
    let odd = store
        .add_read(
            &kehu_store::billing::NewRead {
                external_id: None,
                meter,
                read_on: last + Duration::days(30),
                value: 999_000,
                peak: None,
                flat: None,
                valley: None,
            },
            &BillingRules::default().vee,
            business_today(),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(odd.status, kehu_store::billing::ReadStatus::Review);
    let queue = store.review_queue(100_000).await.unwrap();
    let waiting = queue.iter().find(|q| q.read_id == odd.read_id).unwrap();
    let period = waiting.read_on.format("%Y-%m").to_string();
    let in_period = queue.iter().filter(|q| q.read_on.format("%Y-%m").to_string() == period).count();
    let bills_before = store
        .period_bills(kehu_domain::billing::Period::parse(&period).unwrap())
        .await
        .unwrap()
        .len();
    let r = head.post("/billing/runs", &[("csrf", &csrf), ("period", &period)]).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains(&format!("{period} 未出账：{in_period} 条抄表待审核")), "{}", r.body);
    assert!(r.body.contains("id=\"run-first\""));
    // Only the clean accounts: billed (or billed already), audited.
    let r = head
        .post("/billing/runs", &[("csrf", &csrf), ("period", &period), ("only_clean", "1")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"run-report\""));
    let bills_after = store
        .period_bills(kehu_domain::billing::Period::parse(&period).unwrap())
        .await
        .unwrap()
        .len();
    assert!(r.body.contains(&format!("{period} 已出账：{} 张账单", bills_after - bills_before)), "{}", r.body);
    let audit = store
        .audit_entries(&AuditQuery {
            staff_id: Some(login_of("branch_head").into()),
            action: Some(AuditAction::BillingRun),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(audit[0].detail.as_deref().unwrap().starts_with(&period));
}
