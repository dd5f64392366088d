//! Configuration: built-in defaults, then an optional TOML file, then
//! `ORDO_*` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use ordo_store::sqlite::Synchronous;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory holding the embedded database (created if missing).
    pub data_dir: PathBuf,
    /// The URL people and links use to reach this server (shown in the
    /// first-run message). Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub sqlite: SqliteConfig,
    /// Hours an idempotency key is remembered (at least 24).
    pub idempotency_key_hours: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `warn`, `ordo=debug,tower_http=info`, …
    pub level: String,
    /// `text` for people, `json` for machines.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Read connections (the most reads at once).
    pub readers: usize,
    /// The most writes committed in one transaction (group commit).
    pub max_batch: usize,
    /// `full`: every acknowledged write survives power loss. `normal`:
    /// survives a crash of ordo, not of the machine.
    pub synchronous: Synchronous,
    /// Page cache per connection, in MiB.
    pub cache_mib: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./ordo-data"),
            public_url: None,
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
            },
            http: HttpConfig {
                body_limit_bytes: 1024 * 1024,
                request_timeout_secs: 30,
            },
            sqlite: SqliteConfig {
                readers: 8,
                max_batch: 1024,
                synchronous: Synchronous::Full,
                cache_mib: 16,
            },
            idempotency_key_hours: 24,
        }
    }
}

impl Config {
    /// Defaults, then `file` if given, then `ORDO_*` variables (nested keys
    /// with `__`: `ORDO_LOG__LEVEL=debug`).
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "the config file {} does not exist",
                    path.display()
                ))));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("ORDO_").split("__"));
        let config: Config = figment.extract().map_err(Box::new)?;
        Ok(config)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("ordo.db")
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn sqlite_options(&self) -> ordo_store::sqlite::SqliteOptions {
        ordo_store::sqlite::SqliteOptions {
            readers: self.sqlite.readers,
            max_batch: self.sqlite.max_batch,
            synchronous: self.sqlite.synchronous,
            cache_kib: self.sqlite.cache_mib.saturating_mul(1024),
        }
    }
}

/// A commented configuration file with every setting at its default.
pub const EXAMPLE: &str = r#"# ordo configuration. Every setting is optional; shown here at its default.
# Precedence: defaults < this file (--config) < ORDO_* environment variables
# (nested keys with a double underscore: ORDO_LOG__LEVEL=debug) < flags.

# Address the HTTP server listens on.                       ORDO_LISTEN
listen = "127.0.0.1:8080"

# Directory of the embedded database; created if missing.    ORDO_DATA_DIR
data_dir = "./ordo-data"

# URL that people and links use to reach this server.        ORDO_PUBLIC_URL
# public_url = "https://orders.example.com"

# Hours an Idempotency-Key is remembered (at least 24).      ORDO_IDEMPOTENCY_KEY_HOURS
idempotency_key_hours = 24

[log]
# A tracing filter: info, warn, debug, or per module.        ORDO_LOG__LEVEL
level = "info"
# text (for people) or json (for log collectors).            ORDO_LOG__FORMAT
format = "text"

[http]
# Largest request body accepted, in bytes.                   ORDO_HTTP__BODY_LIMIT_BYTES
body_limit_bytes = 1048576
# Seconds before a request is abandoned with a 503.          ORDO_HTTP__REQUEST_TIMEOUT_SECS
request_timeout_secs = 30

[sqlite]
# Read connections: the most reads served at once.           ORDO_SQLITE__READERS
readers = 8
# The most writes committed in one transaction.              ORDO_SQLITE__MAX_BATCH
max_batch = 1024
# full: an acknowledged write survives power loss.
# normal: it survives a crash of ordo, not of the machine.   ORDO_SQLITE__SYNCHRONOUS
synchronous = "full"
# Page cache per connection, in MiB.                         ORDO_SQLITE__CACHE_MIB
cache_mib = 16
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_defaults() {
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .expect("the example parses");
        assert_eq!(parsed, Config::default());
        let only_file: Config = toml::from_str(EXAMPLE).expect("the example is complete");
        assert_eq!(only_file, Config::default());
    }
}
