//! One TLS crypto provider for the whole process.
//!
//! Pingora's rustls side and reqwest both use rustls; building with ring for both
//! keeps one implementation in the binary (and no C toolchain beyond Pingora's own).
//! reqwest needs it installed as the process default before a client is built.

use std::sync::Once;

static INSTALL: Once = Once::new();

pub fn install_provider() {
    INSTALL.call_once(|| {
        // Fails only when another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The `User-Agent` every request of clicktap's carries.
pub const USER_AGENT: &str = concat!("clicktap/", env!("CARGO_PKG_VERSION"));

/// A reqwest client builder with clicktap's defaults: no redirects followed, no proxy
/// from the environment, clicktap's user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(USER_AGENT)
}
