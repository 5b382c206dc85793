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
    plan_at("localhost", port, http, 20)
}

/// Two VUs sharing `iterations` GETs of `https://HOST:PORT/json` with these `http:` options.
fn plan_at(host: &str, port: u16, http: &str, iterations: u32) -> String {
    format!(
        "name: tls\ntarget: https://{host}:{port}\nhttp: {{ {http} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: j, request: GET /json }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: {iterations}, max_duration: 10s }}\n"
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

/// A CA of the test's own, a server certificate for `names` and a client certificate, all
/// signed by it (openssl CLI). Returns the files' paths by name.
fn pki(dir: &Path, names: &str) -> std::collections::HashMap<&'static str, std::path::PathBuf> {
    let p = |f: &str| dir.join(f);
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=stampede test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    run(&ca);
    std::fs::write(
        p("srv.ext"),
        format!("subjectAltName={names}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    std::fs::write(p("cli.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (who, cn) in [("srv", "server"), ("cli", "client")] {
        let (key, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        let subj = format!("/CN={cn}");
        let mut req = vec![
            "req",
            "-new",
            "-subj",
            subj.as_str(),
            "-keyout",
            key.as_str(),
            "-out",
            csr.as_str(),
        ];
        req.extend(ec);
        run(&req);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ]);
    }
    [
        ("ca", "ca.pem"),
        ("srv", "srv.pem"),
        ("srv_key", "srv.key"),
        ("cli", "cli.pem"),
        ("cli_key", "cli.key"),
    ]
    .into_iter()
    .map(|(k, f)| (k, p(f)))
    .collect()
}

fn ip_plan(port: u16, tls: &str) -> String {
    plan_at("127.0.0.1", port, &format!("timeout: 5s, tls: {{ {tls} }}"), 10)
}

/// `tls.ca` trusts a private CA; `tls.server_name` sends and checks a name the certificate has
/// when the target is an address it does not (the certificate names only `stampede.test`).
#[test]
fn a_private_ca_and_a_server_name_are_trusted_as_configured() {
    let d = tmp();
    let f = pki(d.path(), "DNS:stampede.test");
    let srv = TestServer::start_tls(&f["srv"], &f["srv_key"]);
    let ca = f["ca"].display().to_string();
    let (out, run) = run_plan(
        d.path(),
        &ip_plan(srv.addr.port(), &format!("ca: \"{ca}\", server_name: stampede.test")),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        (step0(&s)["requests"].as_u64(), step0(&s)["errors"].as_u64()),
        (Some(10), Some(0)),
        "{s}"
    );
    // The CA alone: the address is not a name the certificate has.
    let d2 = tmp();
    let (out, run) = run_plan(d2.path(), &ip_plan(srv.addr.port(), &format!("ca: \"{ca}\"")), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(step0(&summary_json(&run))["errors_by_kind"]["tls"], 10);
}

/// mTLS: a server that requires a client certificate from its CA gets one from `tls.cert` and
/// `tls.key`; without them every request fails and is counted.
#[test]
fn a_client_certificate_passes_mutual_tls_and_its_absence_is_counted() {
    let d = tmp();
    let f = pki(d.path(), "DNS:localhost,IP:127.0.0.1");
    let srv = TestServer::start_tls_with(&f["srv"], &f["srv_key"], Some(&f["ca"]));
    let (ca, cert, key) = (f["ca"].display(), f["cli"].display(), f["cli_key"].display());
    let (out, run) = run_plan(
        d.path(),
        &ip_plan(
            srv.addr.port(),
            &format!("ca: \"{ca}\", cert: \"{cert}\", key: \"{key}\""),
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        (step0(&s)["requests"].as_u64(), step0(&s)["errors"].as_u64()),
        (Some(10), Some(0)),
        "{s}"
    );
    assert_eq!(srv.total(), 10);
    let d2 = tmp();
    let (out, run) = run_plan(d2.path(), &ip_plan(srv.addr.port(), &format!("ca: \"{ca}\"")), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = step0(&summary_json(&run)).clone();
    assert_eq!(st["errors"], 10, "{st}");
    assert_eq!(srv.total(), 10, "no request got through without a certificate");
}

/// A cert without its key, a missing file and a file with no certificate are refused at
/// validate with their place; nothing runs.
#[test]
fn bad_tls_files_are_refused_where_they_are_named() {
    let d = tmp();
    let f = pki(d.path(), "DNS:localhost");
    let not_pem = write(d.path(), "notes.txt", "hello");
    for (tls, want) in [
        (format!("cert: \"{}\"", f["cli"].display()), "`cert` needs its `key`"),
        ("ca: \"/nonexistent/ca.pem\"".to_string(), "cannot read"),
        (format!("ca: \"{}\"", not_pem.display()), "no certificate in the file"),
        (
            format!("cert: \"{}\", key: \"{}\"", f["cli"].display(), f["cli"].display()),
            "no private key",
        ),
    ] {
        let plan = write(d.path(), "p.yaml", &ip_plan(1, &tls));
        let out = stampede(&["validate", plan.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{tls}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("p.yaml:3:") && err.contains(want), "{tls}: {err}");
    }
}

/// Each connection's handshake is counted as full or resumed: one VU whose every request
/// closes its connection opens ten, the first in full, the later ones resuming its session.
#[test]
fn tls_handshakes_are_counted_full_or_resumed() {
    let d = tmp();
    let (cert, key) = self_signed(d.path());
    let srv = TestServer::start_tls(&cert, &key);
    let plan = format!(
        "name: resume\ntarget: https://localhost:{}\nhttp: {{ insecure: true, http2: false }}\nscenarios:\n  s:\n    steps:\n      - {{ name: j, request: GET /json, headers: {{ Connection: close }} }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 10, max_duration: 10s }}\n",
        srv.addr.port()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let h = &step0(&s)["tls_handshakes"];
    let (full, resumed) = (h["full"].as_u64().unwrap(), h["resumed"].as_u64().unwrap());
    assert_eq!(full + resumed, 10, "{h}");
    assert!(full >= 1 && resumed >= 5, "{h}");
}
