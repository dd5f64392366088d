//! Imports as both databases keep them: the import as JSON, with its state
//! and the lease of the node running it beside it for claiming; the
//! problems found in its file, a row each.

use std::collections::BTreeMap;

use ordo_domain::{Actor, ImportId, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    #[default]
    Orders,
    Products,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Orders => "orders",
            ImportKind::Products => "products",
        }
    }
}

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    Csv,
    Ndjson,
}

impl ImportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Csv => "csv",
            ImportFormat::Ndjson => "ndjson",
        }
    }
}

/// What a problem with one order (or product) does to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The others are imported; the failed ones are reported.
    #[default]
    SkipFailed,
    /// Nothing is imported unless everything can be.
    RejectAll,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::SkipFailed => "skip_failed",
            OnError::RejectAll => "reject_all",
        }
    }
}

/// Where an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    /// Waiting for a node to run it.
    Queued,
    /// Being read (or its node died and another will take it on).
    Running,
    /// Read to the end.
    Succeeded,
    /// Stopped: the file cannot be read, or `reject_all` found problems.
    Failed,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Succeeded => "succeeded",
            ImportState::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, ImportState::Succeeded | ImportState::Failed)
    }
}

/// How a file is read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Everything is checked and counted; nothing is written.
    pub dry_run: bool,
    pub on_error: OnError,
    /// ordo's CSV column → the file's header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, String>,
    /// The namespace of a CSV's `external_id` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// How far an import got. In a dry run, `created`, `updated` and
/// `unchanged` say what a real run would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Lines of the file read (a CSV's header included).
    pub lines: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
}

/// Why a whole file could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFailure {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

/// A file being imported, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub id: ImportId,
    pub tenant_id: TenantId,
    pub kind: ImportKind,
    pub format: ImportFormat,
    pub options: ImportOptions,
    pub state: ImportState,
    /// The file's key in the file store.
    pub file: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub created_by: Actor,
    pub counts: ImportCounts,
    /// The last line whose orders are written and counted: a run taken
    /// over after a crash goes on after it.
    pub done_line: u64,
    /// Problems kept (the first [`MAX_IMPORT_ERRORS`]).
    pub errors: u64,
    /// Runs of it begun (more than one: it was taken over).
    pub runs: u32,
    /// Under `reject_all`: every order was checked and none has a
    /// problem, so the writing pass runs (a run taken over skips the check).
    #[serde(default)]
    pub checked: bool,
    /// Why the last run paused (the database or a pricing provider was
    /// unavailable); it goes on from `done_line`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<ImportFailure>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

/// Problems kept per import; more are counted in `failed` only.
pub const MAX_IMPORT_ERRORS: u64 = 100_000;

/// A problem with one line of an imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Kept in order of discovery, from 0.
    pub seq: u64,
    pub line: u64,
    /// The external id (`namespace:value`) of the order it sinks, if read.
    pub order_key: Option<String>,
    pub field: String,
    pub value: Option<String>,
    pub reason: String,
}

/// A node asking for an import to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportClaim {
    pub node: String,
    pub now: Timestamp,
    pub lease_ms: i64,
}

/// An import claimed until `until`; saving its progress needs `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedImport {
    pub import: Import,
    pub token: String,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(crate) fn body(import: &Import) -> Result<String> {
    serde_json::to_string(import).map_err(corrupt)
}

pub(crate) fn from_body(id: &str, body: &str) -> Result<Import> {
    let import: Import = serde_json::from_str(body).map_err(corrupt)?;
    if import.id.to_string() != id {
        return Err(corrupt(format!("import row {id} holds {}", import.id)));
    }
    Ok(import)
}

/// An import whose claim was just taken: running, one run more.
pub(crate) fn claimed(
    id: &str,
    body: &str,
    token: String,
    now: Timestamp,
) -> Result<ClaimedImport> {
    let mut import = from_body(id, body)?;
    import.state = ImportState::Running;
    import.runs += 1;
    import.started_at.get_or_insert(now);
    Ok(ClaimedImport { import, token })
}

/// A stored count or line, as the databases keep it.
pub(crate) fn int(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(corrupt)
}

pub(crate) fn uint(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(corrupt)
}
