//! What can happen to one step execution, as a small `Copy` value: the hot path records these
//! without allocating, and names are only spelled out when an interval is written. Every
//! protocol maps its failures onto these kinds, so errors are classified, never lumped.

use std::time::Duration;

/// Why a step execution did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    ConnectRefused,
    ConnectTimeout,
    /// DNS failure, unreachable network and other connect errors.
    ConnectError,
    Tls,
    /// The request did not complete within its timeout.
    Timeout,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The peer spoke malformed protocol.
    Protocol,
    /// A status outside the step's `expect` list.
    Status(u16),
    /// Check number `n` of the step failed.
    Check(u16),
    /// Cancelled in flight when the phase's grace period ran out or the run was stopped.
    Interrupted,
    /// The rendered request is not valid (e.g. a captured value put a space in the path).
    InvalidRequest,
    /// A rendered header value holds a line break, NUL or another control character (from a
    /// capture or a data column): the request is not sent.
    InvalidHeader,
    /// `h2c: true` (HTTP/2 without TLS) against a server that answered in HTTP/1.1.
    H2cUnsupported,
    /// WebSocket: no reply within the reply's timeout.
    WsLost,
    /// WebSocket: the connection closed (or broke) while a reply was awaited.
    WsClosed,
    /// WebSocket: the upgrade was answered with this status instead of 101.
    WsHandshake(u16),
    /// PostgreSQL refused with this SQLSTATE (five ASCII characters, e.g. `53300`).
    Sql([u8; 5]),
    /// More redirects than `follow_redirects` allows: a loop, or a chain longer than allowed.
    TooManyRedirects,
}

/// The stored names of the kinds that carry no value: the one mapping between the enum and the
/// names in run directories, used both ways.
const FIXED: &[(ErrorKind, &str)] = &[
    (ErrorKind::ConnectRefused, "connect_refused"),
    (ErrorKind::ConnectTimeout, "connect_timeout"),
    (ErrorKind::ConnectError, "connect_error"),
    (ErrorKind::Tls, "tls"),
    (ErrorKind::Timeout, "timeout"),
    (ErrorKind::Reset, "reset"),
    (ErrorKind::Protocol, "protocol"),
    (ErrorKind::Interrupted, "interrupted"),
    (ErrorKind::InvalidRequest, "invalid_request"),
    (ErrorKind::InvalidHeader, "invalid_header"),
    (ErrorKind::H2cUnsupported, "h2c_unsupported"),
    (ErrorKind::WsLost, "ws_lost"),
    (ErrorKind::WsClosed, "ws_closed"),
    (ErrorKind::TooManyRedirects, "too_many_redirects"),
];
/// `ws_handshake_<status>`.
const WS_HANDSHAKE_PREFIX: &str = "ws_handshake_";
/// `sql_<SQLSTATE>`.
const SQL_PREFIX: &str = "sql_";
/// `status_<code>`.
const STATUS_PREFIX: &str = "status_";
/// `check:<name>`.
const CHECK_PREFIX: &str = "check:";

impl ErrorKind {
    /// The stable name used in run directories, summaries and reports. `check_name` resolves
    /// `Check(n)` to the check's name.
    pub fn name(self, check_name: impl Fn(u16) -> String) -> String {
        match self {
            ErrorKind::Status(s) => format!("{STATUS_PREFIX}{s}"),
            ErrorKind::WsHandshake(s) => format!("{WS_HANDSHAKE_PREFIX}{s}"),
            ErrorKind::Sql(code) => format!("{SQL_PREFIX}{}", String::from_utf8_lossy(&code)),
            ErrorKind::Check(n) => format!("{CHECK_PREFIX}{}", check_name(n)),
            fixed => FIXED
                .iter()
                .find(|(k, _)| *k == fixed)
                .map(|(_, n)| (*n).to_string())
                .unwrap_or_default(),
        }
    }

