//! Imports, run in the background. Every node looks for an import to run
//! (one at a time), claims it for a lease and reads its file from the file
//! store a chunk of orders at a time: the chunk's products are read at
//! once, its orders go through the same checks, pricing and upsert by
//! external id as `PUT /v1/orders/external/…` (a few at once, so SQLite's
//! writer commits them together), and then the import's progress, the
//! problems found and a longer lease are saved in one write. A node that
//! dies leaves its claim to lapse; the node that takes the import over
//! goes on after the last saved line, so nothing is written twice and
//! nothing is skipped.
//!
//! Under `reject_all` a first pass checks every order without writing
//! anything, and the writing pass runs only when none has a problem. A
//! dry run is that checking pass alone: its counts say what a real run
//! would create, update and leave unchanged.

use std::collections::HashSet;
use std::io::BufRead;
use std::time::Duration;

use futures_util::StreamExt;
use ordo_domain::{FieldError, ImportId, OrderId, Reconcile, Refusal, TenantId, Timestamp};
use ordo_store::{
    ClaimedImport, Import, ImportClaim, ImportError, ImportFailure, ImportFormat, ImportKind,
    ImportState, OnError, OrderLookup, Put, Scope, MAX_IMPORT_ERRORS,
};
use tokio::sync::{mpsc, watch};

use crate::api::error::ApiError;
use crate::api::orders::{put_by_key, TakenIn};
use crate::api::products::Upserted;
use crate::app::AppState;
use crate::catalog::Catalog;
use crate::import_file::{self, CsvOptions, Entry, FileError, FileOrder, RowError};
use crate::orders::Author;

/// Orders read, checked and written together: their products are read at
/// once, and progress is saved after each chunk.
const CHUNK: usize = 4000;

/// Orders of a chunk written at once.
const WRITERS: usize = 512;

/// How long a run that paused (the database or a provider unavailable)
/// waits before it goes on.
const PAUSE_MS: i64 = 30_000;

/// The longest NDJSON line read (one order).
const MAX_NDJSON_LINE: usize = 1 << 20;

/// Where an import's file is kept in the file store.
pub fn file_key(tenant: TenantId, id: ImportId) -> String {
    format!("imports/{tenant}/{id}")
}

