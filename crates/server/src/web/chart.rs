//! The dashboard's chart: orders and sales a day, drawn on the server as
//! SVG (no script, no library), with a title and a description for screen
//! readers and a tooltip on every day.

use std::fmt::Write as _;

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub orders: u64,
    /// Sales, in minor units.
    pub total: i64,
    /// Sales as people read them (`₦28,000.00`).
    pub shown: String,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 28.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars of each day's sales and a line of its orders; `what` names the
/// currency (`NGN`) in the title.
pub fn svg(days: &[Day], what: &str) -> String {
    let n = days.len().max(1) as f64;
    let max_total = days.iter().map(|d| d.total).max().unwrap_or(0).max(1) as f64;
    let max_orders = days.iter().map(|d| d.orders).max().unwrap_or(0).max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / n;
    let bar = (step * 0.7).max(1.0);
    let orders: u64 = days.iter().map(|d| d.orders).sum();
    let best = days.iter().max_by_key(|d| d.total);
    let (first, last) = (
        days.first().map_or("", |d| d.date.as_str()),
        days.last().map_or("", |d| d.date.as_str()),
    );
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        out,
        r#"<title id="chart-title">Orders and sales ({}) a day, {} to {}</title>"#,
        escape(what),
        escape(first),
        escape(last)
    );
    let busiest = best
        .filter(|d| d.total > 0)
        .map_or("No sales in these days.".to_string(), |d| {
            format!("The best day was {} with {}.", d.date, d.shown)
        });
    let _ = write!(
        out,
        r#"<desc id="chart-desc">{} orders in {} days. {}</desc>"#,
        orders,
        days.len(),
        escape(&busiest)
    );
    // The baseline, and the top of the scale.
    let base = TOP + plot_h;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/>"#,
        WIDTH - RIGHT
    );
    if let Some(top) = best.filter(|d| d.total > 0) {
        let _ = write!(
            out,
            r#"<text class="label" x="{LEFT}" y="14">{}</text>"#,
            escape(&top.shown)
        );
    }
    let mut line = String::new();
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + step * i as f64 + (step - bar) / 2.0;
        let h = plot_h * d.total as f64 / max_total;
        let _ = write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{}: {} {}, {}</title></rect>"#,
            base - h,
            escape(&d.date),
            d.orders,
            if d.orders == 1 { "order" } else { "orders" },
            escape(&d.shown)
        );
        let cx = LEFT + step * i as f64 + step / 2.0;
        let cy = base - plot_h * d.orders as f64 / max_orders;
        let _ = write!(line, "{cx:.1},{cy:.1} ");
    }
    let _ = write!(
        out,
        r#"<polyline class="orders" points="{}"/>"#,
        line.trim_end()
    );
    let _ = write!(
        out,
        r#"<text class="label" x="{LEFT}" y="{}">{}</text><text class="label" x="{}" y="{}" text-anchor="end">{}</text>"#,
        HEIGHT - 8.0,
        escape(first),
        WIDTH - RIGHT,
        HEIGHT - 8.0,
        escape(last)
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, orders: u64, total: i64) -> Day {
        Day {
            date: date.into(),
            orders,
            total,
            shown: format!("₦{}.00", total / 100),
        }
    }

    #[test]
    fn the_chart_scales_to_the_best_day_and_says_so() {
        let svg = svg(
            &[
                day("2026-11-23", 0, 0),
                day("2026-11-24", 2, 500_000),
                day("2026-11-25", 1, 250_000),
            ],
            "NGN",
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<title id=\"chart-title\">Orders and sales (NGN) a day, 2026-11-23 to 2026-11-25</title>"));
        assert!(svg.contains("3 orders in 3 days. The best day was 2026-11-24 with ₦5000.00."));
        assert_eq!(svg.matches("<rect").count(), 3);
        // The best day's bar fills the plot; half its sales, half the height.
        assert!(
            svg.contains(r#"height="188.0"><title>2026-11-24: 2 orders, ₦5000.00</title>"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"height="94.0"><title>2026-11-25: 1 order, ₦2500.00</title>"#),
            "{svg}"
        );
        assert!(svg.contains(r#"height="0.0"><title>2026-11-23: 0 orders"#));
        let empty = super::svg(&[day("2026-11-25", 0, 0)], "NGN");
        assert!(empty.contains("No sales in these days."));
    }
}
