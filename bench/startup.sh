#!/usr/bin/env bash
# Benchmark: cold start to first answered request, and idle RSS, of `./lethe serve`.
# Usage: bench/startup.sh [runs]   (default 10). Prints one JSON object and a summary line.
# Each run uses a fresh data folder (new SQLite database, new signing key), so it includes migrations and key generation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-10}"
"$root/lethe" --help >/dev/null   # build first: the figure is "after build"
port=18008
times=()
rss=""
for i in $(seq 1 "$runs"); do
  dir=$(mktemp -d)
  "$root/lethe" generate-config --server-name bench.local --data-dir "$dir" --port $port >"$dir/hs.yaml"
  start=$(date +%s%N)
  LETHE_LOG_LEVEL=Warning "$root/lethe" serve --config "$dir/hs.yaml" >"$dir/out.log" 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/_matrix/client/versions"; do
    kill -0 $pid 2>/dev/null || { cat "$dir/out.log"; exit 1; }
    sleep 0.005
  done
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
  if [ "$i" -eq "$runs" ]; then
    sleep 5   # let start-up garbage settle, then read the idle resident set
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  fi
  kill -TERM $pid
  wait $pid || true
  rm -rf "$dir"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=${sorted[$(( runs / 2 ))]}
min=${sorted[0]}
max=${sorted[$(( runs - 1 ))]}
printf '{"scenario":"startup","runs":%d,"start_ms_median":%d,"start_ms_min":%d,"start_ms_max":%d,"idle_rss_kib":%d}\n' "$runs" "$median" "$min" "$max" "$rss"
echo "startup: median ${median} ms (min ${min}, max ${max}) over ${runs} runs; idle RSS $(( rss / 1024 )) MiB" >&2