/// Runs imports until `stop` turns true; an import under way stops after
/// the chunk it is writing and saves how far it got.
pub async fn run(state: AppState, poll: Duration, mut stop: watch::Receiver<bool>) {
    let node = crate::jobs::node_name();
    let lease_ms = i64::try_from(state.config().jobs.lease_secs.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    loop {
        if *stop.borrow() {
            return;
        }
        let claim = ImportClaim {
            node: node.clone(),
            now: Timestamp::now(),
            lease_ms,
        };
        match state.store().claim_import(claim).await {
            Ok(Some(claimed)) => {
                tracing::info!(import = %claimed.import.id, run = claimed.import.runs, "running an import");
                Runner {
                    state: &state,
                    claimed,
                    lease_ms,
                    stop: stop.clone(),
                    errors: Vec::new(),
                    seen: HashSet::new(),
                    made: HashSet::new(),
                }
                .run()
                .await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for imports to run"),
        }
        tokio::select! {
            () = state.imports_queued().notified() => {}
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Why a run ended before the end of its file.
enum Halt {
    /// The file as a whole cannot be imported.
    File(FileError),
    /// Something it needs is unavailable for now: it goes on later.
    Pause(String),
    /// The node is shutting down: it goes on at the next start.
    Stopping,
    /// Another node runs the import now.
    Lost,
}

/// What one order came to.
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed(Vec<RowError>),
}

/// A file read: an order (or a refusal) at a time.
enum Read {
    Entry(Entry),
    /// The whole file was read.
    End,
    Failed(FileError),
    Pause(String),
}

struct Runner<'a> {
    state: &'a AppState,
    claimed: ClaimedImport,
    lease_ms: i64,
    stop: watch::Receiver<bool>,
    /// Problems found since the last save.
    errors: Vec<ImportError>,
    /// The keys of the NDJSON orders, or the SKUs, read in this pass
    /// (hashed).
    seen: HashSet<u128>,
    /// The SKUs a dry run found it would create (hashed).
    made: HashSet<u128>,
}

impl Runner<'_> {
    fn import(&self) -> &Import {
        &self.claimed.import
    }

    async fn run(mut self) {
        // Running, for all to see, from the start (the first chunk may be
        // a while: a CSV is read through once before it).
        let until = Timestamp::now().plus_millis(self.lease_ms);
        if let Err(Halt::Lost) = self.save(until).await {
            return;
        }
        let ended = self.passes().await;
        let now = Timestamp::now();
        let until = match ended {
            Ok(()) => {
                let import = &mut self.claimed.import;
                import.state = ImportState::Succeeded;
                import.last_error = None;
                import.finished_at = Some(now);
                now
            }
            Err(Halt::File(e)) => {
                let import = &mut self.claimed.import;
                import.state = ImportState::Failed;
                import.failure = Some(ImportFailure {
                    field: e.field,
                    value: e.value,
                    reason: e.reason,
                    accepted: e.accepted,
                });
                import.finished_at = Some(now);
                now
            }
            Err(Halt::Pause(reason)) => {
                tracing::warn!(import = %self.import().id, %reason, "an import paused; it goes on shortly");
                self.claimed.import.last_error = Some(reason);
                now.plus_millis(PAUSE_MS)
            }
            Err(Halt::Stopping) => now,
            Err(Halt::Lost) => {
                tracing::warn!(import = %self.import().id, "another node took an import over");
                return;
            }
        };
        match self.save(until).await {
            Ok(()) => {
                let import = self.import();
                if import.state.is_finished() {
                    tracing::info!(import = %import.id, state = import.state.as_str(), created = import.counts.created, updated = import.counts.updated, unchanged = import.counts.unchanged, failed = import.counts.failed, "an import finished");
                }
            }
            Err(_) => {
                tracing::warn!(import = %self.import().id, "could not save how an import ended; it runs again when its claim lapses");
            }
        }
    }

    /// Saves progress and the problems found since the last save, and
    /// holds the claim until `until`.
    async fn save(&mut self, until: Timestamp) -> Result<(), Halt> {
        self.claimed.import.updated_at = Timestamp::now();
        // Kept until saved: a failed save sends them again (the store
        // ignores those it has).
        match self
            .state
            .store()
            .save_import(&self.claimed, self.errors.clone(), until)
            .await
        {
            Ok(true) => {
                self.errors.clear();
                Ok(())
            }
            Ok(false) => Err(Halt::Lost),
            Err(e) => Err(Halt::Pause(e.to_string())),
        }
    }

    /// Runs the checking pass (under `reject_all`) and the writing one.
    async fn passes(&mut self) -> Result<(), Halt> {
        let import = self.import();
        let check_first = import.options.on_error == OnError::RejectAll && !import.options.dry_run;
        if check_first && !import.checked {
            self.pass(false).await?;
            let failed = self.import().counts.failed;
            if failed > 0 {
                return Err(Halt::File(FileError {
                    field: "file".into(),
                    value: None,
                    reason: format!(
                        "{failed} {}{} cannot be imported, so nothing was (on_error is reject_all): fix the lines in errors.csv and send the file again",
                        if self.import().kind == ImportKind::Products { "product" } else { "order" },
                        if failed == 1 { "" } else { "s" }
                    ),
                    accepted: None,
                }));
            }
            let import = &mut self.claimed.import;
            import.checked = true;
            import.done_line = 0;
            import.counts = ordo_store::ImportCounts::default();
            let until = Timestamp::now().plus_millis(self.lease_ms);
            self.save(until).await?;
        }
        let write = !self.import().options.dry_run;
        self.pass(write).await
    }

    /// Reads the whole file (after the lines already done), checking each
    /// order and writing it when `write`.
    async fn pass(&mut self, write: bool) -> Result<(), Halt> {
        let settings = self
            .state
            .settings()
            .get(self.state.store(), self.import().tenant_id)
            .await
            .map_err(|e| Halt::Pause(e.to_string()))?;
        self.seen.clear();
        self.made.clear();
        let (tx, mut rx) = mpsc::channel(CHUNK * 2);
        let reading = tokio::spawn(read_file(self.state.clone(), self.import().clone(), tx));
        let mut chunk = Vec::with_capacity(CHUNK);
        let ended = loop {
            match rx.recv().await {
                Some(Read::Entry(entry)) => {
                    chunk.push(entry);
                    if chunk.len() == CHUNK {
                        let entries = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if let Err(halt) = self.chunk(write, &settings, entries).await {
                            break Err(halt);
                        }
                        if *self.stop.borrow() {
                            break Err(Halt::Stopping);
                        }
                    }
                }
                Some(Read::Failed(e)) => break Err(Halt::File(e)),
                Some(Read::Pause(reason)) => break Err(Halt::Pause(reason)),
                Some(Read::End) => break self.chunk(write, &settings, chunk).await,
                // The reader stopped without saying why (it panicked).
                None => break Err(Halt::Pause("the file's reader stopped".into())),
            }
        };
        drop(rx);
        reading.abort();
        ended
    }

    /// Checks (and writes) a chunk's orders, then saves progress.
    async fn chunk(
        &mut self,
        write: bool,
        settings: &ordo_domain::TenantSettings,
        entries: Vec<Entry>,
    ) -> Result<(), Halt> {
        let done = self.import().done_line;
        let mut last_line = done;
        let mut orders = Vec::with_capacity(entries.len());
        let mut products = Vec::new();
        let mut refused = Vec::new();
        for mut entry in entries {
            let line = last_line_of(&entry);
            let key = match &entry {
                // A CSV's repeated keys are its orders' rows apart (refused
                // by the reader); an NDJSON order is on one line.
                Entry::Order(o) if self.import().format == ImportFormat::Ndjson => {
                    Some(o.key.clone())
                }
                Entry::Product(p) => Some(p.product.sku.trim().to_string()),
                _ => None,
            };
            if let Some(key) = key.filter(|k| !self.seen.insert(import_file::key_hash(k))) {
                entry = self.repeated(line, key);
            }
            if line <= done {
                // Done before a pause: a parent a checking pass takes as made.
                if let (false, Entry::Product(p)) = (write, &entry) {
                    self.made
                        .insert(import_file::key_hash(p.product.sku.trim()));
                }
                continue;
            }
            last_line = last_line.max(line);
            match entry {
                Entry::Order(order) => orders.push(*order),
                Entry::Product(product) => products.push(*product),
                Entry::Refused { key, errors, again } => refused.push((key, errors, again)),
            }
        }
        let skus: Vec<_> = orders.iter().flat_map(|o| o.request.skus()).collect();
        let catalog = Catalog::read(
            self.state.store(),
            self.import().tenant_id,
            skus,
            settings.free_text_lines,
        )
        .await
        .map_err(|e| Halt::Pause(e.to_string()))?;
        let author = self.author();
        let mut outcomes: Vec<(Option<String>, Result<Outcome, String>)> = {
            let (this, catalog, author) = (&*self, &catalog, &author);
            futures_util::stream::iter(orders)
                .map(|order| async move {
                    let key = Some(order.key.clone());
                    (key, this.one(write, settings, catalog, author, order).await)
                })
                .buffered(WRITERS)
                .collect()
                .await
        };
        // Products one after another, in the file's order (a variant's
        // parent may be a few lines up). A pause or a stop cuts the chunk
        // at the product it reached: what came before is saved as done.
        let mut cut = None;
        for product in products {
            let line = product.line;
            if *self.stop.borrow() {
                cut = Some((line, Halt::Stopping));
                break;
            }
            let key = Some(product.product.sku.trim().to_string());
            match self.product(write, &author, product).await {
                Err(reason) => {
                    cut = Some((line, Halt::Pause(reason)));
                    break;
                }
                Ok(outcome) => {
                    if let (false, Some(sku), Outcome::Created) = (write, &key, &outcome) {
                        self.made.insert(import_file::key_hash(sku));
                    }
                    outcomes.push((key, Ok(outcome)));
                }
            }
        }
        if let Some((line, _)) = &cut {
            refused.retain(|(_, errors, _)| errors.iter().all(|e| e.line < *line));
            last_line = line.saturating_sub(1);
        }
        // A chunk of orders paused part-way is done again, whole, when the
        // run goes on.
        if let Some((_, Err(reason))) = outcomes.iter().find(|(_, o)| o.is_err()) {
            return Err(Halt::Pause(reason.clone()));
        }
        for (key, outcome) in outcomes {
            let counts = &mut self.claimed.import.counts;
            match outcome.map_err(Halt::Pause)? {
                Outcome::Created => counts.created += 1,
                Outcome::Updated => counts.updated += 1,
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::Failed(errors) => refused.push((key, errors, false)),
            }
        }
        refused.sort_by_key(|(_, errors, _)| errors.first().map_or(0, |e| e.line));
        for (key, errors, again) in refused {
            self.failed(key, errors, again);
        }
        let import = &mut self.claimed.import;
        import.done_line = last_line;
        import.counts.lines = import.counts.lines.max(last_line);
        import.last_error = None;
        let until = Timestamp::now().plus_millis(self.lease_ms);
        self.save(until).await?;
        cut.map_or(Ok(()), |(_, halt)| Err(halt))
    }

    /// The refusal of an order or product a file has twice, on its later
    /// line.
    fn repeated(&self, line: u64, key: String) -> Entry {
        let (field, what) = match self.import().kind {
            ImportKind::Orders => ("external_ids", "an order with this external id"),
            ImportKind::Products => ("sku", "a product with this SKU"),
        };
        Entry::Refused {
            key: Some(key.clone()),
            errors: vec![RowError {
                line,
                field: field.into(),
                value: Some(key),
                reason: format!("an earlier line has {what}: each once a file"),
            }],
            again: false,
        }
    }

    /// Checks one product, and writes it when `write`; an error pauses.
    async fn product(
        &self,
        write: bool,
        author: &Author,
        file: import_file::FileProduct,
    ) -> Result<Outcome, String> {
        let import = self.import();
        let mut product = file.product;
        // A dry run writes no parent: one it would make a few lines up is
        // taken as there.
        if !write
            && product
                .variant_of
                .as_deref()
                .is_some_and(|p| self.made.contains(&import_file::key_hash(p.trim())))
        {
            product.variant_of = None;
        }
        let reason = format!("import {}", import.id);
        let put = crate::api::products::put_by_sku(
            self.state,
            import.tenant_id,
            author.actor.clone(),
            product,
            &reason,
            write,
        )
        .await;
        match put {
            Ok(Upserted::Created) => Ok(Outcome::Created),
            Ok(Upserted::Updated) => Ok(Outcome::Updated),
            Ok(Upserted::Unchanged) => Ok(Outcome::Unchanged),
            Err(e) => refusal(e, &[file.line], import.format == ImportFormat::Csv),
        }
    }

    /// Counts a failed order (once, when its rows are apart: `again` for
    /// its later parts) and keeps its problems (up to the limit).
    fn failed(&mut self, key: Option<String>, errors: Vec<RowError>, again: bool) {
        let import = &mut self.claimed.import;
        if !again {
            import.counts.failed += 1;
        }
        for e in errors {
            if import.errors >= MAX_IMPORT_ERRORS {
                break;
            }
            self.errors.push(ImportError {
                seq: import.errors,
                line: e.line,
                order_key: key.clone(),
                field: e.field,
                value: e.value,
                reason: e.reason,
            });
            import.errors += 1;
        }
    }

    /// Who writes the import's orders: the key that sent the file, seeing
    /// what it sees, with the import's id as their batch id.
    fn author(&self) -> Author {
        let import = self.import();
        let vendor = import
            .created_by
            .role
            .as_deref()
            .and_then(ordo_domain::Role::parse)
            .is_some_and(ordo_domain::Role::sees_only_own_orders);
        Author {
            tenant_id: import.tenant_id,
            actor: import.created_by.clone(),
            scope: Scope {
                tenant_id: import.tenant_id,
                creator: vendor.then(|| import.created_by.id.clone()),
            },
            batch: Some(import.id.to_string()),
        }
    }

    /// Checks one order, and writes it when `write`. An error is a reason
    /// to pause the whole import (something it needs is unavailable).
    async fn one(
        &self,
        write: bool,
        settings: &ordo_domain::TenantSettings,
        catalog: &Catalog,
        author: &Author,
        order: FileOrder,
    ) -> Result<Outcome, String> {
        let csv = self.import().format == ImportFormat::Csv;
        let FileOrder {
            key,
            item_lines,
            request,
        } = order;
        let refused = |e: ApiError| refusal(e, &item_lines, csv);
        let Some(key) = key
            .split_once(':')
            .map(|(ns, value)| crate::api::orders::external_key(ns, value))
        else {
            return refused(ApiError::field(
                FieldError::new("external_ids", "not a namespace and a value").value(&key),
            ));
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => return refused(e),
        };
        let part = catalog.part(&request.skus());
        let mut taken = match TakenIn::new(settings.clone(), &part, request, false) {
            Ok(taken) => taken,
            Err(e) => return refused(e),
        };
        // No buyer is told of an imported order.
        taken.terms.notify = false;
        if write {
            return match put_by_key(self.state, author, key, taken).await {
                Ok(Put::Created(_)) => Ok(Outcome::Created),
                Ok(Put::Updated(_)) => Ok(Outcome::Updated),
                Ok(Put::Unchanged(existing)) => Ok(self.written_before(&existing)),
                Err(e) => refused(e),
            };
        }
        let mut draft = taken.draft;
        if let Err(e) = crate::pricing::price_draft(
            self.state,
            author.tenant_id,
            &taken.settings,
            &mut draft,
            &taken.ask,
        )
        .await
        {
            return refused(e);
        }
        draft.external_ids.insert(key.0.clone(), key.1.clone());
        let existing = match self
            .state
            .store()
            .order(&author.scope, &OrderLookup::External(key.0, key.1))
            .await
        {
            Ok(existing) => existing,
            Err(e) => return refused(e.into()),
        };
        let Some(mut existing) = existing else {
            return Ok(Outcome::Created);
        };
        match existing.reconcile(draft) {
            Ok(Reconcile::Unchanged) => Ok(Outcome::Unchanged),
            Ok(Reconcile::Edit(patch)) => match existing.edit(*patch, Timestamp::now()) {
                Ok(_) => Ok(Outcome::Updated),
                Err(e) => refused(Refusal::from(e).into()),
            },
            Err(e) => refused(Refusal::from(e).into()),
        }
    }

    /// What an order the file leaves unchanged was: written by this very
    /// import before it was taken over (created, or updated, by it) or
    /// already as the file has it.
    fn written_before(&self, order: &ordo_domain::Order) -> Outcome {
        let import = self.import();
        if import.runs <= 1 || order.batch_id.as_deref() != Some(import.id.to_string().as_str()) {
            return Outcome::Unchanged;
        }
        if OrderId::lowest_at(import.created_at) <= order.id {
            Outcome::Created
        } else {
            Outcome::Updated
        }
    }
}

/// An order or product refused, or, when something it needs is
/// unavailable (the database, a pricing provider), a reason to pause.
fn refusal(e: ApiError, lines: &[u64], csv: bool) -> Result<Outcome, String> {
    if matches!(
        e,
        ApiError::Unavailable(_) | ApiError::Timeout | ApiError::PricingProvider(_)
    ) {
        return Err(e.to_string());
    }
    Ok(Outcome::Failed(row_errors(&e, lines, csv)))
}

/// The last line an entry was read from.
fn last_line_of(entry: &Entry) -> u64 {
    match entry {
        Entry::Order(o) => o.item_lines.iter().copied().max().unwrap_or(0),
        Entry::Product(p) => p.line,
        Entry::Refused { errors, .. } => errors.iter().map(|e| e.line).max().unwrap_or(0),
    }
}

/// An API refusal of an order, as problems with the file's lines: a
/// problem with an item is on that item's line, others on the order's
/// first line; in a CSV, fields are named by its columns.
fn row_errors(e: &ApiError, item_lines: &[u64], csv: bool) -> Vec<RowError> {
    let first = item_lines.iter().copied().min().unwrap_or(0);
    let problem = e.to_problem();
    if problem.errors.is_empty() {
        return vec![RowError {
            line: first,
            field: "order".into(),
            value: None,
            reason: problem.detail,
        }];
    }
    problem
        .errors
        .into_iter()
        .map(|fe| {
            let item = fe
                .field
                .strip_prefix("items[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok());
            let line = item
                .and_then(|i| item_lines.get(i).copied())
                .unwrap_or(first);
            let reason = match &fe.accepted {
                Some(accepted) => format!("{}; accepted: {accepted}", fe.reason),
                None => fe.reason.clone(),
            };
            RowError {
                line,
                field: if csv { column_of(&fe.field) } else { fe.field },
                value: fe.value,
                reason,
            }
        })
        .collect()
}

/// The CSV column an API field is read from: `items[2].unit_price` is
/// `item_unit_price`, `buyer.phone` is `buyer_phone`,
/// `shipping_address.city` is `shipping_city`.
fn column_of(field: &str) -> String {
    let (head, rest) = match field.split_once('.') {
        Some((head, rest)) => (head, rest),
        None => return field.to_string(),
    };
    let prefix = if head.starts_with("items[") {
        "item"
    } else if head == "shipping_address" {
        "shipping"
    } else if head == "buyer" {
        "buyer"
    } else {
        return field.to_string();
    };
    let column = format!("{prefix}_{rest}");
    if import_file::columns(ImportKind::Orders).any(|c| c == column) {
        column
    } else {
        field.to_string()
    }
}

/// Reads an import's file into `tx`, an order at a time, on a blocking
/// thread. A CSV is read twice: first for the orders whose rows are apart.
async fn read_file(state: AppState, import: Import, tx: mpsc::Sender<Read>) {
    let open = || async {
        match state.files().reader(&import.file).await {
            Ok(Some(reader)) => Ok(reader),
            Ok(None) => Err(Read::Failed(FileError {
                field: "file".into(),
                value: None,
                reason: "the import's file is no longer in the file store".into(),
                accepted: None,
            })),
            Err(e) => Err(Read::Pause(e.to_string())),
        }
    };
    let reader = match open().await {
        Ok(reader) => reader,
        Err(read) => {
            let _ = tx.send(read).await;
            return;
        }
    };
    let blocking = match (import.kind, import.format) {
        (ImportKind::Products, ImportFormat::Csv) => {
            let options = CsvOptions {
                kind: ImportKind::Products,
                mapping: import.options.mapping.clone(),
                namespace: None,
            };
            tokio::task::spawn_blocking(move || {
                let (reader, failed) = Watched::new(reader);
                let read = import_file::csv_products(reader, &options);
                send_all(read, &failed, &tx);
            })
        }
        (ImportKind::Orders, ImportFormat::Csv) => {
            let options = CsvOptions {
                kind: ImportKind::Orders,
                mapping: import.options.mapping.clone(),
                namespace: import.options.namespace.clone(),
            };
            let split = {
                let options = options.clone();
                tokio::task::spawn_blocking(move || {
                    let (reader, failed) = Watched::new(reader);
                    let split = import_file::split_keys(reader, &options);
                    (split, failed.take())
                })
                .await
            };
            let split: HashSet<String> = match split {
                Ok((_, Some(e))) => {
                    let _ = tx.send(Read::Pause(e)).await;
                    return;
                }
                Ok((Ok(split), None)) => split,
                Ok((Err(e), None)) => {
                    let _ = tx.send(Read::Failed(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Read::Pause(e.to_string())).await;
                    return;
                }
            };
            let reader = match open().await {
                Ok(reader) => reader,
                Err(read) => {
                    let _ = tx.send(read).await;
                    return;
                }
            };
            tokio::task::spawn_blocking(move || {
                let (reader, failed) = Watched::new(reader);
                let read = import_file::csv_orders(reader, &options, split);
                send_all(read, &failed, &tx);
            })
        }
        (kind, ImportFormat::Ndjson) => {
            tokio::task::spawn_blocking(move || read_ndjson(kind, reader, &tx))
        }
    };
    // A reader that panicked ends the channel without `End`: a pause.
    let _ = blocking.await;
}

/// Sends every entry a CSV reader gives, then how it ended.
fn send_all(
    read: Result<impl Iterator<Item = Entry>, FileError>,
    failed: &Failed,
    tx: &mpsc::Sender<Read>,
) {
    let last = match read {
        Ok(entries) => {
            for entry in entries {
                if tx.blocking_send(Read::Entry(entry)).is_err() {
                    return;
                }
            }
            Read::End
        }
        Err(e) => Read::Failed(e),
    };
    // A file cut short by the file store is not its end.
    let last = match failed.take() {
        Some(e) => Read::Pause(e),
        None => last,
    };
    let _ = tx.blocking_send(last);
}

/// A reader that remembers its first I/O error, which a CSV reader would
/// otherwise report as a bad row and then take for the end of the file.
struct Watched<R> {
    inner: R,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// Where a [`Watched`] reader's error is found once reading is over.
struct Failed(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl Failed {
    fn take(&self) -> Option<String> {
        self.0.lock().ok()?.take()
    }
}

impl<R> Watched<R> {
    fn new(inner: R) -> (Watched<R>, Failed) {
        let failed = std::sync::Arc::default();
        let watched = Watched {
            inner,
            failed: std::sync::Arc::clone(&failed),
        };
        (watched, Failed(failed))
    }
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Ok(mut slot) = self.failed.lock() {
                slot.get_or_insert_with(|| format!("the file could not be read: {e}"));
            }
        })
    }
}

fn read_ndjson(kind: ImportKind, reader: impl std::io::Read, tx: &mpsc::Sender<Read>) {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let read = std::io::Read::take(&mut reader, MAX_NDJSON_LINE as u64 + 1)
            .read_until(b'\n', &mut buf);
        let entry = match read {
            Ok(0) => {
                let _ = tx.blocking_send(Read::End);
                return;
            }
            Ok(_) => {
                line += 1;
                let refused = |field: &str, reason: &str| {
                    Some(Entry::Refused {
                        key: None,
                        errors: vec![RowError {
                            line,
                            field: field.into(),
                            value: None,
                            reason: reason.into(),
                        }],
                        again: false,
                    })
                };
                if buf.len() > MAX_NDJSON_LINE {
                    // Read over the rest of the line, keeping none of it.
                    if let Err(e) = reader.skip_until(b'\n') {
                        let _ = tx
                            .blocking_send(Read::Pause(format!("the file could not be read: {e}")));
                        return;
                    }
                    refused(
                        "line",
                        &format!("longer than {MAX_NDJSON_LINE} bytes: one order per line"),
                    )
                } else {
                    match std::str::from_utf8(&buf) {
                        Ok(text) => match kind {
                            ImportKind::Orders => import_file::ndjson_order(line, text),
                            ImportKind::Products => import_file::ndjson_product(line, text),
                        },
                        Err(_) => refused("line", "not UTF-8 text: save the file as UTF-8"),
                    }
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Read::Pause(format!("the file could not be read: {e}")));
                return;
            }
        };
        if let Some(entry) = entry {
            if tx.blocking_send(Read::Entry(entry)).is_err() {
                return;
            }
        }
    }
}
