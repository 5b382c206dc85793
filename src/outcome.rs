//! What can happen to one request, as a small `Copy` value: the hot path records these without
//! allocating, and names are only spelled out when an interval is written.

/// Why a request did not succeed. Kinds are classified, never lumped (DESIGN.md).
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
    /// The peer spoke malformed HTTP.
    Protocol,
    /// A status outside the step's `expect` list.
    Status(u16),
    /// Check number `n` of the step failed.
    Check(u16),
    /// Cancelled in flight when the phase's grace period ran out or the run was stopped.
    Interrupted,
    /// The rendered request is not valid HTTP (e.g. a captured value put a space in the path).
    InvalidRequest,
}

impl ErrorKind {
    /// The stable name used in run directories, summaries and reports. `check_name` resolves
    /// `Check(n)` to the check's name.
    pub fn name(self, check_name: impl Fn(u16) -> String) -> String {
        match self {
            ErrorKind::ConnectRefused => "connect_refused".into(),
            ErrorKind::ConnectTimeout => "connect_timeout".into(),
            ErrorKind::ConnectError => "connect_error".into(),
            ErrorKind::Tls => "tls".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Reset => "reset".into(),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::Status(s) => format!("status_{s}"),
            ErrorKind::Check(n) => format!("check:{}", check_name(n)),
            ErrorKind::Interrupted => "interrupted".into(),
            ErrorKind::InvalidRequest => "invalid_request".into(),
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

/// Classifies an error kind by its stable name (as stored in run directories).
pub fn classify(kind: &str) -> ErrorClass {
    if let Some(code) = kind.strip_prefix("status_") {
        return match code.parse::<u16>().unwrap_or(0) {
            400..=404 | 405 | 406 | 410 | 411 | 412 | 413 | 414 | 415 | 421 | 422 | 424 | 501 => {
                ErrorClass::Configuration
            }
            408 | 429 | 500 | 502 | 503 | 504 => ErrorClass::Load,
            500..=599 => ErrorClass::Load,
            _ => ErrorClass::Other,
        };
    }
    if kind.starts_with("check:") {
        return ErrorClass::Check;
    }
    match kind {
        "timeout" | "reset" | "connect_timeout" | "interrupted" => ErrorClass::Load,
        "connect_refused" | "connect_error" | "tls" | "invalid_request" => ErrorClass::Configuration,
        _ => ErrorClass::Other,
    }
}
