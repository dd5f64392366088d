//! Who the order is for and where it goes: buyer contacts and addresses.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::field::{FieldError, FieldErrors};

/// A phone number in E.164 form: `+` and 8 to 15 digits, the first not zero.
/// Spaces, dashes, dots and brackets people type are dropped on input.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub const ACCEPTED: &'static str =
        "an E.164 number: '+', country code and number, 8 to 15 digits, e.g. +2348012345678";

    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .ok_or_else(|| "a phone number must start with '+' and its country code".to_string())?;
        if !(8..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err("not an E.164 phone number".to_string());
        }
        Ok(PhoneE164(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`, as WhatsApp ids and wa.me links use them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

/// An email address: one `@`, a local part, and a domain with a dot.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const ACCEPTED: &'static str = "an email address such as ada@example.com";

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (local, domain) = text
            .split_once('@')
            .ok_or_else(|| "an email address needs an '@'".to_string())?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && text.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err("not a valid email address".to_string());
        }
        // The domain part is case-insensitive; the local part is kept as given.
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As logs may show it.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// The buyer's id on a chat channel, as seed 000 writes it: `wa_<phone
/// digits>` for WhatsApp, `ig_<scoped id>` for Instagram.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ChannelId {
    WhatsApp(String),
    Instagram(String),
}

impl ChannelId {
    pub const ACCEPTED: &'static str =
        "wa_ followed by the WhatsApp number's 8 to 15 digits (wa_2348012345678), or ig_ followed by the Instagram id's letters and digits (ig_17841400000000)";

    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(digits) = text.strip_prefix("wa_") {
            if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(ChannelId::WhatsApp(digits.to_string()));
            }
            return Err("a WhatsApp channel id is wa_ and 8 to 15 digits".to_string());
        }
        if let Some(id) = text.strip_prefix("ig_") {
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                return Ok(ChannelId::Instagram(id.to_string()));
            }
            return Err("an Instagram channel id is ig_ and 1 to 64 letters or digits".to_string());
        }
        Err("a channel id starts with wa_ (WhatsApp) or ig_ (Instagram)".to_string())
    }

    /// `wa_…5678`: enough to tell buyers apart in logs, not enough to reach them.
    pub fn masked(&self) -> String {
        let (prefix, id) = match self {
            ChannelId::WhatsApp(d) => ("wa_", d),
            ChannelId::Instagram(i) => ("ig_", i),
        };
        format!("{prefix}…{}", last_four(id))
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelId::WhatsApp(d) => write!(f, "wa_{d}"),
            ChannelId::Instagram(i) => write!(f, "ig_{i}"),
        }
    }
}

/// The last four characters of `text`, for masking in logs.
pub fn last_four(text: &str) -> &str {
    let n = text.chars().count();
    match text.char_indices().nth(n.saturating_sub(4)) {
        Some((i, _)) => &text[i..],
        None => text,
    }
}

/// Masks a phone number or other contact for logs: `…5678`.
pub fn mask(text: &str) -> String {
    format!("…{}", last_four(text))
}

impl fmt::Debug for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

text_serde!(PhoneE164);
text_serde!(Email);
text_serde!(ChannelId);

/// The person the order is for. At least one way to reach them is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Buyer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneE164>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<ChannelId>,
}

