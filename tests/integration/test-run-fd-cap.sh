#!/usr/bin/env bash
# Descriptors capped: 1,000 tracked files under a soft RLIMIT_NOFILE of 1024
# (systemd's default for services), one line appended to each, then each
# renamed out of the tree or deleted at once. The command raises its soft
# limit to the hard one at start, so no line is lost. Under a HARD cap of
# 1024 the library cannot hold every descriptor: it reads before it closes
# one, and a file whose new bytes became unreachable (its name gone and no
# descriptor held) is never lost silently: a warning names it and status
# counts it. Every line is either delivered once or its file is warned about.
source "$(dirname "$0")/lib.sh"

N=1000
scenario() { # $1: name, $2: ulimit arguments
  local W=$T/$1 i
  mkdir -p "$W/logs" "$W/away"
  for i in $(seq 1 $N); do echo "a $i 0" > "$W/logs/f$i"; done
  echo "--- $(date +%T) run ($1: ulimit $2)" >> "$T/run.err"
  ( ulimit $2 && exec "$TIDEMARK" run -s "$W/st" -p "file:path=$W/out" "$W/logs" ) \
    > /dev/null 2>> "$W/err" < /dev/null &
  RUN_PID=$!
  wait_lines "$W/out" $N 60 "$RUN_PID"
  for i in $(seq 1 $N); do
    echo "a $i 4" >> "$W/logs/f$i"
    if [ $((i % 2)) -eq 0 ]; then mv "$W/logs/f$i" "$W/away/"; else rm "$W/logs/f$i"; fi
  done
  # Until every appended line is delivered or its file warned about (the
  # worker may still work through a backlog of events), at most 60 s.
  settled() {
    [ $(( $(grep -c ' 4$' "$W/out") + $(grep -c 'delivered: no descriptor was held' "$W/err") )) -ge $N ]
  }
  local end=$((SECONDS + 60))
  until settled || [ $SECONDS -ge $end ]; do sleep 0.2; done
  sleep 1.5 # a checkpoint after the last of it
  stop_bg "$RUN_PID"
  assert_eq "$STOP_RC" 0 "exit of run ($1)"
  cat "$W/err" >> "$T/run.err"
  # Delivered lines, each once.
  dup=$(sort "$W/out" | uniq -d | head -n 3)
  assert_eq "$dup" "" "lines delivered twice ($1)"
  missing=0; unwarned=""
  for i in $(seq 1 $N); do
    grep -qx "a $i 4" "$W/out" && continue
    missing=$((missing + 1))
    grep -qF "$W/logs/f$i:" "$W/err" || unwarned="$unwarned f$i"
  done
  warned=$(grep -c 'delivered: no descriptor was held' "$W/err" || true)
  status_json "$W/st"
  counted=$(jq -r '.lost_files' "$T/status.json")
  say "$1: $missing of $N appended lines not delivered, $warned warned, lost_files $counted"
  [ -z "$unwarned" ] || fail "$1: lines lost silently (no warning naming the file):$(echo $unwarned | cut -c1-200)"
  assert_eq "$counted" "$warned" "$1: lost_files in status vs warnings"
  MISSING=$missing
}

say "soft cap 1024 (hard cap as it is: $(ulimit -Hn)): the command raises it"
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 4096 ] ||
  fail "this test needs a hard RLIMIT_NOFILE of at least 4096 (have $(ulimit -Hn))"
scenario soft "-Sn 1024"
assert_eq "$MISSING" 0 "lines lost under a soft cap of 1024"

say "hard cap 1024: what cannot be reached is warned about and counted"
scenario hard "-n 1024"
pass
