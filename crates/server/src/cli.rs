//! The `ordo` command line: the server and what an operator needs.
//!
//! Admin commands print their result on stdout (a new key is the only line,
//! so scripts can capture it) and messages on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use ordo_domain::{ApiKeyId, Role};
use tokio::net::TcpListener;

use crate::app::{create_key, App};
use crate::config::{self, Config, Database};

#[derive(Debug, Parser)]
#[command(
    name = "ordo",
    version,
    about = "A self-hosted order management service"
)]
struct Cli {
    /// A TOML configuration file (see `ordo config example`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded database [env: ORDO_DATA_DIR] [default: ./ordo-data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The database: postgres://user:password@host:port/db, sqlite:<path> or a path
    /// [env: ORDO_DATABASE_URL] [default: <data-dir>/ordo.db]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on [env: ORDO_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Copy a whole embedded (SQLite) installation into PostgreSQL.
    MigrateData {
        /// The embedded database: a data directory, sqlite:<path> or a path to ordo.db.
        #[arg(long, value_name = "SQLITE")]
        from: String,
        /// The PostgreSQL database: postgres://user:password@host:port/db.
        #[arg(long, value_name = "POSTGRES_URL")]
        to: String,
        /// Copy even into a database that already holds data; the copy then
        /// fails as a whole, changing nothing, if any row is already there.
        #[arg(long)]
        allow_non_empty: bool,
    },
    /// Manage tenants (businesses).
    Tenants {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage the users who sign in to the admin pages (/admin).
    Users {
        #[command(subcommand)]
        command: crate::cli_users::UserCommand,
    },
    /// Import a CSV or NDJSON file of orders (or products) and wait for
    /// it, with a progress bar; exit code 2 when some rows failed.
    Import(crate::cli_bulk::ImportArgs),
    /// Export orders (every one the query's filters match) as NDJSON or CSV.
    Export(crate::cli_bulk::ExportArgs),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        /// Short unique name: lower-case letters, digits and '-'.
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key; prints the key (shown only once) as the only line on stdout.
    Create {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// owner, admin, vendor, viewer or integration.
        #[arg(long)]
        role: String,
        /// What the key is for.
        #[arg(long, default_value = "api key")]
        name: String,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
    },
    /// Revoke a key; requests with it are refused within seconds.
    Revoke {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The key's id (key_…).
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration file with every default.
    Example,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Config {
        command: ConfigCommand::Example,
    } = cli.command
    {
        print!("{}", config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ordo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ordo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let mut config =
        Config::load(cli.config.as_deref()).map_err(|e| anyhow!("configuration: {e}"))?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Some(url.clone());
    }
    config
        .database()
        .map_err(|e| anyhow!("configuration: {e}"))?;
    Ok(config)
}

/// The configured database, as messages name it.
fn describe(config: &Config) -> String {
    config.database().map_or_else(|e| e, |d| d.describe())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = load(&cli)?;
    let done = match cli.command {
        Command::Import(args) => return crate::cli_bulk::import(config, args).await,
        Command::Export(args) => return crate::cli_bulk::export(config, args).await,
        Command::Serve { listen } => {
            if let Some(addr) = listen {
                config.listen = addr;
            }
            serve(config).await
        }
        Command::Migrate => {
            crate::telemetry::init_logging(&config.log);
            let app = App::open(config.clone()).await?;
            eprintln!("ordo: {} is up to date", describe(&config));
            app.store().close().await;
            Ok(())
        }
        Command::MigrateData {
            from,
            to,
            allow_non_empty,
        } => {
            crate::telemetry::init_logging(&config.log);
            migrate_data(&from, &to, allow_non_empty).await
        }
        Command::Tenants { command } => {
            let app = App::open(config).await?;
            let store = app.store();
            let result = match command {
                TenantCommand::Create { slug, name } => {
                    if !ordo_store::Tenant::is_valid_slug(&slug) {
                        return Err(anyhow!(
                            "the slug {slug:?} is not valid: use {}",
                            ordo_store::Tenant::SLUG_ACCEPTED
                        ));
                    }
                    let tenant = store
                        .create_tenant(&slug, name.as_deref().unwrap_or(&slug))
                        .await
                        .map_err(|e| match e {
                            ordo_store::StoreError::Conflict { .. } => {
                                anyhow!("a tenant with the slug {slug:?} already exists")
                            }
                            other => other.into(),
                        })?;
                    eprintln!("ordo: created tenant {} ({})", tenant.slug, tenant.name);
                    println!("{}", tenant.id);
                    Ok(())
                }
                TenantCommand::List => {
                    for t in store.tenants().await? {
                        println!("{}\t{}\t{}\t{}", t.id, t.slug, t.name, t.created_at);
                    }
                    Ok(())
                }
            };
            store.close().await;
            result
        }
        Command::Keys { command } => {
            let app = App::open(config).await?;
            let store = app.store();
            let result = keys(store.as_ref(), command).await;
            store.close().await;
            result
        }
        Command::Users { command } => {
            let app = App::open(config).await?;
            let store = app.store();
            let result = crate::cli_users::users(store.as_ref(), command).await;
            store.close().await;
            result
        }
        Command::Config { .. } => Ok(()),
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn migrate_data(from: &str, to: &str, allow_non_empty: bool) -> anyhow::Result<()> {
    let source = match Database::parse(from).map_err(anyhow::Error::msg)? {
        Database::Sqlite(path) if path.is_dir() => path.join("ordo.db"),
        Database::Sqlite(path) => path,
        Database::Postgres(_) => {
            return Err(anyhow!(
                "--from must be the embedded database (a data directory, sqlite:<path> or a path), not PostgreSQL"
            ))
        }
    };
    let target = match Database::parse(to).map_err(anyhow::Error::msg)? {
        Database::Postgres(url) => url,
        Database::Sqlite(_) => {
            return Err(anyhow!(
                "--to must be a PostgreSQL URL: postgres://user:password@host:port/db"
            ))
        }
    };
    let shown = ordo_store::postgres::redact(&target);
    eprintln!(
        "ordo: copying {} into PostgreSQL at {shown}",
        source.display()
    );
    let report = ordo_store::transfer::sqlite_to_postgres(
        &source,
        &target,
        allow_non_empty,
        crate::api::orders::RENDERER,
    )
    .await
    .map_err(|e| match e {
        ordo_store::StoreError::NotFound => {
            anyhow!("there is no embedded database at {}", source.display())
        }
        ordo_store::StoreError::Conflict { value, .. } => anyhow!("{value}"),
        other => anyhow!("the copy failed and nothing was kept: {other}"),
    })?;
    println!("table\tsource\tcopied");
    for t in &report {
        println!("{}\t{}\t{}", t.table, t.source, t.copied);
    }
    eprintln!(
        "ordo: done; every table's count matches. Start ordo on it with ORDO_DATABASE_URL={shown}"
    );
    Ok(())
}

pub(crate) async fn tenant(
    store: &dyn ordo_store::Store,
    slug: &str,
) -> anyhow::Result<ordo_store::Tenant> {
    store
        .tenant_by_slug(slug)
        .await?
        .ok_or_else(|| anyhow!("no tenant has the slug {slug:?} (see `ordo tenants list`)"))
}

async fn keys(store: &dyn ordo_store::Store, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            tenant: slug,
            role,
            name,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow!("unknown role {role:?}: use one of {}", Role::accepted()))?;
            let tenant = tenant(store, &slug).await?;
            let (key, secret) = create_key(store, &tenant, role, &name).await?;
            eprintln!(
                "ordo: created {} key {} for {}; it is shown only this once",
                key.role, key.id, tenant.slug
            );
            println!("{secret}");
        }
        KeyCommand::List { tenant: slug } => {
            let tenant = tenant(store, &slug).await?;
            for k in store.api_keys(tenant.id).await? {
                let state = k
                    .revoked_at
                    .map_or("active".to_string(), |t| format!("revoked {t}"));
                println!("{}\t{}\t{}\t{}\t{}", k.id, k.role, k.hint, k.name, state);
            }
        }
        KeyCommand::Revoke {
            tenant: slug,
            key_id,
        } => {
            let tenant = tenant(store, &slug).await?;
            let id = ApiKeyId::parse(&key_id)
                .ok_or_else(|| anyhow!("{key_id:?} is not a key id (key_…)"))?;
            let key = store
                .revoke_api_key(tenant.id, id)
                .await
                .map_err(|e| match e {
                    ordo_store::StoreError::NotFound => {
                        anyhow!("the tenant {slug} has no key {key_id}")
                    }
                    other => other.into(),
                })?;
            eprintln!("ordo: revoked key {} ({})", key.id, key.name);
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and queued writes");
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&config.log);
    crate::telemetry::metrics();
    let app = App::open(config.clone()).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let url = config.public_url();
    if let Some((tenant, key)) = app.first_run().await? {
        println!("{}", first_run_message(&url, &tenant.slug, &key, &config));
    }
    tracing::info!(listen = %config.listen, database = %describe(&config), "ordo is listening");
    eprintln!(
        "ordo: listening on {url} (API docs at {url}/docs); data in {}",
        describe(&config)
    );
    app.serve(listener, shutdown_signal()).await
}

fn first_run_message(url: &str, slug: &str, key: &str, config: &Config) -> String {
    format!(
        r#"
Welcome to ordo. This is the first start with {database}:
a tenant "{slug}" and an owner API key were created. The key is shown only
this once; keep it somewhere safe:

    {key}

Create your first order:

curl -s {url}/v1/orders \
  -H "Authorization: Bearer {key}" \
  -H "Content-Type: application/json" \
  -d '{{"currency":"NGN","buyer":{{"name":"Ada Obi","phone":"+2348012345678","channel_id":"wa_2348012345678"}},"items":[{{"name":"Product A","quantity":2,"unit_price":"5000.00"}}],"notes":"Delivery by 5pm"}}'

List orders:   curl -s {url}/v1/orders -H "Authorization: Bearer {key}"
API docs:      {url}/docs
More keys:     ordo keys create --tenant {slug} --role admin
Admin pages:   {url}/admin (shop "{slug}"); create your user first:
               ordo users create --tenant {slug} --email you@example.com --role owner
"#,
        database = describe(config),
    )
}
