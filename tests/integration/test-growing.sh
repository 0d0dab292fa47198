#!/usr/bin/env bash
# A file appended to while runs come and go (a busy log): every line arrives
# exactly once across the runs, and each run ends.
source "$(dirname "$0")/lib.sh"

say "a file appended to during runs: every line exactly once across runs"
D2=$T/d2; S2=$T/state2
mkdir -p "$D2"
: > "$D2/slow.log"
# A writer appending ~5 MB in 100 KB bursts while runs come and go.
(
  for i in $(seq 1 50); do
    gen_lines $(( (i - 1) * 1000 + 1 )) $(( i * 1000 )) >> "$D2/slow.log"
    sleep 0.01
  done
) &
writer=$!
n=0
while kill -0 "$writer" 2>/dev/null; do
  TDM_CMD_TIMEOUT=60 assert_exit 0 "$TIDEMARK" once -s "$S2" -p "file:path=$T/out2" "$D2"
  n=$((n + 1))
done
wait "$writer"
tdm once -s "$S2" -p "file:path=$T/out2" "$D2"
echo "$((n + 1)) runs while the file grew"
assert_file_eq "$T/out2" "$D2/slow.log"

pass
