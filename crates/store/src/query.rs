//! The SQL of listing and counting orders, written once for every backend.
//!
//! What a filter means (which orders `q=ada` finds, how a vendor is
//! confined to its own orders, where a cursor resumes) is decided here, so
//! the databases cannot disagree; a [`Dialect`] supplies the little that
//! differs between them (placeholders, case-insensitive `LIKE`).

use ordo_domain::{OrderId, OrderReference, PhoneE164, TenantId, Timestamp, WebhookDeliveryId};

use crate::{DeliveryQuery, FeedQuery, OrderFilter, OrderQuery, Scope, SortField};

/// A query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// What differs between the SQL of two databases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// `?` (SQLite: `?1`) or `$` (PostgreSQL: `$1`).
    pub placeholder: char,
    /// The operator matching a pattern without regard to ASCII case.
    pub like: &'static str,
}

pub(crate) const SQLITE: Dialect = Dialect {
    placeholder: '?',
    like: "LIKE",
};

pub(crate) const POSTGRES: Dialect = Dialect {
    placeholder: '$',
    like: "ILIKE",
};

/// A statement and its numbered parameters.
#[derive(Debug)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    dialect: Dialect,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect, text: String) -> Sql {
        Sql {
            text,
            args: Vec::new(),
            dialect,
        }
    }

    pub(crate) fn placeholder(&self, n: usize) -> String {
        format!("{}{n}", self.dialect.placeholder)
    }

    /// Appends `v` as the next parameter and its placeholder to the text.
    pub(crate) fn arg(&mut self, v: Arg) {
        self.args.push(v);
        let p = self.placeholder(self.args.len());
        self.text.push_str(&p);
    }

    pub(crate) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn any_of<'a>(&mut self, column: &str, values: impl IntoIterator<Item = &'a str>) {
        let values: Vec<&str> = values.into_iter().collect();
        if values.is_empty() {
            return;
        }
        self.push(&format!(" AND {column} IN ("));
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.arg(Arg::Text(v.to_string()));
        }
        self.push(")");
    }
}

/// The order number a reference stands for in the scope's tenant.
pub(crate) fn sequence_of(reference: &OrderReference, scope: &Scope) -> i64 {
    i64::try_from(reference.sequence(scope.tenant_id)).unwrap_or(i64::MAX)
}

/// Appends the WHERE clause of a list or count. The tenant is always the
/// first parameter.
fn filter_sql(sql: &mut Sql, scope: &Scope, filter: &OrderFilter) {
    sql.push(" WHERE tenant_id = ");
    sql.arg(Arg::Text(scope.tenant_id.to_string()));
    if let (Some(own), Some(wanted)) = (&scope.creator, &filter.created_by) {
        if own != wanted {
            // A vendor asking for another creator's orders gets none.
            sql.push(" AND 1 = 0");
        }
    }
    if let Some(c) = scope.creator.as_ref().or(filter.created_by.as_ref()) {
        sql.push(" AND created_by = ");
        sql.arg(Arg::Text(c.clone()));
    }
    sql.any_of("status", filter.status.iter().map(|s| s.as_str()));
    sql.any_of(
        "payment_status",
        filter.payment_status.iter().map(|s| s.as_str()),
    );
    sql.any_of(
        "fulfillment_status",
        filter.fulfillment_status.iter().map(|s| s.as_str()),
    );
    sql.any_of("stage", filter.stage.iter().map(|s| s.as_str()));
    sql.any_of("channel", filter.channel.iter().map(|s| s.as_str()));
    let mut equals = |column: &str, value: Option<String>| {
        if let Some(v) = value {
            sql.push(&format!(" AND {column} = "));
            sql.arg(Arg::Text(v));
        }
    };
    equals(
        "buyer_phone",
        filter.buyer_phone.as_ref().map(|p| p.as_str().to_string()),
    );
    equals(
        "buyer_email",
        filter.buyer_email.as_ref().map(|e| e.as_str().to_string()),
    );
    equals(
        "buyer_channel_id",
        filter.buyer_channel_id.as_ref().map(ToString::to_string),
    );
    equals("batch_id", filter.batch_id.clone());
    // Ids are time-ordered: a creation-time range is an id range.
    if let Some(t) = filter.created_gte {
        sql.push(" AND id >= ");
        sql.arg(Arg::Text(OrderId::lowest_at(t).to_string()));
    }
    if let Some(t) = filter.created_lt {
        sql.push(" AND id < ");
        sql.arg(Arg::Text(OrderId::lowest_at(t).to_string()));
    }
    if let Some((ns, value)) = &filter.external_id {
        let tenant = sql.placeholder(1);
        sql.push(&format!(
            " AND id IN (SELECT order_id FROM order_external_ids WHERE tenant_id = {tenant} AND namespace = "
        ));
        sql.arg(Arg::Text(ns.to_string()));
        sql.push(" AND value = ");
        sql.arg(Arg::Text(value.clone()));
        sql.push(")");
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if let Some(reference) = OrderReference::parse(q) {
            sql.push(" AND reference_seq = ");
            sql.arg(Arg::Int(sequence_of(&reference, scope)));
        } else if let Ok(phone) = PhoneE164::parse(q) {
            sql.push(" AND buyer_phone = ");
            sql.arg(Arg::Text(phone.as_str().to_string()));
        } else {
            let escaped = escape_like(q);
            let like = sql.dialect.like;
            sql.push(&format!(" AND (buyer_name {like} "));
            sql.arg(Arg::Text(format!("%{escaped}%")));
            let p = sql.placeholder(sql.args.len());
            sql.push(&format!(
                " ESCAPE '\\' OR reference {like} {p} ESCAPE '\\' OR buyer_email {like} {p} ESCAPE '\\')"
            ));
        }
    }
}

