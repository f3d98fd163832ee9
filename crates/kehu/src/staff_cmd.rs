//! `kehu staff add`: a staff member with a web login (argon2id hash; the password comes
//! from a file or standard input, never from the command line where `ps` would show it).

use anyhow::{bail, Context};
use clap::Subcommand;
use kehu_domain::ingest::EntityKind;
use kehu_domain::state::{Role, Staff};
use kehu_store::Store;
use std::io::Read;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Add a staff member (or update one with the same id) and set their web password.
    Add {
        /// Staff id, e.g. S001M01.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// admin | customer_manager | marketer | service_agent | collector | analyst | branch_head
        #[arg(long)]
        role: String,
        #[arg(long)]
        branch: Option<String>,
        /// Read the password from this file (first line).
        #[arg(long, conflicts_with = "password_stdin")]
        password_file: Option<PathBuf>,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Passwords shorter than this are refused.
const MIN_PASSWORD_CHARS: usize = 8;

pub async fn run(store: &Store, cmd: StaffCommand) -> anyhow::Result<()> {
    match cmd {
        StaffCommand::Add {
            id,
            name,
            role,
            branch,
            password_file,
            password_stdin,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role {role:?}: expected one of {}", Role::expected())
            })?;
            let id = id.trim().to_string();
            if id.is_empty() || id.chars().count() > 64 {
                bail!("--id must have 1 to 64 characters");
            }
            let raw = match (password_file, password_stdin) {
                (Some(f), false) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read --password-file {}", f.display()))?,
                (None, true) => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("cannot read the password from standard input")?;
                    s
                }
                _ => bail!("give the password with --password-file FILE or --password-stdin"),
            };
            let password = raw.lines().next().unwrap_or("").to_string();
            if password.chars().count() < MIN_PASSWORD_CHARS {
                bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
            }
            let staff = Staff {
                external_id: id.clone(),
                name: name.trim().to_string(),
                role,
                branch: branch
                    .map(|b| b.trim().to_string())
                    .filter(|b| !b.is_empty()),
            };
            let now = chrono::Utc::now();
            let mut load = store
                .begin_load(EntityKind::Staff, "kehu staff add", now)
                .await?;
            let skips = load.write(std::slice::from_ref(&staff)).await?;
            load.finish(
                true,
                kehu_store::load::LoadCounts {
                    read: 1,
                    loaded: 1 - skips.len() as u64,
                    rejected: skips.len() as u64,
                },
            )
            .await?;
            if !skips.is_empty() {
                bail!("staff {id} was not written: {:?}", skips[0].reason);
            }
            let hash = tokio::task::spawn_blocking(move || {
                kehu_server::web::auth::hash_password(&password)
            })
            .await?
            .map_err(anyhow::Error::msg)?;
            if !store.set_staff_password(&id, &hash, now).await? {
                bail!("staff {id} is not in the database");
            }
            eprintln!(
                "staff {id} ({}, {}) can now log in to the workbench",
                staff.name,
                role.label_en()
            );
            Ok(())
        }
    }
}

/// Creates the demo logins (one per role) and prints how to use them.
pub async fn demo_logins(
    store: &Store,
    spec: &kehu_ingest::demo::DemoSpec,
    base: &str,
) -> anyhow::Result<()> {
    let staff = kehu_ingest::demo::staff(spec);
    let pw = kehu_server::web::DEMO_PASSWORD;
    let logins = kehu_server::web::ensure_demo_logins(store, &staff, pw)
        .await
        .map_err(anyhow::Error::msg)?;
    eprintln!("demo logins (password for all: {pw}) at {base}/login:");
    for (role, id, name) in logins {
        eprintln!(
            "  {id:<10} {name:<6} {} / {}",
            role.label_zh(),
            role.label_en()
        );
    }
    eprintln!("  the customer app: {base}/app (pick a demo customer)");
    Ok(())
}
