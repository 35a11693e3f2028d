//! The list of everything wrong with a configuration file.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem: the key it concerns (dotted, `webhooks[1].url`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one file. Displayed one per line: `FILE: KEY: why`.
#[derive(Debug, Clone)]
pub struct Problems {
    pub file: PathBuf,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn new(file: &Path) -> Problems {
        Problems {
            file: file.to_path_buf(),
            list: Vec::new(),
        }
    }

    pub fn one(file: &Path, problem: Problem) -> Problems {
        Problems {
            file: file.to_path_buf(),
            list: vec![problem],
        }
    }

    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem::new(key, message));
    }

    /// Runs `parse` on a value and records its error under `key`.
    pub fn check<T>(&mut self, key: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(key, e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Checks the `id` of the table at `key` (`webhooks[0]`, `alerts[1]`, ...): present,
    /// of letters, digits, `-` and `_`, and not in `seen`, where it is added.
    pub fn check_id(&mut self, key: &str, id: &str, seen: &mut std::collections::HashSet<String>) {
        if id.is_empty() {
            self.push(format!("{key}.id"), "is missing");
        } else if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.push(
                format!("{key}.id"),
                format!("{id:?} may hold only letters, digits, - and _"),
            );
        } else if !seen.insert(id.to_string()) {
            self.push(format!("{key}.id"), format!("{id:?} is used twice"));
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.key.is_empty() {
                write!(f, "{file}: {}", p.message)?;
            } else {
                // A quoted TOML key may hold line breaks and control characters: escaped,
                // it stays on its problem's line and writes no terminal escapes.
                write!(f, "{file}: {}: {}", p.key.escape_debug(), p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
