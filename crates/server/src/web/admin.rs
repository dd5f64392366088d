//! The admin pages: orders (a filtered, searchable list and each order with
//! everything done to it) and the form every action posts to.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Form;
use minijinja::context;
use ordo_domain::{Channel, FulfillmentStatus, OrderStatus, PaymentStatus, Permission, Stage};
use serde_json::{Map, Value};

use super::session::Staff;
use super::{
    admin_path, chart, either, encode, flash_to, page_with_flash, safe_path, segment, take_flash,
    Listing, Web, ADMIN,
};

/// Orders on one page of the list.
const PAGE_SIZE: u32 = 25;
/// The list's filters, passed to `GET /v1/orders` as they are.
const FILTERS: &[&str] = &[
    "batch_id",
    "stage",
    "status",
    "payment_status",
    "fulfillment_status",
    "channel",
    "q",
    "sort",
    "cursor",
];

/// Days the dashboard's chart covers.
const CHART_DAYS: i64 = 30;

/// The dashboard: orders by stage, and the last 30 days' orders and sales.
pub(crate) async fn home(State(web): State<Web>, headers: HeaderMap, staff: Staff) -> Response {
    let path = format!("/v1/reports/overview?days={CHART_DAYS}");
    let overview = match web.get(&staff.principal, &path).await {
        Ok(o) => o,
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    let from = overview["from"].as_str().unwrap_or_default();
    let start = ordo_domain::Timestamp::parse_rfc3339(&format!("{from}T00:00:00Z"))
        .map_or(0, |t| t.unix_millis());
    let currencies = by_currency(&overview["days"]);
    // The chart is of the currency with the most orders (amounts in two
    // currencies do not compare); the others are listed under it.
    let main = currencies
        .iter()
        .max_by_key(|(_, days)| days.iter().map(|d| d.orders).sum::<u64>())
        .map(|(c, _)| c.clone());
    let chart = main.as_ref().map(|currency| {
        let sold = &currencies[currency];
        let days: Vec<chart::Day> = (0..CHART_DAYS)
            .map(|i| {
                let date = ordo_domain::Timestamp::from_unix_millis(start + i * 86_400_000).date();
                sold.iter()
                    .find(|d| d.date == date)
                    .cloned()
                    .unwrap_or(chart::Day {
                        date,
                        orders: 0,
                        total: 0,
                        shown: "0".into(),
                    })
            })
            .collect();
        let svg = chart::svg(&days, currency);
        let rows: Vec<minijinja::Value> = days
            .iter()
            .rev()
            .filter(|d| d.orders > 0)
            .map(|d| context! { date => d.date, orders => d.orders, shown => d.shown })
            .collect();
        context! { currency => currency, svg => svg, rows => rows }
    });
    let others: Vec<minijinja::Value> = currencies
        .iter()
        .filter(|(c, _)| Some(*c) != main.as_ref())
        .map(|(c, days)| {
            let listed: Vec<minijinja::Value> = days
                .iter()
                .map(|d| context! { date => d.date, orders => d.orders, shown => d.shown })
                .collect();
            context! {
                currency => c,
                orders => days.iter().map(|d| d.orders).sum::<u64>(),
                days => listed,
            }
        })
        .collect();
    let stages: Vec<minijinja::Value> = Stage::ALL
        .iter()
        .map(|s| context! { name => s.as_str(), count => overview["stages"][s.as_str()].as_u64().unwrap_or(0) })
        .collect();
    page(
        &web,
        &headers,
        &staff,
        StatusCode::OK,
        "dashboard.html",
        "dashboard",
        context! {
            stages => stages,
            chart => chart,
            others => others,
            from => from,
            to => overview["to"].clone(),
        },
    )
}

/// The overview's days, by currency.
fn by_currency(days: &Value) -> std::collections::BTreeMap<String, Vec<chart::Day>> {
    let mut out: std::collections::BTreeMap<String, Vec<chart::Day>> = Default::default();
    for d in days.as_array().map(Vec::as_slice).unwrap_or_default() {
        let (Some(currency), Some(date), Some(total)) = (
            d["currency"].as_str(),
            d["date"].as_str(),
            d["total"].as_str(),
        ) else {
            continue;
        };
        let Ok(c) = ordo_domain::Currency::parse(currency) else {
            continue;
        };
        let minor = c.parse_amount(total).unwrap_or(0);
        out.entry(currency.to_string())
            .or_default()
            .push(chart::Day {
                date: date.to_string(),
                orders: d["orders"].as_u64().unwrap_or(0),
                total: minor,
                shown: c.display_amount(minor),
            });
    }
    out
}

/// The status a page answers with: the problem's, if the API refused.
pub(super) fn status_of(problem: &Value, otherwise: StatusCode) -> StatusCode {
    problem["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(otherwise)
}

/// A page saying what the API refused.
pub(super) fn problem_page(web: &Web, staff: &Staff, problem: &Value) -> Response {
    let status = status_of(problem, StatusCode::INTERNAL_SERVER_ERROR);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        _ => problem["title"].as_str().unwrap_or("Error"),
    };
    web.pages().render(
        status,
        "message.html",
        context! {
            staff => staff.context(),
            may => may(staff),
            title => title,
            message => problem["detail"].clone(),
            back => "/admin",
        },
    )
}

/// What the user's role may do, for the pages to offer only that.
pub(super) fn may(staff: &Staff) -> minijinja::Value {
    let role = staff.principal.role;
    context! {
        write_orders => role.can(Permission::WriteOrders),
        refund => role.can(Permission::Refund),
        catalog => role.can(Permission::ManageCatalog),
        settings => role.can(Permission::ManageSettings),
        webhooks => role.can(Permission::ManageWebhooks),
    }
}

pub(crate) async fn orders(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let listing = Listing::of("/admin/orders", "cursor", FILTERS, query);
    let who = &staff.principal;
    let list = format!("/v1/orders?{}", listing.api_query(PAGE_SIZE));
    let (page_of, problem) = either(web.get(who, &list).await);
    let matching = if problem.is_null() {
        let count = format!("/v1/orders/count?{}", encode(&listing.without(&["sort"])));
        web.get(who, &count)
            .await
            .ok()
            .and_then(|v| v["count"].as_u64())
    } else {
        None
    };
    // Tabs: every stage with its count (other filters aside).
    let overview = web
        .get(who, "/v1/reports/overview?days=0")
        .await
        .unwrap_or(Value::Null);
    let stages: Vec<minijinja::Value> = Stage::ALL
        .iter()
        .map(|s| context! { name => s.as_str(), count => overview["stages"][s.as_str()].as_u64() })
        .collect();
    page(
        &web,
        &headers,
        &staff,
        status_of(&problem, StatusCode::OK),
        "orders.html",
        "orders",
        context! {
            orders => page_of["data"].clone(),
            problem => problem,
            matching => matching,
            stages => stages,
            filters => filter_choices(),
            chosen => listing.chosen(),
            next => listing.next(page_of["next_cursor"].as_str()),
            first => listing.first(),
        },
    )
}

/// The list's selects, with the API's own values (so the page and the API
/// cannot disagree on them).
fn filter_choices() -> Vec<minijinja::Value> {
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| name(*v)).collect()
    }
    vec![
        context! { name => "stage", label => "Stage", values => names(Stage::ALL, Stage::as_str) },
        context! { name => "status", label => "Status", values => names(OrderStatus::ALL, OrderStatus::as_str) },
        context! { name => "payment_status", label => "Payment", values => names(PaymentStatus::ALL, PaymentStatus::as_str) },
        context! { name => "fulfillment_status", label => "Fulfilment", values => names(FulfillmentStatus::ALL, FulfillmentStatus::as_str) },
        context! { name => "channel", label => "Channel", values => names(Channel::ALL, Channel::as_str) },
    ]
}

