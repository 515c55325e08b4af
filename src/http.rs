//! The HTTP client every request to Creem starts from: which certificates it trusts, which
//! proxy it takes, and what a TLS failure means for the user.
//!
//! Companies that inspect HTTPS traffic install their own root certificate on every machine;
//! a client that trusts only the roots bundled into it then fails on every request. So the
//! client trusts the bundled roots and the operating system's store, and, as OpenSSL-based
//! tools do, `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (they replace the system store).
//! `HTTPS_PROXY` / `NO_PROXY` are read from the environment by the client itself.

use std::path::Path;

/// The variable naming a PEM file of trusted root certificates.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// The variable naming a directory of trusted root certificates (OpenSSL's hashed layout).
pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";

/// A client builder for requests to `base_url`, with the trust and proxy settings above.
/// The caller adds its own timeouts and pool size.
///
/// A set but unusable `SSL_CERT_FILE` or `SSL_CERT_DIR` is an error here, before anything is
/// sent: the TLS library would silently skip it, and the run would then fail on every row with
/// an unknown-issuer error that hides the real cause.
pub fn client_builder(base_url: &str) -> anyhow::Result<reqwest::ClientBuilder> {
    check_cert_file(std::env::var_os(SSL_CERT_FILE).as_deref().map(Path::new))?;
    check_cert_dir(std::env::var_os(SSL_CERT_DIR).as_deref())?;
    let mut builder = reqwest::Client::builder()
        .tls_built_in_webpki_certs(true)
        .tls_built_in_native_certs(true)
        .user_agent(concat!("creem-batch/", env!("CARGO_PKG_VERSION")));
    if crate::target::is_loopback(base_url) {
        // A proxy from the environment must not swallow requests meant for this machine.
        builder = builder.no_proxy();
    }
    Ok(builder)
}

fn check_cert_file(path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "{SSL_CERT_FILE}={} cannot be read ({e}); point it at a PEM file of root certificates, or unset it",
            path.display()
        )
    })?;
    match reqwest::Certificate::from_pem_bundle(&bytes) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => anyhow::bail!(
            "{SSL_CERT_FILE}={} holds no PEM certificate (-----BEGIN CERTIFICATE-----); point it at your company's root certificate in PEM form, or unset it",
            path.display()
        ),
    }
}

fn check_cert_dir(dirs: Option<&std::ffi::OsStr>) -> anyhow::Result<()> {
    let Some(dirs) = dirs.filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    // Like OpenSSL, several directories may be given, separated by `:`.
    if std::env::split_paths(dirs).any(|d| d.is_dir()) {
        return Ok(());
    }
    anyhow::bail!(
        "{SSL_CERT_DIR}={} is not a directory; point it at a directory of root certificates, or unset it",
        Path::new(dirs).display()
    )
}

/// When `error` is a TLS failure, the message that stops the run: the host, the reason in
/// words, and the remedy. `None` for any other error.
///
/// A TLS failure is never retried: the same certificate comes back on every attempt, and a
/// retry schedule would only delay the message by minutes.
pub fn tls_failure(error: &reqwest::Error) -> Option<String> {
    let tls = rustls_cause(error)?;
    let host = error
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the server");
    let (reason, remedy) = explain(tls);
    Some(format!(
        "TLS connection to {host} failed: {reason}. {remedy} (a TLS error is not retried; nothing more was sent)"
    ))
}

/// The rustls error somewhere in `error`'s causes. An `io::Error` hides the error it wraps
/// from `source()` (and the connector wraps it in two), so those are looked into explicitly.
fn rustls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

const CORPORATE_CA: &str = "If your company inspects HTTPS traffic (a proxy or security software), install its root certificate in the system's certificate store, or point SSL_CERT_FILE at it (a PEM file; SSL_CERT_DIR for a directory)";

fn explain(error: &rustls::Error) -> (String, &'static str) {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => (
                "its certificate is signed by an authority this machine does not trust".into(),
                CORPORATE_CA,
            ),
            C::Expired | C::ExpiredContext { .. } => (
                "its certificate has expired".into(),
                "Check this machine's clock; if it is right, the server (or a proxy in between) presents an outdated certificate",
            ),
            C::NotValidYet | C::NotValidYetContext { .. } => (
                "its certificate is not valid yet".into(),
                "Check this machine's clock and time zone",
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => (
                "its certificate is made out for another host name".into(),
                "Check --base-url / CREEM_API_BASE; a proxy may be answering with its own certificate",
            ),
            C::Revoked => (
                "its certificate has been revoked".into(),
                "Do not send to this host; check --base-url / CREEM_API_BASE and your network",
            ),
            other => (
                format!("its certificate was refused ({other})"),
                CORPORATE_CA,
            ),
        },
        other => (
            format!("the secure connection could not be set up ({other})"),
            "Check that the URL is an HTTPS endpoint (not plain http on an https:// URL) and whether a proxy is in between",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_certificate_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = check_cert_file(Some(missing.as_path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SSL_CERT_FILE") && err.contains("missing.pem"),
            "{err}"
        );

        let not_pem = dir.path().join("ca.der");
        std::fs::write(&not_pem, b"\x30\x82garbage").unwrap();
        let err = check_cert_file(Some(not_pem.as_path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        assert!(check_cert_file(None).is_ok());
        assert!(check_cert_file(Some(Path::new(""))).is_ok());

        let err = check_cert_dir(Some(missing.as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SSL_CERT_DIR"), "{err}");
        assert!(check_cert_dir(Some(dir.path().as_os_str())).is_ok());
    }

    #[test]
    fn certificate_errors_are_explained_in_words() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let (reason, remedy) = explain(&unknown);
        assert!(reason.contains("does not trust"), "{reason}");
        assert!(remedy.contains("SSL_CERT_FILE"));
        let (reason, _) = explain(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert_eq!(reason, "its certificate has expired");
        // Wrapped the way the connector wraps it: an io::Error inside an io::Error.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        let io = std::io::Error::other(io);
        assert!(rustls_cause(&io).is_some());
        assert!(rustls_cause(&std::io::Error::other("plain")).is_none());
    }
}