    /// The step never got a connection to talk on (nothing listening, no route, no name, no
    /// TLS): retrying at once would fail the same way.
    pub fn is_connect_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout | ErrorKind::ConnectError | ErrorKind::Tls
        )
    }

    /// Where this kind of error comes from.
    pub fn class(self) -> ErrorClass {
        match self {
            ErrorKind::Status(code) => match code {
                400..=406 | 410..=415 | 421 | 422 | 424 | 501 => ErrorClass::Configuration,
                408 | 429 | 500..=599 => ErrorClass::Load,
                _ => ErrorClass::Other,
            },
            // A busy server refuses the upgrade with 429 or 503; any other answer (200 from a
            // plain page, 404, 426, 401) means the test asks the wrong endpoint or lacks a token.
            ErrorKind::WsHandshake(code) => match code {
                408 | 429 | 500..=599 => ErrorClass::Load,
                _ => ErrorClass::Configuration,
            },
            ErrorKind::Sql(code) => sqlstate_class(&code),
            ErrorKind::Check(_) => ErrorClass::Check,
            ErrorKind::Timeout
            | ErrorKind::Reset
            | ErrorKind::ConnectTimeout
            | ErrorKind::Interrupted
            | ErrorKind::WsLost
            | ErrorKind::WsClosed => ErrorClass::Load,
            ErrorKind::ConnectRefused
            | ErrorKind::ConnectError
            | ErrorKind::Tls
            | ErrorKind::InvalidRequest
            | ErrorKind::InvalidHeader
            | ErrorKind::H2cUnsupported
            | ErrorKind::TooManyRedirects => ErrorClass::Configuration,
            ErrorKind::Protocol => ErrorClass::Other,
        }
    }

    /// What a failed connect means, for messages (`authority` is `host:port`).
    pub fn describe_connect(self, authority: &str) -> String {
        match self {
            ErrorKind::ConnectRefused => format!("connection refused by {authority}"),
            ErrorKind::ConnectTimeout => format!("no connection to {authority} within the connect timeout"),
            ErrorKind::ConnectError => format!("cannot connect to {authority} (name or network)"),
            ErrorKind::Tls => format!("TLS handshake with {authority} failed (certificate not trusted, or no TLS)"),
            other => other.describe(authority, Duration::ZERO),
        }
    }

    /// What an error without a response means, for an error sample: `authority` is the peer,
    /// `timeout` the step's timeout.
    pub fn describe(self, authority: &str, timeout: Duration) -> String {
        match self {
            ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout | ErrorKind::ConnectError | ErrorKind::Tls => {
                self.describe_connect(authority)
            }
            ErrorKind::Timeout => format!("no complete response within {} ms", timeout.as_millis()),
            ErrorKind::Reset => "connection closed before the response was complete".into(),
            ErrorKind::Protocol => "the response is not valid HTTP".into(),
            ErrorKind::Interrupted => "cancelled in flight when the phase's grace period ran out".into(),
            ErrorKind::InvalidRequest => "the rendered request is not valid HTTP (e.g. a space in the path)".into(),
            ErrorKind::InvalidHeader => {
                "a rendered header value holds a line break, NUL or another control character: not sent".into()
            }
            ErrorKind::H2cUnsupported => {
                format!("{authority} answered HTTP/2 without TLS (`h2c: true`) in HTTP/1.1: it does not speak h2c")
            }
            ErrorKind::TooManyRedirects => "more redirects than `follow_redirects` allows (a redirect loop?)".into(),
            ErrorKind::Status(s) => format!("HTTP {s}"),
            ErrorKind::Check(n) => format!("check #{n} failed"),
            ErrorKind::WsLost => format!("no reply within {} ms", timeout.as_millis()),
            ErrorKind::WsClosed => "the connection closed while a reply was awaited".into(),
            ErrorKind::WsHandshake(s) => format!("{authority} answered the WebSocket upgrade with HTTP {s}, not 101"),
            ErrorKind::Sql(code) => format!("PostgreSQL refused with SQLSTATE {}", String::from_utf8_lossy(&code)),
        }
    }
}

