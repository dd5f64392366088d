//! Reports over a tenant's orders: what the admin dashboard shows.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use ordo_domain::field::FieldError;
use ordo_domain::{Currency, Stage, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::QueryParams;
use crate::app::AppState;

const MS_A_DAY: i64 = 86_400_000;
/// The longest span a report covers.
pub const MAX_DAYS: i64 = 366;

/// Options of the overview.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewParams {
    /// Days to cover, today (UTC) included: 0 (the stages only) to 366,
    /// default 30.
    pub days: Option<String>,
}

/// Orders by stage, and sales a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// The orders in each stage now (every stage, 0 when none).
    #[schema(value_type = Object, example = json!({"pending": 3, "confirmed": 1, "paid": 0, "shipped": 2, "delivered": 0, "completed": 5, "cancelled": 1}))]
    pub stages: BTreeMap<String, u64>,
    /// The first day covered (UTC), `YYYY-MM-DD`.
    pub from: String,
    /// The last day covered: today (UTC).
    pub to: String,
    /// Each day and currency with orders, oldest first: the orders created
    /// that day (cancelled ones aside) and the sum of their totals.
    pub days: Vec<DayResponse>,
}

/// The orders of one day in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayResponse {
    #[schema(example = "2026-11-24")]
    pub date: String,
    #[schema(example = "NGN")]
    pub currency: String,
    pub orders: u64,
    /// The sum of their totals, in major units with the currency's decimals.
    #[schema(example = "28000.00")]
    pub total: String,
}

fn date_of(day: i64) -> String {
    Timestamp::from_unix_millis(day.saturating_mul(MS_A_DAY)).date()
}

/// An overview of the orders: how many are in each stage, and how many
/// were made each day (UTC) with their totals, for the dashboard's chart.
/// A vendor's covers its own orders.
#[utoipa::path(
    get, path = "/v1/reports/overview", tag = "orders",
    params(OverviewParams),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`days` is not 0 to 366", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<OverviewParams>,
) -> Result<Json<Overview>, ApiError> {
    let days = match params.days.as_deref() {
        None => 30,
        Some(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|d| (0..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::field(
                    FieldError::new("days", "not a number of days")
                        .value(text)
                        .accepted(format!("0 to {MAX_DAYS}")),
                )
            })?,
    };
    let today = Timestamp::now().unix_millis().div_euclid(MS_A_DAY);
    let first = today - days + 1;
    let o = state
        .store()
        .overview(
            &principal.scope(),
            (days > 0).then(|| Timestamp::from_unix_millis(first * MS_A_DAY)),
        )
        .await?;
    let mut stages: BTreeMap<String, u64> = Stage::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for (stage, n) in o.stages {
        stages.insert(stage.as_str().to_string(), n);
    }
    let days = o
        .days
        .into_iter()
        .map(|d| DayResponse {
            date: date_of(d.day),
            total: Currency::parse(&d.currency)
                .map(|c| c.format_amount(d.total))
                .unwrap_or_else(|_| d.total.to_string()),
            currency: d.currency,
            orders: d.orders,
        })
        .collect();
    Ok(Json(Overview {
        stages,
        from: date_of(first.min(today)),
        to: date_of(today),
        days,
    }))
}
