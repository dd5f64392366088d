//! Human order references: `ORD-7K3Q-X2MB`.
//!
//! Short enough to read over the phone or type into WhatsApp, drawn from
//! Crockford's base 32 (no I, L, O or U), so nothing is ambiguous; typed
//! back in any case, with `O` for `0` and `I`/`L` for `1`, it still matches.
//!
//! A reference is the tenant's order number (1, 2, 3…) put through a
//! permutation of the 2⁴⁰ eight-symbol references keyed by the tenant: no
//! two orders of a tenant can share one, they do not reveal how many orders
//! a shop takes, and the store indexes the number, which only grows, rather
//! than the scattered text (an index that takes random inserts costs every
//! insert a page write).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::TenantId;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// How many order numbers a tenant has: eight base-32 symbols.
pub const MAX_SEQUENCE: u64 = (1 << 40) - 1;

const HALF_BITS: u32 = 20;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUNDS: u64 = 4;

/// SplitMix64's finaliser: a fixed, well-mixed function of its input. The
/// references already issued depend on it: it must never change.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(tenant: TenantId) -> u64 {
    let raw = tenant.ulid().0;
    mix((raw as u64) ^ mix((raw >> 64) as u64))
}

fn round(key: u64, round: u64, half: u64) -> u64 {
    mix(key ^ round.wrapping_mul(0x100_0000_01B3) ^ half) & HALF_MASK
}

/// A Feistel network over 40 bits: a bijection, so distinct numbers give
/// distinct references, and it runs backwards to find the number again.
fn permute(key: u64, n: u64) -> u64 {
    let (mut left, mut right) = (n >> HALF_BITS, n & HALF_MASK);
    for r in 0..ROUNDS {
        let next = left ^ round(key, r, right);
        left = right;
        right = next;
    }
    (left << HALF_BITS) | right
}

fn unpermute(key: u64, n: u64) -> u64 {
    let (mut left, mut right) = (n >> HALF_BITS, n & HALF_MASK);
    for r in (0..ROUNDS).rev() {
        let previous = right ^ round(key, r, left);
        right = left;
        left = previous;
    }
    (left << HALF_BITS) | right
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderReference(String);

impl OrderReference {
    /// The reference of the tenant's order number `sequence` (1 to
    /// [`MAX_SEQUENCE`]); `None` past the last one.
    pub fn from_sequence(tenant: TenantId, sequence: u64) -> Option<Self> {
        if sequence == 0 || sequence > MAX_SEQUENCE {
            return None;
        }
        let n = permute(key(tenant), sequence);
        let mut text = String::with_capacity(13);
        text.push_str("ORD-");
        for i in 0..8 {
            if i == 4 {
                text.push('-');
            }
            let symbol = (n >> (35 - 5 * i)) & 31;
            text.push(char::from(ALPHABET[symbol as usize]));
        }
        Some(OrderReference(text))
    }

    /// The tenant's order number behind this reference.
    pub fn sequence(&self, tenant: TenantId) -> u64 {
        let n = self
            .0
            .bytes()
            .filter(|b| *b != b'-')
            .skip(3)
            .fold(0_u64, |acc, b| {
                let digit = ALPHABET.iter().position(|a| *a == b).unwrap_or(0) as u64;
                (acc << 5) | digit
            });
        unpermute(key(tenant), n)
    }

    /// Reads a reference as a person may type it: any case, with or without
    /// dashes, `O` for zero and `I`/`L` for one.
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let body = upper.strip_prefix("ORD")?;
        let symbols: String = body
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| match c {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            })
            .collect();
        if symbols.len() != 8 || !symbols.bytes().all(|b| ALPHABET.contains(&b)) {
            return None;
        }
        Some(OrderReference(format!(
            "ORD-{}-{}",
            &symbols[..4],
            &symbols[4..]
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for OrderReference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrderReference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OrderReference::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an order reference")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tenant() -> TenantId {
        TenantId::parse("ten_01JD5Q4ZB8Y7K6M3N2P1R0S9TV").expect("tenant")
    }

    #[test]
    fn references_look_right_parse_back_and_give_their_number() {
        let t = tenant();
        let mut seen = std::collections::HashSet::new();
        for n in (1..2000).chain([MAX_SEQUENCE - 1, MAX_SEQUENCE]) {
            let r = OrderReference::from_sequence(t, n).expect("in range");
            assert_eq!(r.as_str().len(), 13);
            assert!(r.as_str().starts_with("ORD-"));
            assert_eq!(OrderReference::parse(r.as_str()).as_ref(), Some(&r));
            assert_eq!(r.sequence(t), n);
            assert!(seen.insert(r), "no two numbers share a reference");
        }
        assert_eq!(OrderReference::from_sequence(t, 0), None);
        assert_eq!(OrderReference::from_sequence(t, MAX_SEQUENCE + 1), None);
    }

    #[test]
    fn references_are_stable_and_differ_between_tenants() {
        // Issued references depend on this mapping: it must never change.
        let r = OrderReference::from_sequence(tenant(), 1).expect("first");
        assert_eq!(r.as_str(), "ORD-DSF4-TTWR");
        let other = TenantId::parse("ten_01JD5Q4ZB8Y7K6M3N2P1R0S9TW").expect("tenant");
        assert_ne!(OrderReference::from_sequence(other, 1), Some(r));
        let next = OrderReference::from_sequence(tenant(), 2).expect("second");
        assert_ne!(
            &next.as_str()[..6],
            "ORD-00",
            "consecutive numbers do not look consecutive"
        );
    }

    proptest! {
        #[test]
        fn the_permutation_is_a_bijection(n in 1..=MAX_SEQUENCE, k in any::<u64>()) {
            prop_assert!(permute(k, n) <= MAX_SEQUENCE);
            prop_assert_eq!(unpermute(k, permute(k, n)), n);
        }
    }

    #[test]
    fn typed_references_are_forgiven() {
        let r = OrderReference::parse("ORD-7K3Q-X2MB").expect("valid");
        assert_eq!(OrderReference::parse("ord-7k3q-x2mb"), Some(r.clone()));
        assert_eq!(OrderReference::parse("ORD7K3QX2MB"), Some(r.clone()));
        assert_eq!(
            OrderReference::parse("ORD-1000-0000"),
            OrderReference::parse("ord-l00o-oooo")
        );
        assert_eq!(OrderReference::parse("ORD-7K3Q-X2M"), None);
        assert_eq!(OrderReference::parse("ORD-7K3Q-X2MU"), None);
        assert_eq!(OrderReference::parse("7K3Q-X2MB"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,20}") {
            let _ = OrderReference::parse(&text);
        }
    }
}
