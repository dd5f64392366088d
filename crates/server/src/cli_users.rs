//! `ordo users`: the people who sign in to the admin pages.

use std::io::BufRead;

use anyhow::anyhow;
use clap::Subcommand;
use ordo_domain::Role;
use ordo_store::{NewUser, Store, StoreError, UserChange};

use crate::web::{hash_password, PASSWORD_MIN_CHARS};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who signs in at /admin. Without --password-stdin a
    /// password is made up and printed (only this once) as the only line
    /// on stdout.
    Create {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, vendor or viewer (as an API key's role).
        #[arg(long)]
        role: String,
        /// The name shown on the pages and in the timeline.
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of stdin instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a tenant's users.
    List {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
    },
    /// Set a user's password (made up and printed, or --password-stdin);
    /// their sessions end.
    Password {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (it applies to their next page).
    Role {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Stop a user signing in; their sessions end.
    Disable {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
    },
}

/// A role a user may have: an API key's, but `integration`.
fn user_role(text: &str) -> anyhow::Result<Role> {
    match Role::parse(text) {
        Some(Role::Integration) | None => Err(anyhow!(
            "unknown role {text:?} for a user: use one of owner, admin, vendor, viewer"
        )),
        Some(role) => Ok(role),
    }
}

/// The password to set, and whether it was made up (and is to be shown).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        let made = ordo_domain::random_text(20);
        return Ok((made, true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let given = line.trim_end_matches(['\r', '\n']).to_string();
    if given.chars().count() < PASSWORD_MIN_CHARS {
        return Err(anyhow!(
            "the password on stdin is too short: use at least {PASSWORD_MIN_CHARS} characters"
        ));
    }
    Ok((given, false))
}

fn email(text: &str) -> anyhow::Result<String> {
    let email = text.trim().to_lowercase();
    ordo_domain::Email::parse(&email).map_err(|_| anyhow!("{text:?} is not an email address"))?;
    Ok(email)
}

pub async fn users(store: &dyn Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            tenant,
            email: address,
            role,
            name,
            password_stdin,
        } => {
            let role = user_role(&role)?;
            let address = email(&address)?;
            let shop = crate::cli::tenant(store, &tenant).await?;
            let (password, made_up) = password(password_stdin)?;
            let user = store
                .create_user(NewUser {
                    tenant_id: shop.id,
                    email: address.clone(),
                    name: name.trim().to_string(),
                    role,
                    password_hash: hash_password(&password)?,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => {
                        anyhow!("the tenant {tenant} already has a user {address}")
                    }
                    other => other.into(),
                })?;
            eprintln!(
                "ordo: created {} {} ({}) for {}; they sign in at /admin with shop {}",
                user.role, user.email, user.id, shop.slug, shop.slug
            );
            if made_up {
                eprintln!("ordo: their password is shown only this once:");
                println!("{password}");
            }
        }
        UserCommand::List { tenant } => {
            let shop = crate::cli::tenant(store, &tenant).await?;
            for u in store.users(shop.id).await? {
                let state = u
                    .disabled_at
                    .map_or("active".to_string(), |t| format!("disabled {t}"));
                println!("{}\t{}\t{}\t{}\t{}", u.id, u.email, u.role, u.name, state);
            }
        }
        UserCommand::Password {
            tenant,
            email: address,
            password_stdin,
        } => {
            let address = email(&address)?;
            let (password, made_up) = password(password_stdin)?;
            let change = UserChange {
                password_hash: Some(hash_password(&password)?),
                ..UserChange::default()
            };
            change_user(store, &tenant, &address, change).await?;
            eprintln!("ordo: set the password of {address}; their sessions ended");
            if made_up {
                println!("{password}");
            }
        }
        UserCommand::Role {
            tenant,
            email: address,
            role,
        } => {
            let role = user_role(&role)?;
            let change = UserChange {
                role: Some(role),
                ..UserChange::default()
            };
            let address = change_user(store, &tenant, &address, change).await?;
            eprintln!("ordo: {address} is now {role}");
        }
        UserCommand::Disable {
            tenant,
            email: address,
        } => {
            let change = UserChange {
                disabled: Some(true),
                ..UserChange::default()
            };
            let address = change_user(store, &tenant, &address, change).await?;
            eprintln!("ordo: {address} can no longer sign in; their sessions ended");
        }
        UserCommand::Enable {
            tenant,
            email: address,
        } => {
            let change = UserChange {
                disabled: Some(false),
                ..UserChange::default()
            };
            let address = change_user(store, &tenant, &address, change).await?;
            eprintln!("ordo: {address} can sign in again");
        }
    }
    Ok(())
}

fn no_user(e: StoreError, tenant: &str, address: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow!("the tenant {tenant} has no user {address}"),
        other => other.into(),
    }
}

/// Changes the user `address` of `tenant`; the address as kept.
async fn change_user(
    store: &dyn Store,
    tenant: &str,
    address: &str,
    change: UserChange,
) -> anyhow::Result<String> {
    let address = email(address)?;
    let shop = crate::cli::tenant(store, tenant).await?;
    store
        .change_user(shop.id, &address, change)
        .await
        .map_err(|e| no_user(e, tenant, &address))?;
    Ok(address)
}
