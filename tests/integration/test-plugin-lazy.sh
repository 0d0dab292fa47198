#!/usr/bin/env bash
# Plugins of the default plugin directory (the build tree's tidemark-plugins,
# LIBDIR/tidemark after install) are loaded when a spec names one, not at
# every start: a `run -p count` never maps the nats plugin and its libraries.
source "$(dirname "$0")/lib.sh"

plugins="$(dirname "$TIDEMARK")/tidemark-plugins"
[ -f "$plugins/nats.so" ] || skip "no nats plugin in this build (libnats not found)"

mkdir -p "$T/d"
echo hello > "$T/d/a.log"

say "tidemark processors lists the default directory's plugins"
tdm processors
assert_contains "$STDOUT" "nats"

say "run -p count does not map nats.so"
run_bg "$T/out" -s "$T/s" -p count "$T/d"
wait_for 10 test -r "/proc/$RUN_PID/maps"
wait_for 10 grep -q "tidemark: run:" "$T/run.err"
sleep 0.3
if grep -qE "nats\.so|libnats" "/proc/$RUN_PID/maps"; then
  grep -E "nats\.so|libnats" "/proc/$RUN_PID/maps" | head -3
  fail "the nats plugin was mapped by a run that does not use it"
fi
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run exit status"

say "a spec naming it loads it (bad parameters: exit 2 naming the key)"
assert_exit 2 "$TIDEMARK" once -s "$T/s2" -p 'nats:bogus=1' "$T/d"
assert_contains "$STDERR" "bogus"
pass
