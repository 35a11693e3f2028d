//! `[webhooks.auth]`: how clicktap authenticates to a receiver, validated.
//!
//! Credentials become [`Secret`]s here. The OAuth token URL obeys the webhook URL's own
//! rule (the same function), since a client secret leaves the process through it.

use reqwest::Url;

use super::DeliveryConfig;
use super::problems::Problems;
use super::secret::Secret;
use super::url;
use super::webhook_file::AuthFile;

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// An API key appended to the URL's query.
    Query {
        param: String,
        value: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
    Bearer {
        token: Secret,
    },
    OAuth2 {
        token_url: Url,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    },
}

/// `url` is the webhook's, already validated (absent when it was refused); its
/// userinfo serves `basic` and is refused for every other type, which would drop it.
pub(super) fn auth(
    f: AuthFile,
    url: Option<&Url>,
    delivery: &DeliveryConfig,
    key: &str,
    p: &mut Problems,
) -> Option<Auth> {
    let k = |field: &str| format!("{key}.auth.{field}");
    let need = |field: &str, v: Option<String>, p: &mut Problems| -> Option<String> {
        if v.as_deref().is_none_or(str::is_empty) {
            p.push(k(field), format!("is required for auth type {:?}", f.kind));
            None
        } else {
            v
        }
    };
    let has_userinfo = url.is_some_and(|u| !u.username().is_empty() || u.password().is_some());
    if has_userinfo && f.kind != "basic" {
        p.push(
            format!("{key}.url"),
            format!(
                "holds a username or password, which only auth type \"basic\" sends; \
                 with {:?} they would be dropped",
                f.kind
            ),
        );
    }
    match f.kind.as_str() {
        "none" => Some(Auth::None),
        "query" => {
            if f.param.is_empty() {
                p.push(k("param"), "is empty: the key would have no name");
            }
            let value = need("value", f.value, p)?;
            Some(Auth::Query {
                param: f.param,
                value: Secret::new(value),
            })
        }
        "basic" => {
            let (url_user, url_pass) = match url.map(url::credentials).transpose() {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => {
                    p.push(format!("{key}.url"), e);
                    return None;
                }
            };
            let username = need("username", f.username.or(url_user), p)?;
            if username.contains(':') {
                // RFC 7617: the first colon ends the user-id, whatever follows.
                p.push(
                    k("username"),
                    "may not hold \":\", which Basic auth reads as the end of the username",
                );
            }
            Some(Auth::Basic {
                username,
                password: Secret::new(f.password.or(url_pass).unwrap_or_default()),
            })
        }
        "bearer" => Some(Auth::Bearer {
            token: Secret::new(need("token", f.token, p)?),
        }),
        "oauth2_client_credentials" => {
            let token_url = need("token_url", f.token_url, p)
                .and_then(|u| p.check(&k("token_url"), url::outbound(&u, delivery)));
            let client_id = need("client_id", f.client_id, p);
            let secret = need("client_secret", f.client_secret, p);
            Some(Auth::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: Secret::new(secret?),
                scope: f.scope,
            })
        }
        other => {
            p.push(
                k("type"),
                format!(
                    "{other:?} is not an auth type; use none, query, basic, bearer or \
                     oauth2_client_credentials"
                ),
            );
            None
        }
    }
}
