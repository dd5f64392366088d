//! Moving an embedded installation to PostgreSQL: every table, copied in
//! one PostgreSQL transaction (all of it or nothing), then counted on both
//! sides.
//!
//! The source is read in one SQLite read transaction, so a server still
//! writing to it cannot make the copy inconsistent (what it writes after the
//! copy began is not copied: stop it first). Rows travel as they are
//! stored: the API renderings, hashes and timeline JSON arrive byte for
//! byte, so orders read back identically and API keys keep working.

use std::path::Path;

use rusqlite::types::Value;
use serde_json::value::RawValue;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::NoTls;

use crate::postgres::{self, redact};
use crate::sqlite::{self, SqliteOptions};
use crate::{Renderer, Result, StoreError};

/// How a column is stored on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    OptText,
    Int8,
    OptInt8,
    Int4,
    Int2,
    OptInt2,
    Bytea,
    OptBytea,
    Jsonb,
    Json,
    /// A JSON array of strings on SQLite, `text[]` here.
    TextArray,
    /// 0 or 1 on SQLite.
    Bool,
}

impl Kind {
    fn pg_type(self) -> Type {
        match self {
            Kind::Text | Kind::OptText => Type::TEXT,
            Kind::Int8 | Kind::OptInt8 => Type::INT8,
            Kind::Int4 => Type::INT4,
            Kind::Int2 | Kind::OptInt2 => Type::INT2,
            Kind::Bytea | Kind::OptBytea => Type::BYTEA,
            Kind::Jsonb => Type::JSONB,
            Kind::Json => Type::JSON,
            Kind::TextArray => Type::TEXT_ARRAY,
            Kind::Bool => Type::BOOL,
        }
    }
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
}

