//! Authentication towards receivers: an API key in the query, HTTP Basic, a bearer
//! token, or OAuth 2.0 client credentials as Bitly does it.
//!
//! OAuth: a form POST of `grant_type=client_credentials` to the token URL with Basic
//! auth of client id and secret; the token is cached until shortly before its
//! `expires_in` (at most a day); a 401 from the receiver drops it so the next attempt
//! fetches anew. The token endpoint is outside the process like any receiver: its
//! request has the webhook's `timeout` and its answer is read up to [`MAX_TOKEN_BODY`].
//! One request fetches while the others that need a token wait for it, each no longer
//! than its own `timeout`; no lock is held while the endpoint answers, and a fetch cut
//! short (a stop) lets the next request fetch.
//! Secrets are added to requests here and nowhere else, and never appear in errors.

use parking_lot::Mutex;
use reqwest::{Client, RequestBuilder, Url};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Auth;
use crate::metrics::Metrics;

struct Token {
    value: String,
    expires: Instant,
}

#[derive(Default)]
struct Cache {
    token: Option<Token>,
    /// A request is fetching a token now.
    fetching: bool,
}

/// Marks the end of a fetch however it ends (an answer, an error, or the request
/// dropped by a stop), and wakes the requests waiting for it.
struct Fetching<'a>(&'a Authenticator);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0.cache.lock().fetching = false;
        self.0.fetched.notify_waiters();
    }
}

/// A webhook's authentication, with its OAuth token cache.
pub struct Authenticator {
    auth: Auth,
    webhook: String,
    cache: Mutex<Cache>,
    fetched: tokio::sync::Notify,
    metrics: Arc<Metrics>,
    allow_private: bool,
    timeout: Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// Renews a token this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// A token is kept at most this long, whatever `expires_in` says.
const LONGEST_LIFETIME: Duration = Duration::from_secs(86_400);
/// The most of a token endpoint's answer that is read.
pub const MAX_TOKEN_BODY: usize = 64 * 1024;

impl Authenticator {
    pub fn new(
        auth: Auth,
        webhook: &str,
        metrics: Arc<Metrics>,
        allow_private: bool,
        timeout: Duration,
    ) -> Authenticator {
        Authenticator {
            auth,
            webhook: webhook.to_string(),
            cache: Mutex::new(Cache::default()),
            fetched: tokio::sync::Notify::new(),
            metrics,
            allow_private,
            timeout,
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
    pub fn invalidate(&self) {
        self.cache.lock().token = None;
    }

    async fn token(&self, client: &Client) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let fetching = loop {
            let waited = self.fetched.notified();
            tokio::pin!(waited);
            {
                let mut cache = self.cache.lock();
                if let Some(t) = cache.token.as_ref()
                    && Instant::now() < t.expires
                {
                    return Ok(t.value.clone());
                }
                if !cache.fetching {
                    cache.fetching = true;
                    break Fetching(self);
                }
                // Registered before the lock is let go, so that the fetch's end is seen.
                waited.as_mut().enable();
            }
            if tokio::time::timeout_at(deadline, waited).await.is_err() {
                return Err(format!(
                    "token endpoint: no token within {:?} (another request is fetching one)",
                    self.timeout
                ));
            }
        };
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
        self.cache.lock().token = Some(t);
        drop(fetching);
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
        let mut resp = client
            .post(token_url.clone())
            .timeout(self.timeout)
            .basic_auth(client_id, Some(client_secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("token endpoint: {}", super::attempt::describe(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("token endpoint: {}", super::attempt::describe(&e)))?
        {
            if body.len() + chunk.len() > MAX_TOKEN_BODY {
                return Err(format!(
                    "token endpoint answered more than {MAX_TOKEN_BODY} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let body: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| format!("token endpoint sent no usable token: {e}"))?;
        Ok(Token::new(
            body.access_token,
            body.expires_in,
            Instant::now(),
        ))
    }
}

impl Token {
    /// A token fetched at `now`; one without `expires_in` is kept [`LONGEST_LIFETIME`],
    /// like one whose `expires_in` is longer, so that a revoked or rotated credential
    /// is fetched again within a day rather than never.
    fn new(value: String, expires_in: Option<u64>, now: Instant) -> Token {
        let lifetime = expires_in.map_or(LONGEST_LIFETIME, lifetime);
        Token {
            value,
            expires: now.checked_add(lifetime).unwrap_or(now),
        }
    }
}

/// How long a token is used: what the endpoint says, less a margin, at most a day (an
/// `expires_in` of 2^64-1 must neither overflow the clock nor keep a token forever).
fn lifetime(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in)
        .saturating_sub(EXPIRY_MARGIN)
        .min(LONGEST_LIFETIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_expires_in_gives_a_lifetime_the_clock_can_add() {
        for s in [0, 1, 30, 31, 3600, 86_400 * 365, u64::MAX] {
            let l = lifetime(s);
            assert!(l <= LONGEST_LIFETIME, "{s}");
            assert!(Instant::now().checked_add(l).is_some(), "{s}");
        }
        assert_eq!(lifetime(3600), Duration::from_secs(3570));
    }

    #[test]
    fn a_token_without_expires_in_is_kept_at_most_a_day() {
        let now = Instant::now();
        let t = Token::new("tok".into(), None, now);
        assert_eq!(t.expires, now + LONGEST_LIFETIME);
        let t = Token::new("tok".into(), Some(u64::MAX), now);
        assert_eq!(t.expires, now + LONGEST_LIFETIME);
        let t = Token::new("tok".into(), Some(600), now);
        assert_eq!(t.expires, now + Duration::from_secs(570));
    }
}
