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
    /// The database: `postgres://user:password@host:port/db` for
    /// PostgreSQL (many nodes), or `sqlite:<path>` / a path for the
    /// embedded database. Unset: `<data_dir>/ordo.db`.
    pub database_url: Option<String>,
    /// The URL people and links use to reach this server (shown in the
    /// first-run message). Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub sqlite: SqliteConfig,
    pub postgres: PostgresConfig,
    pub jobs: JobsConfig,
    pub webhooks: WebhooksConfig,
    pub storefront: StorefrontConfig,
    pub admin: AdminConfig,
    pub buyer_page: BuyerPageConfig,
    pub files: FilesConfig,
    pub payments: PaymentsConfig,
    pub messaging: MessagingConfig,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections this node keeps open to PostgreSQL.
    pub pool_size: usize,
    /// Seconds a request waits for a free connection before a 503.
    pub wait_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Milliseconds between two looks for due background work.
    pub poll_interval_ms: u64,
    /// Milliseconds before the first retry of failed work; doubled each time.
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Seconds after which failing work is given up (kept, marked dead).
    pub max_age_secs: u64,
    /// Seconds a node holds a job it claimed; past that, the node is taken
    /// for dead and the job runs again elsewhere. Longer than any job.
    pub lease_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Let webhook URLs name this machine or a private network (off: ordo
    /// must not be a way into the network it runs in).
    pub allow_private_urls: bool,
    /// Seconds a receiver has to answer a delivery.
    pub timeout_secs: u64,
}

/// The public storefront: guests call it without a key, so it is limited
/// per client address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorefrontConfig {
    /// Requests a minute one client address may make (IPv6: one /64);
    /// 0 for no limit.
    pub requests_per_minute: u32,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
    /// Largest checkout body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Count clients by the last address in `X-Forwarded-For` (set this
    /// only behind a reverse proxy that appends it; otherwise anyone can
    /// pick their own address).
    pub trust_forwarded_for: bool,
}

/// The admin pages (`/admin`): how long a sign-in lasts, and how often one
/// client address may try a password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// A session unused this long ends (the user signs in again).
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_max_secs: u64,
    /// Sign-in attempts a minute from one client address (IPv6: one /64).
    pub login_per_minute: u32,
    /// Attempts a client may make at once before the rate applies.
    pub login_burst: u32,
}

/// The buyer's order page (`/o/{token}`), reached by the signed links buyer
/// messages carry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuyerPageConfig {
    /// How long a link works, in days from when it was made.
    pub link_days: u32,
}

/// Where uploaded files (payment receipts) are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// `disk` (one node) or `s3` (any S3-compatible store; needed when
    /// several nodes serve one database).
    pub backend: FilesBackend,
    /// The directory of `disk`; unset: `<data_dir>/files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Largest receipt accepted, in bytes.
    pub receipt_max_bytes: usize,
    /// Largest import file accepted, in bytes.
    pub import_max_bytes: u64,
    pub s3_bucket: String,
    pub s3_region: String,
    /// For stores other than AWS (MinIO, R2, …): their URL; path-style
    /// requests are then used.
    pub s3_endpoint: String,
    /// Unset: credentials from the environment (`AWS_ACCESS_KEY_ID`, …).
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// Allow an `http://` endpoint (a store on this machine or network).
    pub s3_allow_http: bool,
}

/// How ordo talks to payment providers (from background jobs only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Milliseconds to connect to a provider.
    pub provider_connect_timeout_ms: u64,
    /// Milliseconds one call may take, answer included.
    pub provider_timeout_ms: u64,
    /// Attempts per call: the first and its retries (transport errors and
    /// 5xx only).
    pub provider_attempts: u32,
    /// The longest wait before the first retry, doubled for each next one
    /// (each wait is random up to that: full jitter).
    pub provider_backoff_ms: u64,
    /// Consecutive failed calls that open a provider's circuit.
    pub breaker_failures: u32,
    /// Milliseconds an open circuit refuses calls before one probe.
    pub breaker_open_ms: u64,
}

