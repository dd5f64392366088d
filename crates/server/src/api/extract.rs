//! Extractors whose every rejection is a problem+json body naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use ordo_domain::FieldError;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body, parsed strictly: unknown fields and unknown enum values are
/// refused, and every refusal names the field. `raw` keeps the bytes (for
/// idempotency fingerprints).
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

/// Like [`JsonBody`], but an empty body means the default value (for
/// actions whose body is optional).
pub struct OptionalJsonBody<T>(pub T);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The body limit of a route, as set with `DefaultBodyLimit` beside it (so
/// that a refusal can name it).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let text = rejection.body_text();
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::MalformedJson(text)
        }
    })
}

/// Cuts serde_json's " at line 1 column 5" off a message.
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// The first and the list of backticked words in a serde message:
/// "unknown field `foo`, expected one of `a`, `b`".
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// Turns a serde data error at `path` into a field error.
pub fn describe_serde_error(path: &str, message: &str) -> FieldError {
    let message = without_position(message);
    let words = backticked(message);
    let join = |parent: &str, child: &str| {
        if parent.is_empty() || parent == "." {
            child.to_string()
        } else {
            format!("{parent}.{child}")
        }
    };
    if message.starts_with("unknown field") {
        let field = words.first().copied().unwrap_or("");
        // serde_path_to_error's path already ends with the unknown field.
        let path = if path.ends_with(field) {
            path.to_string()
        } else {
            join(path, field)
        };
        let accepted = if words.len() > 1 {
            words[1..].join(", ")
        } else {
            "no fields here".to_string()
        };
        return FieldError::new(path, "unknown field")
            .value(field)
            .accepted(accepted);
    }
    if message.starts_with("unknown variant") {
        let given = words.first().copied().unwrap_or("");
        return FieldError::new(path, "unknown value")
            .value(given)
            .accepted(words.get(1..).map(|w| w.join(", ")).unwrap_or_default());
    }
    if message.starts_with("missing field") {
        let field = words.first().copied().unwrap_or("");
        return FieldError::new(join(path, field), "this field is required");
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        // "integer `5000`, expected a string"
        let (given, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let value = words
            .first()
            .map(|w| w.to_string())
            .unwrap_or_else(|| given.to_string());
        let mut e = FieldError::new(
            path,
            format!(
                "expected {expected}, got {}",
                given.split(' ').next().unwrap_or(given)
            ),
        )
        .value(value);
        if expected.contains("string") && (path.ends_with("price") || path.ends_with("amount")) {
            e = e.accepted("amounts are decimal strings in major units, e.g. \"5000.00\"");
        }
        return e;
    }
    FieldError::new(path, message.to_string())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The fast path: most bodies are valid. Only a failure is parsed again,
    // tracking the path of the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::field(describe_serde_error(
                if path == "." { "" } else { &path },
                &inner.to_string(),
            )),
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        let raw = body_bytes(req, state).await?;
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let raw = body_bytes(req, state).await?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        Ok(OptionalJsonBody(parse_json(&raw)?))
    }
}

/// Query parameters, strictly: an unknown parameter is refused by name.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| {
                let mut fe = describe_serde_error("", &e.to_string());
                if fe.field.is_empty() {
                    fe.field = "query".into();
                }
                ApiError::field(fe)
            })
    }
}

/// Path parameters, with problem+json on failure.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PathParams(v))
            .map_err(|e| ApiError::field(FieldError::new("path", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_become_field_errors() {
        let e = describe_serde_error(
            "items[0].foo",
            "unknown field `foo`, expected one of `name`, `quantity` at line 1 column 9",
        );
        assert_eq!(e.field, "items[0].foo");
        assert_eq!(e.value.as_deref(), Some("foo"));
        assert_eq!(e.accepted.as_deref(), Some("name, quantity"));
        let e = describe_serde_error(
            "channel",
            "unknown variant `fax`, expected one of `api`, `web`",
        );
        assert_eq!(e.value.as_deref(), Some("fax"));
        assert_eq!(e.accepted.as_deref(), Some("api, web"));
        let e = describe_serde_error("", "missing field `items`");
        assert_eq!(e.field, "items");
        let e = describe_serde_error(
            "items[0].unit_price",
            "invalid type: integer `5000`, expected a string at line 1 column 3",
        );
        assert_eq!(e.value.as_deref(), Some("5000"));
        assert!(e
            .accepted
            .as_deref()
            .is_some_and(|a| a.contains("decimal strings")));
    }
}
