//! `/v1/imports`: a file of orders (CSV or NDJSON) sent once, kept in the
//! file store as it streams in, and imported in the background (see
//! [`crate::imports`]); its state, counts and problems, and `errors.csv`
//! to fix and send again.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ordo_domain::{FieldError, FieldErrors, ImportId, Namespace, Permission, Timestamp};
use ordo_store::{
    Import, ImportCounts, ImportFormat, ImportKind, ImportOptions, ImportState, OnError,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{PathParams, QueryParams};
use super::orders::{page_size, time, ActorResponse};
use crate::app::AppState;
use crate::files::Streamed;
use crate::import_file::{self, CsvOptions, RawRows};

/// Problems shown with an import (all of them are in `errors.csv`).
pub(crate) const ERRORS_SHOWN: u32 = 100;

/// How an import is asked for: in the query, or as `multipart/form-data`
/// parts before the part named `file`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `orders` (the default) or `products`.
    pub kind: Option<String>,
    /// `csv` or `ndjson`; by default from the body's `Content-Type`
    /// (`text/csv`, `application/x-ndjson`) or the file's name.
    pub format: Option<String>,
    /// `true`: check and count everything, write nothing.
    pub dry_run: Option<String>,
    /// `skip_failed` (the default: import the orders that can be, report
    /// the others) or `reject_all` (import nothing unless every order can be).
    pub on_error: Option<String>,
    /// A CSV's headers for ordo's columns, as a JSON object, e.g.
    /// `{"external_id": "Order No", "item_sku": "Product code"}`.
    pub mapping: Option<String>,
    /// The namespace of a CSV's `external_id` column (default `import`).
    pub namespace: Option<String>,
}

/// An import upload as `multipart/form-data`: the options as parts, then
/// the file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImportUpload {
    kind: Option<String>,
    format: Option<String>,
    dry_run: Option<String>,
    on_error: Option<String>,
    mapping: Option<String>,
    namespace: Option<String>,
    /// The CSV or NDJSON file, after the other parts.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// How far an import got.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportCountsBody {
    /// Lines of the file read (a CSV's header included).
    pub lines: u64,
    /// Orders created (in a dry run: that would be).
    pub created: u64,
    pub updated: u64,
    /// Orders the file has exactly as they are.
    pub unchanged: u64,
    /// Orders not imported: see `errors`.
    pub failed: u64,
}

/// A problem with one line of the file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorBody {
    /// The line of the file (1 is a CSV's header).
    pub line: u64,
    /// The order it sinks (`namespace:value`), when it could be read; for
    /// an import of products, its SKU.
    pub order: Option<String>,
    /// The column (CSV) or field (NDJSON).
    pub field: String,
    pub value: Option<String>,
    pub reason: String,
}

/// Why the whole file was not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportFailureBody {
    pub field: String,
    pub value: Option<String>,
    pub reason: String,
    pub accepted: Option<String>,
}

/// An import: what it reads, how, and how far it got.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResponse {
    #[schema(example = "imp_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    #[schema(example = "orders")]
    pub kind: String,
    #[schema(example = "csv")]
    pub format: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    #[schema(example = "running")]
    pub state: String,
    pub dry_run: bool,
    #[schema(example = "skip_failed")]
    pub on_error: String,
    pub mapping: BTreeMap<String, String>,
    pub namespace: Option<String>,
    pub filename: Option<String>,
    /// The file's size in bytes.
    pub bytes: u64,
    pub counts: ImportCountsBody,
    /// The batch id of the orders it created and changed (the orders
    /// list's `batch_id` filter); `null` for an import of products.
    pub batch_id: Option<String>,
    /// Problems found; the first 100 are in `errors`, the first 100,000
    /// (all that are kept) in `errors.csv`.
    pub error_count: u64,
    /// Only when reading one import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ImportErrorBody>>,
    pub failure: Option<ImportFailureBody>,
    /// Why the run paused (it goes on by itself).
    pub last_error: Option<String>,
    pub created_by: ActorResponse,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[schema(example = "/v1/imports/imp_01JD5Q4ZB8Y7K6M3N2P1R0S9TV/errors.csv")]
    pub errors_url: String,
}

