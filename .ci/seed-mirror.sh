#!/usr/bin/env bash
# Seed a forge source mirror folder with the upstream release files of the
# real recipes (recipes/crun, busybox, musl, libseccomp, libcap, yajl, and
# argp, whose source is GNU inetutils), taken
# from Debian's source packages, and Debian's own repack of GNU make
# (recipes/make: make-dfsg, kept under its Debian name, see
# docs/real-recipes.md); the seed's wheel (recipes/zig), taken with
# `pip download` from the Python package index; and the Raspberry Pi
# firmware files of recipes/raspi-firmware, taken from Debian's binary
# package (non-free-firmware).
#
#   usage: .ci/seed-mirror.sh MIRROR_DIR
#
# forge looks a source up as MIRROR_DIR/<upstream file name> (the last path
# segment of the recipe's url), so each Debian .orig file is copied there
# under its upstream name. A file is only placed when its sha256 equals the
# one in the recipe: Debian's .orig for these packages (make-dfsg aside) is
# byte-identical to the upstream release file (see docs/real-recipes.md), and the check proves it
# on every run. Files already present with the right digest are kept, and when
# all are present nothing is downloaded.
#
# Needs root (writes an apt sources file, runs apt-get update) unless every
# Debian file is already in place, and `pip` (or `python3 -m pip`) for the
# wheel. Idempotent.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 MIRROR_DIR" >&2
  exit 2
fi
mirror=$1
repo=$(cd "$(dirname "$0")/.." && pwd)

# recipe | Debian source package | file in the source package | upstream name
entries=(
  "crun|crun|crun_1.8.1.orig.tar.xz|crun-1.8.1.tar.xz"
  "busybox|busybox|busybox_1.35.0.orig.tar.bz2|busybox-1.35.0.tar.bz2"
  "musl|musl|musl_1.2.3.orig.tar.gz|musl-1.2.3.tar.gz"
  "libseccomp|libseccomp|libseccomp_2.5.4.orig.tar.gz|libseccomp-2.5.4.tar.gz"
  "libcap|libcap2|libcap2_2.66.orig.tar.xz|libcap-2.66.tar.xz"
  "yajl|yajl|yajl_2.1.0.orig.tar.gz|yajl-2.1.0.tar.gz"
  "argp|inetutils|inetutils_2.4.orig.tar.xz|inetutils-2.4.tar.xz"
  "make|make-dfsg|make-dfsg_4.3.orig.tar.gz|make-dfsg_4.3.orig.tar.gz"
)
# Files taken from a Debian *binary* package (non-free-firmware), because
# the source package's .orig is a "+ds" repack (docs/real-recipes.md):
# recipe | Debian binary package=version | path in the .deb | upstream name
binary_entries=(
  "raspi-firmware|raspi-firmware=1.20220830+ds-1|usr/lib/raspi-firmware/start4.elf|start4.elf"
  "raspi-firmware|raspi-firmware=1.20220830+ds-1|usr/lib/raspi-firmware/fixup4.dat|fixup4.dat"
)

