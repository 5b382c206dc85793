#!/usr/bin/env bash
# Long runs stay cheap? Writes a synthetic run directory of 20 endpoints (50 requests each per
# second) with examples/report_bench.rs, for 1 hour and for HOURS (default 24), and measures
# what `stampede report` costs on it: wall time and peak memory of reading, summarising and
# rendering every format, and the run directory's size per hour. The issue's bounds: report
# under 10 s and 500 MB, growth at most 50 MB per hour. A memory cap (ulimit -v, default 6 GB)
# keeps a runaway read from taking the machine down; a run that hits it is reported as such.
set -uo pipefail
cd "$(dirname "$0")/.."
hours=${1:-24}
cap_kb=${CAP_KB:-6000000}
cargo build --release --example report_bench --quiet || exit 2
exe=target/release/examples/report_bench
for h in 1 "$hours"; do
  dir=$(mktemp -d)
  echo "== $h h"
  # Write the directory (not measured), then measure reading it alone.
  STAMPEDE_BENCH_WRITE_ONLY=1 STAMPEDE_BENCH_HOURS=$h "$exe" "$dir/run" | grep -E "^wrote|^run directory"
  out=$( (ulimit -v "$cap_kb"; STAMPEDE_BENCH_HOURS=$h /usr/bin/time -f 'peak_rss_kb %M wall_s %e' "$exe" "$dir/run") 2>&1)
  rc=$?
  echo "$out" | grep -E 'decode alone|read \+|render|total|run directory|peak_rss_kb'
  [ $rc -ne 0 ] && echo "exit $rc (memory cap ${cap_kb} kB reached?)"
  rm -rf "$dir"
done
