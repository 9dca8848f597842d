#!/usr/bin/env bash
# test-deps.sh - installs (Debian, only what is missing) the packages the
# snapdiff tests need beyond the build: chromium renders the HTML report,
# protoc + python3-protobuf decode the pprof profile; golang-go's
# `go tool pprof` reads it as Go's own tools do and is the client of the pprof
# endpoint (tests/http). quickstart.sh test
# calls it; it is safe to run again.
set -euo pipefail

packages=(python3 python3-protobuf protobuf-compiler chromium golang-go curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "test-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
