//! `ordo import` and `ordo export`: files of orders (or products) in and
//! out, against the local database (the importer runs in this process
//! until the import is done) or a server (`--url`, with an API key).
//! Both ways go through the same code as `POST /v1/imports` and
//! `GET /v1/orders/export`, and report in the API's shapes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ordo_domain::{Actor, ImportId, Timestamp};
use ordo_store::{ImportFormat, ImportKind, ImportOptions, Scope, Tenant};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::imports::{ImportParams, ImportResponse, Stored};
use crate::app::{App, AppState};
use crate::config::Config;

/// Where a command works: a server, or the local database.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A running ordo's address, e.g. http://127.0.0.1:8080 (default: the
    /// local database, as `--data-dir` / `--database-url` say).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The API key for `--url`.
    #[arg(long, env = "ORDO_API_KEY", hide_env_values = true, value_name = "KEY")]
    key: Option<String>,
    /// The tenant's slug, on the local database (needed when it has more
    /// than one tenant).
    #[arg(long, value_name = "SLUG")]
    tenant: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV or NDJSON file.
    file: PathBuf,
    /// What the file holds: orders or products.
    #[arg(long, default_value = "orders")]
    kind: String,
    /// csv or ndjson (default: from the file's extension).
    #[arg(long)]
    format: Option<String>,
    /// Check and count everything, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// skip_failed (import what can be, report the rest) or reject_all.
    #[arg(long, value_name = "POLICY")]
    on_error: Option<String>,
    /// A CSV's headers for ordo's columns, as JSON, e.g. '{"external_id": "Order No"}'.
    #[arg(long, value_name = "JSON")]
    mapping: Option<String>,
    /// The namespace of a CSV's external_id column (default: import).
    #[arg(long)]
    namespace: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// ndjson or csv.
    #[arg(long, default_value = "ndjson")]
    format: String,
    /// The orders list's filters and sort, as a query string, e.g.
    /// 'status=confirmed&created_gte=2026-01-01T00:00:00Z'.
    #[arg(long, value_name = "QUERY", default_value = "")]
    query: String,
    /// The file to write (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

/// How often progress is read.
const POLL: Duration = Duration::from_millis(250);

