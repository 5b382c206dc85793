//! The engine's WebSocket echo exchange with two client libraries on one current-thread tokio
//! runtime (as a stampede worker runs): CONNS connections, each sending a small JSON text message
//! every EVERY_MS and awaiting its echo before the next, ROUNDS times. Prints the CPU time of the
//! exchange phase (connects excluded, from /proc/self/schedstat) per message.
//!
//! Usage: ws-client-cmp tungstenite|fastwebsockets ADDR CONNS EVERY_MS ROUNDS together|spread
//!
//! tungstenite is configured as the engine configures it (4 KiB read buffer, writes straight
//! through); fastwebsockets with its defaults (8 KiB read buffer, auto pong/close, masking).

use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The upgrade by hand for fastwebsockets (its own client handshake needs hyper).
async fn upgrade(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.expect("handshake");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}

enum Client {
    Tungstenite(tokio_tungstenite::WebSocketStream<TcpStream>),
    Fast(fastwebsockets::WebSocket<TcpStream>),
}

async fn open(lib: &str, addr: &str) -> Client {
    if lib == "tungstenite" {
        use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).unwrap();
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let url = format!("ws://{addr}/ws/echo");
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, s, Some(config))
            .await
            .expect("upgrade");
        Client::Tungstenite(ws)
    } else {
        let mut ws = fastwebsockets::WebSocket::after_handshake(upgrade(addr).await, fastwebsockets::Role::Client);
        ws.set_auto_apply_mask(true);
        Client::Fast(ws)
    }
}

impl Client {
    /// Sends `msg` and awaits the next data message; true when it equals `msg`.
    async fn exchange(&mut self, msg: &str) -> bool {
        match self {
            Client::Tungstenite(ws) => {
                use tokio_tungstenite::tungstenite::Message;
                ws.send(Message::Text(msg.into())).await.expect("send");
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => return t.as_str() == msg,
                        Some(Ok(Message::Binary(b))) => return &b[..] == msg.as_bytes(),
                        Some(Ok(_)) => continue,
                        _ => return false,
                    }
                }
            }
            Client::Fast(ws) => {
                use fastwebsockets::{Frame, OpCode, Payload};
                let frame = Frame::text(Payload::Borrowed(msg.as_bytes()));
                ws.write_frame(frame).await.expect("send");
                loop {
                    let f = ws.read_frame().await.expect("read");
                    match f.opcode {
                        OpCode::Text | OpCode::Binary => return &f.payload[..] == msg.as_bytes(),
                        OpCode::Close => return false,
                        _ => continue,
                    }
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, lib, addr, conns, every, rounds, layout] = &args[..] else {
        eprintln!("usage: ws-client-cmp tungstenite|fastwebsockets ADDR CONNS EVERY_MS ROUNDS together|spread");
        std::process::exit(2);
    };
    let (conns, rounds): (usize, u32) = (conns.parse().unwrap(), rounds.parse().unwrap());
    let every = Duration::from_millis(every.parse().unwrap());
    let spread = layout == "spread";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut clients = Vec::with_capacity(conns);
        for _ in 0..conns {
            clients.push(open(lib, addr).await);
        }
        let ok = Rc::new(std::cell::Cell::new(0u64));
        let start = Instant::now() + Duration::from_millis(50);
        let cpu0 = cpu_ns();
        let mut tasks = Vec::new();
        for (i, mut c) in clients.into_iter().enumerate() {
            let ok = ok.clone();
            let offset = if spread {
                every * i as u32 / conns as u32
            } else {
                Duration::ZERO
            };
            tasks.push(tokio::task::spawn_local(async move {
                let mut msg = String::with_capacity(64);
                for k in 0..rounds {
                    tokio::time::sleep_until(start + offset + every * k).await;
                    msg.clear();
                    use std::fmt::Write;
                    write!(msg, "{{\"id\":\"c{i}-{k}-0123456789abcdef0123\",\"n\":{k}}}").unwrap();
                    if c.exchange(&msg).await {
                        ok.set(ok.get() + 1);
                    }
                }
                c
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        let cpu = cpu_ns() - cpu0;
        let n = ok.get();
        println!(
            "{lib} {layout}: {n} messages echoed, exchange CPU {:.3} s, {:.2} µs/message",
            cpu as f64 / 1e9,
            cpu as f64 / 1e3 / n.max(1) as f64
        );
        drop(done);
    });
}
