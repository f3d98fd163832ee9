//! `kehu billing …`: the electricity billing and collections commands.

use crate::config::Config;
use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::Subcommand;
use kehu_domain::billing::penalty::{exact_penalty, overdue_days};
use kehu_domain::billing::CustomerClass;
use kehu_domain::billing::Period;
use kehu_domain::ingest::ParseContext;
use kehu_domain::Fen;
use kehu_ingest::billing_import::{import_billing_file, BillingImportOptions, BillingKind};
use kehu_ingest::read::Format;
use kehu_store::billing::{AgeingGroup, Resolution};

#[derive(Subcommand)]
pub enum BillingCommand {
    /// Late-payment penalty (电费违约金) for one amount: prints the penalty in yuan.
    Penalty {
        /// residential | non-residential | important
        #[arg(long = "type")]
        class: String,
        /// Unpaid principal in yuan, e.g. 1234.56.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: String,
        /// Payment date, YYYY-MM-DD.
        #[arg(long)]
        paid: String,
        /// Contract daily rate in ‰ (e.g. 0.5), instead of the configured rate.
        #[arg(long)]
        rate_per_mille: Option<String>,
    },
    /// Bill a period (YYYY-MM) for every account with billable reads.
    Run {
        #[arg(long)]
        period: String,
        /// Bill the accounts whose reads are all clean; hold the others for review.
        #[arg(long)]
        only_clean: bool,
    },
    /// List the reads waiting for review.
    Review {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Resolve a read in the review queue (audited).
    Resolve {
        #[arg(long)]
        read: i64,
        /// accept | correct | estimate | estimate-last-year | reject
        #[arg(long)]
        action: String,
        /// With --action correct: the right register value.
        #[arg(long)]
        value: Option<u64>,
        /// With --action correct on a time-of-use meter: the right peak, flat and valley
        /// registers (峰 / 平 / 谷), all three or none.
        #[arg(long)]
        peak: Option<u64>,
        #[arg(long)]
        flat: Option<u64>,
        #[arg(long)]
        valley: Option<u64>,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        reason: String,
    },
    /// Meters without a read in a period (漏抄).
    Missing {
        #[arg(long)]
        period: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Store an estimated read for a meter whose read is missing (audited).
    Estimate {
        #[arg(long)]
        meter: String,
        /// The read date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// From the same period last year instead of the average of the last periods.
        #[arg(long)]
        last_year: bool,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        reason: String,
    },
    /// Arrears by ageing bucket.
    Ageing {
        /// account | area | class
        #[arg(long, default_value = "class")]
        by: String,
        /// The day to age on (default today).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The dunning worklist: who needs which step today.
    Worklist {
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Bills to adjust: billed reads whose consumption changed after billing, newest first.
    Rebills {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Whom to ask for a deposit or guarantee (电费保证金): postpaid accounts whose credit
    /// grade calls for more than they hold, the largest shortfall first.
    Deposits {
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Import meter reads or payments (CSV or JSON Lines; see docs/billing.md).
    Import {
        /// reads | payments
        kind: String,
        file: std::path::PathBuf,
        /// csv | jsonl (default: from the file name)
        #[arg(long)]
        format: Option<String>,
        /// Load the valid rows even when some are wrong.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Generate a demo power supplier (deterministic by seed): accounts, meters, areas,
    /// 24 months of reads, bills and payments.
    Demo {
        #[arg(long, default_value_t = 500)]
        accounts: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn date(flag: &str, s: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .with_context(|| format!("--{flag} {s:?}: expected a date like 2026-10-15"))
}

/// A rate in ‰ with up to three decimals, as parts per million.
fn per_mille_to_ppm(s: &str) -> anyhow::Result<u32> {
    let bad = || {
        anyhow::anyhow!(
            "--rate-per-mille {s:?}: expected a rate in ‰ like 1 or 0.5 (at most three decimals)"
        )
    };
    let (i, f) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if f.len() > 3 || (i.is_empty() && f.is_empty()) {
        return Err(bad());
    }
    let i: u32 = if i.is_empty() {
        0
    } else {
        i.parse().map_err(|_| bad())?
    };
    let f: u32 = if f.is_empty() {
        0
    } else {
        format!("{f:0<3}").parse().map_err(|_| bad())?
    };
    i.checked_mul(1000)
        .and_then(|v| v.checked_add(f))
        .ok_or_else(bad)
}

fn as_of(flag: Option<String>, today: NaiveDate) -> anyhow::Result<NaiveDate> {
    flag.map_or(Ok(today), |s| date("as-of", &s))
}

pub async fn run(cmd: BillingCommand, cfg: &Config) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now();
    let today = now.with_timezone(&offset).date_naive();
    let rules = &cfg.billing;
    match cmd {
        BillingCommand::Run { period, only_clean } => {
            let Some(p) = Period::parse(&period) else {
                bail!("--period {period:?}: expected a month like 2026-10");
            };
            let store = crate::open_store(cfg).await?;
            let r = store.billing_run(p, only_clean, rules, now).await?;
            eprintln!(
                "period {}: {} bills, {} kWh, {}; {} billed before, {} accounts held for review",
                r.period,
                r.bills,
                r.kwh,
                r.total.to_display(),
                r.already_billed,
                r.held_for_review
            );
            for a in &r.prepaid_mode_mismatches {
                eprintln!("warning: account {a} is prepaid but its meter is not in prepaid mode");
            }
            if r.tou_billed_at_flat > 0 {
                eprintln!(
                    "note: {} time-of-use accounts billed at the flat price, a read of the period without peak/flat/valley consumption (first: {})",
                    r.tou_billed_at_flat,
                    r.tou_billed_at_flat_first.join(", ")
                );
            }
            println!("{}", serde_json::to_string(&r)?);
            Ok(ok)
        }
        BillingCommand::Review { limit } => {
            let store = crate::open_store(cfg).await?;
            let q = store.review_queue(limit).await?;
            println!("read_id\tmeter\taccount\tread_on\tvalue\tkwh\tflags");
            for i in &q {
                let flags: Vec<&str> = i.flags.iter().map(|f| f.code()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.read_id,
                    i.meter,
                    i.account,
                    i.read_on,
                    i.value,
                    i.kwh.map(|k| k.to_string()).unwrap_or_default(),
                    flags.join(",")
                );
            }
            eprintln!("{} reads waiting for review", q.len());
            Ok(ok)
        }
        BillingCommand::Resolve {
            read,
            action,
            value,
            peak,
            flat,
            valley,
            staff,
            reason,
        } => {
            let bands = match (peak, flat, valley) {
                (None, None, None) => None,
                (Some(peak), Some(flat), Some(valley)) if action == "correct" => {
                    Some(kehu_domain::billing::vee::BandRegisters { peak, flat, valley })
                }
                (Some(_), Some(_), Some(_)) => bail!("--peak, --flat and --valley go with --action correct"),
                _ => bail!("--peak, --flat and --valley come together (all three registers) or not at all"),
            };
            let resolution = match (action.as_str(), value) {
                ("accept", _) => Resolution::Accept,
                ("correct", Some(v)) => Resolution::Correct { value: v, bands },
                ("correct", None) => bail!("--action correct needs --value (the right register value)"),
                ("estimate", _) => Resolution::EstimateAverage,
                ("estimate-last-year", _) => Resolution::EstimateLastYear,
                ("reject", _) => Resolution::Reject,
                (other, _) => bail!("--action {other:?}: expected accept, correct, estimate, estimate-last-year or reject"),
            };
            let store = crate::open_store(cfg).await?;
            let r = store
                .resolve_read(read, &resolution, &staff, &reason, &rules.vee, now)
                .await?;
            eprintln!("read {}: {} (kWh {:?})", r.read_id, r.status.code(), r.kwh);
            Ok(ok)
        }
        BillingCommand::Missing { period, limit } => {
            let Some(p) = Period::parse(&period) else {
                bail!("--period {period:?}: expected a month like 2026-10");
            };
            let store = crate::open_store(cfg).await?;
            let (n, first) = store.missing_reads(p, limit).await?;
            for m in &first {
                println!("{m}");
            }
            eprintln!("{n} meters without a read in {p}");
            Ok(ok)
        }
        BillingCommand::Estimate {
            meter,
            date: on,
            last_year,
            staff,
            reason,
        } => {
            let on = date("date", &on)?;
            let store = crate::open_store(cfg).await?;
            let r = store
                .estimate_missing_read(&meter, on, last_year, &staff, &reason, &rules.vee, now)
                .await?;
            eprintln!(
                "meter {}: estimated read {} on {} ({} kWh)",
                r.meter,
                r.value,
                r.read_on,
                r.kwh.unwrap_or(0)
            );
            Ok(ok)
        }
        BillingCommand::Ageing { by, as_of: day } => {
            let Some(group) = AgeingGroup::parse(&by) else {
                bail!("--by {by:?}: expected {}", AgeingGroup::expected());
            };
            let day = as_of(day, today)?;
            let store = crate::open_store(cfg).await?;
            let rows = store.ageing(day, group).await?;
            println!(
                "{}\tbills\tcurrent\t1-30\t31-60\t61-90\t90+\ttotal",
                group.code()
            );
            let mut all = kehu_domain::billing::AgeingTotals::default();
            for r in &rows {
                let t = &r.totals;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.key,
                    r.bills,
                    t.current.to_plain(),
                    t.d1_30.to_plain(),
                    t.d31_60.to_plain(),
                    t.d61_90.to_plain(),
                    t.over_90.to_plain(),
                    r.total.to_plain()
                );
                all.merge(t);
            }
            eprintln!(
                "arrears on {day}: {} in total, {} overdue",
                all.total().to_display(),
                all.overdue().to_display()
            );
            Ok(ok)
        }
        BillingCommand::Worklist { as_of: day } => {
            let day = as_of(day, today)?;
            let store = crate::open_store(cfg).await?;
            let w = store.dunning_worklist(day, rules).await?;
            println!("account\tclass\tgrade\toldest_due\tdays_overdue\toutstanding\tstep");
            for i in &w {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.account,
                    i.class.code(),
                    i.grade.code(),
                    i.oldest_due,
                    i.days_overdue,
                    i.outstanding.to_plain(),
                    i.step.code()
                );
            }
            eprintln!("{} accounts need a dunning step on {day}", w.len());
            Ok(ok)
        }
        BillingCommand::Rebills { limit } => {
            let store = crate::open_store(cfg).await?;
            let (count, items) = store.rebills(limit.max(1)).await?;
            println!("read_id\tmeter\taccount\tread_on\tperiod\tkwh_billed\tkwh_right\tstaff\tat\treason");
            let opt = |v: Option<u64>| v.map(|k| k.to_string()).unwrap_or_default();
            for i in &items {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.read_id,
                    i.meter,
                    i.account,
                    i.read_on,
                    i.period.as_deref().unwrap_or(""),
                    opt(i.kwh_billed),
                    opt(i.kwh_right),
                    i.staff,
                    i.at.to_rfc3339(),
                    i.reason.replace(['\t', '\n'], " ")
                );
            }
            eprintln!("{count} billed reads changed after billing: their bills need an adjustment");
            Ok(ok)
        }
        BillingCommand::Deposits { as_of: day } => {
            let day = as_of(day, today)?;
            let store = crate::open_store(cfg).await?;
            let list = store.deposit_worklist(day, rules).await?;
            println!("account\tclass\tgrade\taverage_bill\trequired\theld\tshortfall");
            let mut total = Fen::ZERO;
            for i in &list {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.account,
                    i.class.code(),
                    i.grade.code(),
                    i.average_bill.to_plain(),
                    i.required.to_plain(),
                    i.held.to_plain(),
                    i.shortfall.to_plain()
                );
                total = total + i.shortfall;
            }
            eprintln!(
                "{} accounts to ask for a deposit on {day}, {} in all",
                list.len(),
                total.to_display()
            );
            Ok(ok)
        }
        BillingCommand::Import {
            kind,
            file,
            format,
            skip_invalid,
        } => {
            let Some(kind) = BillingKind::parse(&kind) else {
                bail!("unknown kind {kind:?}: expected reads or payments");
            };
            let format = match format.as_deref() {
                Some(f) => Some(
                    Format::parse(f)
                        .with_context(|| format!("--format {f:?}: expected csv or jsonl"))?,
                ),
                None => None,
            };
            let store = crate::open_store(cfg).await?;
            let opts = BillingImportOptions {
                kind,
                ctx: ParseContext { today, offset },
                format,
                skip_invalid,
                max_errors: cfg.import.max_errors,
                rules: rules.clone(),
            };
            let r = import_billing_file(&store, &file, &opts, now).await?;
            for e in &r.errors {
                eprintln!("{e}");
            }
            if r.committed {
                eprintln!(
                    "imported {}: {} rows read, {} loaded, {} rejected, {} to review",
                    r.file, r.rows_read, r.rows_loaded, r.rows_rejected, r.to_review
                );
                Ok(if r.rows_rejected > 0 {
                    std::process::ExitCode::from(1)
                } else {
                    ok
                })
            } else {
                eprintln!(
                    "nothing imported from {}: {} rows read, {} with errors; fix them, or pass --skip-invalid to load the valid rows",
                    r.file, r.rows_read, r.rows_rejected
                );
                Ok(std::process::ExitCode::from(1))
            }
        }
        BillingCommand::Demo { accounts, seed } => {
            let store = crate::open_store(cfg).await?;
            let spec = kehu_ingest::demo_power::PowerSpec::new(accounts, seed, today);
            let started = std::time::Instant::now();
            let sum = kehu_ingest::demo_power::load(&store, &spec, rules, now).await?;
            eprintln!(
                "demo power supplier generated in {:.1} s: {sum:?} (database: {})",
                started.elapsed().as_secs_f64(),
                store.url()
            );
            Ok(ok)
        }
        BillingCommand::Penalty {
            class,
            amount,
            due,
            paid,
            rate_per_mille,
        } => {
            let Some(class) = CustomerClass::parse_loose(&class) else {
                bail!("--type {class:?}: expected residential, non-residential or important");
            };
            let principal = Fen::parse_yuan(&amount)
                .map_err(|e| anyhow::anyhow!("--amount {amount:?}: {e}"))?;
            if principal.is_negative() {
                bail!("--amount {amount:?}: the unpaid principal cannot be negative");
            }
            let (due, paid) = (date("due", &due)?, date("paid", &paid)?);
            let ppm = rate_per_mille
                .as_deref()
                .map(per_mille_to_ppm)
                .transpose()?;
            let rates = cfg.billing.penalty.with_contract_ppm(class, ppm);
            let exact = exact_penalty(&rates, class, principal, due, paid);
            let fen = exact.settle(&rates);
            let (in_year, later) = overdue_days(due, paid);
            eprintln!(
                "{} {} due {due}, paid {paid}: {} days overdue ({in_year} in {}, {later} later); exact {}.{:06} fen",
                class.label_en(),
                principal.to_display(),
                in_year + later,
                chrono::Datelike::year(&due),
                exact.0 / 1_000_000,
                exact.0 % 1_000_000,
            );
            println!("{}", fen.to_plain());
            Ok(ok)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_mille() {
        assert_eq!(super::per_mille_to_ppm("1").unwrap(), 1000);
        assert_eq!(super::per_mille_to_ppm("0.5").unwrap(), 500);
        assert_eq!(super::per_mille_to_ppm(".25").unwrap(), 250);
        assert!(super::per_mille_to_ppm("0.0001").is_err());
        assert!(super::per_mille_to_ppm("x").is_err());
    }
}
