//! Who may do what: roles, and the API keys that carry them.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::TenantId;

str_enum!(
    /// What a principal may do. A vendor works only with the orders it
    /// created (seed 000); a viewer only reads.
    Role {
        Owner = "owner",
        Admin = "admin",
        Vendor = "vendor",
        Viewer = "viewer",
        Integration = "integration",
    }
);

/// The things a role may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadOrders,
    WriteOrders,
    /// Webhook endpoints and their secrets.
    ManageWebhooks,
    /// Products, their prices and their stock (every role reads them).
    ManageCatalog,
    /// The tenant's settings.
    ManageSettings,
    /// Paying money back (recording payments only needs `WriteOrders`).
    Refund,
}

impl Role {
    pub fn can(self, permission: Permission) -> bool {
        match permission {
            Permission::ReadOrders => true,
            Permission::WriteOrders => !matches!(self, Role::Viewer),
            Permission::ManageWebhooks | Permission::ManageCatalog | Permission::Refund => {
                matches!(self, Role::Owner | Role::Admin | Role::Integration)
            }
            Permission::ManageSettings => matches!(self, Role::Owner | Role::Admin),
        }
    }

    /// True when the role sees only the orders it created.
    pub fn sees_only_own_orders(self) -> bool {
        matches!(self, Role::Vendor)
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random letters and digits from the operating system's generator:
/// the secret part of keys, session cookies, form tokens and passwords.
pub fn random_text(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
        .collect()
}

/// Whether two secrets are equal, in a time that does not tell how much
/// of them matched: form tokens, webhook verify tokens.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const SECRET_LEN: usize = 32;

/// The SHA-256 of an API key's secret. Keys are long random strings, so a
/// fast hash is the right one: only the hash is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &hex::encode(self.0)[..8])
    }
}

/// An API key in the clear: `ordo_<tenant>_<secret>`. It names its tenant,
/// so every lookup is by tenant first, and it is shown exactly once. An
/// admin session's cookie has the same form (and is stored the same way:
/// only its hash).
pub struct ApiKeySecret {
    pub tenant_id: TenantId,
    secret: String,
}

impl ApiKeySecret {
    pub fn generate(tenant_id: TenantId) -> Self {
        ApiKeySecret {
            tenant_id,
            secret: random_text(SECRET_LEN),
        }
    }

    /// Reads a key from an `Authorization` header; `None` if it cannot be one.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("ordo_")?;
        let (tenant, secret) = rest.split_once('_')?;
        let tenant_id = TenantId::parse(&format!(
            "{}{}",
            TenantId::PREFIX,
            tenant.to_ascii_uppercase()
        ))?;
        if secret.len() != SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some(ApiKeySecret {
            tenant_id,
            secret: secret.to_string(),
        })
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.secret.as_bytes()).into())
    }

    /// The first characters, safe to show in lists: `ordo_01jd…_Ab3x`.
    pub fn hint(&self) -> String {
        format!(
            "{}…{}",
            &self.expose()[..13],
            &self.secret[SECRET_LEN - 4..]
        )
    }

    /// The whole key, to show once to whoever created it.
    pub fn expose(&self) -> String {
        format!(
            "ordo_{}_{}",
            self.tenant_id.ulid().to_string().to_ascii_lowercase(),
            self.secret
        )
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({})", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_name_their_tenant() {
        let tenant = TenantId::new();
        let key = ApiKeySecret::generate(tenant);
        let text = key.expose();
        assert!(text.starts_with("ordo_"));
        let parsed = ApiKeySecret::parse(&text).expect("parses");
        assert_eq!(parsed.tenant_id, tenant);
        assert_eq!(parsed.hash(), key.hash());
        assert!(!format!("{key:?}").contains(&text[20..]));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "ordo_",
            "ordo_x_y",
            "Bearer x",
            "ordo_01JD5Q4ZB8Y7K6M3N2P1R0S9TV_short",
        ] {
            assert!(ApiKeySecret::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn roles() {
        assert!(!Role::Viewer.can(Permission::WriteOrders));
        assert!(Role::Vendor.can(Permission::WriteOrders));
        assert!(Role::Vendor.sees_only_own_orders());
        assert!(Role::Integration.can(Permission::ManageCatalog));
        assert!(!Role::Vendor.can(Permission::ManageCatalog));
        assert!(!Role::Integration.sees_only_own_orders());
        assert_eq!(Role::parse("owner"), Some(Role::Owner));
    }
}
