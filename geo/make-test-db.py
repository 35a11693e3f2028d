#!/usr/bin/env python3
"""Writes clicktap's own small GeoIP test databases into geo/test/.

    pip install mmdb-writer==0.2.7 netaddr==1.3.0
    python3 geo/make-test-db.py

Three files, all records made up here for tests (CC0, like the rest of geo/test/):

- clicktap-test-city.mmdb: MaxMind's GeoIP2-City schema, database_type
  "GeoIP2-City", one IPv6 tree with the IPv4 records both at ::a.b.c.d (where
  readers look IPv4 up) and at ::ffff:a.b.c.d (IPv4-mapped).
- clicktap-test-flat-ipv4.mmdb / clicktap-test-flat-ipv6.mmdb: the flat schema
  of the free split databases (country_code, state1, state2, city, postcode,
  latitude, longitude, timezone; float32 coordinates, empty strings for
  unknown), an IPv4-only tree and an IPv6 tree without IPv4.

The output is deterministic (fixed build_epoch), so running this again changes
no bytes unless the records below change. The Rust tests in src/enrich/geo.rs
are the check that the official reader reads these files.
"""

import os
import sys

from mmdb_writer import MMDBWriter, MmdbF32, MmdbU16, MmdbU32
from netaddr import IPNetwork, IPSet

# 2026-01-01T00:00:00Z: fixed, so that regenerating gives identical files.
BUILD_EPOCH = 1767225600

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test")


class FixedEpochWriter(MMDBWriter):
    def _build_meta(self):
        meta = super()._build_meta()
        meta["build_epoch"] = BUILD_EPOCH
        return meta


def names(en, **others):
    out = {"en": en}
    out.update(others)
    return out


def country(iso, en, geoname_id, eu=False, **others):
    rec = {
        "geoname_id": MmdbU32(geoname_id),
        "iso_code": iso,
        "names": names(en, **others),
    }
    # MaxMind writes the flag only when it is true.
    if eu:
        rec["is_in_european_union"] = True
    return rec


EUROPE = {"code": "EU", "geoname_id": MmdbU32(6255148), "names": names("Europe", de="Europa")}
NORTH_AMERICA = {
    "code": "NA",
    "geoname_id": MmdbU32(6255149),
    "names": names("North America", de="Nordamerika"),
}
ASIA = {"code": "AS", "geoname_id": MmdbU32(6255147), "names": names("Asia", de="Asien")}

GB = country("GB", "United Kingdom", 2635167, de="Vereinigtes Königreich", fr="Royaume-Uni")
SE = country("SE", "Sweden", 2661886, eu=True, de="Schweden", fr="Suède")
DE = country("DE", "Germany", 2921044, eu=True, de="Deutschland", fr="Allemagne")
FR = country("FR", "France", 3017382, eu=True, de="Frankreich", fr="France")
US = country("US", "United States", 6252001, de="USA", fr="États-Unis")
JP = country("JP", "Japan", 1861060, de="Japan", ja="日本")


def location(lat, lon, tz, radius):
    return {
        "accuracy_radius": MmdbU16(radius),
        "latitude": lat,
        "longitude": lon,
        "time_zone": tz,
    }


def subdivision(iso, en, geoname_id):
    return {"geoname_id": MmdbU32(geoname_id), "iso_code": iso, "names": names(en)}


