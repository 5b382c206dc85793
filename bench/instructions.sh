#!/usr/bin/env bash
# Regression guard for the hot path: counts the instructions of a fixed workload (the hot_path
# benchmark, 200,000 iterations) with callgrind, which is repeatable whatever else the machine
# does, and compares them with bench/instructions.baseline. `--update` records a new baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
cargo bench --bench hot_path --no-run --quiet 2>/dev/null
exe=$(ls -t target/release/deps/hot_path-* | grep -v '\.d$' | head -1)
out=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --iterations 200000 >/dev/null 2>&1
ir=$(grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}')
rm -f "$out"
base_file=bench/instructions.baseline
if [ "${1:-}" = "--update" ] || [ ! -f "$base_file" ]; then
  echo "$ir" > "$base_file"
  echo "instructions: $ir (baseline recorded)"
  exit 0
fi
base=$(cat "$base_file")
python3 - "$ir" "$base" <<'PY'
import sys
ir, base = int(sys.argv[1]), int(sys.argv[2])
change = (ir - base) / base * 100
print(f"instructions: {ir:,} (baseline {base:,}, {change:+.2f}%)")
sys.exit(1 if change > 3 else 0)
PY