/// Every table of ordo, parents first. (`schema_migrations` is each
/// database's own; `counters` is carried over after the rows.)
const TABLES: &[Table] = &[
    Table {
        name: "tenants",
        columns: &[
            ("id", Kind::Text),
            ("slug", Kind::Text),
            ("name", Kind::Text),
            ("created_at", Kind::Int8),
            ("order_numbers_taken", Kind::Int8),
            ("settings", Kind::Text),
        ],
    },
    Table {
        name: "api_keys",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("role", Kind::Text),
            ("hint", Kind::Text),
            ("secret_hash", Kind::Bytea),
            ("created_at", Kind::Int8),
            ("revoked_at", Kind::OptInt8),
        ],
    },
    Table {
        name: "users",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("email", Kind::Text),
            ("name", Kind::Text),
            ("role", Kind::Text),
            ("password_hash", Kind::Text),
            ("created_at", Kind::Int8),
            ("disabled_at", Kind::OptInt8),
        ],
    },
    Table {
        name: "admin_sessions",
        columns: &[
            ("tenant_id", Kind::Text),
            ("token_hash", Kind::Bytea),
            ("user_id", Kind::Text),
            ("csrf", Kind::Text),
            ("created_at", Kind::Int8),
            ("seen_at", Kind::Int8),
            ("expires_at", Kind::Int8),
        ],
    },
    Table {
        name: "tenant_secrets",
        columns: &[
            ("tenant_id", Kind::Text),
            ("name", Kind::Text),
            ("value", Kind::Bytea),
            ("created_at", Kind::Int8),
        ],
    },
    Table {
        name: "orders",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("reference", Kind::Text),
            ("reference_seq", Kind::Int8),
            ("status", Kind::Text),
            ("payment_status", Kind::Text),
            ("fulfillment_status", Kind::Text),
            ("stage", Kind::Text),
            ("currency", Kind::Text),
            ("buyer_name", Kind::OptText),
            ("buyer_phone", Kind::OptText),
            ("buyer_email", Kind::OptText),
            ("buyer_channel_id", Kind::OptText),
            ("channel", Kind::Text),
            ("created_by", Kind::Text),
            ("batch_id", Kind::OptText),
            ("total", Kind::Int8),
            ("version", Kind::Int8),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
            ("body", Kind::Jsonb),
            ("api", Kind::Bytea),
            ("api_version", Kind::Int4),
        ],
    },
    Table {
        name: "order_external_ids",
        columns: &[
            ("tenant_id", Kind::Text),
            ("namespace", Kind::Text),
            ("value", Kind::Text),
            ("order_id", Kind::Text),
        ],
    },
    Table {
        name: "payment_transactions",
        columns: &[
            ("tenant_id", Kind::Text),
            ("transaction_id", Kind::Text),
            ("order_id", Kind::Text),
            ("payment_id", Kind::Text),
        ],
    },
    Table {
        name: "order_shipments",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("order_id", Kind::Text),
        ],
    },
    Table {
        name: "provider_events",
        columns: &[
            ("tenant_id", Kind::Text),
            ("event_id", Kind::Text),
            ("order_id", Kind::Text),
            ("outcome", Kind::Text),
            ("received_at", Kind::Int8),
        ],
    },
    Table {
        name: "conversations",
        columns: &[
            ("tenant_id", Kind::Text),
            ("channel_id", Kind::Text),
            ("state", Kind::Text),
            ("updated_at", Kind::Int8),
        ],
    },
    Table {
        name: "order_events",
        columns: &[
            ("tenant_id", Kind::Text),
            ("order_id", Kind::Text),
            ("sequence", Kind::Int8),
            ("id", Kind::Text),
            ("type", Kind::Text),
            ("actor", Kind::Json),
            ("at", Kind::Int8),
            ("data", Kind::Json),
            ("feed_seq", Kind::OptInt8),
            ("order_api", Kind::OptBytea),
            ("bulk", Kind::Bool),
        ],
    },
    Table {
        name: "idempotency_keys",
        columns: &[
            ("tenant_id", Kind::Text),
            ("key", Kind::Text),
            ("fingerprint", Kind::Bytea),
            ("status", Kind::Int2),
            ("body", Kind::Bytea),
            ("order_id", Kind::Text),
            ("created_at", Kind::Int8),
        ],
    },
    Table {
        name: "webhook_endpoints",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("url", Kind::Text),
            ("description", Kind::OptText),
            ("event_types", Kind::TextArray),
            ("active", Kind::Bool),
            ("secret", Kind::Text),
            ("previous_secret", Kind::OptText),
            ("previous_secret_expires_at", Kind::OptInt8),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
            ("disabled_at", Kind::OptInt8),
            ("disabled_reason", Kind::OptText),
        ],
    },
    Table {
        name: "webhook_deliveries",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("endpoint_id", Kind::Text),
            ("event_id", Kind::Text),
            ("order_id", Kind::Text),
            ("event_sequence", Kind::Int8),
            ("feed_seq", Kind::Int8),
            ("event_type", Kind::Text),
            ("status", Kind::Text),
            ("attempts", Kind::Int4),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
            ("last_status_code", Kind::OptInt2),
            ("last_error", Kind::OptText),
            ("run_at", Kind::OptInt8),
            ("retrying_since", Kind::Int8),
            ("failures", Kind::Int4),
            ("claimed_by", Kind::OptText),
            ("claim", Kind::OptText),
            ("claimed_until", Kind::OptInt8),
            ("bulk", Kind::Bool),
        ],
    },
    Table {
        name: "webhook_attempts",
        columns: &[
            ("tenant_id", Kind::Text),
            ("delivery_id", Kind::Text),
            ("number", Kind::Int4),
            ("at", Kind::Int8),
            ("status_code", Kind::OptInt2),
            ("latency_ms", Kind::Int8),
            ("error", Kind::OptText),
            ("response_excerpt", Kind::OptText),
        ],
    },
    Table {
        name: "feed_cursors",
        columns: &[
            ("tenant_id", Kind::Text),
            ("name", Kind::Text),
            ("position", Kind::Int8),
        ],
    },
    Table {
        name: "jobs",
        columns: &[
            ("tenant_id", Kind::Text),
            ("key", Kind::Text),
            ("kind", Kind::Text),
            ("payload", Kind::Jsonb),
            ("run_at", Kind::Int8),
            ("status", Kind::Text),
            ("created_at", Kind::Int8),
            ("attempts", Kind::Int4),
            ("claimed_by", Kind::OptText),
            ("claim", Kind::OptText),
            ("claimed_until", Kind::OptInt8),
            ("last_error", Kind::OptText),
        ],
    },
    Table {
        name: "products",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("sku", Kind::Text),
            ("name", Kind::Text),
            ("description", Kind::OptText),
            ("currency", Kind::Text),
            ("price", Kind::Int8),
            ("attributes", Kind::Text),
            ("variant_of", Kind::OptText),
            ("image_url", Kind::OptText),
            ("active", Kind::Bool),
            ("track_stock", Kind::Bool),
            ("on_hand", Kind::Int8),
            ("reserved", Kind::Int8),
            ("version", Kind::Int8),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
            ("archived_at", Kind::OptInt8),
            ("tax_class", Kind::Text),
            ("weight_grams", Kind::Int8),
        ],
    },
    Table {
        name: "promotions",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("code", Kind::OptText),
            ("active", Kind::Bool),
            ("body", Kind::Text),
            ("uses", Kind::Int8),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
        ],
    },
    Table {
        name: "promotion_uses",
        columns: &[
            ("tenant_id", Kind::Text),
            ("promotion_id", Kind::Text),
            ("order_id", Kind::Text),
            ("buyer", Kind::OptText),
            ("at", Kind::Int8),
        ],
    },
    Table {
        name: "imports",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("state", Kind::Text),
            ("body", Kind::Text),
            ("claim", Kind::OptText),
            ("claimed_until", Kind::OptInt8),
            ("created_at", Kind::Int8),
            ("updated_at", Kind::Int8),
        ],
    },
    Table {
        name: "import_errors",
        columns: &[
            ("tenant_id", Kind::Text),
            ("import_id", Kind::Text),
            ("seq", Kind::Int8),
            ("line", Kind::Int8),
            ("order_key", Kind::OptText),
            ("field", Kind::Text),
            ("value", Kind::OptText),
            ("reason", Kind::Text),
        ],
    },
    Table {
        name: "stock_movements",
        columns: &[
            ("tenant_id", Kind::Text),
            ("id", Kind::Text),
            ("product_id", Kind::Text),
            ("sku", Kind::Text),
            ("kind", Kind::Text),
            ("on_hand_change", Kind::Int8),
            ("reserved_change", Kind::Int8),
            ("on_hand", Kind::Int8),
            ("reserved", Kind::Int8),
            ("reason", Kind::OptText),
            ("order_id", Kind::OptText),
            ("actor", Kind::Text),
            ("at", Kind::Int8),
        ],
    },
];