impl ImportResponse {
    pub(crate) fn of(i: &Import, errors: Option<Vec<ordo_store::ImportError>>) -> Self {
        let ImportCounts {
            lines,
            created,
            updated,
            unchanged,
            failed,
        } = i.counts;
        ImportResponse {
            id: i.id.to_string(),
            kind: i.kind.as_str().into(),
            format: i.format.as_str().into(),
            state: i.state.as_str().into(),
            dry_run: i.options.dry_run,
            on_error: i.options.on_error.as_str().into(),
            mapping: i.options.mapping.clone(),
            namespace: i.options.namespace.clone(),
            filename: i.filename.clone(),
            bytes: i.bytes,
            counts: ImportCountsBody {
                lines,
                created,
                updated,
                unchanged,
                failed,
            },
            batch_id: (i.kind == ImportKind::Orders).then(|| i.id.to_string()),
            error_count: i.errors,
            errors: errors.map(|errors| {
                errors
                    .into_iter()
                    .map(|e| ImportErrorBody {
                        line: e.line,
                        order: e.order_key,
                        field: e.field,
                        value: e.value,
                        reason: e.reason,
                    })
                    .collect()
            }),
            failure: i.failure.as_ref().map(|f| ImportFailureBody {
                field: f.field.clone(),
                value: f.value.clone(),
                reason: f.reason.clone(),
                accepted: f.accepted.clone(),
            }),
            last_error: i.last_error.clone(),
            created_by: ActorResponse::from_domain(&i.created_by),
            created_at: time(i.created_at),
            started_at: i.started_at.map(time),
            finished_at: i.finished_at.map(time),
            errors_url: format!("/v1/imports/{}/errors.csv", i.id),
        }
    }
}

/// A page of imports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportPage {
    pub data: Vec<ImportResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Options as they arrived, checked, and whether the key may import
/// this kind (asked first: a key that may not gets a 403, whatever else).
fn options(
    p: &ImportParams,
    principal: &Principal,
) -> Result<(ImportKind, Option<ImportFormat>, ImportOptions), ApiError> {
    match kind_of(p) {
        Ok(ImportKind::Products) => {
            principal.require(Permission::ManageCatalog, "import products")?;
        }
        _ => principal.require(Permission::WriteOrders, "import orders")?,
    }
    checked_options(p)
}

/// The kind of file asked for (`orders` when not said).
fn kind_of(p: &ImportParams) -> Result<ImportKind, FieldError> {
    match p.kind.as_deref().map(str::trim) {
        None | Some("orders") => Ok(ImportKind::Orders),
        Some("products") => Ok(ImportKind::Products),
        Some(other) => Err(FieldError::new("kind", "not a kind of import")
            .value(other)
            .accepted("orders, products")),
    }
}