/// `text` with `LIKE`'s wildcards (and the escape character) escaped by a backslash.
pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of a list, selecting `select` from `orders`.
pub(crate) fn page(dialect: Dialect, scope: &Scope, query: &OrderQuery, select: &str) -> Sql {
    let mut sql = Sql::new(dialect, format!("SELECT {select} FROM orders o"));
    filter_sql(&mut sql, scope, &query.filter);
    let column = match query.sort.field {
        SortField::CreatedAt => None,
        SortField::UpdatedAt => Some("updated_at"),
        SortField::Total => Some("total"),
    };
    let (cmp, dir) = if query.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(cursor) = &query.after {
        match column {
            None => {
                sql.push(&format!(" AND id {cmp} "));
                sql.arg(Arg::Text(cursor.id.to_string()));
            }
            Some(col) => {
                sql.push(&format!(" AND ({col}, id) {cmp} ("));
                sql.arg(Arg::Int(cursor.value));
                sql.push(", ");
                sql.arg(Arg::Text(cursor.id.to_string()));
                sql.push(")");
            }
        }
    }
    match column {
        None => sql.push(&format!(" ORDER BY id {dir}")),
        Some(col) => sql.push(&format!(" ORDER BY {col} {dir}, id {dir}")),
    }
    sql.push(" LIMIT ");
    sql.arg(Arg::Int(i64::from(query.limit)));
    sql
}

/// The number of orders matching a filter.
pub(crate) fn count(dialect: Dialect, scope: &Scope, filter: &OrderFilter) -> Sql {
    let mut sql = Sql::new(dialect, "SELECT COUNT(*) FROM orders o".to_string());
    filter_sql(&mut sql, scope, filter);
    sql
}

/// The scope's orders by stage: `stage, count`.
pub(crate) fn stage_counts(dialect: Dialect, scope: &Scope) -> Sql {
    let mut sql = Sql::new(dialect, "SELECT stage, COUNT(*) FROM orders o".to_string());
    filter_sql(&mut sql, scope, &OrderFilter::default());
    sql.push(" GROUP BY stage");
    sql
}

/// The scope's orders created since `since`, cancelled ones aside, by UTC
/// day (days since the Unix epoch) and currency: `day, currency, count,
/// sum of totals`.
pub(crate) fn daily_sales(dialect: Dialect, scope: &Scope, since: Timestamp) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "SELECT created_at / 86400000 AS day, currency, COUNT(*), CAST(SUM(total) AS BIGINT) FROM orders o"
            .to_string(),
    );
    let filter = OrderFilter {
        created_gte: Some(since),
        ..OrderFilter::default()
    };
    filter_sql(&mut sql, scope, &filter);
    sql.push(" AND status <> 'cancelled' GROUP BY day, currency ORDER BY day, currency");
    sql
}

/// Gives the order's latest event the order's current rendering, before
/// the order changes (`$1`/`?1` the tenant, `$2`/`?2` the order; the same
/// text in both dialects). Until then the latest event shares the order
/// row's rendering: see [`feed`].
pub(crate) const KEEP_SNAPSHOT: &str = "UPDATE order_events SET order_api =
     (SELECT api FROM orders WHERE tenant_id = $1 AND id = $2)
 WHERE tenant_id = $1 AND order_id = $2 AND order_api IS NULL";

/// The feed's columns, in the order [`feed`] selects them. An event whose
/// `order_api` is empty is the order's latest, and the order row's
/// rendering is the order as it was right after the event.
pub(crate) const FEED_COLUMNS: &str =
    "e.feed_seq, e.id, e.order_id, e.sequence, e.type, e.actor, e.at, e.data, COALESCE(e.order_api, o.api)";