/// Where an error comes from, for reports: a misconfigured test or system (401 on an unsigned
/// webhook, 404, a dependency that is not set up) versus a system under too much load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Configuration,
    Load,
    Check,
    Other,
}

impl ErrorClass {
    /// The name in reports and JSON (the same as its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Configuration => "configuration",
            ErrorClass::Load => "load",
            ErrorClass::Check => "check",
            ErrorClass::Other => "other",
        }
    }
}

/// Where a PostgreSQL error comes from, by its SQLSTATE class: the load makes too many
/// connections (53), cancelled statements at the timeout or an admin's hand (57), deadlocks and
/// serialization failures (40), locks not available (55P03) and broken connections (08); the
/// test (or the schema) makes wrong credentials (28), a missing database (3D), bad SQL or a
/// missing table (42), data that does not fit (22). A unique violation (23505) can be either.
fn sqlstate_class(code: &[u8; 5]) -> ErrorClass {
    match &code[..2] {
        b"53" | b"57" | b"40" | b"08" => ErrorClass::Load,
        b"55" if code == b"55P03" => ErrorClass::Load,
        b"28" | b"3D" | b"42" | b"22" | b"0A" => ErrorClass::Configuration,
        _ => ErrorClass::Other,
    }
}

/// Classifies an error kind by its stable name (as stored in run directories), through the
/// same names [`ErrorKind::name`] writes. Names this version does not know are `Other`.
pub fn classify(kind: &str) -> ErrorClass {
    if let Some(code) = kind.strip_prefix(STATUS_PREFIX) {
        return match code.parse::<u16>() {
            Ok(code) => ErrorKind::Status(code).class(),
            Err(_) => ErrorClass::Other,
        };
    }
    if let Some(code) = kind.strip_prefix(WS_HANDSHAKE_PREFIX) {
        return code
            .parse::<u16>()
            .map_or(ErrorClass::Other, |c| ErrorKind::WsHandshake(c).class());
    }
    if let Some(code) = kind.strip_prefix(SQL_PREFIX) {
        return match <[u8; 5]>::try_from(code.as_bytes()) {
            Ok(c) => sqlstate_class(&c),
            Err(_) => ErrorClass::Other,
        };
    }
    if kind.starts_with(CHECK_PREFIX) {
        return ErrorClass::Check;
    }
    FIXED
        .iter()
        .find(|(_, n)| *n == kind)
        .map_or(ErrorClass::Other, |(k, _)| k.class())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_name_reads_back_to_its_own_class() {
        for (kind, name) in FIXED {
            assert_eq!(kind.name(|_| String::new()), *name);
            assert_eq!(classify(name), kind.class(), "{name}");
        }
        assert_eq!(classify("status_404"), ErrorClass::Configuration);
        assert_eq!(classify("status_503"), ErrorClass::Load);
        assert_eq!(classify("status_302"), ErrorClass::Other);
        assert_eq!(classify("check:has id"), ErrorClass::Check);
        assert_eq!(classify("ws_handshake_403"), ErrorClass::Configuration);
        assert_eq!(classify("ws_handshake_503"), ErrorClass::Load);
        assert_eq!(ErrorKind::WsHandshake(200).name(|_| String::new()), "ws_handshake_200");
        assert_eq!(ErrorKind::Sql(*b"53300").name(|_| String::new()), "sql_53300");
        assert_eq!(classify("sql_53300"), ErrorClass::Load);
        assert_eq!(classify("sql_57014"), ErrorClass::Load);
        assert_eq!(classify("sql_40P01"), ErrorClass::Load);
        assert_eq!(classify("sql_28P01"), ErrorClass::Configuration);
        assert_eq!(classify("sql_42P01"), ErrorClass::Configuration);
        assert_eq!(classify("sql_23505"), ErrorClass::Other);
        assert_eq!(classify("something_new"), ErrorClass::Other);
    }
}