/// Rows of one table read from the source.
struct Batch {
    table: usize,
    rows: Vec<Vec<Value>>,
}

const BATCH_ROWS: usize = 2_000;

/// What was copied of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows in the source.
    pub source: u64,
    /// Rows the target gained.
    pub copied: u64,
}

fn bad(table: &str, column: &str, value: &Value) -> StoreError {
    StoreError::Corrupt(format!(
        "{table}.{column} holds {value:?}, which the PostgreSQL schema cannot take"
    ))
}

/// A source value as the target column takes it.
fn cell(
    table: &str,
    column: &str,
    kind: Kind,
    value: Value,
) -> Result<Box<dyn ToSql + Sync + Send>> {
    Ok(match (kind, value) {
        (Kind::Text | Kind::OptText, Value::Text(s)) => Box::new(s),
        (Kind::OptText, Value::Null) => Box::new(None::<String>),
        (Kind::Int8 | Kind::OptInt8, Value::Integer(i)) => Box::new(i),
        (Kind::OptInt8, Value::Null) => Box::new(None::<i64>),
        (Kind::Int4, Value::Integer(i)) => {
            Box::new(i32::try_from(i).map_err(|_| bad(table, column, &Value::Integer(i)))?)
        }
        (Kind::OptInt2, Value::Null) => Box::new(None::<i16>),
        (Kind::Int2 | Kind::OptInt2, Value::Integer(i)) => {
            Box::new(i16::try_from(i).map_err(|_| bad(table, column, &Value::Integer(i)))?)
        }
        (Kind::Bytea | Kind::OptBytea, Value::Blob(b)) => Box::new(b),
        (Kind::OptBytea, Value::Null) => Box::new(None::<Vec<u8>>),
        (Kind::Json | Kind::Jsonb, Value::Text(s)) => {
            let raw = RawValue::from_string(s)
                .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))?;
            Box::new(Json(raw))
        }
        (Kind::TextArray, Value::Text(s)) => {
            let items: Vec<String> = serde_json::from_str(&s)
                .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))?;
            Box::new(items)
        }
        (Kind::Bool, Value::Integer(i)) => Box::new(i != 0),
        (_, other) => return Err(bad(table, column, &other)),
    })
}

/// What the source holds besides its rows: each table's row count and the
/// last feed position, read in the same snapshot as the rows.
struct SourceCounts {
    rows: Vec<u64>,
    feed: i64,
}

/// Reads every table in one read transaction, sending batches of rows.
fn read_source(path: &Path, send: tokio::sync::mpsc::Sender<Batch>) -> Result<SourceCounts> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite::unavailable)?;
    conn.execute_batch("BEGIN").map_err(sqlite::unavailable)?;
    let feed: i64 = conn
        .query_row("SELECT value FROM counters WHERE name = 'feed'", [], |r| {
            r.get(0)
        })
        .map_err(sqlite::unavailable)?;
    let mut counts = Vec::new();
    for (t, table) in TABLES.iter().enumerate() {
        let count: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", table.name), [], |r| {
                r.get(0)
            })
            .map_err(sqlite::unavailable)?;
        counts.push(u64::try_from(count).unwrap_or(0));
        let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM {}",
                columns.join(", "),
                table.name
            ))
            .map_err(sqlite::unavailable)?;
        let mut rows = stmt.query([]).map_err(sqlite::unavailable)?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while let Some(row) = rows.next().map_err(sqlite::unavailable)? {
            let values = (0..columns.len())
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sqlite::unavailable)?;
            batch.push(values);
            if batch.len() == BATCH_ROWS {
                let rows = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if send.blocking_send(Batch { table: t, rows }).is_err() {
                    return Ok(SourceCounts { rows: counts, feed });
                }
            }
        }
        if !batch.is_empty()
            && send
                .blocking_send(Batch {
                    table: t,
                    rows: batch,
                })
                .is_err()
        {
            return Ok(SourceCounts { rows: counts, feed });
        }
    }
    conn.execute_batch("COMMIT").map_err(sqlite::unavailable)?;
    Ok(SourceCounts { rows: counts, feed })
}

