//! Reading an import file of orders, one order at a time, with every
//! problem tied to its line: CSV (one row per item, rows of one order
//! together, grouped by its external id) or NDJSON (one order per line in
//! the API's own shape). Nothing here touches the store: what it reads is
//! a [`CreateOrderRequest`], checked afterwards exactly as the API checks
//! one.
//!
//! CSV columns (a header row is required; `mapping` renames the file's
//! own headers to these):
//! - `external_id` (the order's id in the file's system; with
//!   `namespace`, default `import`), or `external_ids` (a JSON object, as
//!   the export writes it): required;
//! - `currency`: required; `channel` (default `import`), `notes`;
//! - `buyer_name`, `buyer_phone`, `buyer_email`, `buyer_channel_id`;
//! - `shipping_name`, `shipping_line1`, `shipping_line2`, `shipping_city`,
//!   `shipping_region`, `shipping_postal_code`, `shipping_country`;
//! - per row, one item: `item_sku`, `item_name`, `item_quantity`
//!   (required), `item_unit_price`, `item_attributes` (a JSON object).
//!
//! The export's other columns (`order_id`, `reference`, statuses, amounts,
//! …) are read over: ordo works them out. Order columns must agree on
//! every row of an order.
//!
//! A file of products has one product a row (CSV) or a line (NDJSON, the
//! API's product shape): `sku` (required), `name`, `description`,
//! `currency`, `price`, `attributes` (a JSON object of name → values),
//! `variant_of`, `image_url`, `active`, `track_stock`, `tax_class`,
//! `weight_grams`, `on_hand`. An empty cell leaves an existing product's
//! field as it is. The other fields `GET /v1/products` gives (`id`,
//! `reserved`, `available`, …) are read over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use ordo_domain::order::Namespace;
use serde_json::Value;

use ordo_store::ImportKind;

use crate::api::export::CSV_COLUMNS;
use crate::api::extract::describe_serde_error;
use crate::api::orders::{AddressBody, BuyerBody, CreateOrderRequest, LineInput};
use crate::api::products::ProductUpsert;

/// The namespace of `external_id` when none is given.
pub const DEFAULT_NAMESPACE: &str = "import";

/// Order-level columns: the same on every row of an order.
const ORDER_COLUMNS: [&str; 17] = [
    "external_id",
    "external_ids",
    "currency",
    "channel",
    "notes",
    "buyer_name",
    "buyer_phone",
    "buyer_email",
    "buyer_channel_id",
    "shipping_name",
    "shipping_line1",
    "shipping_line2",
    "shipping_city",
    "shipping_region",
    "shipping_postal_code",
    "shipping_country",
    "promotion_codes",
];

const ITEM_COLUMNS: [&str; 5] = [
    "item_sku",
    "item_name",
    "item_quantity",
    "item_unit_price",
    "item_attributes",
];

const PRODUCT_COLUMNS: [&str; 13] = [
    "sku",
    "name",
    "description",
    "currency",
    "price",
    "attributes",
    "variant_of",
    "image_url",
    "active",
    "track_stock",
    "tax_class",
    "weight_grams",
    "on_hand",
];

/// What `GET /v1/products` gives besides the columns read: ordo's own.
const PRODUCT_READ_OVER: [&str; 8] = [
    "id",
    "reserved",
    "available",
    "in_stock",
    "version",
    "created_at",
    "updated_at",
    "archived_at",
];

/// The columns `errors.csv` adds in front of a file's own: read over when
/// the fixed file is sent again.
pub const ERROR_COLUMNS: [&str; 2] = ["error_line", "errors"];

/// Every column ordo reads from a CSV of this kind.
pub fn columns(kind: ImportKind) -> impl Iterator<Item = &'static str> {
    let (first, then): (&[&'static str], &[&'static str]) = match kind {
        ImportKind::Orders => (&ORDER_COLUMNS, &ITEM_COLUMNS),
        ImportKind::Products => (&PRODUCT_COLUMNS, &[]),
    };
    first.iter().chain(then).copied()
}

/// A problem with one line of the file (1 is the header of a CSV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub value: Option<String>,
    pub reason: String,
}

/// A problem with the file as a whole: nothing in it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub field: String,
    pub value: Option<String>,
    pub reason: String,
    pub accepted: Option<String>,
}

