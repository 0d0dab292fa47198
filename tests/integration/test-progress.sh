#!/usr/bin/env bash
# once's progress line: on a terminal (under `script`, util-linux) stderr
# shows one line rewritten in place with '\r' -- files done/total, bytes
# done/total, a rate, the time -- ending on the totals; never when stderr is
# not a terminal; --progress forces it, --no-progress (and -q) suppress it.
source "$(dirname "$0")/lib.sh"

command -v script >/dev/null || fail "script (util-linux) is required"
D=$T/d
mkdir -p "$D/sub"
gen_lines 1 20000 > "$D/a.log"
gen_lines 1 300 > "$D/sub/b.log"
printf 'old\n' > "$D/c.log"
total=$(( $(fsize "$D/a.log") + $(fsize "$D/sub/b.log") + $(fsize "$D/c.log") ))

# c.log is known and unchanged: not part of the next pass's totals.
tdm once -s "$T/s" -p count -i c.log "$D"
total=$(( total - $(fsize "$D/c.log") ))

say "on a terminal: a progress line with files and bytes of the totals"
# script's own stdout is the terminal's output; the command's stdout (count's
# line) and stderr both go there.
script -qfec "$(printf '%q ' "$TIDEMARK" once -s "$T/s" -p count "$D")" "$T/typescript" > /dev/null
grep -q 'COMMAND_EXIT_CODE="0"' "$T/typescript" || fail "once under script failed: $(cat "$T/typescript")"
grep -qF $'\r' "$T/typescript" || fail "no carriage return: the line is not rewritten"
tr '\r' '\n' < "$T/typescript" > "$T/lines"
grep -E '^tidemark: [0-9]+/2 files, ' "$T/lines" > "$T/progress" || { cat "$T/lines" >&2; fail "no progress line"; }
grep -qE '^tidemark: 2/2 files, [0-9.]+ [KMG]?i?B/[0-9.]+ [KMG]?i?B, [0-9.]+ [KMG]?i?B/s, [0-9.]+ s' "$T/progress" ||
  { cat "$T/progress" >&2; fail "no final progress line with 2/2 files"; }
# As the line prints sizes: one decimal in the largest unit under 1024.
kib=$(awk -v b="$total" 'BEGIN { split("B KiB MiB GiB", u, " "); i = 1
  while (b >= 1024 && i < 4) { b /= 1024; i++ }
  if (i == 1) printf "%d B", b; else printf "%.1f %s", b, u[i] }')
grep -qF "$kib/$kib" "$T/progress" || { cat "$T/progress" >&2; fail "bytes done/total is not $kib/$kib"; }
grep -qE '^tidemark: 0/2 files, 0 B/' "$T/progress" || { cat "$T/progress" >&2; fail "no first line with the totals"; }

say "stderr not a terminal: no progress line"
gen_lines 20001 20100 >> "$D/a.log"
tdm once -s "$T/s" -p count "$D"
assert_not_contains "$STDERR" " files, "
grep -qF $'\r' "$STDERR" && fail "a carriage return on a non-terminal stderr"

say "--progress forces it without a terminal"
gen_lines 20101 20200 >> "$D/a.log"
tdm once -s "$T/s" -p count --progress "$D"
assert_contains "$STDERR" "tidemark: 1/1 files, "

say "--no-progress and -q suppress it on a terminal"
for flag in --no-progress -q; do
  gen_lines 1 10 >> "$D/sub/b.log"
  script -qfec "$(printf '%q ' "$TIDEMARK" once -s "$T/s" -p count "$flag" "$D")" "$T/ts2" > /dev/null
  grep -q 'COMMAND_EXIT_CODE="0"' "$T/ts2" || fail "once $flag failed"
  grep -q ' files, ' "$T/ts2" && fail "a progress line with $flag"
done

say "progress = false in the config file suppresses it too"
printf 'progress = false\n' > "$T/p.conf"
gen_lines 11 20 >> "$D/sub/b.log"
script -qfec "$(printf '%q ' "$TIDEMARK" once -c "$T/p.conf" -s "$T/s" -p count "$D")" "$T/ts3" > /dev/null
grep -q ' files, ' "$T/ts3" && fail "a progress line with progress = false"
pass
