//! A sink's `subject`: a NATS subject with `{field}` placeholders filled from each event
//! (`clicks.{link.host}`).
//!
//! Checked when the file is read: the literal tokens must be valid subject tokens (no
//! spaces, no wildcards, none empty) and every placeholder one of [`FIELDS`], so that a
//! typo fails `check` instead of publishing to `clicks._` forever. A placeholder is one
//! token: characters a token may not hold (`.`, spaces, `*`, `>`) become `_`, and a field
//! the event lacks becomes `_`, so that `clicks.{link.host}` is `clicks.sho_rt` and a
//! stream's `clicks.*` matches every event.

use serde_json::Value;

/// The event fields a subject may name: scalar, short, from a small set of values or
/// chosen by the operator (a host), never personal data.
pub const FIELDS: &[&str] = &[
    "type",
    "kind",
    "method",
    "status",
    "link.host",
    "link.scheme",
    "destination.host",
    "referrer.host",
    "agent.category",
    "geo.country_code",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    parts: Vec<Part>,
}

impl SubjectTemplate {
    /// Parses and checks a template; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<SubjectTemplate, String> {
        if s.is_empty() {
            return Err("is missing (e.g. \"clicks.{link.host}\")".into());
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("{s:?} has a `{{` without its `}}`"));
            };
            let name = &rest[open + 1..open + close];
            let Some(field) = FIELDS.iter().find(|f| **f == name) else {
                return Err(format!(
                    "{s:?} names the field {name:?}, which a subject cannot hold; use one of {}",
                    FIELDS.join(", ")
                ));
            };
            parts.push(Part::Field(field));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        let template = SubjectTemplate { parts };
        // Every placeholder filled with one plain token: what is left must be a subject.
        let sample = template.fill(|_| "x".into());
        if sample.contains('}') {
            return Err(format!("{s:?} has a `}}` without its `{{`"));
        }
        if let Some(bad) = sample.split('.').find(|t| !valid_token(t)) {
            return Err(format!(
                "{s:?} is not a NATS subject: the token {bad:?} is empty or holds a space, `*` or `>`"
            ));
        }
        Ok(template)
    }

    /// The subject for one event (its JSON, parsed).
    pub fn render(&self, event: &Value) -> String {
        self.fill(|field| {
            let mut v = event;
            for key in field.split('.') {
                v = v.get(key).unwrap_or(&Value::Null);
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            token(&text)
        })
    }

    /// Whether any placeholder needs the event's fields.
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// A subject this template yields (each placeholder a plain token): what a stream's
    /// subjects are checked against.
    pub fn example(&self) -> String {
        self.fill(|_| "x".into())
    }

    fn fill(&self, mut value: impl FnMut(&'static str) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(&value(f)),
            }
        }
        out
    }
}

fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && !t
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '>')
}

/// A value as one subject token, capped at 64 characters.
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .take(64)
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// Whether `subject` (no wildcards) is matched by the filter `pattern` (`*` one token,
/// `>` one or more at the end).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for p in pattern.split('.') {
        match (p, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_become_one_token_each() {
        let t = SubjectTemplate::parse("clicks.{link.host}.{status}").unwrap();
        let e = json!({"link": {"host": "sho.rt"}, "status": 301});
        assert_eq!(t.render(&e), "clicks.sho_rt.301");
        assert_eq!(t.render(&json!({})), "clicks._._");
        assert!(!t.is_fixed());
        assert!(SubjectTemplate::parse("clicks").unwrap().is_fixed());
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(
            SubjectTemplate::parse("clicks.{link.hots}")
                .unwrap_err()
                .contains("link.hots")
        );
        assert!(
            SubjectTemplate::parse("clicks.{link.host")
                .unwrap_err()
                .contains("without")
        );
        assert!(
            SubjectTemplate::parse("clicks.*")
                .unwrap_err()
                .contains("not a NATS subject")
        );
        assert!(SubjectTemplate::parse("clicks..x").is_err());
        assert!(SubjectTemplate::parse("a b").is_err());
        assert!(SubjectTemplate::parse("").is_err());
    }

    #[test]
    fn stream_filters_match_like_nats() {
        assert!(matches("clicks.>", "clicks.a.b"));
        assert!(!matches("clicks.>", "clicks"));
        assert!(matches("clicks.*", "clicks.a"));
        assert!(!matches("clicks.*", "clicks.a.b"));
        assert!(matches("clicks", "clicks"));
        assert!(!matches("other.>", "clicks.a"));
    }
}