/// One order read from the file.
#[derive(Debug, Clone)]
pub struct FileOrder {
    /// The order's external id, as `namespace:value`.
    pub key: String,
    /// The line each item came from (an NDJSON order's one line, for each).
    pub item_lines: Vec<u64>,
    pub request: CreateOrderRequest,
}

/// One product read from the file.
#[derive(Debug, Clone)]
pub struct FileProduct {
    pub line: u64,
    pub product: ProductUpsert,
}

/// What reading gives, one order (or product) or one problem at a time.
#[derive(Debug, Clone)]
pub enum Entry {
    Order(Box<FileOrder>),
    Product(Box<FileProduct>),
    /// The order with this key is not imported; these are why.
    Refused {
        key: Option<String>,
        errors: Vec<RowError>,
        /// A later part of an order already refused (its rows are apart):
        /// the same order, not another one.
        again: bool,
    },
}

/// How a CSV's columns are named and its orders keyed.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// What the file holds.
    pub kind: ImportKind,
    /// ordo's column → the file's header.
    pub mapping: BTreeMap<String, String>,
    /// The namespace of `external_id` (default `import`).
    pub namespace: Option<String>,
}

fn file_error(field: &str, reason: impl Into<String>) -> FileError {
    FileError {
        field: field.into(),
        value: None,
        reason: reason.into(),
        accepted: None,
    }
}

/// The file's bytes without a UTF-8 byte order mark.
struct NoBom<R> {
    inner: R,
    /// Bytes read ahead to look for the mark, not yet handed out;
    /// `None` until the start was looked at.
    head: Option<Vec<u8>>,
}

