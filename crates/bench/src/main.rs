//! `ordo-bench`: load and latency figures for the ordo HTTP API.
//!
//! It measures, phase by phase, how many requests a second one ordo server
//! answers and how fast, with `--connections` clients (default 64) each
//! keeping one HTTP/1.1 connection busy, back to back, for `--seconds`
//! (default 10):
//!
//! - `create`: `POST /v1/orders` with a three-line order of about 500 bytes
//!   (the channel rotates whatsapp, instagram, web); every created id is kept.
//! - `checkout` (not by default): opens the tenant's storefront, adds three
//!   products and posts guests' carts of three lines to
//!   `POST /v1/storefront/{slug}/checkout` (no key; catalog prices, an
//!   availability check and a WhatsApp link in every answer).
//! - `confirm` (not by default): creates `--hot-orders` orders (untimed) for
//!   one unit each of one product, then confirms them in turn: every
//!   confirmation reserves a unit of the same SKU.
//! - `preview` (not by default): `POST /v1/orders/preview` of a three-line
//!   cart while the tenant has three pricing providers (price, tax,
//!   customer), each answering after `--provider-delay-ms` (default 50):
//!   ordo asks them at once, so a preview should take about one delay.
//! - `seed` (with `--orders N`): creates orders the same way until the server
//!   holds at least N, so that reads and lists run over a big table.
//! - `import` (not by default): `POST /v1/imports` of a CSV of
//!   `--import-orders` three-line orders (made in memory first, untimed),
//!   then waits for the import to finish: orders a second from the upload's
//!   start to the end, and the server's peak memory.
//! - `export` (not by default): `GET /v1/orders/export` of every order the
//!   server holds, as NDJSON and as CSV, on one connection, read as it
//!   streams: orders a second, bytes, and the server's peak memory.
//! - `get`: `GET /v1/orders/{id}` for random ids among those created.
//! - `list`: `GET /v1/orders?status=pending&channel=whatsapp&sort=-created_at&limit=50`.
//! - `verify`: every order that was acknowledged with a 2xx can be read back;
//!   the tool exits with status 1 if one is missing.
//!
//! Each phase prints its requests, throughput, latency percentiles (p50, p99,
//! p99.9, max), errors and, when the server's pid is known, the server's CPU
//! time per request (from `/proc/<pid>/stat`) and its resident memory; a
//! summary table follows at the end.
//!
//! By default the tool starts its own server: the `ordo` binary next to its
//! own executable, on a fresh data directory in the temp dir (removed at the
//! end unless `--keep-data`), with a tenant `bench` and an admin key,
//! on a free port of 127.0.0.1; it stops it with SIGTERM at the end.
//!
//! ```text
//! cargo build --release -p ordo -p ordo-bench
//! cargo run --release -p ordo-bench                               # all phases, 64 connections, 10 s each
//! cargo run --release -p ordo-bench -- --seconds 3 --connections 16
//! cargo run --release -p ordo-bench -- --orders 1000000           # reads over a million orders
//! cargo run --release -p ordo-bench -- --url http://127.0.0.1:8080 --key KEY --server-pid PID
//! ```
//!
//! The client runs on the same machine as the server and takes CPU from it;
//! each block says how many cores each side kept busy.

mod http;
mod load;
mod pricing;
mod receiver;
mod report;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hyper::{Method, StatusCode};

use crate::http::Target;
use crate::load::{Limits, Outcome, Shared, Work};
use crate::report::{print_summary, CpuMark, PhaseFigures};
use crate::server::OwnServer;

