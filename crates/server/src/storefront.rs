//! The public storefront's parts that are not HTTP: how often one client
//! may call it, and the WhatsApp message a guest sends the shop after
//! checkout (seed 004).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ordo_domain::{Address, Order, PhoneE164};

/// A token bucket per client address: `burst` requests at once, then
/// `per_minute` a minute. IPv6 clients are counted by their /64 network
/// (one household or host gets one bucket however many addresses it
/// rotates through).
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    per_second: f64,
    burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// The most clients remembered; past it, those whose bucket has filled
    /// up again are forgotten (they are as if new).
    const MAX_CLIENTS: usize = 100_000;

    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
        }
    }

    /// Takes one request from `client`'s bucket, or says how long until
    /// the next one is allowed.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let key = network(client);
        if buckets.len() >= Self::MAX_CLIENTS && !buckets.contains_key(&key) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        bucket.at = now;
        if refilled >= 1.0 {
            bucket.tokens = refilled - 1.0;
            Ok(())
        } else {
            bucket.tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / self.per_second))
        }
    }
}

/// The address a client is counted by: IPv4 as it is, IPv6 by its /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// The message a guest sends the shop on WhatsApp after checkout: the
/// order's reference, its items, its total in the shop's currency format
/// (₦10,000.00) and where it goes.
pub fn checkout_message(shop: &str, order: &Order) -> String {
    let currency = order.currency;
    let mut text = String::new();
    let _ = writeln!(text, "Hello {shop}, I would like to place this order:");
    let _ = writeln!(text, "Order reference: {}", order.reference);
    let _ = writeln!(text);
    for (i, line) in order.lines.iter().enumerate() {
        let _ = write!(text, "{}. {}", i + 1, line.name);
        if !line.attributes.is_empty() {
            let chosen: Vec<String> = line
                .attributes
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            let _ = write!(text, " ({})", chosen.join(", "));
        }
        let _ = writeln!(
            text,
            " x{} - {}",
            line.quantity,
            currency.display_amount(line.line_total)
        );
    }
    let _ = writeln!(text);
    let show = |text: &mut String, label: &str, amount: i64| {
        if amount != 0 {
            let _ = writeln!(text, "{label}: {}", currency.display_amount(amount));
        }
    };
    if order.discount_total != 0 || order.shipping_total != 0 || order.tax_total != 0 {
        show(&mut text, "Subtotal", order.subtotal);
    }
    show(&mut text, "Discount", -order.discount_total);
    if let Some(s) = &order.pricing.shipping {
        show(&mut text, &format!("Delivery ({})", s.name), s.amount);
    }
    let included = order.pricing.taxes_included;
    show(
        &mut text,
        if included { "Tax included" } else { "Tax" },
        order.tax_total,
    );
    let _ = writeln!(text, "Total: {}", currency.display_amount(order.total));
    if let Some(name) = &order.buyer.name {
        let _ = writeln!(text, "Name: {name}");
    }
    if let Some(phone) = &order.buyer.phone {
        let _ = writeln!(text, "Phone: {}", phone.as_str());
    }
    if let Some(address) = &order.shipping_address {
        let _ = writeln!(text, "Deliver to: {}", one_line(address));
    }
    if let Some(notes) = &order.notes {
        let _ = writeln!(text, "Note: {notes}");
    }
    text.trim_end().to_string()
}

fn one_line(a: &Address) -> String {
    let country = a.country.to_string();
    [
        Some(a.line1.as_str()),
        a.line2.as_deref(),
        Some(a.city.as_str()),
        a.region.as_deref(),
        a.postal_code.as_deref(),
        Some(country.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// `https://wa.me/<number>?text=<message>`: opens a chat with the shop with
/// the message typed in, ready to send.
pub fn whatsapp_url(number: &PhoneE164, message: &str) -> String {
    format!("https://wa.me/{}?text={}", number.digits(), encode(message))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(60, 3);
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
        }
        let wait = limiter.check(ip).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
        let other: IpAddr = "203.0.113.8".parse().expect("ip");
        assert!(
            limiter.check(other).is_ok(),
            "each client has its own bucket"
        );
        std::thread::sleep(Duration::from_millis(1_050));
        assert!(limiter.check(ip).is_ok(), "one more a second");
        assert!(limiter.check(ip).is_err());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_zero_means_unlimited() {
        let limiter = RateLimiter::new(1, 1);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(b).is_err(), "same /64");
        let unlimited = RateLimiter::new(0, 1);
        for _ in 0..1_000 {
            assert!(unlimited.check(a).is_ok());
        }
    }

    #[test]
    fn links_encode_every_reserved_character() {
        let phone = PhoneE164::parse("+234 801 234 5678").expect("phone");
        assert_eq!(
            whatsapp_url(&phone, "Total: ₦10,000.00\n1. A & B?"),
            "https://wa.me/2348012345678?text=Total%3A%20%E2%82%A610%2C000.00%0A1.%20A%20%26%20B%3F"
        );
    }
}
