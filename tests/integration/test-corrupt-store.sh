#!/usr/bin/env bash
# A state store with random bytes overwritten (a corrupted copy of a real
# store, many seeds) never kills status, once or reset with a signal: LMDB
# trusts its pages, so tidemark checks the store before using it. Whatever
# the damage, each command exits below 128, and a failure names the state
# directory. A store that is fine still works after the check.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is required"

D=$T/logs; GOOD=$T/st.good; S=$T/st
mkdir -p "$D"
for i in $(seq 1 50); do seq 1 100 > "$D/f$i"; done
tdm once -q -s "$GOOD" -p count "$D"
cat > "$T/corrupt.py" <<'PY'
import os, random, sys
path, seed, lim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sz = min(os.path.getsize(path), lim)
random.seed(seed)
with open(path, 'r+b') as f:
    for _ in range(20):
        f.seek(random.randrange(sz)); f.write(bytes([random.randrange(256)]))
PY

say "an intact copy still works (the check passes)"
rm -rf "$S"; cp -a "$GOOD" "$S"
tdm status -s "$S"
tdm once -s "$S" -p count "$D"

corrupt_said=0
run_one() { # CMD... : must not die of a signal; a failure names the directory
  local rc=0
  timeout 30 "$@" >/dev/null 2>"$T/err" || rc=$?
  [ "$rc" -lt 124 ] || { cat "$T/err" >&2; fail "seed $seed lim $lim: '$*' exit $rc (signal or hang)"; }
  if [ "$rc" -ne 0 ]; then
    # (A damaged path that still decodes is a file reset cannot find: it
    # says so naming the PATH.)
    grep -qF "$S" "$T/err" || grep -q "is not tracked" "$T/err" ||
      { cat "$T/err" >&2; fail "seed $seed lim $lim: '$*' exit $rc without naming $S"; }
  fi
  if grep -q "is corrupt: " "$T/err"; then
    corrupt_said=$((corrupt_said + 1))
    [ "$rc" -eq 1 ] || fail "seed $seed: 'is corrupt' with exit $rc"
    grep -q "move it away" "$T/err" || fail "the corrupt message does not say what to do"
  fi
}

say "corrupted copies: status, once and reset exit < 128 and name the directory"
# Seeds 29, 72 and 85 of 65536 were a hang, a crash in a read and a crash in
# a commit (a damaged page header) before the check.
for lim in 65536 16384; do
  for seed in $(seq 1 ${TDM_CORRUPT_SEEDS:-60}) 72 85; do
    rm -rf "$S"; cp -a "$GOOD" "$S"
    python3 "$T/corrupt.py" "$S/data.mdb" "$seed" "$lim"
    run_one "$TIDEMARK" status -s "$S" --json
    run_one "$TIDEMARK" once -s "$S" -p count "$D"
    if [ $((seed % 4)) -eq 0 ]; then
      rm -rf "$S"; cp -a "$GOOD" "$S"
      python3 "$T/corrupt.py" "$S/data.mdb" "$seed" "$lim"
      run_one "$TIDEMARK" reset -s "$S" "$D/f1"
    fi
  done
done
echo "runs that reported a corrupt store: $corrupt_said"
[ "$corrupt_said" -gt 0 ] || fail "no run reported 'state store ... is corrupt'"
