//! Webhook endpoints: where a tenant's events are sent, signed with a
//! secret of the endpoint's own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::access::random_text;
use crate::{EventType, TenantId, Timestamp, WebhookEndpointId};

str_enum!(
    /// Where a webhook delivery stands.
    DeliveryStatus {
        /// Not yet delivered; a job will try.
        Pending = "pending",
        Succeeded = "succeeded",
        /// The last attempt failed; a job will try again.
        Failed = "failed",
        /// Given up; kept, and can be retried by hand.
        Dead = "dead",
    }
);

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A signing secret: `whsec_` and 32 random base-62 characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn generate() -> Self {
        WebhookSecret(format!("whsec_{}", random_text(32)))
    }

    /// A secret as stored.
    pub fn from_stored(text: String) -> Self {
        WebhookSecret(text)
    }

    /// The secret itself: shown once when made, used to sign.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Where deliveries go: an `http` or `https` URL, not on this machine or a
/// private network unless that is allowed (SSRF: ordo must not be a way
/// into the network it runs in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

/// Whether an address is this machine, a private or link-local network, or
/// otherwise not a public destination.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                    || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                    || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)
            }
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64/10
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
}

impl WebhookUrl {
    /// Parses and checks a URL; `allow_private` lets it name this machine or
    /// a private network (for tests and closed installations).
    pub fn parse(text: &str, allow_private: bool) -> Result<WebhookUrl, String> {
        let text = text.trim();
        if text.len() > MAX_URL_LEN {
            return Err(format!("longer than {MAX_URL_LEN} characters"));
        }
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "the scheme {:?} is not http or https",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not accepted".into());
        }
        if url.fragment().is_some() {
            return Err("a fragment (#…) is not sent anywhere; leave it out".into());
        }
        let host = url.host().ok_or("the URL has no host")?;
        if !allow_private {
            let private = match &host {
                url::Host::Ipv4(ip) => is_private(IpAddr::V4(*ip)),
                url::Host::Ipv6(ip) => is_private(IpAddr::V6(*ip)),
                url::Host::Domain(name) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost" || name.ends_with(".localhost")
                }
            };
            if private {
                return Err(
                    "the host is this machine or a private network, which webhooks may not reach"
                        .into(),
                );
            }
        }
        Ok(WebhookUrl(url.to_string()))
    }

    pub fn from_stored(text: String) -> Self {
        WebhookUrl(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook endpoint of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub tenant_id: TenantId,
    pub id: WebhookEndpointId,
    pub url: WebhookUrl,
    pub description: Option<String>,
    /// The event types sent; empty: every type.
    pub event_types: Vec<EventType>,
    /// Inactive endpoints are sent nothing.
    pub active: bool,
    pub secret: WebhookSecret,
    /// After a rotation, the previous secret also signs until this time.
    pub previous_secret: Option<(WebhookSecret, Timestamp)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set when ordo turned the endpoint off itself (it kept failing).
    pub disabled: Option<(Timestamp, String)>,
}

impl WebhookEndpoint {
    /// Whether events of this type go to the endpoint.
    pub fn wants(&self, event: EventType) -> bool {
        self.active && (self.event_types.is_empty() || self.event_types.contains(&event))
    }

    /// A new secret signs from now on; the current one keeps signing too
    /// until `now + overlap_ms`, so receivers can switch without a gap.
    pub fn rotate_secret(&mut self, now: Timestamp, overlap_ms: i64) -> &WebhookSecret {
        let old = std::mem::replace(&mut self.secret, WebhookSecret::generate());
        self.previous_secret = (overlap_ms > 0).then(|| (old, now.plus_millis(overlap_ms)));
        self.updated_at = now;
        &self.secret
    }

    /// The secrets that sign a delivery made at `now`: the current one, and
    /// the previous one while its overlap lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some((old, until)) = &self.previous_secret {
            if now.unix_millis() < until.unix_millis() {
                secrets.push(old);
            }
        }
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_public_unless_allowed() {
        for ok in [
            "https://example.com/hooks/ordo",
            "http://93.184.216.34:8080/x?y=1",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert!(WebhookUrl::parse(ok, false).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("ftp://example.com/", "scheme"),
            ("example.com/hook", "not a URL"),
            ("https://user:pw@example.com/", "credentials"),
            ("http://127.0.0.1:9000/", "private"),
            ("http://localhost/", "private"),
            ("http://api.localhost/", "private"),
            ("http://10.1.2.3/", "private"),
            ("http://172.20.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.169.254/latest/meta-data", "private"),
            ("http://100.64.0.1/", "private"),
            ("http://0.0.0.0/", "private"),
            ("http://[::1]/", "private"),
            ("http://[fd00::1]/", "private"),
            ("http://[fe80::1]/", "private"),
            ("http://[::ffff:127.0.0.1]/", "private"),
            ("https://example.com/#top", "fragment"),
        ] {
            let err = WebhookUrl::parse(bad, false).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(
            WebhookUrl::parse(&format!("https://example.com/{}", "a".repeat(2048)), false).is_err()
        );
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends() {
        let now = Timestamp::now();
        let mut e = WebhookEndpoint {
            tenant_id: TenantId::new(),
            id: WebhookEndpointId::new(),
            url: WebhookUrl::parse("https://example.com/", false).unwrap(),
            description: None,
            event_types: vec![EventType::OrderCreated],
            active: true,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            created_at: now,
            updated_at: now,
            disabled: None,
        };
        assert!(e.wants(EventType::OrderCreated));
        assert!(!e.wants(EventType::OrderCancelled));
        let old = e.secret.clone();
        let new = e.rotate_secret(now, 3_600_000).clone();
        assert_ne!(old, new);
        assert!(new.expose().starts_with("whsec_") && new.expose().len() == 38);
        assert_eq!(e.signing_secrets(now), [&new, &old]);
        assert_eq!(e.signing_secrets(now.plus_millis(3_600_000)), [&new]);
        e.rotate_secret(now, 0);
        assert_eq!(e.signing_secrets(now).len(), 1);
        e.active = false;
        assert!(!e.wants(EventType::OrderCreated));
    }
}
