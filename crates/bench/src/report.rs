//! Figures of a phase, as a block when it ends and as a row of the summary.

use std::time::Duration;

use crate::load::Outcome;
use crate::server::{clock_ticks, cpu_ticks, rss_kib};

/// CPU counters at the start of a phase.
pub struct CpuMark {
    server: Option<u64>,
    client: Option<u64>,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            server: server_pid.and_then(|p| cpu_ticks(&p.to_string())),
            client: cpu_ticks("self"),
        }
    }
}

/// One phase's figures.
pub struct PhaseFigures {
    pub name: &'static str,
    pub connections: usize,
    pub elapsed: Duration,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub bad_status: u64,
    pub transport: u64,
    /// Server CPU time per request, in microseconds.
    pub server_cpu_us: Option<f64>,
    /// Server CPU time over wall time: cores kept busy.
    pub server_cores: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub client_cores: Option<f64>,
    pub reconnects: u64,
    pub first_error: Option<String>,
    /// Phase-specific lines (ids kept, short pages, missing orders).
    pub notes: Vec<String>,
}

impl PhaseFigures {
    pub fn new(
        name: &'static str,
        connections: usize,
        out: &Outcome,
        mark: &CpuMark,
        server_pid: Option<u32>,
    ) -> PhaseFigures {
        let ticks = clock_ticks() as f64;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let requests = out.hist.len();
        let server_cpu = match (
            mark.server,
            server_pid.and_then(|p| cpu_ticks(&p.to_string())),
        ) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ticks),
            _ => None,
        };
        let client_cpu = match (mark.client, cpu_ticks("self")) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ticks),
            _ => None,
        };
        let ms = |v: u64| v as f64 / 1000.0;
        PhaseFigures {
            name,
            connections,
            elapsed: out.elapsed,
            requests,
            p50_ms: ms(out.hist.value_at_quantile(0.50)),
            p99_ms: ms(out.hist.value_at_quantile(0.99)),
            p999_ms: ms(out.hist.value_at_quantile(0.999)),
            max_ms: ms(out.hist.max()),
            bad_status: out.bad_status,
            transport: out.transport,
            server_cpu_us: server_cpu
                .filter(|_| requests > 0)
                .map(|s| s * 1e6 / requests as f64),
            server_cores: server_cpu.map(|s| s / secs),
            server_rss_mib: server_pid
                .and_then(|p| rss_kib(&p.to_string()))
                .map(|k| k as f64 / 1024.0),
            client_cores: client_cpu.map(|s| s / secs),
            reconnects: out.reconnects,
            first_error: out.first_error.clone(),
            notes: Vec::new(),
        }
    }

    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn errors(&self) -> u64 {
        self.bad_status + self.transport
    }

    pub fn print_block(&self) {
        println!(
            "[{}] {} connections, {:.2} s",
            self.name,
            self.connections,
            self.elapsed.as_secs_f64()
        );
        println!(
            "  requests    {} ({:.0} req/s)",
            self.requests,
            self.throughput()
        );
        println!(
            "  latency ms  p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        let mut errors = format!(
            "  errors      {} non-2xx, {} transport",
            self.bad_status, self.transport
        );
        if self.reconnects > 0 {
            errors.push_str(&format!(" ({} reconnects)", self.reconnects));
        }
        println!("{errors}");
        if let Some(e) = &self.first_error {
            println!("  first error {e}");
        }
        match (self.server_cpu_us, self.server_cores, self.server_rss_mib) {
            (Some(us), Some(cores), Some(rss)) => println!(
                "  server      {us:.1} us CPU/request ({cores:.2} cores busy), RSS {rss:.1} MiB"
            ),
            (None, Some(cores), Some(rss)) => {
                println!("  server      {cores:.2} cores busy, RSS {rss:.1} MiB")
            }
            _ => {}
        }
        if let Some(cores) = self.client_cores {
            println!("  client      {cores:.2} cores busy (this tool)");
        }
        for note in &self.notes {
            println!("  {note}");
        }
        println!();
    }
}

/// The table printed at the end.
pub fn print_summary(phases: &[PhaseFigures]) {
    println!("summary");
    println!(
        "  {:<7} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>8}",
        "phase",
        "conns",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "cpu us/req",
        "rss MiB"
    );
    for p in phases {
        let cpu = p
            .server_cpu_us
            .map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let rss = p
            .server_rss_mib
            .map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        println!(
            "  {:<7} {:>5} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>10} {:>8}",
            p.name,
            p.connections,
            p.requests,
            p.throughput(),
            p.p50_ms,
            p.p99_ms,
            p.p999_ms,
            p.max_ms,
            p.errors(),
            cpu,
            rss
        );
    }
}