/// How ordo reaches buyers (from background jobs only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MessagingConfig {
    /// Meta's Graph API, with its version (WhatsApp Cloud API and
    /// Instagram messaging); tests point it at a local server.
    pub graph_base_url: String,
    /// Milliseconds one call to Meta or one SMTP conversation may take.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FilesBackend {
    Disk,
    S3,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// Reads a database URL: `postgres://` or `postgresql://` for
    /// PostgreSQL, `sqlite:` or a plain path for the embedded database.
    pub fn parse(url: &str) -> Result<Database, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!(
                    "the database URL {url:?} has no path: use sqlite:<path>"
                ));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.is_empty() || url.contains("://") {
            return Err(format!(
                "the database URL {:?} is not supported: use postgres://user:password@host:port/db, sqlite:<path> or a path",
                ordo_store::postgres::redact(url)
            ));
        }
        Ok(Database::Sqlite(PathBuf::from(url)))
    }

    /// The database as messages name it, without a password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("the SQLite database {}", path.display()),
            Database::Postgres(url) => {
                format!("PostgreSQL at {}", ordo_store::postgres::redact(url))
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./ordo-data"),
            database_url: None,
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
            postgres: PostgresConfig {
                pool_size: 32,
                wait_timeout_secs: 10,
            },
            jobs: JobsConfig {
                poll_interval_ms: 1000,
                retry_initial_ms: 10_000,
                retry_max_ms: 3_600_000,
                max_age_secs: 3 * 24 * 3600,
                lease_secs: 300,
            },
            webhooks: WebhooksConfig {
                allow_private_urls: false,
                timeout_secs: 10,
            },
            storefront: StorefrontConfig {
                requests_per_minute: 60,
                burst: 20,
                body_limit_bytes: 16 * 1024,
                trust_forwarded_for: false,
            },
            admin: AdminConfig {
                session_idle_secs: 12 * 3600,
                session_max_secs: 7 * 24 * 3600,
                login_per_minute: 10,
                login_burst: 5,
            },
            buyer_page: BuyerPageConfig { link_days: 30 },
            files: FilesConfig {
                backend: FilesBackend::Disk,
                dir: None,
                receipt_max_bytes: 10 * 1024 * 1024,
                import_max_bytes: 4 * 1024 * 1024 * 1024,
                s3_bucket: String::new(),
                s3_region: "us-east-1".into(),
                s3_endpoint: String::new(),
                s3_access_key_id: String::new(),
                s3_secret_access_key: String::new(),
                s3_allow_http: false,
            },
            payments: PaymentsConfig {
                provider_connect_timeout_ms: 2_000,
                provider_timeout_ms: 10_000,
                provider_attempts: 3,
                provider_backoff_ms: 200,
                breaker_failures: 5,
                breaker_open_ms: 30_000,
            },
            messaging: MessagingConfig {
                graph_base_url: "https://graph.facebook.com/v21.0".into(),
                timeout_ms: 10_000,
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
        config
            .database()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(config)
    }

    /// The database to use: `database_url` if set, else the embedded one
    /// in `data_dir`.
    pub fn database(&self) -> Result<Database, String> {
        match &self.database_url {
            Some(url) => Database::parse(url),
            None => Ok(Database::Sqlite(self.data_dir.join("ordo.db"))),
        }
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

    pub fn postgres_options(&self) -> ordo_store::postgres::PostgresOptions {
        ordo_store::postgres::PostgresOptions {
            pool_size: self.postgres.pool_size,
            wait_timeout: std::time::Duration::from_secs(self.postgres.wait_timeout_secs.max(1)),
            ..ordo_store::postgres::PostgresOptions::default()
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

# The database. Unset: the embedded SQLite database in data_dir.
# postgres://user:password@host:5432/db runs on PostgreSQL (many nodes);
# sqlite:<path> or a plain path picks another SQLite file.  ORDO_DATABASE_URL
# database_url = "postgres://ordo:secret@127.0.0.1:5432/ordo"

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

[postgres]
# Connections each node keeps open; the sum over all nodes must
# stay below the server's max_connections.                   ORDO_POSTGRES__POOL_SIZE
pool_size = 32
# Seconds a request waits for a free connection (then 503).  ORDO_POSTGRES__WAIT_TIMEOUT_SECS
wait_timeout_secs = 10

[jobs]
# Milliseconds between two looks for due background work
# (each job is run by one node at a time).                   ORDO_JOBS__POLL_INTERVAL_MS
poll_interval_ms = 1000
# Failed work is retried after 10 s, 20 s, 40 s, … (each wait a random
# time between half and all of that), at most an hour apart,   ORDO_JOBS__RETRY_INITIAL_MS
# and given up (kept, marked dead) 3 days after it was         ORDO_JOBS__RETRY_MAX_MS
# scheduled.                                                   ORDO_JOBS__MAX_AGE_SECS
retry_initial_ms = 10000
retry_max_ms = 3600000
max_age_secs = 259200
# Seconds a node holds a job it claimed; if it dies, the job runs
# again elsewhere after this long.                             ORDO_JOBS__LEASE_SECS
lease_secs = 300

[webhooks]
# Let webhook URLs name this machine or a private network
# (loopback, 10/8, 192.168/16, …). Off, ordo cannot be made to
# call into the network it runs in.                           ORDO_WEBHOOKS__ALLOW_PRIVATE_URLS
allow_private_urls = false
# Seconds a receiver has to answer; any 2xx in time is success. ORDO_WEBHOOKS__TIMEOUT_SECS
timeout_secs = 10

[storefront]
# The public storefront (GET /v1/storefront/{slug}/products and
# POST …/checkout), for shops that open it in their settings.
# Requests a minute per client address (IPv6: per /64); 0: no
# limit. Over it: 429 with Retry-After.                       ORDO_STOREFRONT__REQUESTS_PER_MINUTE
requests_per_minute = 60
# Requests a client may make at once before the rate applies. ORDO_STOREFRONT__BURST
burst = 20
# Largest checkout body, in bytes.                            ORDO_STOREFRONT__BODY_LIMIT_BYTES
body_limit_bytes = 16384
# Count clients by the last X-Forwarded-For address. Only
# behind a reverse proxy that appends it!                     ORDO_STOREFRONT__TRUST_FORWARDED_FOR
trust_forwarded_for = false

[admin]
# The admin pages at /admin (users: `ordo users create`). A
# session unused this long ends, in seconds.                  ORDO_ADMIN__SESSION_IDLE_SECS
session_idle_secs = 43200
# A session ends this long after sign-in, used or not.        ORDO_ADMIN__SESSION_MAX_SECS
session_max_secs = 604800
# Sign-in attempts a minute per client address (the
# storefront's trust_forwarded_for applies); over it: 429.    ORDO_ADMIN__LOGIN_PER_MINUTE
login_per_minute = 10
# Attempts a client may make at once before the rate applies. ORDO_ADMIN__LOGIN_BURST
login_burst = 5

[buyer_page]
# The buyer's order page (/o/…), reached by the signed link
# buyer messages carry ({link} in a text). Days a link works.  ORDO_BUYER_PAGE__LINK_DAYS
link_days = 30

[files]
# Where uploaded files (payment receipts) are kept: disk (one
# node) or s3 (any S3-compatible store; use it when several
# nodes serve one database).                                  ORDO_FILES__BACKEND
backend = "disk"
# The directory of the disk backend. Unset: <data_dir>/files.  ORDO_FILES__DIR
# dir = "/var/lib/ordo/files"
# Largest receipt accepted, in bytes (413 above it).           ORDO_FILES__RECEIPT_MAX_BYTES
receipt_max_bytes = 10485760
# Largest import file accepted, in bytes (413 above it).       ORDO_FILES__IMPORT_MAX_BYTES
import_max_bytes = 4294967296
# The S3 bucket, its region, and for stores other than AWS
# (MinIO, R2, …) their URL (path-style requests are then used). ORDO_FILES__S3_BUCKET
s3_bucket = ""
s3_region = "us-east-1"
s3_endpoint = ""
# Keys; empty: taken from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. ORDO_FILES__S3_ACCESS_KEY_ID
s3_access_key_id = ""
s3_secret_access_key = ""
# Allow an http:// endpoint (a store on this machine or network). ORDO_FILES__S3_ALLOW_HTTP
s3_allow_http = false

[payments]
# Calls to payment providers (made by background jobs, never
# inside an order's request). Milliseconds to connect, and for
# a whole call.                                               ORDO_PAYMENTS__PROVIDER_CONNECT_TIMEOUT_MS
provider_connect_timeout_ms = 2000
provider_timeout_ms = 10000
# Attempts per call; transport errors and 5xx are retried after
# a random wait up to 200 ms, 400 ms, … (the same
# Idempotency-Key each time).                                 ORDO_PAYMENTS__PROVIDER_ATTEMPTS
provider_attempts = 3
provider_backoff_ms = 200
# A provider's circuit opens after this many consecutive
# failures and refuses calls for breaker_open_ms, then lets
# one probe through.                                          ORDO_PAYMENTS__BREAKER_FAILURES
breaker_failures = 5
breaker_open_ms = 30000

[messaging]
# Telling buyers what happens to their orders (made by background
# jobs). Meta's Graph API, with its version, for WhatsApp and
# Instagram.                                                  ORDO_MESSAGING__GRAPH_BASE_URL
graph_base_url = "https://graph.facebook.com/v21.0"
# Milliseconds one call to Meta, or one conversation with a
# shop's mail server, may take.                                ORDO_MESSAGING__TIMEOUT_MS
timeout_ms = 10000
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

    #[test]
    fn database_urls() {
        assert_eq!(
            Database::parse("postgres://u:p@h:5432/d"),
            Ok(Database::Postgres("postgres://u:p@h:5432/d".into()))
        );
        assert_eq!(
            Database::parse("postgresql://h/d"),
            Ok(Database::Postgres("postgresql://h/d".into()))
        );
        assert_eq!(
            Database::parse("sqlite:./x.db"),
            Ok(Database::Sqlite("./x.db".into()))
        );
        assert_eq!(
            Database::parse("sqlite:///var/ordo.db"),
            Ok(Database::Sqlite("/var/ordo.db".into()))
        );
        assert_eq!(
            Database::parse("/var/ordo.db"),
            Ok(Database::Sqlite("/var/ordo.db".into()))
        );
        let err = Database::parse("mysql://u:pw@h/d").expect_err("refused");
        assert!(
            err.contains("mysql://u:***@h/d") && !err.contains("pw"),
            "{err}"
        );
        assert!(Database::parse("sqlite:").is_err());
    }
}