# (network, GeoIP2-City record)
CITY_RECORDS = [
    # Realistic public ranges, after the choices of MaxMind's own test data.
    (
        "81.2.69.0/24",
        {
            "city": {"geoname_id": MmdbU32(2643743), "names": names("London", de="London", fr="Londres")},
            "continent": EUROPE,
            "country": GB,
            "location": location(51.5142, -0.0931, "Europe/London", 10),
            "postal": {"code": "EC4N"},
            "registered_country": GB,
            "subdivisions": [
                subdivision("ENG", "England", 6269131),
                subdivision("CTY", "City of London", 2643744),
            ],
        },
    ),
    (
        # Country level only: no city, no subdivision.
        "2.125.160.0/24",
        {
            "continent": EUROPE,
            "country": GB,
            "location": location(51.4964, -0.1224, "Europe/London", 100),
            "registered_country": GB,
        },
    ),
    (
        # Located in Sweden, registered to a German network: country wins.
        "89.160.20.0/24",
        {
            "city": {"geoname_id": MmdbU32(2694762), "names": names("Linköping", de="Linköping", ja="リンシェーピング")},
            "continent": EUROPE,
            "country": SE,
            "location": location(58.4167, 15.6167, "Europe/Stockholm", 76),
            "postal": {"code": "587 24"},
            "registered_country": DE,
            "subdivisions": [subdivision("E", "Östergötland County", 2685867)],
        },
    ),
    (
        "216.160.83.0/24",
        {
            "city": {"geoname_id": MmdbU32(5803556), "names": names("Milton", de="Milton")},
            "continent": NORTH_AMERICA,
            "country": US,
            "location": location(47.2513, -122.3149, "America/Los_Angeles", 22),
            "postal": {"code": "98354"},
            "registered_country": US,
            "subdivisions": [subdivision("WA", "Washington", 5815135)],
        },
    ),
    (
        "2001:480::/32",
        {
            "continent": NORTH_AMERICA,
            "country": US,
            "location": location(37.751, -97.822, "America/Chicago", 1000),
            "registered_country": US,
        },
    ),
    (
        # Registered country only, as for some anycast and satellite networks.
        "2a02:ec0::/29",
        {
            "continent": EUROPE,
            "registered_country": DE,
        },
    ),
    # Documentation ranges (RFC 5737, RFC 3849): for tests that send a client
    # address through the whole pipeline.
    (
        "192.0.2.0/24",
        {
            "city": {"geoname_id": MmdbU32(2950159), "names": names("Berlin", de="Berlin")},
            "continent": EUROPE,
            "country": DE,
            "location": location(52.5244, 13.4105, "Europe/Berlin", 20),
            "postal": {"code": "10178"},
            "registered_country": DE,
            "subdivisions": [subdivision("BE", "Land Berlin", 2950157)],
        },
    ),
    (
        "198.51.100.0/24",
        {
            "city": {"geoname_id": MmdbU32(5391959), "names": names("San Francisco")},
            "continent": NORTH_AMERICA,
            "country": US,
            "location": location(37.7749, -122.4194, "America/Los_Angeles", 20),
            "postal": {"code": "94103"},
            "registered_country": US,
            "subdivisions": [subdivision("CA", "California", 5332921)],
        },
    ),
    (
        "203.0.113.0/24",
        {
            "city": {"geoname_id": MmdbU32(1850147), "names": names("Tokyo", ja="東京")},
            "continent": ASIA,
            "country": JP,
            "location": location(35.6895, 139.6917, "Asia/Tokyo", 50),
            "registered_country": JP,
            "subdivisions": [subdivision("13", "Tokyo", 1850144)],
        },
    ),
    (
        "2001:db8::/32",
        {
            "city": {"geoname_id": MmdbU32(2988507), "names": names("Paris", fr="Paris")},
            "continent": EUROPE,
            "country": FR,
            "location": location(48.8534, 2.3488, "Europe/Paris", 20),
            "postal": {"code": "75001"},
            "registered_country": FR,
            "subdivisions": [
                subdivision("IDF", "Île-de-France", 3012874),
                subdivision("75", "Paris", 2968815),
            ],
        },
    ),
]


def flat(cc, state1="", state2="", city="", postcode="", lat=0.0, lon=0.0, tz=""):
    return {
        "city": city,
        "country_code": cc,
        "latitude": MmdbF32(lat),
        "longitude": MmdbF32(lon),
        "postcode": postcode,
        "state1": state1,
        "state2": state2,
        "timezone": tz,
    }


FLAT_IPV4 = [
    ("81.2.69.0/24", flat("GB", "England", "", "London", "EC4N", 51.5142, -0.0931, "Europe/London")),
    ("2.125.160.0/24", flat("GB", lat=51.4964, lon=-0.1224, tz="Europe/London")),
    ("89.160.20.0/24", flat("SE", "Östergötland County", "", "Linköping", "587 24", 58.4167, 15.6167, "Europe/Stockholm")),
    ("216.160.83.0/24", flat("US", "Washington", "Pierce", "Milton", "98354", 47.2513, -122.3149, "America/Los_Angeles")),
    ("192.0.2.0/24", flat("DE", "Land Berlin", "", "Berlin", "10178", 52.5244, 13.4105, "Europe/Berlin")),
    # A lower-case code, as a hand-made database may have: read as "AT".
    ("198.51.100.0/24", flat("at", "Vienna", "", "Vienna", "1010", 48.2085, 16.3721, "Europe/Vienna")),
]

FLAT_IPV6 = [
    ("2001:480::/32", flat("US", lat=37.751, lon=-97.822, tz="America/Chicago")),
    ("2a02:ec0::/29", flat("DE", lat=51.2993, lon=9.491, tz="Europe/Berlin")),
    ("2001:db8::/32", flat("FR", "Île-de-France", "Paris", "Paris", "75001", 48.8534, 2.3488, "Europe/Paris")),
]


def write_city(path):
    w = FixedEpochWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["de", "en", "fr", "ja"],
        description="clicktap test database (GeoIP2-City schema), made-up records, CC0",
    )
    for net, rec in CITY_RECORDS:
        network = IPNetwork(net)
        w.insert_network(IPSet([network]), rec)
        if network.version == 4:
            w.insert_network(IPSet([network.ipv6(ipv4_compatible=False)]), rec)
    w.to_db_file(path)


def write_flat(path, ip_version, records):
    w = FixedEpochWriter(
        ip_version=ip_version,
        database_type=f"city ipv{ip_version}",
        # The published flat files leave description empty, which the Rust
        # crate's verify() rejects; ours carry one.
        languages=["en"],
        description=f"clicktap test database (flat schema, IPv{ip_version}), made-up records, CC0",
    )
    for net, rec in records:
        w.insert_network(IPSet([IPNetwork(net)]), rec)
    w.to_db_file(path)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    outputs = [
        ("clicktap-test-city.mmdb", lambda p: write_city(p)),
        ("clicktap-test-flat-ipv4.mmdb", lambda p: write_flat(p, 4, FLAT_IPV4)),
        ("clicktap-test-flat-ipv6.mmdb", lambda p: write_flat(p, 6, FLAT_IPV6)),
    ]
    for name, write in outputs:
        path = os.path.join(OUT_DIR, name)
        write(path)
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
