//! Signing in: users' passwords (argon2id), sessions kept in the database
//! (so any node serves any page), their cookie, the token every form
//! carries against cross-site requests, and the sign-in rate limit.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequest, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use ordo_domain::{random_text, ApiKeySecret, Timestamp};
use ordo_store::{AdminSession, Tenant};
use std::collections::HashMap;

use super::{Web, ADMIN};
use crate::api::auth::{Principal, PrincipalId};

const SESSION_COOKIE: &str = "ordo_session";
const LOGIN_COOKIE: &str = "ordo_login";
const SHOP_COOKIE: &str = "ordo_shop";

/// The length of a form token (CSRF).
const TOKEN_LEN: usize = 32;

/// The shortest password `ordo users` accepts.
pub const PASSWORD_MIN_CHARS: usize = 10;

/// A PHC string (argon2id, a random salt) for `password`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password matches, checked when there is no such user, so a
/// wrong address takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_text(TOKEN_LEN)).unwrap_or_default())
}

/// The value of cookie `name`, if the request has it.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` for the pages under `path`, HttpOnly and SameSite=Lax;
/// Secure when the server is reached over TLS. `max_age` 0 removes it.
pub(super) fn set_cookie(
    web: &Web,
    headers: &HeaderMap,
    path: &str,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if over_tls(web, headers) {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("ordo_bad=1"))
}

