//! The command line's way to the running clicktap: its admin listener, at the address
//! and with the token of the configuration file, with a deadline and a size limit like
//! every call that leaves the process.

use anyhow::{Context, bail};
use serde_json::Value;
use std::time::Duration;

use crate::config::AdminConfig;

/// How long the running clicktap gets to answer (a test event waits for the
/// receiver, within its own timeout).
const TIMEOUT: Duration = Duration::from_secs(60);
/// The most of an answer that is read: 10,000 events of up to 6 KiB.
pub const MAX_ANSWER: usize = 64 << 20;

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// clicktap answered, and it is a no (an unknown webhook, a bad request, a wrong token):
/// the command exits 2, where not reaching clicktap is 1.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub what: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Refusal {}

/// An answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// clicktap's no to `what` (`GET /api/v1/...`): its status and the answer's
    /// `message` (or its body).
    pub fn refusal(&self, what: &str) -> anyhow::Error {
        let why = self
            .json()
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        Refusal {
            status: self.status,
            what: format!("{what}: {}: {why}", self.status),
        }
        .into()
    }

    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).context("the answer is not JSON")
    }
}

impl Client {
    pub fn new(admin: &AdminConfig) -> anyhow::Result<Client> {
        Ok(Client {
            base: format!("http://{}", admin.listen),
            token: admin.token.as_ref().map(|t| t.expose().to_string()),
            http: crate::tls::client_builder().timeout(TIMEOUT).build()?,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Sends a request; an error only when clicktap cannot be reached or answers
    /// too much.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let mut resp = req
                .send()
                .await
                .with_context(|| format!("{method} {url}: is clicktap running?"))?;
            let status = resp.status().as_u16();
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if out.len() + chunk.len() > MAX_ANSWER {
                    bail!("{method} {url}: the answer is larger than {MAX_ANSWER} bytes");
                }
                out.extend_from_slice(&chunk);
            }
            Ok(Answer { status, body: out })
        })
    }

    /// A call whose answer must be a success: its JSON, or a [`Refusal`] saying what
    /// clicktap answered.
    pub fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let a = self.call(method.clone(), path, body)?;
        if !(200..300).contains(&a.status) {
            return Err(a.refusal(&format!("{method} {path}")));
        }
        a.json()
    }
}