impl Buyer {
    /// Builds a buyer from the text given at the edge, reporting every
    /// field that is wrong. Field names are relative (`phone`, `email`).
    pub fn parse(
        name: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
        channel_id: Option<&str>,
    ) -> Result<Buyer, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(n) = name {
            if n.chars().count() > 200 {
                errors.push(
                    FieldError::new("name", "the name is too long")
                        .value(n)
                        .accepted("at most 200 characters"),
                );
            }
        }
        let phone = phone.and_then(|p| {
            errors.take(PhoneE164::parse(p).map_err(|reason| {
                FieldError::new("phone", reason)
                    .value(p)
                    .accepted(PhoneE164::ACCEPTED)
            }))
        });
        let email = email.and_then(|e| {
            errors.take(Email::parse(e).map_err(|reason| {
                FieldError::new("email", reason)
                    .value(e)
                    .accepted(Email::ACCEPTED)
            }))
        });
        let channel = channel_id.and_then(|c| {
            errors.take(ChannelId::parse(c).map_err(|reason| {
                FieldError::new("channel_id", reason)
                    .value(c)
                    .accepted(ChannelId::ACCEPTED)
            }))
        });
        if errors.is_empty() && phone.is_none() && email.is_none() && channel.is_none() {
            errors.push(
                FieldError::new("", "the buyer needs a way to be reached")
                    .accepted("at least one of phone, email or channel_id"),
            );
        }
        errors.finish(|| Buyer {
            name: name.map(str::to_string),
            phone,
            email,
            channel_id: channel,
        })
    }

    /// A short, log-safe description: the masked channel id or phone.
    pub fn masked(&self) -> String {
        if let Some(c) = &self.channel_id {
            c.masked()
        } else if let Some(p) = &self.phone {
            mask(p.as_str())
        } else if let Some(e) = &self.email {
            mask(e.as_str())
        } else {
            String::from("-")
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

impl CountryCode {
    pub const ACCEPTED: &'static str =
        "an ISO 3166-1 alpha-2 country code such as NG, US, JP or SE";

    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() == 2 && COUNTRIES.split(' ').any(|c| c == upper) {
            return Ok(CountryCode([bytes[0], bytes[1]]));
        }
        Err("not an ISO 3166-1 alpha-2 country code".to_string())
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

text_serde!(CountryCode);

/// A postal address, for delivery or invoicing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub country: CountryCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneE164>,
}

/// The text of an address as given at the edge, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct AddressText<'a> {
    pub name: Option<&'a str>,
    pub company: Option<&'a str>,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub region: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country: &'a str,
    pub phone: Option<&'a str>,
}

impl Address {
    pub fn parse(text: AddressText<'_>) -> Result<Address, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut field = |name: &str, value: Option<&str>, required: bool| -> Option<String> {
            let v = value.map(str::trim).filter(|v| !v.is_empty());
            match v {
                None if required => {
                    errors.push(
                        FieldError::new(name, "this field is required")
                            .accepted("1 to 200 characters"),
                    );
                    None
                }
                Some(v) if v.chars().count() > 200 => {
                    errors.push(
                        FieldError::new(name, "too long")
                            .value(v)
                            .accepted("1 to 200 characters"),
                    );
                    None
                }
                v => v.map(str::to_string),
            }
        };
        let name = field("name", text.name, false);
        let company = field("company", text.company, false);
        let line1 = field("line1", Some(text.line1), true);
        let line2 = field("line2", text.line2, false);
        let city = field("city", Some(text.city), true);
        let region = field("region", text.region, false);
        let postal_code = field("postal_code", text.postal_code, false);
        let country = errors.take(CountryCode::parse(text.country).map_err(|reason| {
            FieldError::new("country", reason)
                .value(text.country)
                .accepted(CountryCode::ACCEPTED)
        }));
        let phone = text.phone.and_then(|p| {
            errors.take(PhoneE164::parse(p).map_err(|reason| {
                FieldError::new("phone", reason)
                    .value(p)
                    .accepted(PhoneE164::ACCEPTED)
            }))
        });
        match (line1, city, country) {
            (Some(line1), Some(city), Some(country)) if errors.is_empty() => Ok(Address {
                name,
                company,
                line1,
                line2,
                city,
                region,
                postal_code,
                country,
                phone,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(
            PhoneE164::parse("+234 801-234-5678").map(|p| p.as_str().to_string()),
            Ok("+2348012345678".to_string())
        );
        assert!(PhoneE164::parse("08012345678").is_err());
        assert!(PhoneE164::parse("+0123456789").is_err());
        assert!(PhoneE164::parse("+12").is_err());
        assert!(PhoneE164::parse("+1234567890123456").is_err());
        assert!(PhoneE164::parse("+234abc45678").is_err());
    }

    #[test]
    fn channel_ids_follow_seed_000() {
        assert_eq!(
            ChannelId::parse("wa_2348012345678"),
            Ok(ChannelId::WhatsApp("2348012345678".into()))
        );
        assert_eq!(
            ChannelId::parse("ig_17841400000000"),
            Ok(ChannelId::Instagram("17841400000000".into()))
        );
        for bad in [
            "2348012345678",
            "wa_",
            "wa_+2348012345678",
            "wa_12",
            "ig_",
            "ig_a b",
            "tg_123",
            "WA_2348012345678",
        ] {
            assert!(ChannelId::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn masks_show_only_the_last_four() {
        let c = ChannelId::parse("wa_2348012345678").expect("valid");
        assert_eq!(c.masked(), "wa_…5678");
        assert_eq!(format!("{c:?}"), "wa_…5678");
        let p = PhoneE164::parse("+2348012345678").expect("valid");
        assert_eq!(format!("{p:?}"), "…5678");
        assert_eq!(last_four("ab"), "ab");
    }

    #[test]
    fn a_buyer_needs_a_contact_and_every_bad_field_is_named() {
        let err = Buyer::parse(Some("Ada"), None, None, None).expect_err("no contact");
        assert_eq!(err.0.len(), 1);
        let err = Buyer::parse(None, Some("123"), Some("nope"), Some("xx_1")).expect_err("all bad");
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["phone", "email", "channel_id"]);
        assert_eq!(err.0[2].value.as_deref(), Some("xx_1"));
        let ok =
            Buyer::parse(Some(" Ada Obi "), None, Some("Ada@Example.COM"), None).expect("valid");
        assert_eq!(ok.name.as_deref(), Some("Ada Obi"));
        assert_eq!(
            ok.email.map(|e| e.as_str().to_string()).as_deref(),
            Some("Ada@example.com")
        );
    }

    #[test]
    fn countries_are_iso_3166() {
        assert_eq!(COUNTRIES.split(' ').count(), 249);
        assert!(CountryCode::parse("ng").is_ok());
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("NGA").is_err());
    }

    #[test]
    fn addresses_report_every_missing_part() {
        let err = Address::parse(AddressText {
            country: "ZZ",
            ..Default::default()
        })
        .expect_err("bad");
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["line1", "city", "country"]);
    }
}
