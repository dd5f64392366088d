//! The templates, built into the binary, and how a page is rendered.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment};

use super::plain;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("message.html", include_str!("templates/message.html")),
    ("forms.html", include_str!("templates/forms.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("orders.html", include_str!("templates/orders.html")),
    ("order.html", include_str!("templates/order.html")),
    ("buyer.html", include_str!("templates/buyer.html")),
    ("products.html", include_str!("templates/products.html")),
    ("product.html", include_str!("templates/product.html")),
    (
        "product_new.html",
        include_str!("templates/product_new.html"),
    ),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("imports.html", include_str!("templates/imports.html")),
    ("import.html", include_str!("templates/import.html")),
    ("settings.html", include_str!("templates/settings.html")),
];

const STYLESHEET: &str = include_str!("templates/ordo.css");

/// The templates, parsed once. HTML is escaped everywhere unless a
/// template says otherwise (none does).
pub(crate) struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new() -> Pages {
        let (env, broken) = environment();
        for (name, e) in broken {
            // A template that does not parse is a bug that tests catch;
            // its pages then answer 500 saying so.
            tracing::error!(template = name, error = %e, "template does not parse");
        }
        Pages { env }
    }

    /// Renders `template` with `context`, as `status`.
    pub fn render(
        &self,
        status: StatusCode,
        template: &str,
        context: minijinja::Value,
    ) -> Response {
        match self
            .env
            .get_template(template)
            .and_then(|t| t.render(context))
        {
            Ok(html) => {
                let mut r = (status, html).into_response();
                let headers = r.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
                    ),
                );
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                headers.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                );
                r
            }
            Err(e) => {
                tracing::error!(template, error = %format!("{e:#}"), "page failed to render");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("ordo: the page {template} failed to render: {e}"),
                )
            }
        }
    }
}

/// The templates with their filters, and those that do not parse.
fn environment() -> (Environment<'static>, Vec<(&'static str, String)>) {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("when", when);
    env.add_filter("words", words);
    env.add_filter("wa_link", wa_link);
    env.add_filter("nonzero", nonzero);
    env.add_filter("signed", signed);
    env.add_filter("segment", |text: String| super::segment(&text));
    let mut broken = Vec::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            broken.push((*name, format!("{e:#}")));
        }
    }
    (env, broken)
}

pub(crate) async fn stylesheet() -> Response {
    let mut r = STYLESHEET.into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// An RFC 3339 time as `2026-11-25 14:03 UTC` (the API's times are UTC).
fn when(value: Option<String>) -> String {
    let Some(text) = value else {
        return String::new();
    };
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) if text.ends_with('Z') => format!("{day} {time} UTC"),
        _ => text,
    }
}

/// `partially_shipped` as `partially shipped`.
fn words(value: Option<String>) -> String {
    value.unwrap_or_default().replace('_', " ")
}

/// Whether an amount as the API writes it (`0.00`, `1500`) is not zero.
fn nonzero(value: Option<String>) -> bool {
    value.is_some_and(|v| v.chars().any(|c| c.is_ascii_digit() && c != '0'))
}

/// A change as `+3` or `-2`.
fn signed(n: i64) -> String {
    format!("{n:+}")
}

/// A WhatsApp chat link for a phone number (E.164) or a `wa_…` channel id;
/// empty when there is neither.
fn wa_link(value: Option<String>) -> String {
    let text = value.unwrap_or_default();
    let digits: String = text
        .strip_prefix("wa_")
        .unwrap_or(&text)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if digits.len() < 7 || text.starts_with("ig_") {
        return String::new();
    }
    format!("https://wa.me/{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_the_apis_values() {
        assert_eq!(
            when(Some("2026-11-25T14:03:07.123Z".into())),
            "2026-11-25 14:03 UTC"
        );
        assert_eq!(when(None), "");
        assert_eq!(words(Some("partially_shipped".into())), "partially shipped");
        assert_eq!(
            wa_link(Some("+2348012345678".into())),
            "https://wa.me/2348012345678"
        );
        assert_eq!(
            wa_link(Some("wa_2348012345678".into())),
            "https://wa.me/2348012345678"
        );
        assert_eq!(wa_link(Some("ig_1784".into())), "");
        assert_eq!(wa_link(None), "");
        assert!(nonzero(Some("0.50".into())));
        assert!(!nonzero(Some("0.00".into())));
        assert!(!nonzero(Some("0".into())));
        assert_eq!(
            (signed(3), signed(-2), signed(0)),
            ("+3".into(), "-2".into(), "+0".into())
        );
    }

    #[test]
    fn every_template_parses() {
        let (_, broken) = environment();
        assert!(broken.is_empty(), "{broken:?}");
    }
}
