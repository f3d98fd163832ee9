//! `kehu api-token create|list|revoke`: credentials for the HTTP API.

use clap::Subcommand;
use kehu_store::Store;

#[derive(Subcommand)]
pub enum ApiTokenCommand {
    /// Make a token; prints it once (only its digest is stored). With `--staff`, the token
    /// acts for that staff member: the API records them as the one who reviewed a read,
    /// recorded a dunning step or approved a disconnection order, within their role.
    Create {
        name: String,
        /// The staff member (staff number) the token acts for.
        #[arg(long)]
        staff: Option<String>,
    },
    /// List the tokens by name.
    List,
    /// Revoke a token (refused by the server within 10 seconds).
    Revoke { name: String },
}

pub async fn api_token(store: &Store, cmd: ApiTokenCommand) -> anyhow::Result<()> {
    match cmd {
        ApiTokenCommand::Create { name, staff } => {
            let token = store.create_api_token(&name, staff.as_deref()).await?;
            eprintln!(
                "API token {name:?} (shown once; send it as Authorization: Bearer TOKEN):"
            );
            println!("{token}");
        }
        ApiTokenCommand::List => {
            for t in store.list_api_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name,
                    t.staff.as_deref().unwrap_or("-"),
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    if t.revoked { "revoked" } else { "active" }
                );
            }
        }
        ApiTokenCommand::Revoke { name } => {
            if !store.revoke_api_token(&name).await? {
                anyhow::bail!("no active API token named {name:?}");
            }
            eprintln!("revoked the API token {name:?}");
        }
    }
    Ok(())
}