#[derive(Debug, Parser)]
#[command(
    name = "ordo-bench",
    version,
    about = "Load and latency benchmark for the ordo HTTP API"
)]
struct Opts {
    /// Benchmark a running server (http://HOST:PORT) instead of starting one.
    #[arg(long, value_name = "URL", requires = "key")]
    url: Option<String>,
    /// API key for --url: an integration key, or for the checkout phase
    /// (which opens the storefront) an owner or admin key.
    #[arg(long, env = "ORDO_BENCH_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Pid of the --url server, for its CPU and memory figures.
    #[arg(long, value_name = "PID", requires = "url")]
    server_pid: Option<u32>,
    /// The ordo binary to start [default: `ordo` next to this executable].
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    ordo_bin: Option<PathBuf>,
    /// Where to make the temporary data directory [default: the temp dir].
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    data_parent: Option<PathBuf>,
    /// Run the started server on this database (postgres://…) instead of an
    /// embedded one in a temporary directory; it must be empty.
    #[arg(
        long,
        value_name = "URL",
        env = "ORDO_DATABASE_URL",
        hide_env_values = true,
        conflicts_with = "url"
    )]
    database_url: Option<String>,
    /// Keep the data directory of the started server.
    #[arg(long, conflicts_with = "url")]
    keep_data: bool,
    /// Concurrent connections, one task each.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Duration of each timed phase (create, get, list).
    #[arg(long, short = 's', default_value_t = 10.0)]
    seconds: f64,
    /// Create orders until the server holds at least this many (the seed phase).
    #[arg(long, value_name = "N", default_value_t = 0)]
    orders: u64,
    /// Phases to run, comma-separated; they run in the order create,
    /// webhooks, checkout, confirm, preview, seed, import, export, get,
    /// list, verify.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values = ["create", "get", "list", "verify"]
    )]
    phases: Vec<Phase>,
    /// Concurrent connections of the verify phase.
    #[arg(long, value_name = "N", default_value_t = 16)]
    verify_connections: usize,
    /// The storefront the checkout phase buys from (a tenant's slug).
    #[arg(long, value_name = "SLUG", default_value = server::TENANT)]
    slug: String,
    /// Orders the confirm phase makes (untimed) before confirming them.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    hot_orders: u64,
    /// How long each pricing provider of the preview phase takes to answer.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    provider_delay_ms: u64,
    /// Orders in the import phase's CSV (three rows each).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    import_orders: u64,
    /// Longest the seed phase may run.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    seed_max_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Create,
    /// Create with one webhook endpoint subscribed, then wait for every
    /// delivery.
    Webhooks,
    /// Guest checkout through the storefront.
    Checkout,
    /// Confirmations that all reserve the same SKU.
    Confirm,
    /// Previews priced by three pricing providers at once.
    Preview,
    Seed,
    /// A CSV of orders imported in the background.
    Import,
    /// Every order streamed out, as NDJSON and as CSV.
    Export,
    Get,
    List,
    Verify,
}

impl Phase {
    const ORDER: [Phase; 11] = [
        Phase::Create,
        Phase::Webhooks,
        Phase::Checkout,
        Phase::Confirm,
        Phase::Preview,
        Phase::Seed,
        Phase::Import,
        Phase::Export,
        Phase::Get,
        Phase::List,
        Phase::Verify,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Webhooks => "webhooks",
            Phase::Checkout => "checkout",
            Phase::Confirm => "confirm",
            Phase::Preview => "preview",
            Phase::Seed => "seed",
            Phase::Import => "import",
            Phase::Export => "export",
            Phase::Get => "get",
            Phase::List => "list",
            Phase::Verify => "verify",
        }
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ordo-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(bench(opts));
    // Workers of an interrupted phase may still be running; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ordo-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn plan(opts: &Opts) -> anyhow::Result<Vec<Phase>> {
    if opts.connections == 0 || opts.connections > 10_000 {
        bail!("--connections must be between 1 and 10000");
    }
    if !(opts.seconds.is_finite() && opts.seconds > 0.0 && opts.seconds <= 3600.0) {
        bail!("--seconds must be more than 0 and at most 3600");
    }
    if opts.verify_connections == 0 || opts.verify_connections > 10_000 {
        bail!("--verify-connections must be between 1 and 10000");
    }
    if opts.phases.contains(&Phase::Seed) && opts.orders == 0 {
        bail!("the seed phase needs --orders N");
    }
    Ok(Phase::ORDER
        .into_iter()
        .filter(|p| opts.phases.contains(p) || (*p == Phase::Seed && opts.orders > 0))
        .collect())
}

