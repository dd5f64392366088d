//! Starting and stopping an `ordo` server of our own, and reading a server's
//! CPU time and memory from `/proc`.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hyper::Method;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::process::Command;

use crate::http::{Conn, Target};

/// The slug of the tenant the bench creates in its own data directory.
pub const TENANT: &str = "bench";

/// The `ordo` binary next to our own executable (`target/release/ordo`).
pub fn default_ordo_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this executable's path")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", me.display()))?;
    let bin = dir.join("ordo");
    if !bin.is_file() {
        bail!(
            "no ordo binary at {} (build it with `cargo build --release -p ordo`, or pass --ordo-bin)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A server this process started; stopped with SIGTERM when dropped at the
/// latest, and its data directory removed unless kept.
pub struct OwnServer {
    child: Child,
    pub pid: u32,
    pub listen: String,
    pub data_dir: PathBuf,
    // Dropped after the child is stopped (fields drop in order; `stop` runs first).
    data: Option<TempDir>,
    stopped: bool,
}

/// The outcome of stopping a server.
pub struct Stopped {
    pub status: Option<ExitStatus>,
    pub took: Duration,
    pub killed: bool,
}

impl OwnServer {
    /// Makes a data directory, creates tenant `bench` and an admin key (the
    /// checkout phase changes the settings),
    /// starts `ordo serve` on a free port and waits until `/healthz` answers.
    pub async fn start(
        bin: &Path,
        data_parent: Option<&Path>,
        keep_data: bool,
        database_url: Option<&str>,
    ) -> anyhow::Result<(OwnServer, Target)> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("ordo-bench-");
        let tmp = match data_parent {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("cannot create a temporary data directory")?;
        let data_dir = tmp.path().to_path_buf();
        let data = if keep_data {
            let _kept = tmp.keep();
            None
        } else {
            Some(tmp)
        };

        let mut place = vec!["--data-dir".to_string(), data_dir.display().to_string()];
        if let Some(url) = database_url {
            place.extend(["--database-url".to_string(), url.to_string()]);
        }
        admin(bin, &place, &["tenants", "create", TENANT]).await?;
        let key = admin(
            bin,
            &place,
            &[
                "keys",
                "create",
                "--tenant",
                TENANT,
                "--role",
                "admin",
                "--name",
                "ordo-bench",
            ],
        )
        .await?;
        let key = key.trim().to_string();
        if key.is_empty() || key.contains('\n') {
            bail!("`ordo keys create` printed {key:?}, not one key");
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port")?
            .port();
        let listen = format!("127.0.0.1:{port}");
        // The server's stdout goes to our stderr so that our stdout stays a report.
        let out = std::io::stderr().as_fd().try_clone_to_owned()?;
        let mut cmd = StdCommand::new(bin);
        cmd.args(&place)
            .args(["serve", "--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::inherit());
        if std::env::var_os("ORDO_LOG__LEVEL").is_none() {
            cmd.env("ORDO_LOG__LEVEL", "warn");
        }
        // The webhooks phase's receiver is on this machine.
        cmd.env("ORDO_WEBHOOKS__ALLOW_PRIVATE_URLS", "true");
        // Every cart comes from 127.0.0.1: the storefront's per-address
        // limit would measure itself.
        cmd.env("ORDO_STOREFRONT__REQUESTS_PER_MINUTE", "0");
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = OwnServer {
            pid: child.id(),
            child,
            listen: listen.clone(),
            data_dir,
            data,
            stopped: false,
        };
        let target = Arc::new(Target::new(&format!("http://{listen}"), &key).await?);
        server.wait_healthy(&target).await?;
        let target = Arc::try_unwrap(target).map_err(|_| anyhow!("target still shared"))?;
        Ok((server, target))
    }

    async fn wait_healthy(&mut self, target: &Arc<Target>) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                bail!("ordo serve exited during startup ({status})");
            }
            let mut conn = Conn::new(target.clone());
            let last = match conn.call(Method::GET, "/healthz", None).await {
                Ok((status, _)) if status.is_success() => return Ok(()),
                Ok((status, _)) => format!("GET /healthz answered {status}"),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!("ordo serve did not become healthy within 30 s: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then up to 15 s for a graceful exit, then SIGKILL.
    pub fn stop(&mut self) -> Option<Stopped> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        let start = Instant::now();
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(Stopped {
                status: Some(status),
                took: Duration::ZERO,
                killed: false,
            });
        }
        let pid = i32::try_from(self.pid).unwrap_or(i32::MAX);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Stopped {
                    status: Some(status),
                    took: start.elapsed(),
                    killed: false,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        Some(Stopped {
            status,
            took: start.elapsed(),
            killed: true,
        })
    }

    /// Whether the data directory is removed at the end.
    pub fn removes_data(&self) -> bool {
        self.data.is_some()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
        // `data` (the TempDir) is dropped after this, once the server is gone.
    }
}

/// The URL with its password hidden.
pub fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| {
        let (userinfo, host) = rest.rsplit_once('@')?;
        let (user, _) = userinfo.split_once(':')?;
        Some(format!("{scheme}://{user}:***@{host}"))
    }) {
        Some(hidden) => hidden,
        None => url.to_string(),
    }
}

/// Runs an `ordo` admin command and returns its stdout.
async fn admin(bin: &Path, place: &[String], args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(bin);
    cmd.args(place).args(args);
    if std::env::var_os("ORDO_LOG__LEVEL").is_none() {
        cmd.env("ORDO_LOG__LEVEL", "warn");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "`ordo {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` CPU times.
pub fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => u64::try_from(t).unwrap_or(100),
        _ => 100,
    }
}

/// User plus system CPU time of a process (all its threads), in ticks.
/// `pid` is a number or `self`.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line; the first after ')' is field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory (VmRSS) of a process, in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The type of the file system holding `path` (ext4, tmpfs, …), from /proc/mounts.
pub fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mount), Some(kind)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(len, _)| mount.len() >= *len) {
            best = Some((mount.len(), kind.to_string()));
        }
    }
    best.map(|(_, kind)| kind)
}
