//! Human order references: `ORD-7K3Q-X2MB`.
//!
//! Short enough to read over the phone or type into WhatsApp, drawn from
//! Crockford's base 32 (no I, L, O or U), so nothing is ambiguous; typed
//! back in any case, with `O` for `0` and `I`/`L` for `1`, it still matches.
//! Eight random symbols give 2⁴⁰ references per tenant; the store retries
//! the rare collision with a fresh one.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderReference(String);

impl OrderReference {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut text = String::with_capacity(13);
        text.push_str("ORD-");
        for i in 0..8 {
            if i == 4 {
                text.push('-');
            }
            text.push(char::from(ALPHABET[rng.gen_range(0..32)]));
        }
        OrderReference(text)
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

    #[test]
    fn generated_references_look_right_and_parse_back() {
        for _ in 0..1000 {
            let r = OrderReference::generate();
            assert_eq!(r.as_str().len(), 13);
            assert!(r.as_str().starts_with("ORD-"));
            assert_eq!(OrderReference::parse(r.as_str()), Some(r));
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
