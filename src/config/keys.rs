//! Every key the configuration file accepts, read off the file's serde shape.
//!
//! The list is what `serde` itself asks for: a deserializer that holds no data walks
//! [`ConfigFile`], and each struct it is asked for names its fields (their names as
//! written in the file, renames included). So a key added to a `*File` struct is in the
//! list the moment it exists, and the documentation check (`tests/docs.rs`) compares
//! docs/configuration.md with it rather than with a copy that could drift.

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use super::file::ConfigFile;

/// Every key of the file, dotted from its section: `proxy.listen`,
/// `webhooks.filter.hosts`, `sinks.stream.name`. Only leaves are listed: a table
/// (`webhooks.filter`) is not a key, a map-valued key (`webhooks.headers`) is.
pub fn keys() -> BTreeSet<String> {
    let found = RefCell::new(BTreeSet::new());
    let table = Cell::new(false);
    let walker = Walker {
        path: String::new(),
        found: &found,
        table: &table,
    };
    ConfigFile::deserialize(walker).expect("the file's shape walks without data");
    found.into_inner()
}

/// Stands in for a value at `path`: every scalar is a zero, every list has one
/// element, every struct is walked field by field.
struct Walker<'a> {
    path: String,
    found: &'a RefCell<BTreeSet<String>>,
    /// Set when the value at `path` turned out to be a table (a struct).
    table: &'a Cell<bool>,
}

impl<'de> de::Deserializer<'de> for Walker<'_> {
    type Error = Error;

    /// Untagged enums (`OneOrMany`) ask for anything: a string serves.
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bool(false)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f64(0.0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f64(0.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_char(' ')
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bytes(&[])
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bytes(&[])
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }
    /// A list of tables (`[[webhooks]]`) or of values: one element, at the same path.
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    /// A map of the operator's own keys (`headers`): a key in itself, with none inside.
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_map(Fields {
            walker: self,
            fields: &[],
            next: 0,
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.table.set(true);
        v.visit_map(Fields {
            walker: self,
            fields,
            next: 0,
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{}: enum {name} has no key list; describe it as a string",
            self.path
        )))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

/// The one element of a list.
struct One<'a>(Option<Walker<'a>>);

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.take() {
            Some(w) => seed.deserialize(w).map(Some),
            None => Ok(None),
        }
    }
}

/// A struct's fields, each walked at its own path and recorded when it is a leaf.
struct Fields<'a> {
    walker: Walker<'a>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(name) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, Error> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let name = self.fields[self.next];
        self.next += 1;
        let path = if self.walker.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.walker.path)
        };
        let table = Cell::new(false);
        let value = seed.deserialize(Walker {
            path: path.clone(),
            found: self.walker.found,
            table: &table,
        })?;
        if !table.get() {
            self.walker.found.borrow_mut().insert(path);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_the_files_own_and_tables_are_not_keys() {
        let keys = keys();
        for key in [
            "proxy.listen",
            "geoip.database",
            "admin.token",
            "webhooks.id",
            "webhooks.headers",
            "webhooks.filter.hosts",
            "webhooks.auth.type",
            "sinks.tls.ca",
            "sinks.stream.duplicate_window",
            "alerts.type",
            "qr.params",
            "pages.under",
        ] {
            assert!(keys.contains(key), "{key} missing from {keys:?}");
        }
        for table in [
            "proxy",
            "admin",
            "webhooks",
            "webhooks.filter",
            "sinks.stream",
        ] {
            assert!(!keys.contains(table), "{table} is a table, not a key");
        }
    }
}
