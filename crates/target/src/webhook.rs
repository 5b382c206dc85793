//! HMAC-SHA256 webhook signatures (Retell, Stripe, GitHub style).
//!
//! The voice seed's 401s came from an unsigned webhook: a configuration error of the *test*, not
//! a load problem. The target reproduces it so stampede can tell the two apart, and lets a plan
//! that signs correctly get 200.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookConfig;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook was refused (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing signature header")]
    MissingSignature,
    #[error("missing timestamp header")]
    MissingTimestamp,
    #[error("signature is not hex")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

/// The hex HMAC a sender must put in the header (without the `sha256=` prefix).
pub fn sign(secret: &str, timestamp: Option<&str>, body: &[u8]) -> String {
    to_hex(&mac(secret, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &str, timestamp: Option<&str>, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let mut m = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()),
    };
    if let Some(ts) = timestamp {
        m.update(ts.as_bytes());
        m.update(b".");
    }
    m.update(body);
    m
}

/// Checks the request's signature in constant time. `header` looks up a header value by name.
pub fn verify<'h>(
    cfg: &WebhookConfig,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let sig = header(&cfg.header).ok_or(WebhookError::MissingSignature)?.trim();
    let hex = sig.strip_prefix("sha256=").unwrap_or(sig);
    let expected = from_hex(hex).ok_or(WebhookError::Malformed)?;
    let ts = match &cfg.timestamp_header {
        Some(h) => Some(header(h).ok_or(WebhookError::MissingTimestamp)?.trim()),
        None => None,
    };
    mac(&cfg.secret, ts, body)
        .verify_slice(&expected)
        .map_err(|_| WebhookError::Mismatch)
}

fn to_hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ts: Option<&str>) -> WebhookConfig {
        WebhookConfig {
            secret: "s3cret".into(),
            header: "X-Signature".into(),
            timestamp_header: ts.map(String::from),
        }
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        let s = sign("Jefe", None, b"what do ya want for nothing?");
        assert_eq!(s, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn verify_forms() {
        let body = br#"{"event":"call_ended"}"#;
        let good = sign("s3cret", None, body);
        let prefixed = format!("sha256={good}");
        let c = cfg(None);
        assert_eq!(verify(&c, |_| Some(good.as_str()), body), Ok(()));
        assert_eq!(verify(&c, |_| Some(prefixed.as_str()), body), Ok(()));
        assert_eq!(verify(&c, |_| None, body), Err(WebhookError::MissingSignature));
        assert_eq!(verify(&c, |_| Some("zz"), body), Err(WebhookError::Malformed));
        assert_eq!(
            verify(&c, |_| Some(good.as_str()), b"tampered"),
            Err(WebhookError::Mismatch)
        );
        let c = cfg(Some("X-Timestamp"));
        let ts_sig = sign("s3cret", Some("1700000000"), body);
        let h = |n: &str| match n {
            "X-Timestamp" => Some("1700000000"),
            _ => Some(ts_sig.as_str()),
        };
        assert_eq!(verify(&c, h, body), Ok(()));
        assert_eq!(
            verify(&c, |n| (n == "X-Signature").then_some(ts_sig.as_str()), body),
            Err(WebhookError::MissingTimestamp)
        );
    }
}
