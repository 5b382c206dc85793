//! Name resolution for connects: each origin is resolved once before the run (a name that does
//! not resolve is refused before any traffic), then cached for 30 s and refreshed by one caller
//! while the others keep using the addresses they have. Lookups run on a thread of their own
//! and are bounded by the connect timeout: a resolver that never answers cannot hold up a
//! connect, nor the end of the run (a blocked `getaddrinfo` on the runtime's blocking pool
//! would be waited for at exit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long resolved addresses are used before they are looked up again. `getaddrinfo` does not
/// say a record's TTL; 30 s is what the JVM caches for.
const TTL: Duration = Duration::from_secs(30);

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The resolver answered: no such name, or no address.
    NotFound(String),
    /// No answer within the timeout.
    Timeout,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound(e) => write!(f, "{e}"),
            LookupError::Timeout => write!(f, "no answer from the resolver within the connect timeout"),
        }
    }
}

struct Entry {
    addrs: Arc<[SocketAddr]>,
    at: Instant,
    refreshing: bool,
}

/// The process's cache of resolved names (one per process, as the OS's own would be).
fn cache() -> &'static Mutex<HashMap<(String, u16), Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<(String, u16), Entry>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Starts one lookup on a thread of its own, which hands its answer to `answer` and is left
/// behind if nobody waits for it any more (a resolver that never answers).
fn spawn_lookup(host: &str, port: u16, answer: impl FnOnce(Result<Arc<[SocketAddr]>, LookupError>) + Send + 'static) {
    let name = host.to_string();
    // A thread that cannot start drops `answer` unsent: the waiter sees a closed channel.
    let _ = std::thread::Builder::new().name("stampede-dns".into()).spawn(move || {
        let r = match (name.as_str(), port).to_socket_addrs() {
            Ok(a) => {
                let addrs: Vec<SocketAddr> = a.collect();
                if addrs.is_empty() {
                    Err(LookupError::NotFound("no address".into()))
                } else {
                    Ok(addrs.into())
                }
            }
            Err(e) => Err(LookupError::NotFound(e.to_string())),
        };
        answer(r);
    });
}

/// One lookup, waited for at most `timeout`, blocking the caller (the check before a run).
fn lookup_blocking(host: &str, port: u16, timeout: Duration) -> Result<Arc<[SocketAddr]>, LookupError> {
    let (tx, rx) = std::sync::mpsc::channel();
    spawn_lookup(host, port, move |r| {
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LookupError::Timeout),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(LookupError::NotFound("cannot start a lookup".into()))
        }
    }
}

/// One lookup, awaited for at most `timeout` without blocking the runtime.
async fn lookup(host: &str, port: u16, timeout: Duration) -> Result<Arc<[SocketAddr]>, LookupError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_lookup(host, port, move |r| {
        let _ = tx.send(r);
    });
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(LookupError::NotFound("cannot start a lookup".into())),
        Err(_) => Err(LookupError::Timeout),
    }
}

/// An IP address written as the host (`127.0.0.1`, `[::1]`): no lookup needed.
fn literal(host: &str, port: u16) -> Option<Arc<[SocketAddr]>> {
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()?;
    Some(Arc::from([SocketAddr::new(ip, port)]))
}

/// Resolves `host:port` now (not from the cache), stores it, and says how long it took: for the
/// check before a run.
pub fn resolve_now(host: &str, port: u16, timeout: Duration) -> Result<(Arc<[SocketAddr]>, Duration), LookupError> {
    if let Some(addr) = literal(host, port) {
        return Ok((addr, Duration::ZERO));
    }
    let started = Instant::now();
    let addrs = lookup_blocking(host, port, timeout)?;
    let took = started.elapsed();
    store(host, port, addrs.clone());
    Ok((addrs, took))
}

fn store(host: &str, port: u16, addrs: Arc<[SocketAddr]>) {
    if let Ok(mut c) = cache().lock() {
        c.insert(
            (host.to_string(), port),
            Entry {
                addrs,
                at: Instant::now(),
                refreshing: false,
            },
        );
    }
}

/// How a connection's name was resolved: the time it waited, and whether that went to the
/// resolver (a miss or a refresh) rather than the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    pub waited: Duration,
    pub asked_resolver: bool,
}

/// [`resolve`], and for a name (not an IP literal) how it was resolved.
pub async fn resolve_timed(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(Arc<[SocketAddr]>, Option<Lookup>), LookupError> {
    if let Some(addr) = literal(host, port) {
        return Ok((addr, None));
    }
    let started = Instant::now();
    let (addrs, asked_resolver) = resolve_name(host, port, timeout).await?;
    let lookup = Lookup {
        waited: started.elapsed(),
        asked_resolver,
    };
    Ok((addrs, Some(lookup)))
}

/// The addresses of `host:port` for a connect: from the cache while fresh; when stale, one
/// caller looks them up again (bounded by `timeout`) while the others use the stale ones.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Arc<[SocketAddr]>, LookupError> {
    if let Some(addr) = literal(host, port) {
        return Ok(addr);
    }
    resolve_name(host, port, timeout).await.map(|(a, _)| a)
}

/// A name's addresses, and whether this caller asked the resolver for them.
async fn resolve_name(host: &str, port: u16, timeout: Duration) -> Result<(Arc<[SocketAddr]>, bool), LookupError> {
    let stale = {
        let Ok(mut c) = cache().lock() else {
            return Err(LookupError::NotFound("the name cache is unusable".into()));
        };
        match c.get_mut(&(host.to_string(), port)) {
            Some(e) if e.at.elapsed() < TTL => return Ok((e.addrs.clone(), false)),
            Some(e) if e.refreshing => return Ok((e.addrs.clone(), false)),
            Some(e) => {
                e.refreshing = true;
                Some(e.addrs.clone())
            }
            None => None,
        }
    };
    let looked_up = lookup(host, port, timeout).await;
    match (looked_up, stale) {
        (Ok(addrs), _) => {
            store(host, port, addrs.clone());
            Ok((addrs, true))
        }
        // The name stopped resolving: keep what worked, try again after another TTL.
        (Err(_), Some(addrs)) => {
            store(host, port, addrs.clone());
            Ok((addrs, true))
        }
        (Err(e), None) => Err(e),
    }
}
