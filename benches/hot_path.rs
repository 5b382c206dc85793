//! Microbenchmark of the per-request hot path: recording a sample, rendering a templated
//! request, and framing an HTTP/1.1 response (parsing the head, decoding a chunked body). `cargo bench --bench hot_path` prints ns/op; `bench/instructions.sh` runs it under
//! callgrind (`--iterations N`) for a machine-independent instruction count.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use stampede::engine::render::Env;
use stampede::http::h1::parse::{self, Chunked};
use stampede::outcome::ErrorKind;
use stampede::recorder::{Sample, Shard};
use stampede_plan::template::{Escape, Expr, Part, Template};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg("--iterations", 5_000_000);

    let mut shard = Shard::new(4);
    let t = Instant::now();
    for i in 0..n {
        let s = Sample {
            step: (i & 3) as usize,
            latency_us: 200 + (i % 5000),
            service_us: 150 + (i % 4000),
            code: if i % 100 == 0 { 503 } else { 200 },
            error: (i % 100 == 0).then_some(ErrorKind::Status(503)),
            bytes_in: 120,
            bytes_out: 40,
            bytes_decoded: 120,
            redirects: 0,
        };
        shard.record(black_box(&s));
    }
    let rec = t.elapsed();
    black_box(shard.take());

    let tpl = Template {
        parts: vec![
            Part::Lit(Bytes::from_static(b"/items?id=")),
            Part::Expr(Expr::RandomInt(1, 100_000), Escape::Url),
            Part::Lit(Bytes::from_static(b"&vu=")),
            Part::Expr(Expr::Vu, Escape::None),
            Part::Lit(Bytes::from_static(b"&c=")),
            Part::Expr(Expr::Slot(0), Escape::Url),
        ],
    };
    let slots = [Bytes::from_static(b"a value")];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let (mut out, mut scratch) = (Vec::with_capacity(256), Vec::with_capacity(64));
    let t = Instant::now();
    for i in 0..n {
        let mut env = Env {
            slots: &slots,
            rng: &mut rng,
            vu: 7,
            iteration: i,
            jar: None,
        };
        out.clear();
        tpl.render_into(&mut out, &mut scratch, |e, b| env.eval(e, b));
        black_box(&out);
    }
    let render = t.elapsed();

    // nginx's answer to the benchmark's GET, and a small chunked body.
    let head = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n";
    let chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let mut spans = Vec::with_capacity(16);
    let t = Instant::now();
    for _ in 0..n {
        black_box(parse::head(black_box(head), false, &mut spans).ok());
    }
    let parse_head = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        let mut decoder = Chunked::default();
        let mut len = 0;
        black_box(decoder.feed(black_box(chunked), &mut |d| len += d.len()).ok());
        black_box(len);
    }
    let dechunk = t.elapsed();
    println!("record:  {:.1} ns/sample", rec.as_nanos() as f64 / n as f64);
    println!(
        "render:  {:.1} ns/template (3 expressions)",
        render.as_nanos() as f64 / n as f64
    );
    println!(
        "head:    {:.1} ns/response head (nginx's, 6 headers)",
        parse_head.as_nanos() as f64 / n as f64
    );
    println!(
        "chunked: {:.1} ns/body (2 chunks)",
        dechunk.as_nanos() as f64 / n as f64
    );
}