# The sha256 the recipe pins for the [[source]] whose file name is NAME: its
# `filename`, else the last segment of its url, with ${version} standing for
# [package] version as forge reads it.
recipe_sha256() {
  local recipe=$1 name=$2 file
  file="$repo/recipes/$recipe/recipe.toml"
  awk -v name="$name" '
    function val(line) { sub(/^[^"]*"/, "", line); sub(/".*$/, "", line); return line }
    function done_source(   n) {
      if (!insrc || url == "" || sha == "") return
      n = fname != "" ? fname : url
      sub(/^.*\//, "", n)
      gsub(/\$\{version\}/, ver, n)
      if (n == name) { print sha; found = 1; exit }
    }
    /^\[/ { done_source(); insrc = ($0 ~ /^\[\[source\]\]/); inpkg = ($0 ~ /^\[package\]/)
      url = ""; sha = ""; fname = "" }
    inpkg && /^[ \t]*version[ \t]*=/ { ver = val($0) }
    insrc && /^[ \t]*url[ \t]*=/ { url = val($0) }
    insrc && /^[ \t]*filename[ \t]*=/ { fname = val($0) }
    insrc && /^[ \t]*sha256[ \t]*=/ { sha = val($0); sub(/^sha256:/, "", sha) }
    END { if (!found) done_source() }
  ' "$file"
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$mirror"

# recipe | pip requirement | wheel file name (the last segment of the url)
wheels=(
  "zig|ziglang==0.17.0|ziglang-0.17.0-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl"
)
pip_cmd() {
  if command -v pip >/dev/null 2>&1; then
    pip "$@"
  else
    python3 -m pip "$@"
  fi
}
for w in "${wheels[@]}"; do
  IFS='|' read -r recipe req file <<<"$w"
  want=$(recipe_sha256 "$recipe" "$file")
  if [ -z "$want" ]; then
    echo "seed-mirror: recipes/$recipe/recipe.toml has no sha256 for $file" >&2
    exit 1
  fi
  if [ -f "$mirror/$file" ] && [ "$(sha_of "$mirror/$file")" = "$want" ]; then
    echo "seed-mirror: $file already present"
    continue
  fi
  wdir=$(mktemp -d)
  # On an x86_64 Linux host pip picks the manylinux x86_64 wheel.
  pip_cmd download --quiet --no-deps --only-binary=:all: --dest "$wdir" "$req" || {
    echo "seed-mirror: pip download $req failed" >&2
    rm -rf "$wdir"
    exit 1
  }
  if [ ! -f "$wdir/$file" ]; then
    echo "seed-mirror: pip download $req gave $(ls "$wdir" | tr '\n' ' '), not $file" >&2
    rm -rf "$wdir"
    exit 1
  fi
  got=$(sha_of "$wdir/$file")
  if [ "$got" != "$want" ]; then
    echo "seed-mirror: $file has sha256 $got, recipes/$recipe pins $want" >&2
    rm -rf "$wdir"
    exit 1
  fi
  mv "$wdir/$file" "$mirror/$file.tmp"
  mv "$mirror/$file.tmp" "$mirror/$file"
  rm -rf "$wdir"
  echo "seed-mirror: $file <- pip download $req (sha256 $got)"
done

missing=()
binary_missing=()
for e in "${binary_entries[@]}"; do
  IFS='|' read -r recipe debpkg debpath upname <<<"$e"
  want=$(recipe_sha256 "$recipe" "$upname")
  if [ -z "$want" ]; then
    echo "seed-mirror: recipes/$recipe/recipe.toml has no sha256 for $upname" >&2
    exit 1
  fi
  if [ -f "$mirror/$upname" ] && [ "$(sha_of "$mirror/$upname")" = "$want" ]; then
    echo "seed-mirror: $upname already present"
  else
    binary_missing+=("$e")
  fi
done
for e in "${entries[@]}"; do
  IFS='|' read -r recipe srcpkg debfile upname <<<"$e"
  want=$(recipe_sha256 "$recipe" "$upname")
  if [ -z "$want" ]; then
    echo "seed-mirror: recipes/$recipe/recipe.toml has no sha256 for $upname" >&2
    exit 1
  fi
  if [ -f "$mirror/$upname" ] && [ "$(sha_of "$mirror/$upname")" = "$want" ]; then
    echo "seed-mirror: $upname already present"
  else
    missing+=("$e")
  fi
done
[ ${#missing[@]} -eq 0 ] && [ ${#binary_missing[@]} -eq 0 ] && exit 0

# Enable source packages: for every deb822 entry with `Types: deb`, write the
# same entry with `Types: deb-src` to a sibling file (once). A one-line
# sources.list gets matching deb-src lines.
enable_deb_src() {
  local changed=0 f out
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    case "$f" in *-forge-src.sources) continue ;; esac
    out="${f%.sources}-forge-src.sources"
    [ -e "$out" ] && continue
    grep -q '^Types:.*\bdeb-src\b' "$f" && continue
    grep -q '^Types:[[:space:]]*deb[[:space:]]*$' "$f" || continue
    sed 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$f" >"$out.tmp"
    # Someone may already have enabled them the same way under another name.
    local same=0 g
    for g in /etc/apt/sources.list.d/*.sources; do
      cmp -s "$g" "$out.tmp" && same=1
    done
    if [ $same = 1 ]; then
      rm -f "$out.tmp"
      continue
    fi
    mv "$out.tmp" "$out"
    changed=1
  done
  f=/etc/apt/sources.list
  out=/etc/apt/sources.list.d/forge-src.list
  if [ -f "$f" ] && [ ! -e "$out" ] && grep -q '^deb ' "$f" && ! grep -q '^deb-src ' "$f"; then
    sed -n 's/^deb /deb-src /p' "$f" >"$out.tmp"
    mv "$out.tmp" "$out"
    changed=1
  fi
  echo "seed-mirror: deb-src entries $([ $changed = 1 ] && echo added || echo already present)"
}

# Debian's non-free-firmware component (binary packages), in a file of its
# own with the URI of the machine's Debian entry.
enable_firmware() {
  local out=/etc/apt/sources.list.d/forge-firmware.sources uri
  [ -e "$out" ] && return 0
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    echo "seed-mirror: no Debian URI in /etc/apt/sources.list.d/debian.sources" >&2
    exit 1
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm\nComponents: non-free-firmware\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$out.tmp"
  mv "$out.tmp" "$out"
  echo "seed-mirror: non-free-firmware enabled in $out"
}

[ ${#missing[@]} -gt 0 ] && enable_deb_src
[ ${#binary_missing[@]} -gt 0 ] && enable_firmware
apt-get update -qq

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for e in "${missing[@]+"${missing[@]}"}"; do
  IFS='|' read -r recipe srcpkg debfile upname <<<"$e"
  want=$(recipe_sha256 "$recipe" "$upname")
  (cd "$work" && apt-get source --download-only -qq "$srcpkg" >/dev/null 2>&1) || {
    echo "seed-mirror: apt-get source $srcpkg failed" >&2
    exit 1
  }
  if [ ! -f "$work/$debfile" ]; then
    echo "seed-mirror: Debian's $srcpkg source package has no $debfile (it now ships:" \
      "$(cd "$work" && ls "${srcpkg}"_* | tr '\n' ' '))" >&2
    exit 1
  fi
  got=$(sha_of "$work/$debfile")
  if [ "$got" != "$want" ]; then
    echo "seed-mirror: $debfile has sha256 $got, recipes/$recipe pins $want for $upname" >&2
    exit 1
  fi
  cp "$work/$debfile" "$mirror/$upname.tmp"
  mv "$mirror/$upname.tmp" "$mirror/$upname"
  echo "seed-mirror: $upname <- Debian $debfile (sha256 $got)"
done
for e in "${binary_missing[@]+"${binary_missing[@]}"}"; do
  IFS='|' read -r recipe debpkg debpath upname <<<"$e"
  want=$(recipe_sha256 "$recipe" "$upname")
  deb_dir="$work/deb-${debpkg%%=*}"
  if [ ! -d "$deb_dir" ]; then
    mkdir -p "$deb_dir"
    (cd "$deb_dir" && apt-get download -qq "$debpkg" >/dev/null 2>&1) || {
      echo "seed-mirror: apt-get download $debpkg failed" >&2
      exit 1
    }
    dpkg-deb -x "$deb_dir"/*.deb "$deb_dir/x"
  fi
  if [ ! -f "$deb_dir/x/$debpath" ]; then
    echo "seed-mirror: Debian's $debpkg has no $debpath" >&2
    exit 1
  fi
  got=$(sha_of "$deb_dir/x/$debpath")
  if [ "$got" != "$want" ]; then
    echo "seed-mirror: $debpath of $debpkg has sha256 $got, recipes/$recipe pins $want for $upname" >&2
    exit 1
  fi
  cp "$deb_dir/x/$debpath" "$mirror/$upname.tmp"
  mv "$mirror/$upname.tmp" "$mirror/$upname"
  echo "seed-mirror: $upname <- Debian $debpkg $debpath (sha256 $got)"
done
