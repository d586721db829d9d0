//! TLS to the database with rustls: the client configuration for each `sslmode`, and errors
//! that say what was wrong with the server's certificate.
//!
//! | sslmode               | encrypted            | certificate checked                      |
//! |-----------------------|----------------------|------------------------------------------|
//! | disable               | no                   | -                                        |
//! | prefer                | if the server offers | against the CA if one is given, else not |
//! | require               | yes                  | against the CA if one is given, else not |
//! | verify-ca             | yes                  | chain to the CA                          |
//! | verify-full           | yes                  | chain to the CA, and the host's name     |
//!
//! As in libpq, a CA given with `require` (or `prefer`) is used: the chain is checked as with
//! `verify-ca`.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::SslMode;

/// The TLS connector for `mode`, or `None` for plain connections (`disable`).
pub(super) fn connector(
    mode: SslMode,
    ca_file: Option<&Path>,
) -> Result<Option<MakeRustlsConnect>, String> {
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(ring::default_provider());
    let roots = ca_file.map(read_roots).transpose()?.map(Arc::new);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match (mode, roots) {
        // The standard webpki verifier: chain and host name.
        (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
        (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
            return Err(format!("sslmode={} needs a CA file", mode.as_str()))
        }
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider })),
    }
    .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Every certificate in a PEM file, as trust anchors.
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let named = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| named(&e))? {
        let cert = cert.map_err(|e| named(&e))?;
        roots.add(cert).map_err(|e| named(&e))?;
    }
    if roots.is_empty() {
        return Err(named(&"no PEM certificate in it"));
    }
    Ok(roots)
}

/// `verify-ca` (and `require`/`prefer` with a CA): the certificate must chain to one of
/// `roots`, whatever names it carries. Without roots (`require`/`prefer` alone) any
/// certificate is taken. Either way the handshake's signatures are checked, so the server
/// must hold the key of the certificate it shows.
#[derive(Debug)]
struct ChainOnly {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An error and its causes on one line (tokio-postgres prints only its own part, e.g.
/// "error performing TLS handshake"), a certificate's fault in plain words.
pub(crate) fn explain(error: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let part = match rustls_error(e) {
            Some(tls) => certificate_fault(tls),
            None => e.to_string(),
        };
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// The rustls error in `e`, directly or inside the `io::Error` the TLS stream returns.
fn rustls_error<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<rustls::Error>()
    })
}

fn certificate_fault(e: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(fault) = e else {
        return format!("TLS: {e}");
    };
    match fault {
        CertificateError::UnknownIssuer => {
            "certificate verify failed: unknown issuer (not signed by the CA given)".to_string()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<&str> = presented.iter().map(|n| bare_name(n)).collect();
            format!(
                "certificate not valid for name '{}' (it is for: {})",
                expected.to_str(),
                names.join(", ")
            )
        }
        CertificateError::NotValidForName => {
            "certificate not valid for the host name connected to".to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("certificate verify failed: certificate has expired ({fault})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("certificate verify failed: certificate is not yet valid ({fault})")
        }
        other => format!("certificate verify failed: {other}"),
    }
}

/// `localhost` from webpki's `DnsName("localhost")`.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, inner)| inner.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_faults_in_plain_words() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            explain(&io),
            "certificate verify failed: unknown issuer (not signed by the CA given)"
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("127.0.0.1").unwrap(),
            presented: vec!["DnsName(\"localhost\")".to_string()],
        });
        assert_eq!(
            explain(&name),
            "certificate not valid for name '127.0.0.1' (it is for: localhost)"
        );
    }

    #[test]
    fn verify_modes_need_a_ca_and_a_readable_one() {
        let err = connector(SslMode::VerifyCa, None).err().expect("refused");
        assert!(err.contains("needs a CA file"), "{err}");
        let missing = Path::new("/nonexistent/serai-ca.pem");
        let err = connector(SslMode::VerifyFull, Some(missing))
            .err()
            .expect("refused");
        assert!(
            err.starts_with("CA file /nonexistent/serai-ca.pem: "),
            "{err}"
        );
        assert!(connector(SslMode::Disable, None).unwrap().is_none());
        assert!(connector(SslMode::Require, None).unwrap().is_some());
    }
}
