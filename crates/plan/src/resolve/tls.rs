//! `http.tls`: a CA file to trust beside the public roots, a client certificate and key (mTLS),
//! a server name (SNI and the name the certificate is checked against) instead of the URL's
//! host. Files are relative to the plan, read at load and checked to hold PEM blocks of the
//! right kind, so a wrong path or a swapped file is refused by `validate` at its line.

use base64::Engine as _;

use super::{read_beside_plan, Resolver, R, S};
use crate::model::TlsFiles;
use crate::raw::RawTls;

/// The DER contents of every `-----BEGIN {label}-----` block of a PEM text.
fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let (begin, end) = (format!("-----BEGIN {label}-----"), format!("-----END {label}-----"));
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let body = &rest[i + begin.len()..];
        let j = body.find(&end).ok_or_else(|| format!("a `{begin}` block has no end"))?;
        let b64: String = body[..j].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("a {label} block is not base64: {e}"))?;
        out.push(der);
        rest = &body[j + end.len()..];
    }
    Ok(out)
}

pub(super) fn resolve_tls(rs: &Resolver, t: &S<RawTls>) -> R<TlsFiles> {
    let read = |f: &S<String>, what: &str| -> R<String> {
        let name = rs.string(f)?;
        let bytes = read_beside_plan(&rs.base_dir.join(&name), "TLS files")
            .map_err(|why| rs.errs.at(&f.referenced, format!("http.tls.{what}: {why}")))?;
        String::from_utf8(bytes).map_err(|_| {
            rs.errs.at(
                &f.referenced,
                format!("http.tls.{what}: `{name}` is not a PEM text file"),
            )
        })
    };
    let certs = |f: &S<String>, what: &str| -> R<Vec<Vec<u8>>> {
        let blocks = pem_blocks(&read(f, what)?, "CERTIFICATE")
            .map_err(|why| rs.errs.at(&f.referenced, format!("http.tls.{what}: {why}")))?;
        if blocks.is_empty() {
            return Err(rs.errs.hint(
                &f.referenced,
                format!("http.tls.{what}: no certificate in the file"),
                "a PEM file with -----BEGIN CERTIFICATE----- blocks",
            ));
        }
        Ok(blocks)
    };
    let raw = &t.value;
    let mut out = TlsFiles::default();
    if let Some(ca) = &raw.ca {
        out.ca = certs(ca, "ca")?;
    }
    match (&raw.cert, &raw.key) {
        (Some(c), Some(k)) => {
            let chain = certs(c, "cert")?;
            let key = read(k, "key")?;
            let is_key = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
                .iter()
                .any(|l| key.contains(&format!("-----BEGIN {l}-----")));
            if !is_key {
                return Err(rs.errs.hint(
                    &k.referenced,
                    "http.tls.key: no private key in the file",
                    "a PEM file with a -----BEGIN PRIVATE KEY----- (or EC / RSA PRIVATE KEY) block, not encrypted",
                ));
            }
            out.client = Some((chain, key.into_bytes()));
        }
        (Some(c), None) => return Err(rs.errs.at(&c.referenced, "http.tls: `cert` needs its `key`")),
        (None, Some(k)) => return Err(rs.errs.at(&k.referenced, "http.tls: `key` needs its `cert`")),
        (None, None) => {}
    }
    if let Some(n) = &raw.server_name {
        let name = rs.string(n)?;
        if name.is_empty() || name.contains(['/', ':', ' ']) {
            return Err(rs.errs.at(
                &n.referenced,
                format!("http.tls.server_name: `{name}` is not a host name"),
            ));
        }
        out.server_name = Some(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::pem_blocks;

    #[test]
    fn pem_blocks_are_found_and_decoded() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBA==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_blocks(pem, "CERTIFICATE").unwrap(), vec![vec![0, 1, 2, 3], vec![4]]);
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nAA", "CERTIFICATE").is_err());
        assert!(pem_blocks("nothing", "CERTIFICATE").unwrap().is_empty());
    }
}