/// Returns whether every check passed.
async fn bench(opts: Opts) -> anyhow::Result<bool> {
    let phases = plan(&opts)?;
    let names: Vec<&str> = phases.iter().map(|p| p.name()).collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut own: Option<OwnServer> = None;
    let (target, server_pid) = match &opts.url {
        Some(url) => {
            let key = opts
                .key
                .as_deref()
                .ok_or_else(|| anyhow!("--url needs --key"))?;
            (Target::new(url, key).await?, opts.server_pid)
        }
        None => {
            let bin = match &opts.ordo_bin {
                Some(bin) => bin.clone(),
                None => server::default_ordo_bin()?,
            };
            let (started, target) = OwnServer::start(
                &bin,
                opts.data_parent.as_deref(),
                opts.keep_data,
                opts.database_url.as_deref(),
            )
            .await?;
            println!(
                "server   {} (pid {}) on {}",
                bin.display(),
                started.pid,
                started.listen
            );
            match &opts.database_url {
                Some(url) => println!("database PostgreSQL at {}", server::redact(url)),
                None => println!(
                    "data     {} ({}), {}",
                    started.data_dir.display(),
                    server::fs_type(&started.data_dir)
                        .unwrap_or_else(|| "file system unknown".into()),
                    if started.removes_data() {
                        "removed at the end"
                    } else {
                        "kept"
                    }
                ),
            }
            let pid = started.pid;
            own = Some(started);
            (target, Some(pid))
        }
    };
    if opts.url.is_some() {
        match server_pid {
            Some(pid) => println!("server   {} (pid {pid})", target.base_url),
            None => println!(
                "server   {} (no --server-pid: no server CPU or memory figures)",
                target.base_url
            ),
        }
    }
    println!(
        "load     {} connections, {} s a timed phase; phases {}",
        opts.connections,
        opts.seconds,
        names.join(", ")
    );
    println!(
        "body     {} bytes a new order (3 lines; channel whatsapp, instagram, web in turn)",
        load::order_body("0123456789abcdef", 123_456).len()
    );
    println!("machine  {cpus} CPUs, shared by this tool and the server");
    println!();

    let target = Arc::new(target);
    let result = tokio::select! {
        r = run_phases(&opts, &phases, target, server_pid) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };

    if let Some(mut started) = own {
        match started.stop() {
            Some(stopped) if stopped.killed => println!(
                "server   did not stop within {:.1} s of SIGTERM; killed",
                stopped.took.as_secs_f64()
            ),
            Some(stopped) => println!(
                "server   stopped {:.2} s after SIGTERM ({})",
                stopped.took.as_secs_f64(),
                stopped
                    .status
                    .map_or_else(|| "status unknown".to_string(), |s| s.to_string())
            ),
            None => {}
        }
        // Dropping `started` removes the data directory unless kept.
    }
    result
}