/// Options as they arrived, checked.
pub(crate) fn checked_options(
    p: &ImportParams,
) -> Result<(ImportKind, Option<ImportFormat>, ImportOptions), ApiError> {
    let mut errors = FieldErrors::new();
    let kind = errors.take(kind_of(p)).unwrap_or(ImportKind::Orders);
    let format = match p.format.as_deref().map(str::trim) {
        None => None,
        Some("csv") => Some(ImportFormat::Csv),
        Some("ndjson" | "jsonl") => Some(ImportFormat::Ndjson),
        Some(other) => {
            errors.push(
                FieldError::new("format", "not a file format ordo imports")
                    .value(other)
                    .accepted("csv, ndjson"),
            );
            None
        }
    };
    let dry_run = match p.dry_run.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            errors.push(
                FieldError::new("dry_run", "not true or false")
                    .value(other)
                    .accepted("true, false"),
            );
            false
        }
    };
    let on_error = match p.on_error.as_deref().map(str::trim) {
        None | Some("skip_failed") => OnError::SkipFailed,
        Some("reject_all") => OnError::RejectAll,
        Some(other) => {
            errors.push(
                FieldError::new("on_error", "not an error policy")
                    .value(other)
                    .accepted("skip_failed, reject_all"),
            );
            OnError::SkipFailed
        }
    };
    let mapping = match p.mapping.as_deref() {
        None => BTreeMap::new(),
        Some(text) => match serde_json::from_str::<BTreeMap<String, String>>(text) {
            Ok(mapping) => {
                for (ours, theirs) in &mapping {
                    if !import_file::columns(kind).any(|c| c == ours) {
                        errors.push(
                            FieldError::new(format!("mapping.{ours}"), "not one of ordo's columns")
                                .value(ours)
                                .accepted(
                                    import_file::columns(kind).collect::<Vec<_>>().join(", "),
                                ),
                        );
                    } else if theirs.trim().is_empty() {
                        errors.push(
                            FieldError::new(format!("mapping.{ours}"), "an empty header")
                                .accepted("the file's header for this column"),
                        );
                    }
                }
                mapping
            }
            Err(_) => {
                errors.push(
                    FieldError::new(
                        "mapping",
                        "not a JSON object of ordo's column → the file's header",
                    )
                    .value(text)
                    .accepted(r#"e.g. {"external_id": "Order No", "item_sku": "Product code"}"#),
                );
                BTreeMap::new()
            }
        },
    };
    let namespace = p.namespace.as_deref().map(str::trim).map(str::to_string);
    if let Some(ns) = &namespace {
        if kind == ImportKind::Products {
            errors.push(
                FieldError::new("namespace", "products are keyed by their SKU")
                    .value(ns)
                    .accepted("no namespace with kind=products"),
            );
        } else if Namespace::parse(ns).is_err() {
            errors.push(
                FieldError::new("namespace", "not an identifier namespace")
                    .value(ns)
                    .accepted(Namespace::ACCEPTED),
            );
        }
    }
    let options = ImportOptions {
        dry_run,
        on_error,
        mapping,
        namespace,
    };
    Ok(errors.finish(|| (kind, format, options))?)
}

/// The format a media type or a file name says.
pub(crate) fn format_of(media: Option<&str>, filename: Option<&str>) -> Option<ImportFormat> {
    let media = media
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("text/csv") => return Some(ImportFormat::Csv),
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
            return Some(ImportFormat::Ndjson)
        }
        _ => {}
    }
    let name = filename?.to_ascii_lowercase();
    if name.ends_with(".csv") {
        Some(ImportFormat::Csv)
    } else if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        Some(ImportFormat::Ndjson)
    } else {
        None
    }
}

fn no_format() -> ApiError {
    ApiError::field(
        FieldError::new("format", "the file's format is not known").accepted(
            "format=csv or format=ndjson, or Content-Type text/csv or application/x-ndjson",
        ),
    )
}

/// A file arriving, counted against the limit; it times out when no
/// byte of it arrives for `idle` (the request as a whole has no time
/// limit: a large file takes as long as it takes).
fn limited<E>(
    chunks: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: u64,
    idle: std::time::Duration,
    malformed: impl Fn(E) -> ApiError,
) -> impl Stream<Item = Result<Bytes, ApiError>> + Unpin {
    let mut taken = 0u64;
    let counted = chunks.map(move |chunk| {
        let chunk = chunk.map_err(&malformed)?;
        taken += chunk.len() as u64;
        if taken > max {
            return Err(ApiError::PayloadTooLarge(
                usize::try_from(max).unwrap_or(usize::MAX),
            ));
        }
        Ok(chunk)
    });
    Box::pin(futures_util::stream::unfold(
        (counted, false),
        move |(mut chunks, ended)| async move {
            if ended {
                return None;
            }
            match tokio::time::timeout(idle, chunks.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), (chunks, false))),
                Ok(Some(Err(e))) => Some((Err(e), (chunks, true))),
                Ok(None) => None,
                Err(_) => Some((Err(ApiError::Timeout), (chunks, true))),
            }
        },
    ))
}

