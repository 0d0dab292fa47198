#!/usr/bin/env bash
# status streams: over 50,000 tracked files the table and --json are written
# as the store is read, so their peak memory (VmHWM, read from /proc while
# they run) is that of `status --summary` over the same store (which holds
# nothing) plus a little, not one that grows with the files; both still
# list every file. `status --summary` counts by state from the records alone.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is required"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0

D=$T/logs; SMALL=$T/st.small; BIG=$T/st.big
python3 - "$D" <<'PY'
import os, sys
top = sys.argv[1]
for d in range(50):
    os.makedirs(os.path.join(top, "d%02d" % d))
    for f in range(1000):
        with open(os.path.join(top, "d%02d" % d, "file-%04d.log" % f), "w") as fh:
            fh.write("line %d %d\n" % (d, f))
PY
tdm once -q -s "$SMALL" -p count "$D/d00" --include 'file-00*'
tdm once -q -s "$BIG" -p count "$D"
echo "one more line" >> "$D/d07/file-0007.log" # pending: 14 bytes in 1 file

# peak_kb OUT CMD...: run CMD (stdout into OUT), print its peak resident set
# in KiB: the kernel's own figure at its exit (getrusage ru_maxrss, through
# GNU time). Readings of /proc every 10 ms missed the peak of a run shorter
# than that (a --summary at 752 KiB, its libraries not even mapped yet).
command -v /usr/bin/time >/dev/null || fail "GNU time is required (apt-get install time)"
peak_kb() {
  local out=$1; shift
  /usr/bin/time -f %M -o "$T/peak.kb" "$@" > "$out" 2> "$T/peak.err" ||
    { cat "$T/peak.err" >&2; fail "'$*' failed"; }
  cat "$T/peak.kb"
}

say "the table and --json list every file"
tdm status -s "$SMALL"
cp "$STDOUT" "$T/small.txt"
table=$(peak_kb "$T/big.txt" "$TIDEMARK" status -s "$BIG")
json=$(peak_kb "$T/big.json" "$TIDEMARK" status -s "$BIG" --json)
assert_eq "$(grep -c '^active ' "$T/big.txt")" 50000 "table rows"
assert_contains "$T/big.txt" "50000 files, 14 bytes pending"
assert_eq "$(jq '.files | length' "$T/big.json")" 50000 "JSON entries"
assert_eq "$(jq '[.files[] | .pending] | add' "$T/big.json")" 14 "JSON pending"
assert_eq "$(grep -c '^active ' "$T/small.txt")" 100 "small table rows"

say "their peak memory does not grow with the files"
base=$(peak_kb "$T/sum.txt" "$TIDEMARK" status -s "$BIG" --summary)
echo "VmHWM over 50,000 files: --summary $base KiB, table $table KiB, --json $json KiB"
if [ -n "${TDM_TSAN:-}" ]; then
  echo "(ThreadSanitizer build: memory not compared)"
else
  # Holding 50,000 records and the map's pages cost 25 MiB (tidemark 0.2);
  # the table's first 4,096 rows and the stdio buffers 1 or 2.
  [ "$table" -le $(( base + 6144 )) ] || fail "status table: $table KiB against $base KiB for --summary"
  [ "$json" -le $(( base + 6144 )) ] || fail "status --json: $json KiB against $base KiB for --summary"
fi

say "status --summary: counts by state, pending at the last look"
tdm status -s "$BIG" --summary
assert_contains "$STDOUT" "50000 files: 50000 active"
assert_contains "$STDOUT" "0 bytes pending in 0 files at the last look"
"$TIDEMARK" status -s "$BIG" --summary --json > "$T/sum.json"
assert_eq "$(jq -c '[.files, .states.active, .pending_bytes, .oldest_pending]' "$T/sum.json")" \
  "[50000,50000,0,null]" "summary JSON"
pass