async fn run_phases(
    opts: &Opts,
    phases: &[Phase],
    target: Arc<Target>,
    server_pid: Option<u32>,
) -> anyhow::Result<bool> {
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
    );
    let timed = Duration::from_secs_f64(opts.seconds);
    let conns = opts.connections;
    let mut created: Vec<String> = Vec::new();
    let mut shared_ids: Option<Arc<Vec<String>>> = None;
    let mut figures = Vec::new();
    let mut passed = true;

    for &phase in phases {
        let fig = match phase {
            Phase::Create => {
                let work = Work::Create {
                    run_id: run_id.clone(),
                    seq: AtomicU64::new(0),
                };
                let (out, mut fig) =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await?;
                fig.notes.push(format!("orders created {}", out.ids.len()));
                created.extend(out.ids);
                fig
            }
            Phase::Webhooks => {
                let receiver = receiver::Receiver::start().await?;
                let endpoint = load::subscribe(target.clone(), &receiver.url).await?;
                let work = Work::Create {
                    run_id: format!("{run_id}w"),
                    seq: AtomicU64::new(0),
                };
                let (out, mut fig) =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await?;
                let made = out.ids.len() as u64;
                let stopped = Instant::now();
                let deadline = stopped + Duration::from_secs(600);
                while receiver.received() < made && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let delivered = receiver.received();
                fig.notes.push(format!(
                    "orders created {made} with one endpoint subscribed; deliveries {delivered} of {made}"
                ));
                if let Some((first, last)) = receiver.first_last() {
                    let span = last.duration_since(first).as_secs_f64().max(1e-9);
                    fig.notes.push(format!(
                        "deliveries {:.0}/s from the first to the last ({:.1} s), the last {:.1} s after creation stopped",
                        delivered as f64 / span,
                        span,
                        last.saturating_duration_since(stopped).as_secs_f64()
                    ));
                }
                if let Some(plain) = figures.iter().find(|f: &&PhaseFigures| f.name == "create") {
                    fig.notes.push(format!(
                        "creation with one endpoint: {:.0}/s, {:.0}% of the {:.0}/s without",
                        fig.throughput(),
                        100.0 * fig.throughput() / plain.throughput().max(1e-9),
                        plain.throughput()
                    ));
                }
                if delivered < made {
                    fig.notes
                        .push(format!("MISSING {} deliveries", made - delivered));
                    passed = false;
                }
                created.extend(out.ids);
                // Delivery capacity, not bounded by creation: the receiver
                // is down while orders are made for half the phase's time,
                // then everything that failed is retried in bulk.
                receiver.set_failing(true);
                let work = Work::Create {
                    run_id: format!("{run_id}r"),
                    seq: AtomicU64::new(0),
                };
                let (out, _) = measure(
                    phase,
                    &target,
                    work,
                    conns,
                    limits(timed / 2),
                    server_pid,
                    None,
                )
                .await?;
                let backlog = out.ids.len() as u64;
                created.extend(out.ids);
                let deadline = Instant::now() + Duration::from_secs(120);
                while receiver.refused() < backlog && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                receiver.set_failing(false);
                let replay = Instant::now();
                let retried = load::retry_failed(target.clone(), &endpoint).await?;
                let deadline = replay + Duration::from_secs(600);
                while receiver.received() < backlog && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let replayed = receiver.received();
                if let Some((_, last)) = receiver.first_last() {
                    let span = last.duration_since(replay).as_secs_f64().max(1e-9);
                    fig.notes.push(format!(
                        "replay after an outage: {backlog} orders made while the receiver answered 503, {retried} failed deliveries retried in bulk, {replayed} delivered in {span:.1} s: {:.0}/s",
                        replayed as f64 / span
                    ));
                }
                if replayed < backlog {
                    fig.notes.push(format!(
                        "MISSING {} deliveries after the replay",
                        backlog - replayed
                    ));
                    passed = false;
                }
                fig
            }
            Phase::Checkout => {
                load::prepare_storefront(target.clone()).await?;
                let work = Work::Checkout {
                    path: format!("/v1/storefront/{}/checkout", opts.slug),
                    seq: AtomicU64::new(0),
                };
                let (out, mut fig) =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await?;
                fig.notes.push(format!(
                    "orders placed by guests {} (3 catalog lines each, availability checked, a wa.me link in each answer)",
                    out.ids.len()
                ));
                created.extend(out.ids);
                fig
            }
            Phase::Confirm => {
                let body = load::prepare_hot_sku(target.clone()).await?;
                println!(
                    "[confirm] creating {} orders for one unit each of {} (untimed)",
                    opts.hot_orders,
                    load::HOT_SKU
                );
                let lim = Limits {
                    deadline: Instant::now() + Duration::from_secs(opts.seed_max_seconds),
                    until_ok: Some(opts.hot_orders),
                    max_errors: Some(1_000),
                };
                let work = Work::CreateSame { body };
                let (made, _) = measure(phase, &target, work, conns, lim, server_pid, None).await?;
                let ids = Arc::new(made.ids);
                let available = ids.len();
                let work = Work::Confirm {
                    ids: ids.clone(),
                    next: Default::default(),
                };
                let (out, mut fig) =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await?;
                fig.notes.push(format!(
                    "confirmed {} orders, each reserving 1 unit of {}",
                    out.ok,
                    load::HOT_SKU
                ));
                if out.ok as usize >= available {
                    fig.notes.push(format!(
                        "ran out of orders to confirm ({available}) before the time was up: raise --hot-orders"
                    ));
                }
                created.extend(ids.iter().cloned());
                fig
            }
            Phase::Preview => {
                let delay = Duration::from_millis(opts.provider_delay_ms);
                let url = pricing::start(delay).await?;
                load::set_pricing_providers(target.clone(), Some(&url)).await?;
                let work = Work::Preview {
                    body: load::preview_body(),
                };
                let measured =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await;
                load::set_pricing_providers(target.clone(), None).await?;
                let (out, mut fig) = measured?;
                fig.notes.push(format!(
                    "{} previews of a 3-line cart, each asking 3 pricing providers that answer in {} ms (at once, within a 500 ms deadline)",
                    out.ok, opts.provider_delay_ms
                ));
                fig
            }
            Phase::Seed => {
                let have = load::count_orders(target.clone(), "").await?;
                if have >= opts.orders {
                    println!(
                        "[seed] the server holds {have} orders already (--orders {})\n",
                        opts.orders
                    );
                    continue;
                }
                let needed = opts.orders - have;
                println!(
                    "[seed] the server holds {have} orders; creating {needed} more with {conns} connections"
                );
                let work = Work::Create {
                    run_id: format!("{run_id}-seed"),
                    seq: AtomicU64::new(0),
                };
                let lim = Limits {
                    deadline: Instant::now() + Duration::from_secs(opts.seed_max_seconds),
                    until_ok: Some(needed),
                    max_errors: Some(10_000),
                };
                let progress = Progress {
                    base: have,
                    total: opts.orders,
                    what: "orders in the server",
                };
                let (out, mut fig) =
                    measure(phase, &target, work, conns, lim, server_pid, Some(progress)).await?;
                let now = load::count_orders(target.clone(), "").await?;
                fig.notes.push(format!(
                    "orders created {} ({:.0} orders/s); the server holds {now}",
                    out.ids.len(),
                    out.ids.len() as f64 / out.elapsed.as_secs_f64().max(1e-9)
                ));
                if (out.ok) < needed {
                    fig.notes.push(format!(
                        "warning: seed stopped early ({} errors or --seed-max-seconds)",
                        out.errors()
                    ));
                }
                created.extend(out.ids);
                fig
            }
            Phase::Import => {
                let pid = server_pid.map(|p| p.to_string());
                if !import_orders(&target, opts.import_orders, pid.as_deref()).await? {
                    passed = false;
                }
                println!();
                continue;
            }
            Phase::Export => {
                let held = load::count_orders(target.clone(), "").await?;
                for format in ["ndjson", "csv"] {
                    let mut conn = http::Conn::new(target.clone());
                    let pid = server_pid.map(|p| p.to_string());
                    let mut peak = pid.as_deref().and_then(server::rss_kib).unwrap_or(0);
                    let mut frames = 0u64;
                    let started = Instant::now();
                    let (status, bytes, lines) = conn
                        .stream(&format!("/v1/orders/export?format={format}"), || {
                            frames += 1;
                            if frames % 64 == 0 {
                                let now = pid.as_deref().and_then(server::rss_kib).unwrap_or(0);
                                peak = peak.max(now);
                            }
                        })
                        .await?;
                    let took = started.elapsed().as_secs_f64().max(1e-9);
                    let orders = if format == "csv" { held } else { lines };
                    println!(
                        "[export {format}] {status}: {orders} orders ({lines} lines, {:.1} MB) in {took:.1} s: {:.0} orders/s; server peak RSS {:.0} MiB",
                        bytes as f64 / 1e6,
                        orders as f64 / took,
                        peak as f64 / 1024.0
                    );
                    if !status.is_success() || (format == "ndjson" && lines != held) {
                        println!("[export {format}] MISMATCH: the server holds {held} orders");
                        passed = false;
                    }
                }
                println!();
                continue;
            }
            Phase::Get => {
                let mut ids = ids_of(&mut created, &mut shared_ids);
                let mut note = None;
                if ids.is_empty() {
                    let listed = load::list_ids(target.clone(), 10_000).await?;
                    note = Some(format!(
                        "no orders created in this run: read {} listed by the server",
                        listed.len()
                    ));
                    ids = Arc::new(listed);
                }
                if ids.is_empty() {
                    println!("[get] skipped: the server has no orders\n");
                    continue;
                }
                let count = ids.len();
                let work = Work::Get { ids };
                let (_, mut fig) =
                    measure(phase, &target, work, conns, limits(timed), server_pid, None).await?;
                fig.notes.push(format!("ids drawn from {count} orders"));
                fig.notes.extend(note);
                fig
            }
            Phase::List => {
                let (out, mut fig) = measure(
                    phase,
                    &target,
                    Work::List,
                    conns,
                    limits(timed),
                    server_pid,
                    None,
                )
                .await?;
                if out.short_pages > 0 {
                    fig.notes.push(format!(
                        "warning: {} of {} pages had fewer than {} orders",
                        out.short_pages,
                        out.ok,
                        load::LIST_LIMIT
                    ));
                }
                fig
            }
            Phase::Verify => {
                let ids = ids_of(&mut created, &mut shared_ids);
                if ids.is_empty() {
                    println!("[verify] skipped: this run created no orders\n");
                    continue;
                }
                let total = ids.len();
                let vconns = opts.verify_connections.min(total);
                let lim = Limits {
                    deadline: Instant::now() + Duration::from_secs(3600),
                    until_ok: None,
                    max_errors: Some(1000),
                };
                let progress = Progress {
                    base: 0,
                    total: total as u64,
                    what: "orders checked",
                };
                let work = Work::Verify {
                    ids,
                    next: Default::default(),
                };
                let (out, mut fig) = measure(
                    phase,
                    &target,
                    work,
                    vconns,
                    lim,
                    server_pid,
                    Some(progress),
                )
                .await?;
                let missing = out.missing.len();
                let checked = out.ok as usize + missing;
                fig.notes.push(format!(
                    "checked {checked} of {total} acknowledged orders: {missing} missing"
                ));
                if missing > 0 {
                    let some: Vec<&str> = out.missing.iter().take(5).map(String::as_str).collect();
                    fig.notes
                        .push(format!("FAILED: missing orders, e.g. {}", some.join(", ")));
                    passed = false;
                }
                if checked < total {
                    fig.notes.push(format!(
                        "FAILED: {} orders could not be checked",
                        total - checked
                    ));
                    passed = false;
                }
                fig
            }
        };
        fig.print_block();
        figures.push(fig);
    }
    print_summary(&figures);
    Ok(passed)
}