/// Whether the browser reached us over TLS: the public URL says https, or
/// a reverse proxy says so.
fn over_tls(web: &Web, headers: &HeaderMap) -> bool {
    web.app().config().public_url().starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A signed-in member of staff: their session, and the principal their
/// pages call the API as. A request without a live session is sent to the
/// sign-in page (and back after it).
pub(crate) struct Staff {
    pub session: AdminSession,
    pub principal: Principal,
    pub shop: Tenant,
}

impl Staff {
    /// The refusal of a `form` without this session's token (it did not
    /// come from one of this session's pages); `None` when it has it.
    pub fn refuse_forged(&self, web: &Web, form: &HashMap<String, String>) -> Option<Response> {
        let given = form.get("csrf").map(String::as_str).unwrap_or("");
        if ordo_domain::constant_eq(given.as_bytes(), self.session.csrf.as_bytes()) {
            None
        } else {
            Some(self.form_expired(web, "The form was not sent from a page of this session (it may be older than your last sign-in, or come from another site). Nothing was changed. Go back, reload the page and try again."))
        }
    }

    /// The page refusing a form that did not come from this session's
    /// pages, saying `why` and that nothing was done.
    pub(crate) fn form_expired(&self, web: &Web, why: &str) -> Response {
        web.pages().render(
            StatusCode::FORBIDDEN,
            "message.html",
            context! {
                title => "This form has expired",
                message => why,
                staff => self.context(),
            },
        )
    }

    /// What every page shows of the user.
    pub fn context(&self) -> minijinja::Value {
        let u = &self.session.user;
        context! {
            name => if u.name.is_empty() { u.email.clone() } else { u.name.clone() },
            email => u.email.clone(),
            role => u.role.as_str(),
            csrf => self.session.csrf.clone(),
            shop => self.shop.name.clone(),
            slug => self.shop.slug.clone(),
        }
    }
}

impl FromRequestParts<Web> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let to_login = || {
            let here = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/admin");
            let next = if parts.method == axum::http::Method::GET {
                here
            } else {
                "/admin"
            };
            Redirect::to(&format!(
                "/admin/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .into_response()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).and_then(ApiKeySecret::parse)
        else {
            return Err(to_login());
        };
        let store = web.app().store();
        let now = Timestamp::now();
        let hash = secret.hash();
        let (session, shop) = match store.admin_session(secret.tenant_id, hash, now).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(unavailable(web, &e.to_string())),
        };
        let (idle, max) = session_limits(web);
        // Seen again: the idle clock restarts (written at most every tenth
        // of the idle time, so pages are not each a write).
        if now.unix_millis() - session.seen_at.unix_millis() >= idle / 10 {
            let expires = expiry(session.created_at, now, (idle, max));
            if let Err(e) = store
                .touch_session(secret.tenant_id, hash, now, expires)
                .await
            {
                return Err(unavailable(web, &e.to_string()));
            }
        }
        let principal = Principal {
            tenant_id: session.tenant_id,
            id: PrincipalId::User(session.user.id),
            role: session.user.role,
        };
        tracing::Span::current().record("tenant", tracing::field::display(principal.tenant_id));
        Ok(Staff {
            session,
            principal,
            shop,
        })
    }
}

/// When a session started at `created` and seen at `seen` ends: after
/// `idle` without a page, and `max` after it started at the latest.
fn expiry(created: Timestamp, seen: Timestamp, (idle, max): (i64, i64)) -> Timestamp {
    seen.plus_millis(idle).min(created.plus_millis(max))
}

/// How long a session may be idle, and last, in milliseconds.
fn session_limits(web: &Web) -> (i64, i64) {
    let config = &web.app().config().admin;
    let millis =
        |secs: u64| i64::try_from(secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    (
        millis(config.session_idle_secs),
        millis(config.session_max_secs),
    )
}

fn unavailable(web: &Web, detail: &str) -> Response {
    tracing::warn!(error = detail, "an admin page could not be served");
    web.pages().render(
        StatusCode::SERVICE_UNAVAILABLE,
        "message.html",
        context! {
            title => "The database is not answering",
            message => "Try again in a moment.",
        },
    )
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: an admin page, never another site.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(super::admin_path)
        .filter(|n| !n.starts_with("/admin/login"))
        .unwrap_or("/admin")
        .to_string()
}

pub(crate) async fn login_page(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let shop = match cookie(&headers, SHOP_COOKIE) {
        Some(slug) => slug.to_string(),
        None => only_shop(&web).await.unwrap_or_default(),
    };
    login_form(
        &web,
        &headers,
        StatusCode::OK,
        &shop,
        "",
        &safe_next(q.next.as_deref()),
        None,
    )
}

/// The slug of the only tenant, when there is just one.
async fn only_shop(web: &Web) -> Option<String> {
    let tenants = web.app().store().tenants().await.ok()?;
    match tenants.as_slice() {
        [one] => Some(one.slug.clone()),
        _ => None,
    }
}

/// The sign-in form, with a fresh token in its cookie and a field, and
/// `error` (a field and what is wrong) if the last try failed.
fn login_form(
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    shop: &str,
    email: &str,
    next: &str,
    error: Option<(&str, String)>,
) -> Response {
    let token = random_text(TOKEN_LEN);
    let (field, message) = error.unzip();
    let mut r = web.pages().render(
        status,
        "login.html",
        context! {
            token => token.clone(),
            shop => shop,
            email => email,
            next => next,
            error_field => field,
            error => message,
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(web, headers, ADMIN, LOGIN_COOKIE, &token, Some(3600)),
    );
    r
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    shop: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub(crate) async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let client = crate::api::storefront::client_address(web.app(), &parts);
    let request = axum::extract::Request::from_parts(parts, body);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return login_form(
            &web,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            "",
            "/admin",
            Some((
                "form",
                "The form could not be read; fill it in again.".into(),
            )),
        );
    };
    let next = safe_next(form.next.as_deref());
    let shop = form.shop.trim().to_ascii_lowercase();
    let email = form.email.trim().to_lowercase();
    let fail = |status, field: &str, message: String| {
        login_form(
            &web,
            &headers,
            status,
            &shop,
            &email,
            &next,
            Some((field, message)),
        )
    };
    let sent = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if sent.is_empty() || !ordo_domain::constant_eq(sent.as_bytes(), form.token.as_bytes()) {
        return fail(
            StatusCode::FORBIDDEN,
            "form",
            "This sign-in form has expired (or came from another site). Sign in again.".into(),
        );
    }
    if let Some(address) = client {
        if let Err(wait) = web.inner.login_limit.check(address) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = fail(
                StatusCode::TOO_MANY_REQUESTS,
                "form",
                format!(
                    "Too many sign-in attempts from your address. Try again in {secs} seconds."
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    if shop.is_empty() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "shop",
            "Enter your shop's name (its slug, as in the address of its storefront).".into(),
        );
    }
    if email.is_empty() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
            "Enter your email address.".into(),
        );
    }
    if form.password.is_empty() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
            "Enter your password.".into(),
        );
    }
    let store = web.app().store();
    let tenant = match store.tenant_by_slug(&shop).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "shop",
                format!("No shop is called \"{shop}\". Check its name with whoever runs ordo."),
            )
        }
        Err(e) => return unavailable(&web, &e.to_string()),
    };
    let found = match store.user_by_email(tenant.id, &email).await {
        Ok(f) => f,
        Err(e) => return unavailable(&web, &e.to_string()),
    };
    let hash = found
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |(_, h)| h.clone());
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
        .await
        .unwrap_or(false);
    let user = match found {
        Some((user, _)) if matches && user.disabled_at.is_none() => user,
        _ => {
            tracing::info!(shop = %shop, "admin sign-in refused");
            return fail(
                StatusCode::UNAUTHORIZED,
                "password",
                "The email address or the password is not right.".into(),
            );
        }
    };
    let secret = ApiKeySecret::generate(tenant.id);
    let now = Timestamp::now();
    let (idle, max) = session_limits(&web);
    let session = AdminSession {
        tenant_id: tenant.id,
        token_hash: secret.hash(),
        user,
        csrf: random_text(TOKEN_LEN),
        created_at: now,
        seen_at: now,
        expires_at: expiry(now, now, (idle, max)),
    };
    if let Err(e) = store.create_session(session).await {
        return unavailable(&web, &e.to_string());
    }
    tracing::info!(shop = %shop, "admin signed in");
    let mut r = Redirect::to(&next).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &web,
            &headers,
            ADMIN,
            SESSION_COOKIE,
            &secret.expose(),
            None,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &web,
            &headers,
            ADMIN,
            SHOP_COOKIE,
            &tenant.slug,
            Some(365 * 24 * 3600),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&web, &headers, ADMIN, LOGIN_COOKIE, "", Some(0)),
    );
    r
}

pub(crate) async fn logout(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = staff.refuse_forged(&web, &form) {
        return refusal;
    }
    if let Err(e) = web
        .app()
        .store()
        .delete_session(staff.session.tenant_id, staff.session.token_hash)
        .await
    {
        return unavailable(&web, &e.to_string());
    }
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&web, &headers, ADMIN, SESSION_COOKIE, "", Some(0)),
    );
    r
}
