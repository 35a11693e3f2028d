//! Authentication towards receivers: an API key in the query, HTTP Basic, a bearer
//! token, or OAuth 2.0 client credentials as Bitly does it.
//!
//! OAuth: a form POST of `grant_type=client_credentials` to the token URL with Basic
//! auth of client id and secret; the token is cached until shortly before its
//! `expires_in`; a 401 from the receiver drops it so the next attempt fetches anew.
//! Secrets are added to requests here and nowhere else, and never appear in errors.

use reqwest::{Client, RequestBuilder, Url};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::config::Auth;
use crate::metrics::Metrics;

struct Token {
    value: String,
    expires: Option<Instant>,
}

/// A webhook's authentication, with its OAuth token cache.
pub struct Authenticator {
    auth: Auth,
    webhook: String,
    token: Mutex<Option<Token>>,
    metrics: Arc<Metrics>,
    allow_private: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// Renews a token this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

impl Authenticator {
    pub fn new(
        auth: Auth,
        webhook: &str,
        metrics: Arc<Metrics>,
        allow_private: bool,
    ) -> Authenticator {
        Authenticator {
            auth,
            webhook: webhook.to_string(),
            token: Mutex::new(None),
            metrics,
            allow_private,
        }
    }

    /// The URL to send to: with the API key appended for `query` auth, and without
    /// userinfo (sent as a header instead).
    pub fn url(&self, url: &Url) -> Url {
        let mut u = url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        if let Auth::Query { param, value } = &self.auth {
            u.query_pairs_mut().append_pair(param, value.expose());
        }
        u
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self.auth, Auth::OAuth2 { .. })
    }

    /// Adds credentials to a request; fetches an OAuth token when none is cached.
    pub async fn apply(
        &self,
        client: &Client,
        req: RequestBuilder,
    ) -> Result<RequestBuilder, String> {
        Ok(match &self.auth {
            Auth::None | Auth::Query { .. } => req,
            Auth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
            Auth::Bearer { token } => req.bearer_auth(token.expose()),
            Auth::OAuth2 { .. } => req.bearer_auth(self.token(client).await?),
        })
    }

    /// Forgets the cached token (the receiver answered 401).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    async fn token(&self, client: &Client) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && t.expires.is_none_or(|e| Instant::now() < e)
        {
            return Ok(t.value.clone());
        }
        let fetched = self.fetch(client).await;
        let outcome = if fetched.is_ok() {
            "success"
        } else {
            "failure"
        };
        self.metrics
            .delivery_token_fetches
            .with_label_values(&[self.webhook.as_str(), outcome])
            .inc();
        let t = fetched?;
        let value = t.value.clone();
        *cached = Some(t);
        Ok(value)
    }

    async fn fetch(&self, client: &Client) -> Result<Token, String> {
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.auth
        else {
            return Err("not an OAuth webhook".into());
        };
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        super::guard::check_url(token_url, self.allow_private)
            .map_err(|e| format!("token endpoint {e}"))?;
        let resp = client
            .post(token_url.clone())
            .basic_auth(client_id, Some(client_secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("token endpoint: {}", e.without_url()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| format!("token endpoint sent no usable token: {}", e.without_url()))?;
        let expires = body
            .expires_in
            .map(|s| Instant::now() + Duration::from_secs(s).saturating_sub(EXPIRY_MARGIN));
        Ok(Token {
            value: body.access_token,
            expires,
        })
    }
}
