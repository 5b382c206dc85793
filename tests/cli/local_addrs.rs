//! `http.local_addrs`: connections spread over several source addresses (seen by a server that
//! records each connection's peer), and addresses that are not this host's refused at their
//! line.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::*;

/// A server that answers every request with `Connection: close` (so each request is a new
/// connection) and counts connections by the peer's address. At most `max` connections.
fn peer_recorder(max: usize) -> (String, Arc<Mutex<BTreeMap<IpAddr, u32>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().take(max) {
            let Ok(mut c) = conn else { continue };
            let peer = c.peer_addr().unwrap().ip();
            *s.lock().unwrap().entry(peer).or_insert(0) += 1;
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

#[test]
fn connections_take_the_local_addresses_in_turn() {
    let (url, seen) = peer_recorder(64);
    let d = tmp();
    let plan = format!(
        "name: src\ntarget: {url}\nhttp:\n  local_addrs: [127.0.0.2, 127.0.0.3]\nscenarios:\n  s:\n    steps:\n      - {{ name: a, request: GET /a }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 6, max_duration: 20s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(s["phases"][0]["requests"], 6, "{s}");
    assert_eq!(s["phases"][0]["errors"], 0, "{s}");
    let seen = seen.lock().unwrap().clone();
    println!("connections by source address: {seen:?}");
    let two: IpAddr = "127.0.0.2".parse().unwrap();
    let three: IpAddr = "127.0.0.3".parse().unwrap();
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [two, three], "{seen:?}");
    assert_eq!((seen[&two], seen[&three]), (3, 3), "{seen:?}");
}

#[test]
fn an_address_this_host_does_not_have_is_refused_at_its_line() {
    for (addr, col, want) in [
        ("192.0.2.77", "28", "is not an address of this host"),
        ("localhost", "28", "is not an IP address"),
    ] {
        let d = tmp();
        let plan = format!(
            "name: src\ntarget: http://127.0.0.1:9\nhttp:\n  local_addrs: [127.0.0.2, {addr}]\nscenarios:\n  s:\n    steps:\n      - {{ name: a, request: GET /a }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 1 }}\n"
        );
        let p = write(d.path(), "plan.yaml", &plan);
        let out = stampede(&["validate", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            err.contains(&format!("plan.yaml:4:{col}")) && err.contains(want),
            "{addr}: {err}"
        );
    }
}