pub(crate) async fn order(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/orders/{}?expand=events", segment(&id));
    let order = match web.get(&staff.principal, &path).await {
        Ok(order) => order,
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    // The buyer's page, for staff to open or send on. A link lets whoever
    // holds it act as the buyer: only for those who may change orders.
    let id = order["id"].as_str().and_then(|i| i.parse().ok());
    let buyer_link = match id {
        Some(id) if staff.principal.role.can(Permission::WriteOrders) => {
            crate::links::url(web.app(), staff.principal.tenant_id, id)
                .await
                .ok()
        }
        _ => None,
    };
    // Shipments and returns name their items by line id.
    let line_names: std::collections::HashMap<String, Value> = order["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| Some((l["id"].as_str()?.to_string(), l["name"].clone())))
        .collect();
    let refundable = refundable(&order);
    // What the forms may offer: a card charge (the shop has a provider),
    // items outside the catalog, the shipping rates of the order's currency.
    let app = web.app();
    let settings = app
        .settings()
        .get(app.store(), staff.principal.tenant_id)
        .await
        .ok();
    let charges = settings
        .as_ref()
        .is_some_and(|s| s.payment_provider.is_some());
    let free_text = settings.as_ref().is_some_and(|s| s.free_text_lines);
    let currency = order["currency"].as_str().unwrap_or_default();
    let shipping_methods: Vec<String> = settings
        .iter()
        .flat_map(|s| s.shipping_rates.iter())
        .filter(|r| r.currency.code() == currency)
        .map(|r| r.name.clone())
        .collect();
    page(
        &web,
        &headers,
        &staff,
        StatusCode::OK,
        "order.html",
        "orders",
        context! {
            order => order, buyer_link => buyer_link, line_names => line_names,
            refundable => refundable, charges => charges, free_text => free_text,
            shipping_methods => shipping_methods,
        },
    )
}

/// Whether the order holds money that can be paid back: paid more than
/// refunded.
fn refundable(order: &Value) -> bool {
    let Ok(c) = ordo_domain::Currency::parse(order["currency"].as_str().unwrap_or_default()) else {
        return false;
    };
    let amount = |field: &str| {
        c.parse_amount(order[field].as_str().unwrap_or("0"))
            .unwrap_or(0)
    };
    amount("amount_paid") > amount("amount_refunded")
}

/// A receipt's file, for its preview on the order's page.
pub(crate) async fn receipt_file(
    State(web): State<Web>,
    staff: Staff,
    Path((id, receipt)): Path<(String, String)>,
) -> Response {
    let path = format!("/v1/orders/{}/receipts/{}", segment(&id), segment(&receipt));
    let mut r = web
        .call_raw(&staff.principal, Method::GET, &path, None, None)
        .await;
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=300"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

/// Every form that changes something posts here: `_path` (an API path),
/// `_method` (POST unless PATCH, PUT or DELETE), `_back` (the page to go
/// back to), `_form` (which form, to show a problem next to its fields),
/// `_version` (the version the page showed: a change since is refused),
/// `_ok` (what to say when it worked), and the API body's fields: `a.b`
/// for nested ones, `a[2].b` for rows of a list, a `:int` or `:bool`
/// suffix for numbers and checkboxes, `a[2]:remove` ticked to take a row
/// out; empty fields are left out (see [`form_body`]). The call is made
/// as the signed-in user.
pub(crate) async fn act(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form: HashMap<String, String> = fields.iter().cloned().collect();
    if let Some(refusal) = staff.refuse_forged(&web, &form) {
        return refusal;
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let back = admin_path(get("_back")).unwrap_or("/admin").to_string();
    let path = get("_path");
    if safe_path("/v1/", path).is_none() {
        return flash_to(
            &web,
            &headers,
            ADMIN,
            &back,
            &failed(get("_form"), "_path", path, "not a path of the API"),
        );
    }
    let method = match get("_method") {
        "" | "POST" => Method::POST,
        "PATCH" => Method::PATCH,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => {
            return flash_to(
                &web,
                &headers,
                ADMIN,
                &back,
                &failed(get("_form"), "_method", other, "POST, PATCH, PUT or DELETE"),
            );
        }
    };
    let FormBody { value: body, moved } = match form_body(&fields) {
        Ok(b) => b,
        Err((field, value, accepted)) => {
            let mut flash = failed(get("_form"), &field, &value, &accepted);
            flash["values"] = typed(&fields);
            return flash_to(&web, &headers, ADMIN, &back, &flash);
        }
    };
    // A form with nothing filled in is an empty object: some routes take
    // no body, others need one, and both take `{}`.
    let body = match body {
        None if method != Method::DELETE => Some(Value::Object(Map::new())),
        body => body,
    };
    let version = Some(get("_version")).filter(|v| !v.is_empty());
    let answer = web
        .call(&staff.principal, method, path, body.as_ref(), version)
        .await;
    let flash = match answer {
        Ok(answer) => {
            let ok = Some(get("_ok"))
                .filter(|m| !m.is_empty())
                .unwrap_or("Done.");
            // `_show` names a field of the answer to show once (a secret
            // that is never shown again, say).
            let shown = Some(get("_show"))
                .filter(|f| !f.is_empty())
                .map(|f| answer[f].clone());
            serde_json::json!({"ok": ok, "shown": shown})
        }
        Err(problem) => {
            let problem = as_the_form_named(problem, &moved);
            serde_json::json!({"form": get("_form"), "problem": problem, "values": typed(&fields)})
        }
    };
    flash_to(&web, &headers, ADMIN, &back, &flash)
}

/// A page of the admin: `template` with `values`, the user, what their
/// role may do, the navigation's current item and the flash.
pub(super) fn page(
    web: &Web,
    headers: &HeaderMap,
    staff: &Staff,
    status: StatusCode,
    template: &str,
    nav: &str,
    values: minijinja::Value,
) -> Response {
    let flash = take_flash(headers);
    let shown = flash.is_some();
    let context = context! {
        staff => staff.context(),
        may => may(staff),
        nav => nav,
        flash => flash,
        ..values
    };
    page_with_flash(
        web,
        headers,
        ADMIN,
        shown,
        web.pages().render(status, template, context),
    )
}

/// The values typed into a form, to show again with its problem: named as
/// the API names the field, but for the units and serials of an item,
/// which share one name.
fn typed(fields: &[(String, String)]) -> Value {
    let values = fields
        .iter()
        .filter(|(k, _)| !k.starts_with('_') && k != "csrf")
        .map(|(k, v)| {
            let name = match k.split_once(':') {
                Some((_, "units" | "serials")) | None => k,
                Some((name, _)) => name,
            };
            (name.to_string(), Value::String(v.clone()))
        });
    Value::Object(values.collect())
}

/// A problem made here about a form's own field.
fn failed(form: &str, field: &str, value: &str, accepted: &str) -> Value {
    serde_json::json!({
        "form": form,
        "problem": {
            "title": "The form is not right",
            "status": 422,
            "detail": format!("{field}: \"{value}\" is not accepted ({accepted})."),
            "errors": [{"field": field, "value": value, "reason": "not accepted", "accepted": accepted}],
        },
    })
}

type BadField = (String, String, String);

/// The API body a form's fields make (`None` when it has none), and where
/// rows taken out of its lists moved the others, so that a problem about
/// the body's `items[1]` is shown at the form's `items[2]` when the form's
/// `items[1]` was taken out.
#[derive(Debug, Default)]
struct FormBody {
    value: Option<Value>,
    /// A list's path and, for each row left in it, the row's place in the form.
    moved: Vec<(String, Vec<usize>)>,
}

/// The mark a `:remove` field leaves on a row to be taken out of its list.
const REMOVED: &str = "[removed]";

/// The parts of a field's name: `a.b` nests, `items[2]` is the third row
/// of the list `items` (the key `[2]` until [`lists`] makes the list).
fn name_parts(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for part in name.split('.') {
        match part.split_once('[') {
            None if !part.is_empty() && !part.contains(']') => parts.push(part.to_string()),
            Some((key, rest)) if !key.is_empty() && !key.contains(']') => {
                let index = rest.strip_suffix(']')?.parse::<usize>().ok()?;
                parts.push(key.to_string());
                parts.push(format!("[{index}]"));
            }
            _ => return None,
        }
    }
    Some(parts)
}

/// Puts `value` at `parts` in `body`, making the objects on the way.
fn insert(body: &mut Map<String, Value>, parts: &[String], value: Value) {
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut at = body;
    for part in path {
        let entry = at
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else { return };
        at = inner;
    }
    at.insert(last.clone(), value);
}

/// Makes the objects keyed `[n]` lists in the order of `n`, leaving out
/// rows taken out (`:remove`) and rows with nothing filled in (a blank
/// "add an item" row), and notes in `moved` the lists whose rows moved.
fn lists(value: Value, path: &str, moved: &mut Vec<(String, Vec<usize>)>) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let indexes: Option<Vec<usize>> = map
        .keys()
        .map(|k| k.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .collect();
    let Some(indexes) = indexes.filter(|i| !i.is_empty()) else {
        let object = map.into_iter().map(|(key, value)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            (key, lists(value, &inner, moved))
        });
        return Value::Object(object.collect());
    };
    let mut rows: Vec<(usize, Value)> = indexes.into_iter().zip(map.into_values()).collect();
    rows.sort_by_key(|(i, _)| *i);
    let (mut list, mut kept) = (Vec::new(), Vec::new());
    for (i, row) in rows {
        let gone = row
            .as_object()
            .is_some_and(|r| r.is_empty() || r.get(REMOVED) == Some(&Value::Bool(true)));
        if !gone {
            list.push(lists(row, &format!("{path}[{i}]"), moved));
            kept.push(i);
        }
    }
    if kept.iter().enumerate().any(|(at, i)| at != *i) {
        moved.push((path.to_string(), kept));
    }
    Value::Array(list)
}

/// A problem's fields named as the form named them (see [`FormBody`]).
fn as_the_form_named(mut problem: Value, moved: &[(String, Vec<usize>)]) -> Value {
    let Some(errors) = problem.get_mut("errors").and_then(Value::as_array_mut) else {
        return problem;
    };
    for error in errors {
        let Some(Value::String(field)) = error.get_mut("field") else {
            continue;
        };
        for (path, kept) in moved {
            let Some((n, rest)) = field
                .strip_prefix(path.as_str())
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.split_once(']'))
            else {
                continue;
            };
            if let Some(place) = n.parse::<usize>().ok().and_then(|n| kept.get(n)) {
                *field = format!("{path}[{place}]{rest}");
            }
        }
    }
    problem
}

fn form_body(fields: &[(String, String)]) -> Result<FormBody, BadField> {
    let mut body = Map::new();
    let mut units = (false, Vec::new());
    let mut serials = Vec::new();
    for (key, value) in fields {
        if key.starts_with('_') || key == "csrf" {
            continue;
        }
        // Browsers send the line breaks of a field as CRLF: as the page
        // showed them, so that a text sent back untouched is unchanged.
        let value = &value.replace("\r\n", "\n");
        let (name, kind) = key.split_once(':').unwrap_or((key.as_str(), ""));
        // `lines.<line id>:units`: so many units of an item, gathered in
        // `lines` as the API takes them; none (empty or 0) leaves it out.
        if kind == "units" {
            units.0 = true;
            let text = value.trim();
            let n = if text.is_empty() {
                0
            } else {
                text.parse::<i64>().map_err(|_| {
                    (
                        name.to_string(),
                        value.clone(),
                        "a whole number of units".to_string(),
                    )
                })?
            };
            if n != 0 {
                let line = name.strip_prefix("lines.").unwrap_or(name);
                units
                    .1
                    .push(serde_json::json!({"line_id": line, "quantity": n}));
            }
            continue;
        }
        // `lines.<line id>:serials`: the serial numbers (IMEIs) of the
        // units of that item, comma-separated, as its `instances`.
        if kind == "serials" {
            let list: Vec<Value> = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| serde_json::json!({ "serial": v }))
                .collect();
            if !list.is_empty() {
                let line = name.strip_prefix("lines.").unwrap_or(name);
                serials.push((line.to_string(), key.clone(), value.clone(), list));
            }
            continue;
        }
        let Some(mut parts) = name_parts(name) else {
            return Err((
                key.clone(),
                value.clone(),
                "a field name: a.b for a field of an object, a[2] for a row of a list".into(),
            ));
        };
        // `items[2]:remove` ticked takes the row out of its list.
        if kind == "remove" {
            if !parts.last().is_some_and(|p| p.starts_with('[')) {
                return Err((
                    key.clone(),
                    value.clone(),
                    "a row of a list, as items[2]".into(),
                ));
            }
            if matches!(value.as_str(), "true" | "on" | "1") {
                parts.push(REMOVED.to_string());
                insert(&mut body, &parts, Value::Bool(true));
            }
            continue;
        }
        let value = match kind {
            // An optional field left empty is cleared (`null`).
            "opt" if value.trim().is_empty() => Value::Null,
            "opt" => Value::String(value.trim().to_string()),
            // An empty list is sent as one: "no codes", "every event type".
            "list" => Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_string()))
                    .collect(),
            ),
            _ if value.trim().is_empty() => continue,
            "" => Value::String(value.trim().to_string()),
            "int" => value.trim().parse::<i64>().map(Value::from).map_err(|_| {
                (
                    name.to_string(),
                    value.clone(),
                    "a whole number".to_string(),
                )
            })?,
            "bool" => Value::Bool(matches!(value.as_str(), "true" | "on" | "1")),
            // `size=M, colour=red`: an object of texts.
            "pairs" => {
                let mut object = Map::new();
                for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty())
                    else {
                        return Err((
                            name.to_string(),
                            value.clone(),
                            "name=value pairs separated by commas, as size=M, colour=red".into(),
                        ));
                    };
                    object.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
                }
                Value::Object(object)
            }
            _ => return Err((
                key.clone(),
                value.clone(),
                "a field name, with :int, :bool, :list, :pairs, :opt, :units, :serials or :remove"
                    .into(),
            )),
        };
        insert(&mut body, &parts, value);
    }
    if units.0 {
        // A form of units with none chosen must not mean "all of them",
        // which is what the API takes a missing `lines` to mean.
        if units.1.is_empty() {
            return Err((
                "lines".into(),
                "0".into(),
                "at least one unit of one item".into(),
            ));
        }
        for (line, key, value, list) in serials {
            let entry = units
                .1
                .iter_mut()
                .find(|u| u["line_id"].as_str() == Some(line.as_str()));
            let Some(entry) = entry else {
                return Err((key, value, "serials of units chosen".into()));
            };
            entry["instances"] = Value::Array(list);
        }
        body.insert("lines".into(), Value::Array(units.1));
    } else if let Some((_, key, value, _)) = serials.into_iter().next() {
        return Err((key, value, "serials of units chosen".into()));
    }
    let mut moved = Vec::new();
    let Value::Object(body) = lists(Value::Object(body), "", &mut moved) else {
        return Ok(FormBody::default());
    };
    // Outer lists first: a row's own lists are named by its place in the form.
    moved.sort_by_key(|(path, _)| path.len());
    Ok(FormBody {
        value: (!body.is_empty()).then_some(Value::Object(body)),
        moved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(fields: &[(String, String)]) -> Result<Option<Value>, BadField> {
        form_body(fields).map(|b| b.value)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_forms_fields_make_the_api_body() {
        let body = body_of(&pairs(&[
            ("csrf", "x"),
            ("_path", "/v1/orders/ord_1/cancel"),
            ("reason", " changed mind "),
            ("tracking.carrier", "DHL"),
            ("tracking.number", ""),
            ("notify:bool", "on"),
            ("quantity:int", "3"),
        ]))
        .unwrap();
        assert_eq!(
            body,
            Some(serde_json::json!({
                "reason": "changed mind",
                "tracking": {"carrier": "DHL"},
                "notify": true,
                "quantity": 3,
            }))
        );
        assert_eq!(
            body_of(&pairs(&[("csrf", "x"), ("_ok", "Confirmed")])).unwrap(),
            None
        );
        assert_eq!(
            body_of(&pairs(&[
                ("lines.li_A:units", "2"),
                ("lines.li_B:units", "0"),
                ("lines.li_C:units", ""),
                ("reason", "wrong size"),
            ]))
            .unwrap(),
            Some(serde_json::json!({
                "lines": [{"line_id": "li_A", "quantity": 2}],
                "reason": "wrong size",
            }))
        );
        assert_eq!(
            body_of(&pairs(&[("lines.li_A:units", "0")])).unwrap_err().0,
            "lines"
        );
        assert_eq!(
            body_of(&pairs(&[
                ("lines.li_A:serials", "3591, 3592,"),
                ("lines.li_A:units", "2"),
                ("lines.li_B:units", "1"),
                ("lines.li_B:serials", " "),
            ]))
            .unwrap(),
            Some(serde_json::json!({"lines": [
                {"line_id": "li_A", "quantity": 2, "instances": [{"serial": "3591"}, {"serial": "3592"}]},
                {"line_id": "li_B", "quantity": 1},
            ]}))
        );
        assert_eq!(
            body_of(&pairs(&[
                ("lines.li_A:units", "1"),
                ("lines.li_B:units", "0"),
                ("lines.li_B:serials", "3591"),
            ]))
            .unwrap_err()
            .0,
            "lines.li_B:serials"
        );
        assert_eq!(
            body_of(&pairs(&[
                ("event_types:list", "order.created, order.cancelled,"),
                ("payment_instructions:opt", " "),
                ("messaging.templates.order_created:opt", "Hi {buyer_name}"),
            ]))
            .unwrap(),
            Some(serde_json::json!({
                "event_types": ["order.created", "order.cancelled"],
                "payment_instructions": null,
                "messaging": {"templates": {"order_created": "Hi {buyer_name}"}},
            }))
        );
        // Rows of lists: taken out, left blank, or kept, in their order.
        let rows = pairs(&[
            ("items[0].sku", "DRESS"),
            ("items[0].quantity:int", "2"),
            ("items[0].attributes.size", "M"),
            ("items[0]:remove", "on"),
            ("items[1].sku", "SCARF"),
            ("items[1].quantity:int", "1"),
            ("items[1].instances[0].serial", "3591"),
            ("items[10].sku", "HAT"),
            ("items[10].quantity:int", "3"),
            ("items[11].sku", ""),
            ("items[11].quantity:int", ""),
        ]);
        let body = form_body(&rows).unwrap();
        assert_eq!(
            body.value,
            Some(serde_json::json!({"items": [
                {"sku": "SCARF", "quantity": 1, "instances": [{"serial": "3591"}]},
                {"sku": "HAT", "quantity": 3},
            ]}))
        );
        assert_eq!(body.moved, vec![("items".to_string(), vec![1, 10])]);
        // The API's problem about its second item is the form's row 10.
        let problem = serde_json::json!({"errors": [
            {"field": "items[1].sku", "reason": "no such product"},
            {"field": "items[0].instances[0].serial", "reason": "taken"},
            {"field": "notes", "reason": "too long"},
        ]});
        let fields: Vec<Value> = as_the_form_named(problem, &body.moved)["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].clone())
            .collect();
        assert_eq!(
            fields,
            ["items[10].sku", "items[1].instances[0].serial", "notes"]
        );
        assert_eq!(
            body_of(&pairs(&[
                ("items[0].attributes:pairs", "size = M, colour=red,"),
                ("items[0].description", "Two lines\r\nof text"),
            ]))
            .unwrap(),
            Some(serde_json::json!({"items": [{
                "attributes": {"size": "M", "colour": "red"},
                "description": "Two lines\nof text",
            }]}))
        );
        assert_eq!(body_of(&pairs(&[("a:pairs", "size")])).unwrap_err().0, "a");
        for bad in ["items[x].sku", "items[].sku", "a..b", "items]0[", "[0]"] {
            assert_eq!(body_of(&pairs(&[(bad, "1")])).unwrap_err().0, bad);
        }
        assert_eq!(
            body_of(&pairs(&[("notes:remove", "on")])).unwrap_err().0,
            "notes:remove"
        );
        assert_eq!(
            body_of(&pairs(&[("quantity:int", "three")])).unwrap_err(),
            (
                "quantity".to_string(),
                "three".to_string(),
                "a whole number".to_string()
            )
        );
    }
}
