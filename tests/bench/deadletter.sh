#!/usr/bin/env bash
# tests/bench/deadletter.sh: what a refused record costs (--dead-letter),
# against the same records accepted, timed in the same run. Not a test: it
# prints one markdown table and exits 0 whatever the figures are.
#
#   tests/bench/deadletter.sh BUILD_DIR [N]
#
# N records (default 2000), one file, the test plugin `refuse` (a sink that
# writes each record to OUT and fsyncs at each checkpoint). Rows:
#   accept   no record refused (the baseline)
#   reject   every record answered TDM_PROC_REJECT, --dead-letter
#   fail     every record answered TDM_PROC_FAIL, --dead-letter, --max-tries 1
# A refused record costs a rollback (the processor reopened from its restore
# point), the record offered alone, a JSON line and a checkpoint (fsyncs of
# the dead-letter file, OUT and the store), so that no later rollback can take
# it back; --max-tries N > 1 adds N-1 tries with a pause (10 ms doubling).
set -euo pipefail
B=${1:?usage: deadletter.sh BUILD_DIR [N]}; N=${2:-2000}
TM=$B/tidemark; P=$B/tests/plugins/refuse
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir "$W/src"; seq -f "record %g" 1 "$N" > "$W/src/a.log"
secs() { local s e; s=$(date +%s.%N); "$@" 2>/dev/null >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
a=$(secs "$TM" once -s "$W/s0" --plugin-dir "$P" -p "refuse:path=$W/o0,pattern=NOPE" "$W/src")
r=$(secs "$TM" once -s "$W/s1" --plugin-dir "$P" --dead-letter "$W/d1" \
      -p "refuse:path=$W/o1,pattern=record,mode=reject" "$W/src")
f=$(secs "$TM" once -s "$W/s2" --plugin-dir "$P" --dead-letter "$W/d2" --max-tries 1 \
      -p "refuse:path=$W/o2,pattern=record" "$W/src")
[ "$(wc -l < "$W/d1")" -eq "$N" ] && [ "$(wc -l < "$W/d2")" -eq "$N" ] ||
  echo "warning: not every record was set aside" >&2
echo "| $N records | time | per record | ratio to accept |"
echo "|---|---|---|---|"
for row in "accept $a" "reject $r" "fail $f"; do
  set -- $row
  printf '| %s | %.3f s | %.1f us | %.0fx |\n' "$1" "$2" "$(echo "$2 * 1000000 / $N" | bc -l)" \
    "$(echo "$2 / $a" | bc -l)"
done
