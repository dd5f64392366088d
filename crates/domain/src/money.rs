//! Money: integer minor units, ISO 4217 precision, never floating point.
//!
//! The API speaks decimal strings in major units (`"5000.00"`); inside, an
//! amount is an `i64` count of the currency's minor unit (kobo, cent, fils).
//! Parsing refuses more decimals than the currency has, so no rounding ever
//! happens on input; arithmetic is checked, so an overflow is an error, not a
//! wrong total.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::field::FieldError;

/// The largest amount ordo accepts anywhere, in minor units: 10¹⁵, i.e. a
/// thousand trillion cents. Far beyond any real order, far below `i64::MAX`,
/// so sums of many such amounts cannot overflow unnoticed.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency with a defined number of decimals.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// What a currency field accepts, for error messages.
    pub const ACCEPTED: &'static str = "an ISO 4217 code such as NGN, USD, EUR, JPY or KWD";

    /// Parses the currency given for `field`, as a field error if it is not one.
    pub fn parse_field(field: &str, code: &str) -> Result<Currency, FieldError> {
        Currency::parse(code).map_err(|e| {
            FieldError::new(field, e.to_string())
                .value(code)
                .accepted(Self::ACCEPTED)
        })
    }

    /// Parses a price given for `field`: a decimal string of at least 0
    /// with at most this currency's decimals.
    pub fn parse_price(self, field: &str, text: &str) -> Result<i64, FieldError> {
        let accepted = || {
            format!(
                "a decimal string of at least 0 with up to {} decimals for {self}, e.g. \"{}\"",
                self.exponent(),
                self.format_amount(500_000)
            )
        };
        match self.parse_amount(text) {
            Ok(p) if p >= 0 => Ok(p),
            Ok(_) => Err(FieldError::new(field, "a price cannot be negative")
                .value(text)
                .accepted(accepted())),
            Err(e) => Err(FieldError::new(field, e.to_string())
                .value(text)
                .accepted(accepted())),
        }
    }

    /// Parses a three-letter code (`NGN`, `jpy`); funds and metals such as
    /// `XAU`, which have no minor unit, are refused.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        let c = iso_currency::Currency::from_code(&upper)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))?;
        if c.exponent().is_none() {
            return Err(MoneyError::UnknownCurrency(code.to_string()));
        }
        Ok(Currency(c))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point: NGN 2, JPY 0, KWD 3.
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }

    /// The symbol people expect to see (`₦`, `$`, `¥`).
    pub fn symbol(self) -> String {
        self.0.symbol().symbol
    }

    fn scale(self) -> i64 {
        10_i64.pow(self.exponent())
    }

    /// Parses a decimal string in major units into minor units.
    ///
    /// Accepted: optional `-`, digits, optionally `.` and at most
    /// [`exponent`](Self::exponent) digits. Not accepted: exponents, `+`,
    /// thousands separators, more decimals than the currency has.
    pub fn parse_amount(self, text: &str) -> Result<i64, MoneyError> {
        let invalid = || MoneyError::InvalidAmount(text.to_string());
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (body, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let frac = frac.unwrap_or("");
        if text.ends_with('.') || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let exp = self.exponent() as usize;
        if frac.len() > exp {
            return Err(MoneyError::TooManyDecimals {
                given: text.to_string(),
                currency: self,
            });
        }
        let whole_digits = whole.trim_start_matches('0');
        if whole_digits.len() > 16 {
            return Err(MoneyError::TooLarge(text.to_string()));
        }
        let whole_value: i64 = if whole_digits.is_empty() {
            0
        } else {
            whole_digits.parse().map_err(|_| invalid())?
        };
        let mut frac_value: i64 = 0;
        for i in 0..exp {
            let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
            frac_value = frac_value * 10 + digit;
        }
        let minor = whole_value
            .checked_mul(self.scale())
            .and_then(|v| v.checked_add(frac_value))
            .filter(|v| *v <= MAX_MINOR)
            .ok_or_else(|| MoneyError::TooLarge(text.to_string()))?;
        Ok(if negative { -minor } else { minor })
    }

    /// Formats minor units as the API's decimal string: always exactly
    /// [`exponent`](Self::exponent) decimals (`"5000.00"`, `"300"`, `"1.250"`).
    pub fn format_amount(self, minor: i64) -> String {
        let exp = self.exponent() as usize;
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = self.scale().unsigned_abs();
        format!("{sign}{}.{:0exp$}", abs / scale, abs % scale)
    }

    /// Formats for people: symbol, thousands separators, the currency's
    /// decimals (`₦10,000.00`, `¥1,200`).
    pub fn display_amount(self, minor: i64) -> String {
        let plain = self.format_amount(minor.abs());
        let (whole, frac) = match plain.split_once('.') {
            Some((w, f)) => (w.to_string(), Some(f.to_string())),
            None => (plain, None),
        };
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if minor < 0 { "-" } else { "" };
        match frac {
            Some(f) => format!("{sign}{}{grouped}.{f}", self.symbol()),
            None => format!("{sign}{}{grouped}", self.symbol()),
        }
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// Sums amounts, failing on overflow or past [`MAX_MINOR`] instead of wrapping.
pub fn checked_sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts
        .into_iter()
        .try_fold(0_i64, |acc, a| acc.checked_add(a))
        .filter(|total| total.abs() <= MAX_MINOR)
}

/// `quantity × unit price`, failing on overflow or past [`MAX_MINOR`].
pub fn line_total(quantity: u32, unit_price: i64) -> Option<i64> {
    unit_price
        .checked_mul(i64::from(quantity))
        .filter(|total| total.abs() <= MAX_MINOR)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}: expected an ISO 4217 code with a minor unit, such as NGN, USD, JPY or KWD")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal amount: expected digits with an optional '.' and decimals, as a string, e.g. \"5000.00\"")]
    InvalidAmount(String),
    #[error("{given:?} has more decimals than {currency} allows ({})", currency.exponent())]
    TooManyDecimals { given: String, currency: Currency },
    #[error("{0:?} is larger than ordo accepts")]
    TooLarge(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).expect("known currency")
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(c("NGN").exponent(), 2);
        assert_eq!(c("JPY").exponent(), 0);
        assert_eq!(c("SEK").exponent(), 2);
        assert_eq!(c("KWD").exponent(), 3);
        assert_eq!(c("ngn").code(), "NGN");
    }

    #[test]
    fn unknown_and_unitless_currencies_are_refused() {
        assert!(matches!(
            Currency::parse("ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Currency::parse("XAU"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn parses_major_unit_strings() {
        assert_eq!(c("NGN").parse_amount("5000.00"), Ok(500_000));
        assert_eq!(c("NGN").parse_amount("5000"), Ok(500_000));
        assert_eq!(c("NGN").parse_amount("5000.5"), Ok(500_050));
        assert_eq!(c("NGN").parse_amount("0.01"), Ok(1));
        assert_eq!(c("NGN").parse_amount("-3.10"), Ok(-310));
        assert_eq!(c("JPY").parse_amount("1200"), Ok(1200));
        assert_eq!(c("KWD").parse_amount("1.250"), Ok(1250));
    }

    #[test]
    fn refuses_more_decimals_than_the_currency_has() {
        assert!(matches!(
            c("JPY").parse_amount("1200.5"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            c("NGN").parse_amount("1.001"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "", "-", ".5", "5.", "1e3", "+5", "1,000", " 5", "5 ", "0x10", "NaN", "--1",
        ] {
            assert!(
                c("NGN").parse_amount(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(matches!(
            c("NGN").parse_amount("99999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn formats_with_exactly_the_currency_decimals() {
        assert_eq!(c("NGN").format_amount(500_000), "5000.00");
        assert_eq!(c("NGN").format_amount(5), "0.05");
        assert_eq!(c("NGN").format_amount(-5), "-0.05");
        assert_eq!(c("JPY").format_amount(1200), "1200");
        assert_eq!(c("KWD").format_amount(1250), "1.250");
    }

    #[test]
    fn displays_for_people() {
        assert_eq!(c("NGN").display_amount(1_000_000), "₦10,000.00");
        assert_eq!(c("NGN").display_amount(500_000), "₦5,000.00");
        assert_eq!(c("JPY").display_amount(1_200), "¥1,200");
        assert_eq!(c("NGN").display_amount(99), "₦0.99");
        assert_eq!(c("NGN").display_amount(10_000_000_000), "₦100,000,000.00");
    }

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(line_total(3, 1_000), Some(3_000));
        assert_eq!(line_total(u32::MAX, MAX_MINOR), None);
        assert_eq!(checked_sum([MAX_MINOR, 1]), None);
        assert_eq!(checked_sum([1, 2, 3]), Some(6));
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in -MAX_MINOR..=MAX_MINOR, code in prop::sample::select(vec!["NGN", "JPY", "KWD", "SEK", "USD"])) {
            let cur = c(code);
            prop_assert_eq!(cur.parse_amount(&cur.format_amount(minor)), Ok(minor));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,30}") {
            let _ = c("NGN").parse_amount(&text);
        }

        #[test]
        fn line_totals_are_exact_products(q in 1u32..1_000_000, price in 0i64..1_000_000_000) {
            prop_assert_eq!(line_total(q, price), Some(price * i64::from(q)));
        }

        #[test]
        fn sum_of_lines_is_exact(prices in prop::collection::vec((1u32..1000, 0i64..10_000_000), 1..50)) {
            let totals: Vec<i64> = prices.iter().map(|(q, p)| line_total(*q, *p).expect("small")).collect();
            let expected: i128 = prices.iter().map(|(q, p)| i128::from(*q) * i128::from(*p)).sum();
            prop_assert_eq!(checked_sum(totals).map(i128::from), Some(expected));
        }
    }
}