/// The ids created so far, shared (after the last phase that creates).
fn ids_of(created: &mut Vec<String>, shared: &mut Option<Arc<Vec<String>>>) -> Arc<Vec<String>> {
    match shared {
        Some(ids) if created.is_empty() => ids.clone(),
        _ => {
            let mut all = shared.as_ref().map(|s| s.to_vec()).unwrap_or_default();
            all.append(created);
            let ids = Arc::new(all);
            *shared = Some(ids.clone());
            ids
        }
    }
}

fn limits(timed: Duration) -> Limits {
    Limits {
        deadline: Instant::now() + timed,
        until_ok: None,
        max_errors: None,
    }
}

/// A progress line every 5 s for the long phases.
struct Progress {
    base: u64,
    total: u64,
    what: &'static str,
}

async fn measure(
    phase: Phase,
    target: &Arc<Target>,
    work: Work,
    connections: usize,
    limits: Limits,
    server_pid: Option<u32>,
    progress: Option<Progress>,
) -> anyhow::Result<(Outcome, PhaseFigures)> {
    let shared = Arc::new(Shared::default());
    let printer = progress.map(|p| {
        let shared = shared.clone();
        let name = phase.name();
        tokio::spawn(async move {
            let every = Duration::from_secs(5);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let mut last = 0;
            loop {
                tick.tick().await;
                let done = shared.ok.load(Relaxed);
                let errors = shared.errors.load(Relaxed);
                println!(
                    "  {name}: {} of {} {} ({:.0}/s over the last 5 s, {errors} errors)",
                    p.base + done,
                    p.total,
                    p.what,
                    (done - last) as f64 / every.as_secs_f64()
                );
                last = done;
            }
        })
    });
    let mark = CpuMark::now(server_pid);
    let out = load::run(
        target.clone(),
        Arc::new(work),
        connections,
        Arc::new(limits),
        shared,
    )
    .await;
    if let Some(printer) = printer {
        printer.abort();
    }
    let out = out?;
    let fig = PhaseFigures::new(phase.name(), connections, &out, &mark, server_pid);
    Ok((out, fig))
}

