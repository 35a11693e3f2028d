//! Alerts by mail: one SMTP session per message (lettre, on tokio, TLS by rustls),
//! STARTTLS or TLS from the first byte, with AUTH when a username is set.
//!
//! `tls = "starttls"` refuses a server that does not offer STARTTLS rather than fall
//! back to clear text; `none` is for loopback and closed networks and takes no
//! credentials (`check` refuses them). The whole session has the alert's `timeout`.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::Message;
use crate::config::{Email, SmtpTls};

pub async fn send(e: &Email, m: &Message, timeout: std::time::Duration) -> Result<(), String> {
    crate::tls::install_provider();
    let tls_parameters = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(e.host.clone());
        if let Some(path) = &e.ca {
            let pem = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|err| err.to_string())?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|err| err.to_string())
    };
    let tls = match e.tls {
        SmtpTls::StartTls => Tls::Required(tls_parameters()?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.as_str())
        .port(e.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(pass)) = (&e.username, &e.password) {
        b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    let transport = b.build();
    let mut mail = lettre::Message::builder()
        .from(e.from.clone())
        .subject(m.subject.clone());
    for to in &e.to {
        mail = mail.to(to.clone());
    }
    let mail = mail
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|err| format!("cannot build the mail: {err}"))?;
    match tokio::time::timeout(timeout, transport.send(mail)).await {
        Ok(Ok(_)) => Ok(()),
        // lettre's errors name the server's answer, never the credentials.
        Ok(Err(err)) => Err(format!("SMTP: {err}")),
        Err(_) => Err(format!(
            "SMTP: no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}