/// Import a file of orders, or of products.
///
/// The body is the file (`Content-Type: text/csv` or `application/x-ndjson`,
/// options in the query) or `multipart/form-data` (options as parts, then
/// the part named `file`). The file streams into the file store (at most
/// `files.import_max_bytes`, 4 GiB by default) and is imported in the
/// background: follow it at `Location`. A CSV has one row per item, rows
/// of one order together, grouped by `external_id`; NDJSON has one order
/// per line in this API's shape, with an external id. Orders are created
/// or updated by their external id (running a file again changes
/// nothing), checked and priced as `PUT /v1/orders/external/…` does, and
/// carry the import's id as their `batch_id`. No buyer is messaged.
/// With `kind=products` (a key that may change the catalog), each row or
/// line is a product in the shape `POST /v1/products` takes, created or
/// changed by its SKU; `on_hand` sets the stock on hand.
#[utoipa::path(
    post, path = "/v1/imports", tag = "imports",
    params(ImportParams),
    request_body(content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
        (ImportUpload = "multipart/form-data"),
    )),
    responses(
        (status = 202, description = "Stored and queued", body = ImportResponse, headers(("Location" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not write orders (or, for products, change the catalog)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over files.import_max_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An option, the format, or an empty file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The file store or the database is unavailable; nothing was kept", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_import(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(mut params): QueryParams<ImportParams>,
    request: Request,
) -> Result<Response, ApiError> {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let max = state.config().files.import_max_bytes;
    let idle = std::time::Duration::from_secs(state.config().http.request_timeout_secs.max(1));
    let now = Timestamp::now();
    let id = ImportId::new_at(now);
    let key = crate::imports::file_key(principal.tenant_id, id);
    let files = state.files();
    let multipart = media
        .as_deref()
        .is_some_and(|m| m.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (kind, format, options, filename, bytes) = if multipart {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::field(FieldError::new("body", e.body_text())))?;
        let bad = |e: axum::extract::multipart::MultipartError| {
            ApiError::field(
                FieldError::new(
                    "body",
                    format!("the multipart body is not valid: {}", e.body_text()),
                )
                .accepted("multipart/form-data: the options as parts, then one part named file"),
            )
        };
        let mut stored = None;
        while let Some(field) = form.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or("").to_string();
            if stored.is_some() {
                let _ = files.delete(&key).await;
                return Err(ApiError::field(
                    FieldError::new(name, "a part after the file")
                        .accepted("the options before the part named file"),
                ));
            }
            if name != "file" {
                let slot = match name.as_str() {
                    "kind" => &mut params.kind,
                    "format" => &mut params.format,
                    "dry_run" => &mut params.dry_run,
                    "on_error" => &mut params.on_error,
                    "mapping" => &mut params.mapping,
                    "namespace" => &mut params.namespace,
                    _ => {
                        return Err(ApiError::field(
                            FieldError::new(name.clone(), "not a part of an import")
                                .value(&name)
                                .accepted(
                                    "kind, format, dry_run, on_error, mapping, namespace, file",
                                ),
                        ))
                    }
                };
                *slot = Some(option_text(field, &name).await?);
                continue;
            }
            let (kind, format, options) = options(&params, &principal)?;
            let filename = super::receipts::filename(field.file_name());
            let format = format
                .or_else(|| format_of(field.content_type(), filename.as_deref()))
                .ok_or_else(no_format)?;
            let chunks = futures_util::stream::unfold(field, |mut field| async move {
                match field.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), field)),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), field)),
                }
            });
            let bytes = store(files, &key, limited(Box::pin(chunks), max, idle, bad)).await?;
            stored = Some((kind, format, options, filename, bytes));
        }
        stored.ok_or_else(|| {
            ApiError::field(
                FieldError::new("file", "no file was sent")
                    .accepted("a multipart/form-data part named file"),
            )
        })?
    } else {
        let (kind, format, options) = options(&params, &principal)?;
        let format = format
            .or_else(|| format_of(media.as_deref(), None))
            .ok_or_else(no_format)?;
        let malformed = |e: axum::Error| ApiError::field(FieldError::new("body", e.to_string()));
        let chunks = request.into_body().into_data_stream();
        let bytes = store(files, &key, limited(chunks, max, idle, malformed)).await?;
        (kind, format, options, None, bytes)
    };
    let upload = Stored {
        id,
        key,
        kind,
        format,
        options,
        filename,
        bytes,
    };
    let import = enqueue(&state, principal.tenant_id, principal.actor(), upload).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(ImportResponse::of(&import, Some(Vec::new()))),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/imports/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A file in the file store, to be imported.