/// A CSV of `n` three-line orders, as an import reads it.
fn import_file(n: u64) -> Bytes {
    use std::fmt::Write;
    let mut file = String::with_capacity(usize::try_from(n).unwrap_or(0).saturating_mul(330));
    file.push_str("external_id,currency,buyer_name,buyer_phone,item_name,item_quantity,item_unit_price,notes\n");
    let items = [
        ("Ankara dress", "15000.00"),
        ("Head tie", "3500.00"),
        ("Beaded bag", "22000.00"),
    ];
    for i in 0..n {
        for (j, (name, price)) in items.iter().enumerate() {
            let _ = writeln!(
                file,
                "B-{i},NGN,Buyer {i},+23480{:08},{name},{},{price},bench import",
                i % 100_000_000,
                1 + (i + j as u64) % 3
            );
        }
    }
    Bytes::from(file)
}

/// Sends a CSV of `n` orders to `POST /v1/imports` and waits for it to
/// finish; prints its figures. False when it did not import every order.
async fn import_orders(target: &Arc<Target>, n: u64, pid: Option<&str>) -> anyhow::Result<bool> {
    let file = import_file(n);
    let size = file.len();
    let mut conn = http::Conn::new(target.clone());
    let mut peak = pid.and_then(server::rss_kib).unwrap_or(0);
    let started = Instant::now();
    let (status, body) = conn
        .call(Method::POST, "/v1/imports?format=csv", Some(file))
        .await?;
    if status != StatusCode::ACCEPTED {
        bail!(
            "the import was refused: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let uploaded = started.elapsed().as_secs_f64();
    let import: serde_json::Value = serde_json::from_slice(&body)?;
    let id = import["id"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let import = loop {
        if Instant::now() > deadline {
            bail!("the import {id} did not finish within an hour");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(pid.and_then(server::rss_kib).unwrap_or(0));
        let (status, body) = conn
            .call(Method::GET, &format!("/v1/imports/{id}"), None)
            .await?;
        if status != StatusCode::OK {
            bail!("GET /v1/imports/{id}: {status}");
        }
        let import: serde_json::Value = serde_json::from_slice(&body)?;
        if import["state"] == "succeeded" || import["state"] == "failed" {
            break import;
        }
    };
    let took = started.elapsed().as_secs_f64().max(1e-9);
    let counts = &import["counts"];
    let created = counts["created"].as_u64().unwrap_or(0);
    let unchanged = counts["unchanged"].as_u64().unwrap_or(0);
    println!(
        "[import csv] {}: {n} orders ({:.1} MB, uploaded in {uploaded:.1} s) in {took:.1} s: {:.0} orders/s; created {created}, updated {}, unchanged {unchanged}, failed {}; server peak RSS {:.0} MiB",
        import["state"].as_str().unwrap_or("?"),
        size as f64 / 1e6,
        n as f64 / took,
        counts["updated"],
        counts["failed"],
        peak as f64 / 1024.0
    );
    let updated = counts["updated"].as_u64().unwrap_or(0);
    Ok(import["state"] == "succeeded" && created + updated + unchanged == n)
}