/// A page of the tenant's event feed; a vendor sees the events of its own
/// orders only.
pub(crate) fn feed(dialect: Dialect, scope: &Scope, q: &FeedQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        format!(
            "SELECT {FEED_COLUMNS} FROM order_events e
               JOIN orders o ON o.tenant_id = e.tenant_id AND o.id = e.order_id
              WHERE e.tenant_id = "
        ),
    );
    sql.arg(Arg::Text(scope.tenant_id.to_string()));
    sql.push(" AND e.feed_seq > ");
    sql.arg(Arg::Int(i64::try_from(q.after).unwrap_or(i64::MAX)));
    sql.any_of("e.type", q.types.iter().map(|t| t.as_str()));
    if let Some(id) = q.order_id {
        sql.push(" AND e.order_id = ");
        sql.arg(Arg::Text(id.to_string()));
    }
    if let Some(creator) = &scope.creator {
        sql.push(" AND o.created_by = ");
        sql.arg(Arg::Text(creator.clone()));
    }
    sql.push(" ORDER BY e.feed_seq LIMIT ");
    sql.arg(Arg::Int(i64::from(q.limit)));
    sql
}

/// Starts the fan-out cursor of a tenant's first webhook endpoint at the
/// end of its feed (`?1` the tenant, `?2` the cursor's name, `?3` the new
/// endpoint; PostgreSQL writes `$` for `?`), so the fan-out does not walk
/// every earlier event only to find that none is for an endpoint made
/// after it. A cursor in use (other endpoints) never moves back.
pub(crate) const START_CURSOR: &str = "INSERT INTO feed_cursors (tenant_id, name, position)
 SELECT ?1, ?2, COALESCE(MAX(feed_seq), 0) FROM order_events
  WHERE tenant_id = ?1 AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE tenant_id = ?1 AND id <> ?3)
 ON CONFLICT (tenant_id, name) DO UPDATE SET position =
     CASE WHEN excluded.position > feed_cursors.position THEN excluded.position ELSE feed_cursors.position END";

/// A delivery sent again as soon as a worker can, with a fresh maximum
/// age (`?3` now; PostgreSQL writes `$` for `?`). A live claim is left
/// alone: its attempt ends as it ends.
pub(crate) const RETRY: &str =
    "status = 'pending', updated_at = ?3, run_at = ?3, retrying_since = ?3, failures = 0";

/// The columns [`deliveries`] selects, in order.
pub(crate) const DELIVERY_COLUMNS: &str =
    "tenant_id, id, endpoint_id, event_id, order_id, event_sequence, feed_seq, event_type, status,
     attempts, created_at, updated_at, last_status_code, last_error";

/// The tenant's deliveries matching `q` (or the one with `id`), oldest
/// first. Only the filters given are written in, so the tenant-led indexes
/// serve them (a `? IS NULL OR …` term would make both databases scan).
pub(crate) fn deliveries(
    dialect: Dialect,
    tenant: TenantId,
    q: &DeliveryQuery,
    id: Option<WebhookDeliveryId>,
) -> Sql {
    let mut sql = Sql::new(
        dialect,
        format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = "),
    );
    sql.arg(Arg::Text(tenant.to_string()));
    let mut equals = |column: &str, value: Option<String>| {
        if let Some(v) = value {
            sql.push(&format!(" AND {column} = "));
            sql.arg(Arg::Text(v));
        }
    };
    equals("id", id.map(|d| d.to_string()));
    equals("endpoint_id", q.endpoint_id.map(|e| e.to_string()));
    equals("status", q.status.map(|s| s.as_str().to_string()));
    equals("event_type", q.event_type.map(|t| t.as_str().to_string()));
    equals("order_id", q.order_id.map(|o| o.to_string()));
    if let Some(after) = q.after {
        sql.push(" AND id > ");
        sql.arg(Arg::Text(after.to_string()));
    }
    sql.push(" ORDER BY id");
    if let Some(limit) = q.limit {
        sql.push(" LIMIT ");
        sql.arg(Arg::Int(i64::from(limit)));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cursor, Sort};
    use ordo_domain::{Namespace, TenantId};

    #[test]
    fn placeholders_follow_the_dialect_and_the_tenant_comes_first() {
        let scope = Scope::tenant(TenantId::new());
        let query = OrderQuery {
            filter: OrderFilter {
                q: Some("ada".into()),
                external_id: Some((Namespace::parse("com.acme").expect("ns"), "W-1".into())),
                ..OrderFilter::default()
            },
            sort: Sort {
                field: SortField::Total,
                descending: true,
            },
            after: Some(Cursor {
                value: 10,
                id: OrderId::new(),
            }),
            limit: 50,
        };
        let pg = page(POSTGRES, &scope, &query, "id");
        assert!(pg
            .text
            .starts_with("SELECT id FROM orders o WHERE tenant_id = $1"));
        assert!(pg.text.contains("buyer_name ILIKE $4 ESCAPE"));
        assert!(pg.text.contains("(total, id) < ($5, $6)"));
        assert!(pg.text.ends_with("LIMIT $7"));
        assert_eq!(pg.args.len(), 7);
        assert_eq!(pg.args[0], Arg::Text(scope.tenant_id.to_string()));
        let lite = page(SQLITE, &scope, &query, "id");
        assert_eq!(
            pg.text.replace("ILIKE", "LIKE").replace('$', "?"),
            lite.text
        );
        assert_eq!(lite.args, pg.args);
    }
}
