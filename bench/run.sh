#!/usr/bin/env bash
# Run one bench script and keep its whole output, with the command and the machine, in
# bench/results/NAME.log (read by bench/make_results.py for docs/RESULTS.md). The log is
# replaced only when the script succeeds.
#
#   bash bench/run.sh decode_speed python bench/decode_speed.py --users 20
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash bench/run.sh NAME COMMAND..." >&2
  exit 2
fi
name=$1
shift
cd "$(dirname "$0")/.."
mkdir -p bench/results
log=bench/results/$name.log
tmp=$(mktemp "bench/results/.$name.XXXX")
trap 'rm -f "$tmp"' EXIT
{
  printf '$'; printf ' %q' "$@"; echo
  echo "# $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
    "$(python -c 'import platform, torch; print("python", platform.python_version(), "torch", torch.__version__)' 2>/dev/null || echo "python without torch: activate the project's environment")"
  "$@" 2>&1
} | tee "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$log"
trap - EXIT
