#!/usr/bin/env bash
# Throughput of the account pages on the embedded defaults (SQLite, no Redis): the release
# binary in a scratch directory, one user signed in through the form with five more API
# sessions, then wrk on /account/security (JWT check, session, user, MFA, devices and
# events read, page rendered) and on /login. Needs wrk (apt-get install wrk).
# Usage: scripts/bench-pages.sh [seconds]   (wrk shares the machine's cores with the server)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
port=18090
base=http://127.0.0.1:$port
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p tessera
bin=$PWD/target/release/tessera
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT
(cd "$dir" && TESSERA_LISTEN=127.0.0.1:$port RUST_LOG=warn exec "$bin" serve >server.log 2>&1) &
server=$!
for _ in $(seq 1 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done
password='correct horse battery'
curl -fs -X POST "$base/v1/users" -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" >/dev/null
jar=$dir/cookies
curl -fs -c "$jar" -b "$jar" "$base/login" -o /dev/null
csrf=$(awk '$6 == "__Host-tessera_csrf" {print $7}' "$jar")
curl -s -c "$jar" -b "$jar" -X POST "$base/login" --data-urlencode "csrf=$csrf" \
  --data-urlencode email=bench@example.com --data-urlencode "password=$password" -o /dev/null
for i in 1 2 3 4 5; do
  curl -fs -X POST "$base/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"password\":\"$password\",\"device_id\":\"d$i\"}" >/dev/null
done
cookie=$(awk '$6 ~ /^__Host-tessera/ {printf "%s=%s; ", $6, $7}' "$jar")
status=$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $cookie" "$base/account/security")
[ "$status" = 200 ] || { echo "account page answered $status" >&2; exit 1; }
echo "== GET /account/security (6 devices), ${secs}s, 2 threads, 8 connections"
wrk -t2 -c8 -d"${secs}s" -H "cookie: $cookie" "$base/account/security" | grep -E 'Latency|Requests/sec|Non-2xx'
echo "== GET /login, ${secs}s, 2 threads, 8 connections"
wrk -t2 -c8 -d"${secs}s" "$base/login" | grep -E 'Latency|Requests/sec|Non-2xx'
