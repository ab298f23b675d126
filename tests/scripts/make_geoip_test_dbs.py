"""Writes the small MaxMind-format databases the geoip filter tests read.

The committed files under tests/data/geoip/ come from this script; rerun it (with
mmdb-writer from tests/requirements.txt) only to change them. Records follow the
layout of MaxMind's GeoIP2/GeoLite2 databases, with documentation addresses
(RFC 5737 and RFC 3849) besides a few well-known public ones.
"""

import sys
from pathlib import Path

from mmdb_writer import MMDBWriter, MmdbF64, MmdbU32
from netaddr import IPSet

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/geoip")


def names(en):
    return {"en": en, "de": en}


MILTON = {
    "city": {"geoname_id": MmdbU32(5803556), "names": names("Milton")},
    "continent": {"code": "NA", "geoname_id": MmdbU32(6255149), "names": names("North America")},
    "country": {"geoname_id": MmdbU32(6252001), "iso_code": "US", "names": names("United States")},
    "location": {
        "accuracy_radius": 22,
        "latitude": MmdbF64(47.2513),
        "longitude": MmdbF64(-122.3149),
        "metro_code": 819,
        "time_zone": "America/Los_Angeles",
    },
    "postal": {"code": "98354"},
    "registered_country": {"geoname_id": MmdbU32(2635167), "iso_code": "GB", "names": names("United Kingdom")},
    "subdivisions": [
        {"geoname_id": MmdbU32(5815135), "iso_code": "WA", "names": names("Washington")}
    ],
}

LONDON = {
    "city": {"geoname_id": MmdbU32(2643743), "names": names("London")},
    "continent": {"code": "EU", "geoname_id": MmdbU32(6255148), "names": names("Europe")},
    "country": {"geoname_id": MmdbU32(2635167), "iso_code": "GB", "names": names("United Kingdom")},
    "location": {
        "accuracy_radius": 10,
        "latitude": MmdbF64(51.5142),
        "longitude": MmdbF64(-0.0931),
        "time_zone": "Europe/London",
    },
    "subdivisions": [
        {"geoname_id": MmdbU32(6269131), "iso_code": "ENG", "names": names("England")}
    ],
}

# A network MaxMind knows only to country level: no location, as in the real data.
COUNTRY_ONLY = {
    "continent": {"code": "EU", "names": names("Europe")},
    "country": {"iso_code": "SE", "names": names("Sweden")},
}

V6_FRANCE = {
    "continent": {"code": "EU", "names": names("Europe")},
    "country": {"iso_code": "FR", "names": names("France")},
    "location": {"latitude": MmdbF64(48.8582), "longitude": MmdbF64(2.3387), "time_zone": "Europe/Paris"},
    "city": {"names": names("Paris")},
}


def writer(db_type):
    return MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=db_type,
        languages=["en", "de"],
        description="sluice test data",
    )


def city():
    w = writer("GeoIP2-City")
    w.insert_network(IPSet(["216.160.83.56/29"]), MILTON)
    w.insert_network(IPSet(["81.2.69.142/31"]), LONDON)
    w.insert_network(IPSet(["89.160.20.112/28"]), COUNTRY_ONLY)
    w.insert_network(IPSet(["2001:db8::/32"]), V6_FRANCE)
    for n in range(256):  # a spread of networks for the benchmark's mix
        w.insert_network(IPSet([f"198.51.{n}.0/24"]), MILTON if n % 2 else LONDON)
    w.to_db_file(str(OUT / "GeoIP2-City-Test.mmdb"))


def country():
    w = writer("GeoLite2-Country")
    w.insert_network(
        IPSet(["216.160.83.56/29"]),
        {k: MILTON[k] for k in ("continent", "country", "registered_country")},
    )
    w.insert_network(IPSet(["81.2.69.142/31"]), {k: LONDON[k] for k in ("continent", "country")})
    w.to_db_file(str(OUT / "GeoLite2-Country-Test.mmdb"))


def asn():
    w = writer("GeoLite2-ASN")
    w.insert_network(
        IPSet(["1.128.0.0/11"]),
        {"autonomous_system_number": MmdbU32(1221), "autonomous_system_organization": "Telstra Pty Ltd"},
    )
    w.insert_network(
        IPSet(["216.160.83.56/29"]),
        {"autonomous_system_number": MmdbU32(209), "autonomous_system_organization": "Qwest Communications Company, LLC"},
    )
    w.to_db_file(str(OUT / "GeoLite2-ASN-Test.mmdb"))


def isp():
    w = writer("GeoIP2-ISP")
    w.insert_network(
        IPSet(["1.128.0.0/11"]),
        {
            "autonomous_system_number": MmdbU32(1221),
            "autonomous_system_organization": "Telstra Pty Ltd",
            "isp": "Telstra Internet",
            "organization": "Telstra Internet",
        },
    )
    w.to_db_file(str(OUT / "GeoIP2-ISP-Test.mmdb"))


def anonymous():
    w = writer("GeoIP2-Anonymous-IP")
    w.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"is_anonymous": True, "is_anonymous_vpn": True, "is_hosting_provider": True,
         "is_public_proxy": True, "is_residential_proxy": True, "is_tor_exit_node": True},
    )
    w.insert_network(IPSet(["186.30.236.0/24"]), {"is_anonymous": True, "is_public_proxy": True})
    w.to_db_file(str(OUT / "GeoIP2-Anonymous-IP-Test.mmdb"))


def enterprise():
    w = writer("GeoIP2-Enterprise")
    rec = dict(MILTON)
    rec["traits"] = {
        "autonomous_system_number": MmdbU32(209),
        "autonomous_system_organization": "Qwest Communications Company, LLC",
        "isp": "Century Link",
        "is_anonymous": False,
        "connection_type": "Cable/DSL",
    }
    w.insert_network(IPSet(["216.160.83.56/29"]), rec)
    w.to_db_file(str(OUT / "GeoIP2-Enterprise-Test.mmdb"))


def domain():
    w = writer("GeoIP2-Domain")
    w.insert_network(IPSet(["1.2.0.0/16"]), {"domain": "maxmind.com"})
    w.to_db_file(str(OUT / "GeoIP2-Domain-Test.mmdb"))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (city, country, asn, isp, anonymous, enterprise, domain):
        make()