impl<R: Read> Read for NoBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.head.is_none() {
            let mut start = [0u8; 3];
            let mut got = 0;
            while got < 3 {
                match self.inner.read(&mut start[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            let bom = got == 3 && start == [0xEF, 0xBB, 0xBF];
            self.head = Some(if bom {
                Vec::new()
            } else {
                start[..got].to_vec()
            });
        }
        match self.head.as_mut() {
            Some(head) if !head.is_empty() => {
                let n = head.len().min(buf.len());
                buf[..n].copy_from_slice(&head[..n]);
                head.drain(..n);
                Ok(n)
            }
            _ => self.inner.read(buf),
        }
    }
}

/// Where each of ordo's columns is in the file.
#[derive(Debug)]
struct Columns {
    at: HashMap<&'static str, usize>,
}

impl Columns {
    fn of(headers: &csv::ByteRecord, options: &CsvOptions) -> Result<Columns, FileError> {
        let names: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let mut seen = HashSet::new();
        for name in &names {
            if !seen.insert(name.as_str()) {
                return Err(FileError {
                    value: Some(name.clone()),
                    ..file_error("header", "this column is there twice")
                });
            }
        }
        let known: Vec<&'static str> = columns(options.kind).collect();
        let ours_to_work_out: &[&str] = match options.kind {
            ImportKind::Orders => &CSV_COLUMNS,
            ImportKind::Products => &PRODUCT_READ_OVER,
        };
        for ours in options.mapping.keys() {
            if !known.contains(&ours.as_str()) {
                return Err(FileError {
                    value: Some(ours.clone()),
                    accepted: Some(known.join(", ")),
                    ..file_error("mapping", "not one of ordo's columns")
                });
            }
        }
        // The file's header each of ordo's columns is read from.
        let theirs = |ours: &str| -> String {
            options
                .mapping
                .get(ours)
                .cloned()
                .unwrap_or_else(|| ours.to_string())
        };
        let mut at = HashMap::new();
        for ours in &known {
            if let Some(i) = names.iter().position(|n| *n == theirs(ours)) {
                at.insert(*ours, i);
            }
        }
        let used: HashSet<usize> = at.values().copied().collect();
        for (i, name) in names.iter().enumerate() {
            // The export's own columns this does not read are ordo's to work out.
            let read_over =
                ours_to_work_out.contains(&name.as_str()) || ERROR_COLUMNS.contains(&name.as_str());
            if !used.contains(&i) && !read_over {
                return Err(FileError {
                    value: Some(name.clone()),
                    accepted: Some(format!(
                        "{} (and ordo's other columns, read over), or a mapping",
                        known.join(", "),
                    )),
                    ..file_error("header", "not a column ordo reads")
                });
            }
        }
        let mut missing = Vec::new();
        let required: &[&str] = match options.kind {
            ImportKind::Orders => {
                if !at.contains_key("external_id") && !at.contains_key("external_ids") {
                    missing.push("external_id (or external_ids)");
                }
                &["currency", "item_quantity"]
            }
            ImportKind::Products => &["sku"],
        };
        for required in required {
            if !at.contains_key(required) {
                missing.push(required);
            }
        }
        if !missing.is_empty() {
            return Err(FileError {
                accepted: Some(missing.join(", ")),
                ..file_error("header", "required columns are missing")
            });
        }
        Ok(Columns { at })
    }
}

/// A CSV's rows, with its header checked.
struct CsvRows<R: Read> {
    kind: ImportKind,
    header: csv::ByteRecord,
    records: csv::ByteRecordsIntoIter<NoBom<R>>,
    columns: Columns,
    namespace: String,
}

/// A CSV of orders, read an order at a time.
pub struct CsvOrders<R: Read> {
    rows: CsvRows<R>,
    /// Keys whose rows are not together (found by [`split_keys`]).
    split: HashSet<String>,
    /// Those of them refused so far.
    split_refused: HashSet<String>,
    /// The next order's first row, read ahead.
    pending: Option<Result<(u64, Row), RowError>>,
    done: bool,
}

/// One row's cells by ordo's column, as text.
#[derive(Debug, Clone)]
struct Row {
    cells: HashMap<&'static str, String>,
    key: Option<String>,
}

impl Row {
    fn get(&self, column: &str) -> Option<&str> {
        self.cells
            .get(column)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Opens a CSV of orders; its header is checked at once.
pub fn csv_orders<R: Read>(
    reader: R,
    options: &CsvOptions,
    split: HashSet<String>,
) -> Result<CsvOrders<R>, FileError> {
    let options = CsvOptions {
        kind: ImportKind::Orders,
        ..options.clone()
    };
    Ok(CsvOrders {
        rows: CsvRows::open(reader, &options)?,
        split,
        split_refused: HashSet::new(),
        pending: None,
        done: false,
    })
}

/// Opens a CSV of products; its header is checked at once.
pub fn csv_products<R: Read>(reader: R, options: &CsvOptions) -> Result<CsvProducts<R>, FileError> {
    let options = CsvOptions {
        kind: ImportKind::Products,
        ..options.clone()
    };
    Ok(CsvProducts(CsvRows::open(reader, &options)?))
}

impl<R: Read> CsvRows<R> {
    fn open(reader: R, options: &CsvOptions) -> Result<CsvRows<R>, FileError> {
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        if Namespace::parse(&namespace).is_err() {
            return Err(FileError {
                value: Some(namespace),
                accepted: Some(Namespace::ACCEPTED.into()),
                ..file_error("namespace", "not an identifier namespace")
            });
        }
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(NoBom {
            inner: reader,
            head: None,
        });
        let headers = csv
            .byte_headers()
            .map_err(|e| file_error("header", format!("the header cannot be read: {e}")))?
            .clone();
        if headers.is_empty() || std::str::from_utf8(headers.as_slice()).is_err() {
            return Err(file_error(
                "header",
                "the file has no header row of UTF-8 text",
            ));
        }
        let columns = Columns::of(&headers, options)?;
        Ok(CsvRows {
            kind: options.kind,
            header: headers,
            records: csv.into_byte_records(),
            columns,
            namespace,
        })
    }

    /// The next row as cells, with its line, or why it cannot be read.
    fn next_row(&mut self) -> Option<Result<(u64, Row), RowError>> {
        let refused = |line: u64, field: &str, reason: String| RowError {
            line,
            field: field.to_string(),
            value: None,
            reason,
        };
        let record = match self.records.next()? {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let reason = format!("this line cannot be read as CSV: {e}");
                return Some(Err(refused(line, "line", reason)));
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut cells = HashMap::new();
        for (column, i) in &self.columns.at {
            let Some(bytes) = record.get(*i) else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(bytes) else {
                let reason = "not UTF-8 text: save the file as UTF-8".to_string();
                return Some(Err(refused(line, column, reason)));
            };
            cells.insert(*column, text.to_string());
        }
        let key = self.key_of(&record);
        Some(Ok((line, Row { cells, key })))
    }

    /// The key of the order a row belongs to, when it names one.
    fn key_of(&self, record: &csv::ByteRecord) -> Option<String> {
        let cell = |column: &str| {
            let i = self.columns.at.get(column)?;
            std::str::from_utf8(record.get(*i)?)
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        if self.kind == ImportKind::Products {
            return cell("sku").map(|sku| sku.trim().to_string());
        }
        if let Some(id) = cell("external_id") {
            return Some(format!("{}:{}", self.namespace, id.trim()));
        }
        let ids: BTreeMap<String, String> = serde_json::from_str(cell("external_ids")?).ok()?;
        ids.into_iter().next().map(|(ns, v)| format!("{ns}:{v}"))
    }
}

/// The keys of orders whose rows are not together in the file (a first
/// pass: those orders are refused, not imported in parts).
pub fn split_keys<R: Read>(reader: R, options: &CsvOptions) -> Result<HashSet<String>, FileError> {
    let mut orders = csv_orders(reader, options, HashSet::new())?;
    // Hashes, not the keys: a million keys would take 100 MB.
    let mut seen = HashSet::new();
    let mut split = HashSet::new();
    let mut last: Option<String> = None;
    while let Some(next) = orders.rows.next_row() {
        let Ok((_, Row { key: Some(key), .. })) = next else {
            continue;
        };
        if last.as_ref() != Some(&key) && !seen.insert(key_hash(&key)) {
            split.insert(key.clone());
        }
        last = Some(key);
    }
    Ok(split)
}

impl<R: Read> CsvOrders<R> {
    /// The rows of the next order: those after `first` with its key.
    fn group(&mut self, first: (u64, Row)) -> Vec<(u64, Row)> {
        let mut rows = vec![first];
        while let Some(next) = self.rows.next_row() {
            match next {
                Ok((line, row)) if row.key.is_some() && row.key == rows[0].1.key => {
                    rows.push((line, row));
                }
                other => {
                    self.pending = Some(other);
                    break;
                }
            }
        }
        rows
    }

    fn read_order(&mut self, rows: &[(u64, Row)]) -> Entry {
        let (first_line, first) = &rows[0];
        let key = first.key.clone();
        let mut errors = Vec::new();
        let err = |line: u64, field: &str, value: Option<&str>, reason: &str| RowError {
            line,
            field: field.to_string(),
            value: value.map(str::to_string),
            reason: reason.to_string(),
        };
        if let Some(k) = key.clone().filter(|k| self.split.contains(k)) {
            for (line, _) in rows {
                errors.push(err(
                    *line,
                    "external_id",
                    Some(&k),
                    "the rows of this order are not together in the file; put them one after the other",
                ));
            }
            let again = !self.split_refused.insert(k);
            return Entry::Refused { key, errors, again };
        }
        // Order columns agree on every row.
        for (line, row) in &rows[1..] {
            for column in ORDER_COLUMNS {
                if row.get(column) != first.get(column) {
                    errors.push(err(
                        *line,
                        column,
                        row.get(column),
                        &format!(
                            "differs from the order's first row (line {first_line}: {:?}); an order's columns are the same on each of its rows",
                            first.get(column).unwrap_or("")
                        ),
                    ));
                }
            }
        }
        let external_ids: BTreeMap<String, String> = match first.get("external_ids") {
            Some(text) => match serde_json::from_str(text) {
                Ok(ids) => ids,
                Err(_) => {
                    errors.push(err(
                        *first_line,
                        "external_ids",
                        Some(text),
                        "not a JSON object of namespace → value",
                    ));
                    BTreeMap::new()
                }
            },
            None => BTreeMap::new(),
        };
        let mut external_ids = external_ids;
        if let Some(id) = first.get("external_id") {
            external_ids.insert(self.rows.namespace.clone(), id.trim().to_string());
        }
        let mut items = Vec::with_capacity(rows.len());
        for (line, row) in rows {
            let quantity = match row.get("item_quantity").map(str::trim) {
                Some(q) => match q.parse::<i64>() {
                    Ok(q) => q,
                    Err(_) => {
                        errors.push(err(*line, "item_quantity", Some(q), "not a whole number"));
                        continue;
                    }
                },
                None => {
                    errors.push(err(
                        *line,
                        "item_quantity",
                        None,
                        "every item needs a quantity",
                    ));
                    continue;
                }
            };
            let attributes = match row.get("item_attributes") {
                None => BTreeMap::new(),
                Some(text) => match serde_json::from_str::<BTreeMap<String, String>>(text) {
                    Ok(a) => a,
                    Err(_) => {
                        errors.push(err(
                            *line,
                            "item_attributes",
                            Some(text),
                            "not a JSON object of name → text, e.g. {\"size\": \"M\"}",
                        ));
                        continue;
                    }
                },
            };
            items.push(LineInput {
                sku: row.get("item_sku").map(|s| s.trim().to_string()),
                name: row.get("item_name").map(str::to_string),
                description: None,
                quantity,
                unit_price: row.get("item_unit_price").map(|p| p.trim().to_string()),
                attributes,
                instances: Vec::new(),
            });
        }
        if !errors.is_empty() {
            return Entry::Refused {
                key,
                errors,
                again: false,
            };
        }
        let text = |c: &str| first.get(c).map(str::to_string);
        let shipping_address = first.get("shipping_line1").map(|line1| AddressBody {
            name: text("shipping_name"),
            company: None,
            line1: line1.to_string(),
            line2: text("shipping_line2"),
            city: text("shipping_city").unwrap_or_default(),
            region: text("shipping_region"),
            postal_code: text("shipping_postal_code"),
            country: text("shipping_country").unwrap_or_default(),
            phone: None,
        });
        let channel = match first.get("channel") {
            None => Some(ordo_domain::Channel::Import),
            Some(c) => match ordo_domain::Channel::parse(c.trim()) {
                Some(c) => Some(c),
                None => {
                    return Entry::Refused {
                        key,
                        errors: vec![RowError {
                            reason: format!(
                                "not a channel; accepted: {}",
                                ordo_domain::Channel::accepted()
                            ),
                            ..err(*first_line, "channel", Some(c), "")
                        }],
                        again: false,
                    }
                }
            },
        };
        let request = CreateOrderRequest {
            currency: text("currency").unwrap_or_default(),
            buyer: BuyerBody {
                name: text("buyer_name"),
                phone: text("buyer_phone"),
                email: text("buyer_email"),
                channel_id: text("buyer_channel_id"),
            },
            items,
            shipping_address,
            billing_address: None,
            notes: text("notes"),
            external_ids,
            channel,
            shipping_method: None,
            promotion_codes: first
                .get("promotion_codes")
                .map(|c| c.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        };
        Entry::Order(Box::new(FileOrder {
            key: key.unwrap_or_default(),
            item_lines: rows.iter().map(|(line, _)| *line).collect(),
            request,
        }))
    }
}

impl<R: Read> Iterator for CsvOrders<R> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.done {
            return None;
        }
        let next = match self.pending.take().or_else(|| self.rows.next_row()) {
            Some(next) => next,
            None => {
                self.done = true;
                return None;
            }
        };
        let first = match next {
            Ok((line, Row { key: None, .. })) => Err(RowError {
                line,
                field: "external_id".into(),
                value: None,
                reason: "every row needs its order's external id".into(),
            }),
            other => other,
        };
        let first = match first {
            Ok(first) => first,
            Err(error) => {
                return Some(Entry::Refused {
                    key: None,
                    errors: vec![error],
                    again: false,
                })
            }
        };
        let rows = self.group(first);
        Some(self.read_order(&rows))
    }
}

/// A key's hash (128 bits of SHA-256), to recognise it again without
/// keeping it.
pub fn key_hash(key: &str) -> u128 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// A CSV as it is: its header, then each row with its line and the key of
/// its order (what `errors.csv` is written from).
pub struct RawRows<R: Read>(CsvRows<R>);

impl<R: Read> RawRows<R> {
    pub fn open(reader: R, options: &CsvOptions) -> Result<RawRows<R>, FileError> {
        CsvRows::open(reader, options).map(RawRows)
    }

    pub fn header(&self) -> &csv::ByteRecord {
        &self.0.header
    }
}

impl<R: Read> Iterator for RawRows<R> {
    /// A row's line, its order's key and its cells; `None` for a line that
    /// cannot be read as CSV.
    type Item = (u64, Option<String>, Option<csv::ByteRecord>);

    fn next(&mut self) -> Option<Self::Item> {
        match self.0.records.next()? {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                let key = self.0.key_of(&record);
                Some((line, key, Some(record)))
            }
            Err(e) => Some((e.position().map_or(0, |p| p.line()), None, None)),
        }
    }
}

/// A CSV of products, read a product at a time.
pub struct CsvProducts<R: Read>(CsvRows<R>);

impl<R: Read> Iterator for CsvProducts<R> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let (line, row) = match self.0.next_row()? {
            Ok(next) => next,
            Err(error) => return Some(refused(None, error)),
        };
        let key = row.key.clone();
        let Some(sku) = key.clone() else {
            return Some(refused(
                None,
                RowError {
                    line,
                    field: "sku".into(),
                    value: None,
                    reason: "every row needs the product's SKU".into(),
                },
            ));
        };
        let mut errors = Vec::new();
        let text = |c: &str| row.get(c).map(str::to_string);
        let trimmed = |c: &str| row.get(c).map(|v| v.trim().to_string());
        let mut parsed = |column: &str, what: &str| -> Option<Value> {
            let cell = row.get(column)?.trim();
            let value = match column {
                "attributes" => serde_json::from_str(cell).ok(),
                "active" | "track_stock" => match cell {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => cell.parse::<i64>().ok().map(Value::from),
            };
            if value.is_none() {
                errors.push(RowError {
                    line,
                    field: column.into(),
                    value: Some(cell.to_string()),
                    reason: format!("not {what}"),
                });
            }
            value
        };
        let attributes = parsed(
            "attributes",
            r#"a JSON object of name → values, e.g. {"size": ["S", "M"]}"#,
        );
        let active = parsed("active", "true or false");
        let track_stock = parsed("track_stock", "true or false");
        let weight_grams = parsed("weight_grams", "a whole number");
        let on_hand = parsed("on_hand", "a whole number");
        let fields = [
            ("attributes", attributes),
            ("active", active),
            ("track_stock", track_stock),
            ("weight_grams", weight_grams),
            ("on_hand", on_hand),
        ];
        let mut object = serde_json::Map::new();
        object.insert("sku".into(), Value::String(sku));
        for column in [
            "name",
            "description",
            "variant_of",
            "image_url",
            "currency",
            "price",
            "tax_class",
        ] {
            let cell = if matches!(column, "name" | "description") {
                text(column)
            } else {
                trimmed(column)
            };
            if let Some(cell) = cell {
                object.insert(column.into(), Value::String(cell));
            }
        }
        for (column, value) in fields {
            if let Some(value) = value {
                object.insert(column.into(), value);
            }
        }
        if !errors.is_empty() {
            return Some(Entry::Refused {
                key,
                errors,
                again: false,
            });
        }
        Some(product_entry(line, key, Value::Object(object)))
    }
}

/// One problem's refusal.
fn refused(key: Option<String>, error: RowError) -> Entry {
    Entry::Refused {
        key,
        errors: vec![error],
        again: false,
    }
}

/// A product in the API's shape, or why it is not one.
fn product_entry(line: u64, key: Option<String>, value: Value) -> Entry {
    match serde_path_to_error::deserialize::<_, ProductUpsert>(&value) {
        Ok(product) => Entry::Product(Box::new(FileProduct { line, product })),
        Err(e) => {
            let fe = describe_serde_error(&e.path().to_string(), &e.inner().to_string());
            refused(
                key,
                RowError {
                    line,
                    field: fe.field,
                    value: fe.value,
                    reason: fe.reason,
                },
            )
        }
    }
}

/// Reads one NDJSON line of a file of products: a product in the API's
/// shape (as `POST /v1/products` takes it, or `GET` gives it).
pub fn ndjson_product(line: u64, text: &str) -> Option<Entry> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(refused(
                None,
                RowError {
                    line,
                    field: "line".into(),
                    value: None,
                    reason: format!("not JSON: {e}"),
                },
            ))
        }
    };
    let key = value
        .get("sku")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string());
    Some(product_entry(line, key, value))
}