/// Imports a file and waits for it: 0 when every row went in, 2 when some
/// failed, an error when the file as a whole did not.
pub async fn import(config: Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let lines =
        count_lines(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let params = ImportParams {
        kind: Some(args.kind.clone()),
        format: args.format.clone(),
        dry_run: Some(args.dry_run.to_string()),
        on_error: args.on_error.clone(),
        mapping: args.mapping.clone(),
        namespace: args.namespace.clone(),
    };
    let mut progress = Progress::new(lines);
    let done = match &args.target.url {
        Some(url) => match key(&args.target) {
            Ok(key) => import_remote(url, key, &args, params, &mut progress).await,
            Err(e) => Err(e),
        },
        None => import_local(config, &args, params, &mut progress).await,
    };
    progress.finish();
    Ok(summary(&done?))
}

/// Streams the orders an export query asks for into a file or stdout.
pub async fn export(config: Config, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let query = match args.query.trim_start_matches('?') {
        "" => format!("format={}", args.format),
        q => format!("format={}&{q}", args.format),
    };
    // A file is written beside its name and put in place when whole: an
    // export that fails leaves an earlier one as it was.
    let part = args
        .output
        .as_ref()
        .map(|path| PathBuf::from(format!("{}.part", path.display())));
    let mut out: Box<dyn Write> = match &part {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let started = Instant::now();
    let written = export_into(config, &args, &query, &mut out).await;
    let written = written.and_then(|n| Ok(out.flush().map(|()| n)?));
    drop(out);
    let written = match (written, &part, &args.output) {
        (Ok(n), Some(part), Some(path)) => {
            std::fs::rename(part, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            n
        }
        (Ok(n), _, _) => n,
        (Err(e), part, _) => {
            if let Some(part) = part {
                let _ = std::fs::remove_file(part);
            }
            return Err(e);
        }
    };
    eprintln!(
        "ordo: exported {} in {:.1} s{}",
        size(written),
        started.elapsed().as_secs_f64(),
        args.output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the export into `out`: the bytes written.
async fn export_into(
    config: Config,
    args: &ExportArgs,
    query: &str,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let written = match &args.target.url {
        Some(url) => {
            let r = reqwest::Client::new()
                .get(format!(
                    "{}/v1/orders/export?{query}",
                    url.trim_end_matches('/')
                ))
                .bearer_auth(key(&args.target)?)
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let r = refused(r).await?;
            copy(r.bytes_stream(), out).await?
        }
        None => {
            let app = App::open(config).await?;
            let state = app.state();
            let tenant = tenant(&state, args.target.tenant.as_deref()).await?;
            let scope = Scope {
                tenant_id: tenant.id,
                creator: None,
            };
            let written = match crate::api::export::export(state.store_handle(), scope, query) {
                Ok((_, stream)) => copy(Box::pin(stream), out).await,
                Err(e) => Err(said(e)),
            };
            state.store().close().await;
            written?
        }
    };
    Ok(written)
}

async fn copy<E: std::fmt::Display>(
    mut stream: impl Stream<Item = Result<Bytes, E>> + Unpin,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut written = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| anyhow!("the export stopped part-way: {e}"))?;
        out.write_all(&piece)?;
        written += piece.len() as u64;
    }
    Ok(written)
}

fn key(target: &Target) -> anyhow::Result<&str> {
    target
        .key
        .as_deref()
        .ok_or_else(|| anyhow!("--url needs an API key: --key KEY or ORDO_API_KEY"))
}

/// The tenant a local command works on.
async fn tenant(state: &AppState, slug: Option<&str>) -> anyhow::Result<Tenant> {
    let tenants = state.store().tenants().await?;
    match slug {
        Some(slug) => tenants
            .into_iter()
            .find(|t| t.slug == slug)
            .ok_or_else(|| anyhow!("no tenant has the slug {slug:?} (see `ordo tenants list`)")),
        None => match <[Tenant; 1]>::try_from(tenants) {
            Ok([only]) => Ok(only),
            Err(all) if all.is_empty() => Err(anyhow!(
                "the database has no tenant yet: run `ordo serve` once, or `ordo tenants create`"
            )),
            Err(_) => Err(anyhow!(
                "the database has more than one tenant: say which with --tenant SLUG"
            )),
        },
    }
}

async fn import_local(
    config: Config,
    args: &ImportArgs,
    params: ImportParams,
    progress: &mut Progress,
) -> anyhow::Result<Value> {
    let app = App::open(config).await?;
    let state = app.state();
    let ran = run_local(&state, args, params, progress).await;
    state.store().close().await;
    ran
}

async fn run_local(
    state: &AppState,
    args: &ImportArgs,
    params: ImportParams,
    progress: &mut Progress,
) -> anyhow::Result<Value> {
    let (kind, format, options, filename) = checked(args, &params)?;
    let tenant = tenant(state, args.target.tenant.as_deref()).await?;
    let id = ImportId::new_at(Timestamp::now());
    let key = crate::imports::file_key(tenant.id, id);
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let bytes = state
        .files()
        .put_stream(&key, Box::pin(chunks(file)))
        .await
        .map_err(|e| match e {
            crate::files::Streamed::Source(e) => {
                anyhow!("cannot read {}: {e}", args.file.display())
            }
            crate::files::Streamed::Store(e) => anyhow!("cannot keep the file: {e}"),
        })?;
    let stored = Stored {
        id,
        key,
        kind,
        format,
        options,
        filename,
        bytes,
    };
    let actor = Actor {
        kind: "system".into(),
        id: "ordo import".into(),
        role: None,
    };
    crate::api::imports::enqueue(state, tenant.id, actor, stored)
        .await
        .map_err(said)?;
    // This process runs the importer until the import is done (one
    // queued before it goes first); one stopped here goes on at the next
    // `ordo serve` or `ordo import`.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let poll = Duration::from_millis(state.config().jobs.poll_interval_ms.max(10));
    let mut importer = tokio::spawn(crate::imports::run(state.clone(), poll, stopping));
    let watched = async {
        loop {
            let import = state
                .store()
                .import(tenant.id, id)
                .await?
                .ok_or_else(|| anyhow!("the import {id} is gone"))?;
            let finished = import.state.is_finished();
            let errors = if finished {
                state
                    .store()
                    .import_errors(tenant.id, id, 0, crate::api::imports::ERRORS_SHOWN)
                    .await?
            } else {
                Vec::new()
            };
            let shown = serde_json::to_value(ImportResponse::of(&import, Some(errors)))?;
            progress.show(&shown);
            if finished {
                break Ok(shown);
            }
            tokio::time::sleep(POLL).await;
        }
    };
    let later = "it goes on from its last saved line at the next `ordo serve` or `ordo import`";
    let mut importer_ended = false;
    let ended = tokio::select! {
        done = watched => done,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted: the import {id} stops after the orders under way; {later}")),
        _ = &mut importer => {
            importer_ended = true;
            Err(anyhow!("the importer stopped before the import {id} was done; {later}"))
        }
    };
    // Stopped, the importer saves how far it got and lets its claim go.
    let _ = stop.send(true);
    if !importer_ended {
        let _ = importer.await;
    }
    ended
}

/// The options and the file's format, checked here as the server would:
/// anything wrong is said before the file is sent.
fn checked(
    args: &ImportArgs,
    params: &ImportParams,
) -> anyhow::Result<(ImportKind, ImportFormat, ImportOptions, Option<String>)> {
    let (kind, format, options) = crate::api::imports::checked_options(params).map_err(said)?;
    let filename = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let format = format
        .or_else(|| crate::api::imports::format_of(None, filename.as_deref()))
        .ok_or_else(|| anyhow!("say --format csv or ndjson: the file's name does not"))?;
    Ok((kind, format, options, filename))
}

async fn import_remote(
    url: &str,
    key: &str,
    args: &ImportArgs,
    params: ImportParams,
    progress: &mut Progress,
) -> anyhow::Result<Value> {
    let base = url.trim_end_matches('/');
    let (_, format, _, _) = checked(args, &params)?;
    let content_type = match format {
        ImportFormat::Csv => "text/csv",
        ImportFormat::Ndjson => "application/x-ndjson",
    };
    let query: Vec<(&str, String)> = [
        ("kind", params.kind),
        ("format", Some(format.as_str().to_string())),
        ("dry_run", params.dry_run),
        ("on_error", params.on_error),
        ("mapping", params.mapping),
        ("namespace", params.namespace),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let client = reqwest::Client::new();
    // The options were checked above and the key is checked here: a server
    // that refuses a request answers before reading the file, and the
    // answer would be lost to a broken pipe.
    let r = client
        .get(format!("{base}/v1/imports?limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    refused(r).await?;
    let r = client
        .post(format!("{base}/v1/imports"))
        .query(&query)
        .bearer_auth(key)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(reqwest::Body::wrap_stream(chunks(file)))
        .send()
        .await
        .with_context(|| {
            format!("the file could not be sent to {url} (a server that refuses an import, e.g. a key whose role may not import this kind, answers before reading it)")
        })?;
    let queued: Value = refused(r).await?.json().await?;
    let id = queued["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no import id: {queued}"))?
        .to_string();
    loop {
        let r = client
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let import: Value = refused(r).await?.json().await?;
        progress.show(&import);
        if ["succeeded", "failed"].contains(&import["state"].as_str().unwrap_or("")) {
            return Ok(import);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A file's bytes, a piece at a time.
fn chunks(file: tokio::fs::File) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = Vec::with_capacity(1 << 20);
        match (&mut file).take(1 << 20).read_to_end(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(Bytes::from(buf)), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// The answer, if it is a success; otherwise the problem it tells of.
async fn refused(r: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&body) {
        Ok(problem) => Err(anyhow!("{}", problem_text(&problem))),
        Err(_) => Err(anyhow!("the server answered {status}: {body}")),
    }
}

/// An API refusal as the API would show it.
fn said(e: ApiError) -> anyhow::Error {
    let problem = serde_json::to_value(e.to_problem()).unwrap_or_default();
    anyhow!("{}", problem_text(&problem))
}

/// A problem+json body as a line or a few.
fn problem_text(problem: &Value) -> String {
    let mut text = problem["detail"]
        .as_str()
        .or(problem["title"].as_str())
        .unwrap_or("refused")
        .to_string();
    for e in problem["errors"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {}: {}",
            e["field"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or("")
        ));
        if let Some(value) = e.get("value").filter(|v| !v.is_null()) {
            text.push_str(&format!(" (given {value})"));
        }
        if let Some(accepted) = e["accepted"].as_str() {
            text.push_str(&format!("; accepted: {accepted}"));
        }
    }
    text
}

/// Prints how an import ended (stdout: one line to keep; stderr: its
/// problems) and the exit code it comes to.
fn summary(import: &Value) -> ExitCode {
    let c = &import["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let id = import["id"].as_str().unwrap_or("");
    let dry = if import["dry_run"] == true {
        " (a dry run: nothing was written)"
    } else {
        ""
    };
    println!(
        "{id} {}: {} lines, {} created, {} updated, {} unchanged, {} failed{dry}",
        import["state"].as_str().unwrap_or(""),
        n("lines"),
        n("created"),
        n("updated"),
        n("unchanged"),
        n("failed"),
    );
    if let Some(failure) = import["failure"].as_object() {
        eprintln!(
            "ordo: the file was not imported: {}{}: {}{}",
            failure.get("field").and_then(Value::as_str).unwrap_or(""),
            failure
                .get("value")
                .and_then(Value::as_str)
                .map(|v| format!(" {v:?}"))
                .unwrap_or_default(),
            failure.get("reason").and_then(Value::as_str).unwrap_or(""),
            failure
                .get("accepted")
                .and_then(Value::as_str)
                .map(|a| format!("; accepted: {a}"))
                .unwrap_or_default(),
        );
    }
    let shown = import["errors"].as_array().map_or(0, Vec::len);
    for e in import["errors"].as_array().into_iter().flatten().take(20) {
        eprintln!(
            "  line {}{}: {}{}: {}",
            e["line"],
            e["order"]
                .as_str()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            e["field"].as_str().unwrap_or(""),
            e["value"]
                .as_str()
                .map(|v| format!(" {v:?}"))
                .unwrap_or_default(),
            e["reason"].as_str().unwrap_or(""),
        );
    }
    let total = import["error_count"].as_u64().unwrap_or(0);
    if total > shown.min(20) as u64 {
        eprintln!(
            "  … {total} problems in all: GET {} (on a running server, `ordo serve`) has every failed row, to fix and send again",
            import["errors_url"].as_str().unwrap_or("")
        );
    }
    if import["state"] != "succeeded" {
        ExitCode::FAILURE
    } else if n("failed") > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// A file's lines (a CSV's quoted line breaks count, as its line numbers
/// do): what `counts.lines` grows to.
fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// A progress bar on a terminal; a line every tenth otherwise.
struct Progress {
    lines: u64,
    started: Instant,
    tty: bool,
    /// The last tenth printed (not on a terminal).
    tenth: u64,
}

impl Progress {
    fn new(lines: u64) -> Progress {
        Progress {
            lines: lines.max(1),
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            tenth: 0,
        }
    }

    fn show(&mut self, import: &Value) {
        let c = &import["counts"];
        let done = c["lines"].as_u64().unwrap_or(0).min(self.lines);
        let percent = done * 100 / self.lines;
        let seconds = self.started.elapsed().as_secs_f64();
        let orders = ["created", "updated", "unchanged", "failed"]
            .iter()
            .map(|k| c[*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        let rate = if seconds > 0.0 {
            orders as f64 / seconds
        } else {
            0.0
        };
        let state = import["state"].as_str().unwrap_or("");
        let paused = import["last_error"]
            .as_str()
            .map(|e| format!(" (paused: {e})"))
            .unwrap_or_default();
        let line = format!(
            "{state:9} {percent:3}% {done}/{} lines, {orders} {}, {rate:.0}/s, {seconds:.0} s{paused}",
            self.lines,
            if import["kind"] == "products" { "products" } else { "orders" },
        );
        if self.tty {
            let filled = (percent / 4) as usize;
            eprint!(
                "\r[{}{}] {line}\x1b[K",
                "#".repeat(filled),
                " ".repeat(25 - filled)
            );
        } else if percent / 10 > self.tenth || (percent == 100 && self.tenth < 10) {
            self.tenth = percent / 10;
            eprintln!("ordo: {line}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// A byte count as people read it.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
