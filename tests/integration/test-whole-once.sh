#!/usr/bin/env bash
# `once -m whole` over a directory tree handles every file, including files
# written just before it started (it waits for them to settle: default
# --settle-ms 1000), and has handled them all when it exits; a second `once`
# handles none. The built-in processors get the bytes in whole mode too:
# `-p count` counts them, `-p file:path=OUT` makes OUT the concatenation of
# the files, each whole and in one piece (byte-exact, in some order). And
# exec's jobs=3 runs up to 3 handlers at once, never more.
source "$(dirname "$0")/lib.sh"

D=$T/drop; S=$T/state; LOG=$T/handled
mkdir -p "$D/sub/deeper"
make_handler "$T/handler.sh" "$LOG"

: > "$T/map"
# mkfile I PATH LINES: a file of LINES lines, each tagged <<fI>>
mkfile() {
  awk -v i="$1" -v n="$3" 'BEGIN { for (k = 1; k <= n; k++) printf "<<f%d>> line %d of file %d %s\n", i, k, i, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1, (i * k) % 37) }' > "$2"
  printf '<<f%d>> %s\n' "$1" "$2" >> "$T/map"
}
i=0
for n in 1 3 10 100 1000 5000 20000; do        # 1 line .. ~1 MB
  for where in "" sub/ sub/deeper/; do
    i=$((i + 1)); mkfile "$i" "$D/${where}f$i.txt" "$n"
  done
done
i=$((i + 1)); printf '<<f%d>> a last line without a newline' "$i" > "$D/f$i.txt"
printf '<<f%d>> %s\n' "$i" "$D/f$i.txt" >> "$T/map"
find "$D" -type f -exec touch -d '-1 minute' {} +
say "$i old files; 3 more written just now"
for j in 1 2 3; do i=$((i + 1)); mkfile "$i" "$D/sub/fresh$j.txt" $((j * 700)); done
NF=$i
: > "$T/want"
while read -r _ p; do want_entry "$p" >> "$T/want"; done < "$T/map"
total=$(find "$D" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

say "once -m whole: every file handled by the time it exits, the fresh ones after they settled"
newest=$(for j in 1 2 3; do date +%s%3N -r "$D/sub/fresh$j.txt"; done | sort -n | tail -n 1)
t0=$(now_ms)
tdm once -m whole -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
t1=$(now_ms)
echo "  once took $((t1 - t0)) ms, ended $((t1 - newest)) ms after the last write"
assert_handled_once "$LOG" "$T/want" "files handled by once"
[ $((t1 - newest)) -ge 1000 ] || fail "once ended $((t1 - newest)) ms after the last file was written: it did not wait for the fresh files to settle (1000 ms)"
status_json "$S"
assert_eq "$(jcount)" "$NF" "files in status"
assert_eq "$(jstate_count done)" "$NF" "files done"
whole_hashes_match "$LOG"

say "a second once handles none"
tdm once -m whole -s "$S" -p "exec:cmd=$T/handler.sh" "$D"
assert_handled_once "$LOG" "$T/want" "after a second once"

say "exec jobs=3: never more than 3 handlers at once, and 3 do run at once"
mkdir -p "$T/jobs-in" "$T/running"
for j in $(seq 1 12); do printf 'jobs file %d\n' "$j" > "$T/jobs-in/j$j.txt"; done
make_old "$T/jobs-in"/*
cat > "$T/slow.sh" <<H
#!/bin/sh
: > '$T/running/'\$\$
ls '$T/running' | wc -l >> '$T/concurrency'
sleep 0.3
rm -f '$T/running/'\$\$
H
chmod +x "$T/slow.sh"
t0=$(now_ms)
tdm once -m whole -s "$T/state-jobs" -p "exec:cmd=$T/slow.sh,jobs=3" "$T/jobs-in"
echo "  12 handlers of 0.3 s with jobs=3: $(( $(now_ms) - t0 )) ms; most at once: $(sort -n "$T/concurrency" | tail -n 1)"
assert_eq "$(lines_in "$T/concurrency")" 12 "handler calls"
assert_eq "$(sort -n "$T/concurrency" | tail -n 1)" 3 "most handlers running at once with jobs=3"

say "once -m whole -p count -p file:path=OUT (fresh state): the bytes of every file"
OUT=$T/out
tdm once -m whole -s "$T/state2" -p count -p "file:path=$OUT" "$D"
cp "$STDOUT" "$T/count.out"
cat "$T/count.out"
assert_contains "$T/count.out" "files=$NF "
assert_contains "$T/count.out" "bytes=$total"
assert_eq "$(fsize "$OUT")" "$total" "size of OUT"
# the order of the files in OUT, from their tags; then OUT must be exactly
# those files concatenated in that order (each whole, none split or twice)
grep -ao '<<f[0-9]*>>' "$OUT" | uniq > "$T/order"
assert_eq "$(sort -u "$T/order" | wc -l)" "$NF" "distinct files in OUT"
assert_eq "$(wc -l < "$T/order")" "$NF" "runs of files in OUT (a file split in two pieces shows twice)"
: > "$T/concat"
while read -r tag; do
  p=$(awk -v t="$tag" '$1 == t { sub(/^[^ ]* /, ""); print; exit }' "$T/map")
  cat "$p" >> "$T/concat"
done < "$T/order"
assert_file_eq "$OUT" "$T/concat" "OUT vs the files concatenated in OUT's order"

say "a second once with count and file: no bytes"
tdm once -m whole -s "$T/state2" -p count -p "file:path=$OUT" "$D"
assert_contains "$STDOUT" "bytes=0"
assert_eq "$(fsize "$OUT")" "$total" "size of OUT after a second once"

pass