/// Reads one NDJSON line: an order in the API's own shape, which must
/// carry an external id (the key re-runs are matched by).
pub fn ndjson_order(line: u64, text: &str) -> Option<Entry> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let refused = |field: String, value: Option<String>, reason: String| Entry::Refused {
        key: None,
        errors: vec![RowError {
            line,
            field,
            value,
            reason,
        }],
        again: false,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(refused("line".into(), None, format!("not JSON: {e}"))),
    };
    let request: CreateOrderRequest = match serde_path_to_error::deserialize(&value) {
        Ok(r) => r,
        Err(e) => {
            let fe = describe_serde_error(&e.path().to_string(), &e.inner().to_string());
            return Some(refused(fe.field, fe.value, fe.reason));
        }
    };
    let Some((ns, id)) = request.external_ids.iter().next() else {
        return Some(refused(
            "external_ids".into(),
            None,
            "an imported order needs an external id, so that running the file again changes nothing"
                .into(),
        ));
    };
    let key = format!("{ns}:{id}");
    Some(Entry::Order(Box::new(FileOrder {
        key,
        item_lines: vec![line; request.items.len()],
        request,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, options: &CsvOptions) -> Result<Vec<Entry>, FileError> {
        let split = split_keys(text.as_bytes(), options)?;
        Ok(csv_orders(text.as_bytes(), options, split)?.collect())
    }

    fn orders(all: &[Entry]) -> Vec<&FileOrder> {
        all.iter()
            .filter_map(|r| match r {
                Entry::Order(o) => Some(o.as_ref()),
                Entry::Refused { .. } | Entry::Product(_) => None,
            })
            .collect()
    }

    fn errors(all: &[Entry]) -> Vec<(u64, String)> {
        all.iter()
            .flat_map(|r| match r {
                Entry::Refused { errors, .. } => {
                    errors.iter().map(|e| (e.line, e.field.clone())).collect()
                }
                Entry::Order(_) | Entry::Product(_) => Vec::new(),
            })
            .collect()
    }

    const FILE: &str = "\u{feff}external_id,currency,buyer_name,buyer_phone,item_sku,item_name,item_quantity,item_unit_price,item_attributes,notes\n\
        A-1,NGN,Ada,+2348012345678,,Dress,2,15000.00,\"{\"\"size\"\": \"\"M\"\"}\",\"gate, then \"\"call\"\"\"\n\
        A-1,NGN,Ada,+2348012345678,,Scarf,1,3500.00,,\"gate, then \"\"call\"\"\"\n\
        A-2,NGN,Bola,+2348012345679,TEE,,three,,,\n\
        A-3,USD,Chi,+2348012345670,,Cap,1,10.00,,\n\
        A-3,NGN,Chi,+2348012345670,,Cap,1,10.00,,\n\
        A-4,NGN,Dayo,+2348012345671,,Bag,1,50.00,,\n\
        A-5,NGN,Efe,+2348012345672,,Hat,1,20.00,,\n\
        A-4,NGN,Dayo,+2348012345671,,Belt,1,30.00,,\n";

    #[test]
    fn rows_become_orders_and_each_problem_names_its_line() {
        let all = read(FILE, &CsvOptions::default()).unwrap();
        let good = orders(&all);
        let keys: Vec<&str> = good.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["import:A-1", "import:A-5"]);
        let a1 = &good[0].request;
        assert_eq!(a1.items.len(), 2);
        assert_eq!(a1.items[0].attributes["size"], "M");
        assert_eq!(a1.notes.as_deref(), Some("gate, then \"call\""));
        assert_eq!(a1.external_ids["import"], "A-1");
        assert_eq!(good[0].item_lines, [2, 3], "the BOM is not a column");
        assert_eq!(
            errors(&all),
            [
                (4, "item_quantity".to_string()),
                (6, "currency".to_string()),
                (7, "external_id".to_string()),
                (9, "external_id".to_string()),
            ],
            "A-2's quantity, A-3's currencies, A-4's rows apart"
        );
    }

    #[test]
    fn headers_are_checked_and_mapped() {
        let missing = read("external_id,item_sku\nA,B\n", &CsvOptions::default());
        assert_eq!(
            missing.unwrap_err().accepted.as_deref(),
            Some("currency, item_quantity")
        );
        let twice = read("currency,currency\n", &CsvOptions::default()).unwrap_err();
        assert_eq!(twice.value.as_deref(), Some("currency"));
        let unknown = read(
            "external_id,currency,item_quantity,colour\n",
            &CsvOptions::default(),
        )
        .unwrap_err();
        assert_eq!(unknown.value.as_deref(), Some("colour"));
        let options = CsvOptions {
            mapping: BTreeMap::from([
                ("external_id".into(), "Order No".into()),
                ("item_quantity".into(), "Qty".into()),
                ("item_name".into(), "Product".into()),
                ("item_unit_price".into(), "Price".into()),
            ]),
            namespace: Some("com.acme.order-id".into()),
            ..CsvOptions::default()
        };
        let all = read(
            "Order No,currency,Qty,Product,Price,total\nW-9,NGN,1,Mug,5.00,5.00\n",
            &options,
        )
        .unwrap();
        assert_eq!(orders(&all)[0].key, "com.acme.order-id:W-9");
    }

    /// Hands out one byte per read, as a slow pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((b, rest)), false) => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_mark_read_in_pieces_is_dropped_and_other_bytes_kept() {
        let mut out = String::new();
        let mut r = NoBom {
            inner: Trickle("\u{feff}ab,c".as_bytes()),
            head: None,
        };
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "ab,c");
        let mut out = String::new();
        let mut r = NoBom {
            inner: Trickle(b"ab"),
            head: None,
        };
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "ab", "short files keep every byte");
    }

    #[test]
    fn a_row_that_is_not_utf8_is_refused_alone() {
        let mut file = b"external_id,currency,item_name,item_quantity,item_unit_price\n".to_vec();
        file.extend_from_slice(b"A,NGN,Caf\xe9,1,1.00\nB,NGN,Tea,1,1.00\n");
        let all: Vec<Entry> = csv_orders(file.as_slice(), &CsvOptions::default(), HashSet::new())
            .unwrap()
            .collect();
        assert_eq!(errors(&all), [(2, "item_name".to_string())]);
        assert_eq!(orders(&all)[0].key, "import:B");
    }

    #[test]
    fn product_rows_are_products_and_their_cells_are_checked() {
        let products = |text: &str| -> Result<Vec<Entry>, FileError> {
            Ok(csv_products(text.as_bytes(), &CsvOptions::default())?.collect())
        };
        let missing = products("name,price\nA,1\n").unwrap_err();
        assert_eq!(missing.accepted.as_deref(), Some("sku"));
        let unknown = products("sku,colour\n").unwrap_err();
        assert_eq!(unknown.value.as_deref(), Some("colour"));
        let all = products(
            "sku,name,on_hand,active,attributes,reserved,version\n\
             A, Shirt ,3,true,\"{\"\"size\"\": [\"\"M\"\"]}\",9,2\n\
             B,,three,yes,,,\n\
             ,Nameless,,,,,\n",
        )
        .unwrap();
        let Entry::Product(a) = &all[0] else {
            panic!("a product: {:?}", all[0])
        };
        assert_eq!(a.line, 2);
        assert_eq!(a.product.sku, "A");
        assert_eq!(a.product.name.as_deref(), Some(" Shirt "), "names as given");
        assert_eq!(a.product.on_hand, Some(3));
        assert_eq!(a.product.active, Some(true));
        assert_eq!(a.product.attributes.as_ref().unwrap()["size"], ["M"]);
        assert_eq!(
            errors(&all),
            [
                (3, "active".to_string()),
                (3, "on_hand".to_string()),
                (4, "sku".to_string())
            ]
        );
        let Some(Entry::Product(p)) = ndjson_product(
            7,
            r#"{"sku":"C","price":"1.00","id":"prod_x","in_stock":true}"#,
        ) else {
            panic!("a product")
        };
        assert_eq!((p.line, p.product.price.as_deref()), (7, Some("1.00")));
        let Some(Entry::Refused { errors, key, .. }) = ndjson_product(8, r#"{"sku":"D","size":1}"#)
        else {
            panic!("refused")
        };
        assert_eq!(
            (errors[0].field.as_str(), key.as_deref()),
            ("size", Some("D"))
        );
    }

    #[test]
    fn ndjson_lines_are_orders_in_the_apis_shape() {
        let ok = ndjson_order(
            3,
            r#"{"currency":"NGN","buyer":{"phone":"+2348012345678"},"items":[{"name":"A","quantity":1,"unit_price":"1.00"}],"external_ids":{"shop":"S-1"}}"#,
        );
        assert!(matches!(ok, Some(Entry::Order(o)) if o.key == "shop:S-1"));
        let Some(Entry::Refused { errors, .. }) =
            ndjson_order(4, r#"{"currency":"NGN","colour":"red"}"#)
        else {
            panic!("refused")
        };
        assert_eq!((errors[0].line, errors[0].field.as_str()), (4, "colour"));
        assert!(ndjson_order(5, "   ").is_none());
        let Some(Entry::Refused { errors, .. }) = ndjson_order(
            6,
            r#"{"currency":"NGN","buyer":{"phone":"+2348012345678"},"items":[]}"#,
        ) else {
            panic!("refused")
        };
        assert_eq!(errors[0].field, "external_ids");
    }
}
