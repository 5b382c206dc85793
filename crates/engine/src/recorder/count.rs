//! Counters a protocol keeps beside its samples (WebSocket messages, drops, reconnects …): a
//! small `Copy` value recorded without allocating, named only when an interval is written.

/// What a step counts besides its samples. Stored in `intervals.jsonl` under the step's
/// `counters` by [`Count::name`]; the summary reads them back by the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Connection attempts (the first and every reconnect) and those that failed.
    WsConnects,
    WsConnectFailed,
    /// Data messages sent and received (replies and pushes alike).
    WsSent,
    WsReceived,
    /// Messages that answered no awaited reply.
    WsPushes,
    /// Replies awaited (a message sent with a `reply:`, or a ping), and those lost (no reply
    /// within the timeout): counted on the step itself, named replies included.
    WsAwaited,
    WsLost,
    /// Connections the server closed, or that broke, while the session still needed them.
    WsDropped,
    /// Reconnects that opened a connection again.
    WsReconnects,
    /// Milliseconds from a drop to the new connection (the back-off included), summed.
    WsReconnectMs,
    /// Pushed messages whose sequence number skipped ahead (the count of numbers missed) or
    /// repeated an earlier one.
    WsGaps,
    WsDuplicates,
    /// Unexpected closes by the close code the server sent (1006: none, the connection broke).
    WsClose(u16),
    /// SQL: rows returned or affected.
    SqlRows,
    /// HTTP over TLS: connections opened with a full handshake, and with a resumed session.
    TlsFull,
    TlsResumed,
    /// HTTP connections to a name (not an IP literal): each resolved it once; the microseconds
    /// the connects waited for it, summed; and how many of them asked the resolver (a first
    /// lookup or a refresh after the cache's 30 s) instead of the cache.
    DnsResolves,
    DnsUs,
    DnsLookups,
}

/// The fixed names, both ways.
const FIXED: &[(Count, &str)] = &[
    (Count::WsConnects, "ws_connects"),
    (Count::WsConnectFailed, "ws_connect_failed"),
    (Count::WsSent, "ws_sent"),
    (Count::WsReceived, "ws_received"),
    (Count::WsPushes, "ws_pushes"),
    (Count::WsAwaited, "ws_awaited"),
    (Count::WsLost, "ws_lost"),
    (Count::WsDropped, "ws_dropped"),
    (Count::WsReconnects, "ws_reconnects"),
    (Count::WsReconnectMs, "ws_reconnect_ms"),
    (Count::WsGaps, "ws_gaps"),
    (Count::WsDuplicates, "ws_duplicates"),
    (Count::SqlRows, "sql_rows"),
    (Count::TlsFull, "tls_full"),
    (Count::TlsResumed, "tls_resumed"),
    (Count::DnsResolves, "dns_resolves"),
    (Count::DnsUs, "dns_us"),
    (Count::DnsLookups, "dns_lookups"),
];
/// `ws_close_<code>`.
pub const CLOSE_PREFIX: &str = "ws_close_";

impl Count {
    pub fn name(self) -> String {
        match self {
            Count::WsClose(code) => format!("{CLOSE_PREFIX}{code}"),
            fixed => FIXED
                .iter()
                .find(|(c, _)| *c == fixed)
                .map(|(_, n)| (*n).to_string())
                .unwrap_or_default(),
        }
    }

    /// The counter stored under `name`.
    pub fn named(name: &str) -> Option<Count> {
        if let Some(code) = name.strip_prefix(CLOSE_PREFIX) {
            return code.parse().ok().map(Count::WsClose);
        }
        FIXED.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for (c, _) in FIXED {
            assert_eq!(Count::named(&c.name()), Some(*c));
        }
        assert_eq!(Count::named("ws_close_1001"), Some(Count::WsClose(1001)));
        assert_eq!(Count::named("nope"), None);
    }
}
