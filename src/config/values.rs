//! Value shapes that several sections of the file share. They sit below both `file` and
//! `webhook_file`, so that the file's modules import one way only.

use serde::Deserialize;
use std::collections::BTreeMap;

/// `database = "a.mmdb"` or `database = ["v4.mmdb", "v6.mmdb"]`; a secret or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Extra static headers of a webhook.
pub type Headers = BTreeMap<String, String>;