async fn count(tx: &tokio_postgres::Transaction<'_>, table: &str) -> Result<u64> {
    let n: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .map_err(postgres::db_error)?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Copies the embedded database at `source` into the PostgreSQL database at
/// `target` (both are migrated first). Refuses a target that holds any
/// rows unless `allow_non_empty`; then the copy fails as a whole if a row
/// is already there. Returns what was copied of each table.
pub async fn sqlite_to_postgres(
    source: &Path,
    target: &str,
    allow_non_empty: bool,
    renderer: Renderer,
) -> Result<Vec<TableCount>> {
    if !source.exists() {
        return Err(StoreError::NotFound);
    }
    // Both schemas up to date before a row moves.
    let (src, _) = sqlite::SqliteStore::open(source, SqliteOptions::default(), renderer)?;
    crate::Store::close(&src).await;
    let (dst, _) =
        postgres::PostgresStore::open(target, postgres::PostgresOptions::default(), renderer)
            .await?;
    crate::Store::close(&dst).await;

    let (mut client, connection) = tokio_postgres::connect(target, NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", redact(target))))?;
    let connection = tokio::spawn(connection);
    let tx = client.transaction().await.map_err(postgres::db_error)?;
    let mut before = Vec::new();
    for table in TABLES {
        let n = count(&tx, table.name).await?;
        if n > 0 && !allow_non_empty {
            return Err(StoreError::Conflict {
                field: "target".into(),
                value: format!(
                    "{} already holds {n} rows of {}; copy into an empty database, or allow a non-empty one",
                    redact(target),
                    table.name
                ),
            });
        }
        before.push(n);
    }

    let (send, mut receive) = tokio::sync::mpsc::channel::<Batch>(4);
    let path = source.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || read_source(&path, send));
    let mut current: Option<(usize, std::pin::Pin<Box<BinaryCopyInWriter>>)> = None;
    while let Some(batch) = receive.recv().await {
        let table = &TABLES[batch.table];
        if current.as_ref().map(|(t, _)| *t) != Some(batch.table) {
            if let Some((_, mut writer)) = current.take() {
                writer.as_mut().finish().await.map_err(postgres::db_error)?;
            }
            let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
            let types: Vec<Type> = table.columns.iter().map(|(_, k)| k.pg_type()).collect();
            let sink = tx
                .copy_in(&format!(
                    "COPY {} ({}) FROM STDIN BINARY",
                    table.name,
                    columns.join(", ")
                ))
                .await
                .map_err(postgres::db_error)?;
            current = Some((batch.table, Box::pin(BinaryCopyInWriter::new(sink, &types))));
        }
        let Some((_, writer)) = current.as_mut() else {
            continue;
        };
        for row in batch.rows {
            let cells = row
                .into_iter()
                .zip(table.columns)
                .map(|(v, (column, kind))| cell(table.name, column, *kind, v))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = cells
                .iter()
                .map(|c| c.as_ref() as &(dyn ToSql + Sync))
                .collect();
            writer
                .as_mut()
                .write(&refs)
                .await
                .map_err(postgres::db_error)?;
        }
    }
    if let Some((_, mut writer)) = current.take() {
        writer.as_mut().finish().await.map_err(postgres::db_error)?;
    }
    let source_counts = reader
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading the source failed: {e}")))??;
    // Feed positions go on from the source's last one.
    tx.execute(
        "UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'feed'",
        &[&source_counts.feed],
    )
    .await
    .map_err(postgres::db_error)?;

    let mut report = Vec::new();
    for ((table, before), source) in TABLES.iter().zip(before).zip(source_counts.rows) {
        let copied = count(&tx, table.name).await? - before;
        if copied != source {
            return Err(StoreError::Corrupt(format!(
                "{}: {source} rows in the source but {copied} copied; nothing was kept",
                table.name
            )));
        }
        report.push(TableCount {
            table: table.name,
            source,
            copied,
        });
    }
    tx.commit().await.map_err(postgres::db_error)?;
    drop(client);
    let _ = connection.await;
    Ok(report)
}
