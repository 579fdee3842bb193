//! `larder key add|list|remove|passwd`: manage key slots.

use std::path::PathBuf;

use anyhow::Result;
use jiff::Timestamp;
use larder::crypto::key_slot::{DEFAULT_KDF, Password};
use larder::id::KeyId;
use serde_json::json;

use super::{Ctx, first_line, non_empty, output, prompt};

/// Key slot commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a key slot for a new password.
    Add(NewPassword),
    /// List key slots.
    List,
    /// Remove a key slot (not the one in use, not the last).
    Remove {
        /// Key slot id or unique prefix.
        id: String,
    },
    /// Change the password: add a slot for the new password, then remove the one in use.
    Passwd(NewPassword),
}

/// Where the new password comes from.
#[derive(Debug, clap::Args)]
pub struct NewPassword {
    /// Read the new password from this file (else LARDER_NEW_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<PathBuf>,
    /// Host to record in the slot (default: this machine's hostname).
    #[arg(long)]
    host: Option<String>,
}

fn new_password(a: &NewPassword) -> Result<Password> {
    if let Some(f) = &a.new_password_file {
        let b = std::fs::read(f).map_err(|e| {
            larder::Error::PasswordSource(format!("new password file {}: {e}", f.display()))
        })?;
        return non_empty(first_line(b));
    }
    if let Ok(p) = std::env::var("LARDER_NEW_PASSWORD") {
        return non_empty(p.into_bytes());
    }
    prompt("enter the new password: ", true)
}

fn find(slots: &[(KeyId, larder::format::key_slot::KeySlot)], prefix: &str) -> Result<KeyId> {
    let p = prefix.to_ascii_lowercase();
    let hits: Vec<_> = slots
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&p))
        .collect();
    match hits.as_slice() {
        [(id, _)] => Ok(*id),
        [] => Err(larder::Error::KeySlot(format!("no key slot matches `{prefix}`")).into()),
        _ => Err(larder::Error::KeySlot(format!("key slot prefix `{prefix}` is ambiguous")).into()),
    }
}

/// Runs a `key` command.
pub fn run(c: Command, ctx: &Ctx) -> Result<()> {
    let mut repo = ctx.open_repo()?;
    let host = |a: &NewPassword| {
        a.host
            .clone()
            .unwrap_or_else(larder::snapshot::default_host)
    };
    match c {
        Command::Add(a) => {
            let pw = new_password(&a)?;
            let id = repo.add_key(&pw, DEFAULT_KDF, &host(&a))?;
            report(ctx, "added", &id)
        }
        Command::Passwd(a) => {
            let pw = new_password(&a)?;
            let id = repo.change_password(&pw, DEFAULT_KDF, &host(&a))?;
            report(ctx, "password changed; new key slot", &id)
        }
        Command::Remove { id } => {
            let id = find(&repo.key_slots()?, &id)?;
            repo.remove_key(&id)?;
            report(ctx, "removed", &id)
        }
        Command::List => {
            let slots = repo.key_slots()?;
            let rows: Vec<_> = slots
                .iter()
                .map(|(id, s)| {
                    json!({
                        "id": id,
                        "current": id == repo.key_id(),
                        "created": Timestamp::from_second(s.created).ok(),
                        "host": s.host,
                        "kdf": s.kdf,
                    })
                })
                .collect();
            if ctx.json() {
                return output::json(&serde_json::Value::Array(rows));
            }
            outln!(" {:<8}  {:<20}  {:<16}  kdf", "id", "created (UTC)", "host")?;
            for (id, s) in &slots {
                let created = Timestamp::from_second(s.created)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                let mark = if id == repo.key_id() { "*" } else { " " };
                outln!(
                    "{mark}{:<8}  {created:<20}  {:<16}  {}",
                    id.short(),
                    s.host,
                    s.kdf
                )?;
            }
            Ok(())
        }
    }
}

fn report(ctx: &Ctx, what: &str, id: &KeyId) -> Result<()> {
    if ctx.json() {
        output::json(&json!({ "result": what, "id": id }))
    } else {
        outln!("{what} {}", id.short())?;
        Ok(())
    }
}
