//! TLS: real certificate verification by default, `insecure: true` to opt out, HTTP/2 by ALPN.

use std::path::Path;
use std::process::Command;

use crate::*;

/// A self-signed certificate for localhost / 127.0.0.1, made with the openssl CLI.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    (cert, key)
}

fn plan(port: u16, http: &str) -> String {
    format!(
        "name: tls\ntarget: https://localhost:{port}\nhttp: {{ {http} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: j, request: GET /json }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 20, max_duration: 10s }}\n"
    )
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_by_default() {
    let d = tmp();
    let (cert, key) = self_signed(d.path());
    let srv = TestServer::start_tls(&cert, &key);
    let (out, run) = run_plan(d.path(), &plan(srv.addr.port(), "timeout: 5s"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(step0(&s)["errors_by_kind"]["tls"], 20, "{s}");
    assert_eq!(srv.total(), 0);
}

#[test]
fn insecure_opts_out_and_h2_is_negotiated_by_alpn() {
    let d = tmp();
    let (cert, key) = self_signed(d.path());
    let srv = TestServer::start_tls(&cert, &key);
    let (out, run) = run_plan(d.path(), &plan(srv.addr.port(), "insecure: true"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(step0(&s)["errors"], 0, "{s}");
    assert_eq!(srv.count("version:HTTP/2.0"), 20);

    let d = tmp();
    let (out, _) = run_plan(d.path(), &plan(srv.addr.port(), "insecure: true, http2: false"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(srv.count("version:HTTP/1.1"), 20);
}