pub(crate) struct Stored {
    pub id: ImportId,
    /// Where it is in the file store.
    pub key: String,
    pub kind: ImportKind,
    pub format: ImportFormat,
    pub options: ImportOptions,
    pub filename: Option<String>,
    pub bytes: u64,
}

/// Queues a stored file's import and wakes this node's importer; an empty
/// file is refused (and dropped), as is everything when the row cannot be
/// written.
pub(crate) async fn enqueue(
    state: &AppState,
    tenant: ordo_domain::TenantId,
    actor: ordo_domain::Actor,
    stored: Stored,
) -> Result<Import, ApiError> {
    let files = state.files();
    let Stored {
        id,
        key,
        kind,
        format,
        options,
        filename,
        bytes,
    } = stored;
    if bytes == 0 {
        let _ = files.delete(&key).await;
        return Err(ApiError::field(
            FieldError::new("file", "the file is empty")
                .accepted("a CSV with a header row, or NDJSON"),
        ));
    }
    let now = Timestamp::now();
    let import = Import {
        id,
        tenant_id: tenant,
        kind,
        format,
        options,
        state: ImportState::Queued,
        file: key.clone(),
        bytes,
        filename,
        created_by: actor,
        counts: ImportCounts::default(),
        done_line: 0,
        errors: 0,
        runs: 0,
        checked: false,
        last_error: None,
        failure: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    if let Err(e) = state.store().insert_import(import.clone()).await {
        let _ = files.delete(&key).await;
        return Err(e.into());
    }
    state.imports_queued().notify_one();
    Ok(import)
}

/// The longest option part of a multipart upload.
const MAX_OPTION_BYTES: usize = 64 * 1024;

/// An option part's text, at most [`MAX_OPTION_BYTES`].
async fn option_text(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, ApiError> {
    let refused = |reason: String| {
        ApiError::field(
            FieldError::new(name, reason)
                .accepted(format!("UTF-8 text of at most {MAX_OPTION_BYTES} bytes")),
        )
    };
    let mut text = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| refused(format!("the part cannot be read: {}", e.body_text())))?
    {
        if text.len() + chunk.len() > MAX_OPTION_BYTES {
            return Err(refused("too long for an option".into()));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).map_err(|_| refused("not UTF-8 text".into()))
}

/// Streams a file into the file store.
async fn store(
    files: &crate::files::Files,
    key: &str,
    chunks: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
) -> Result<u64, ApiError> {
    files.put_stream(key, chunks).await.map_err(|e| match e {
        Streamed::Source(e) => e,
        Streamed::Store(e) => e.into(),
    })
}

/// An import the caller may see: its tenant's, and a vendor's own.
async fn visible(state: &AppState, principal: &Principal, id: &str) -> Result<Import, ApiError> {
    let id = ImportId::parse(id).ok_or(ApiError::NotFound("import"))?;
    let import = state
        .store()
        .import(principal.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("import"))?;
    let scope = principal.scope();
    if scope.creator.is_some_and(|c| c != import.created_by.id) {
        return Err(ApiError::NotFound("import"));
    }
    Ok(import)
}

/// An import: its state, counts and first problems.
#[utoipa::path(
    get, path = "/v1/imports/{id}", tag = "imports",
    params(("id" = String, Path, description = "Import id")),
    responses(
        (status = 200, description = "The import", body = ImportResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_import(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOrders, "read imports")?;
    let import = visible(&state, &principal, &id).await?;
    let errors = state
        .store()
        .import_errors(import.tenant_id, import.id, 0, ERRORS_SHOWN)
        .await?;
    Ok(axum::Json(ImportResponse::of(&import, Some(errors))).into_response())
}

/// Listing imports.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListImportsParams {
    /// 1 to 100 (default 50).
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// The tenant's imports (a vendor's own), newest first.
#[utoipa::path(
    get, path = "/v1/imports", tag = "imports",
    params(ListImportsParams),
    responses(
        (status = 200, description = "A page of imports", body = ImportPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_imports(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<ListImportsParams>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOrders, "read imports")?;
    let limit = page_size(params.limit.as_deref()).map_err(ApiError::field)?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(ImportId::parse(c).ok_or_else(|| {
            ApiError::field(
                FieldError::new("cursor", "not a cursor of this list")
                    .value(c)
                    .accepted("the next_cursor of the previous page"),
            )
        })?),
    };
    let creator = principal.scope().creator;
    let mut data = Vec::new();
    let mut cursor = before;
    // A vendor's page is filled from the tenant's imports it sent.
    loop {
        let page = state
            .store()
            .imports(principal.tenant_id, cursor, limit)
            .await?;
        let full = page.len() == limit as usize;
        cursor = page.last().map(|i| i.id);
        data.extend(
            page.into_iter()
                .filter(|i| creator.as_ref().is_none_or(|c| *c == i.created_by.id))
                .take(limit as usize - data.len()),
        );
        if !full || data.len() == limit as usize {
            break;
        }
    }
    let next_cursor = (data.len() == limit as usize)
        .then(|| data.last().map(|i: &Import| i.id.to_string()))
        .flatten();
    Ok(axum::Json(ImportPage {
        data: data.iter().map(|i| ImportResponse::of(i, None)).collect(),
        next_cursor,
    })
    .into_response())
}

/// An import's problems as CSV, to fix and send again.
///
/// For a CSV: the rows of the file that were not imported, as they were,
/// each after two columns, `error_line` and `errors` (its problems;
/// every row of an order that failed is there, so the fixed file holds
/// whole orders), which an import reads over. For NDJSON: `line`, `order`,
/// `field`, `value`, `reason`, one row a problem. Only the first 100,000
/// problems of an import are kept.
#[utoipa::path(
    get, path = "/v1/imports/{id}/errors.csv", tag = "imports",
    params(("id" = String, Path, description = "Import id")),
    responses(
        (status = 200, description = "The problems", content_type = "text/csv", body = String),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn import_errors_csv(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOrders, "read imports")?;
    let import = visible(&state, &principal, &id).await?;
    let mut errors: Vec<ordo_store::ImportError> = Vec::new();
    loop {
        let from = errors.last().map_or(0, |e| e.seq + 1);
        let page = state
            .store()
            .import_errors(import.tenant_id, import.id, from, 1000)
            .await?;
        let last = page.len() < 1000;
        errors.extend(page);
        if last {
            break;
        }
    }
    let reader = match import.format {
        ImportFormat::Csv => state.files().reader(&import.file).await?,
        ImportFormat::Ndjson => None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let kind = import.kind;
    let options = CsvOptions {
        kind,
        mapping: import.options.mapping.clone(),
        namespace: import.options.namespace.clone(),
    };
    tokio::task::spawn_blocking(move || {
        let mut out = Chunked {
            tx,
            buf: Vec::new(),
        };
        let written = match reader {
            Some(reader) => failed_rows(reader, &options, &errors, &mut out),
            None => problem_rows(kind, &errors, &mut out),
        };
        if let Err(e) = written {
            let _ = out.tx.blocking_send(Err(e));
        } else {
            let _ = out.flush_all();
        }
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-errors.csv\"",
        import.id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok((StatusCode::OK, headers, body).into_response())
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Bytes handed to the response in pieces of about 64 KiB.
struct Chunked {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Chunked {
    fn flush_all(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for Chunked {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 16 {
            self.flush_all()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The failed rows of a CSV, as they are, after their problems.
fn failed_rows(
    reader: impl std::io::Read,
    options: &CsvOptions,
    errors: &[ordo_store::ImportError],
    out: &mut Chunked,
) -> std::io::Result<()> {
    let mut by_line: HashMap<u64, Vec<String>> = HashMap::new();
    let mut keys = HashSet::new();
    for e in errors {
        let text = match &e.value {
            Some(v) => format!("{}: {} ({v:?})", e.field, e.reason),
            None => format!("{}: {}", e.field, e.reason),
        };
        by_line.entry(e.line).or_default().push(text);
        // An order's other rows go with it; a product is one row.
        if let Some(k) = e
            .order_key
            .as_ref()
            .filter(|_| options.kind == ImportKind::Orders)
        {
            keys.insert(k.clone());
        }
    }
    let mut csv = super::export::csv_writer(out);
    let rows = match RawRows::open(reader, options) {
        Ok(rows) => rows,
        // The header itself was the problem: the problems alone.
        Err(_) => {
            let out = csv.into_inner().map_err(|e| e.into_error())?;
            return problem_rows(options.kind, errors, out);
        }
    };
    let mut header = csv::ByteRecord::new();
    header.push_field(b"error_line");
    header.push_field(b"errors");
    // A file sent back after fixing has them already: not twice.
    let keep: Vec<usize> = rows
        .header()
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            !import_file::ERROR_COLUMNS
                .iter()
                .any(|c| c.as_bytes() == *h)
        })
        .map(|(i, _)| i)
        .collect();
    for i in &keep {
        header.push_field(&rows.header()[*i]);
    }
    csv.write_byte_record(&header)?;
    for (line, key, record) in rows {
        let own = by_line.get(&line);
        let of_failed_order = key.as_ref().is_some_and(|k| keys.contains(k));
        if own.is_none() && !of_failed_order {
            continue;
        }
        let mut row = csv::ByteRecord::new();
        row.push_field(line.to_string().as_bytes());
        let text = match own {
            Some(problems) => problems.join("; "),
            None => "not imported with its order: another of its rows has a problem".into(),
        };
        row.push_field(text.as_bytes());
        if let Some(record) = record {
            for i in &keep {
                row.push_field(record.get(*i).unwrap_or(b""));
            }
        }
        csv.write_byte_record(&row)?;
    }
    csv.flush()?;
    Ok(())
}

/// The problems alone: `line,field,value,reason`.
fn problem_rows(
    kind: ImportKind,
    errors: &[ordo_store::ImportError],
    out: &mut Chunked,
) -> std::io::Result<()> {
    let mut csv = super::export::csv_writer(out);
    let key = match kind {
        ImportKind::Orders => "order",
        ImportKind::Products => "sku",
    };
    csv.write_record(["line", key, "field", "value", "reason"])?;
    for e in errors {
        csv.write_record([
            e.line.to_string().as_str(),
            e.order_key.as_deref().unwrap_or(""),
            e.field.as_str(),
            e.value.as_deref().unwrap_or(""),
            e.reason.as_str(),
        ])?;
    }
    csv.flush()?;
    Ok(())
}
