#!/usr/bin/env bash
# Signals to `tidemark run`:
#   - SIGTERM and SIGINT: exit 0 within 2 s after a final checkpoint. With
#     --checkpoint-ms 60000 no periodic checkpoint comes in between, so what
#     the `file` processor's output and the bookmark hold after the exit was
#     made durable by the final checkpoint: everything `stdout` had seen.
#   - SIGTERM in the middle of reading a ~100 MB file: exit 0 within 2 s,
#     output == bookmark, a prefix of the file.
#   - SIGHUP: a rescan, not a death. A change inotify cannot see (an append
#     through a hard link outside the watched tree) is found after SIGHUP.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state; OUT=$T/out
mkdir -p "$D"
RD=$(realpath "$D")


for sig in TERM INT; do
  say "SIG$sig: final checkpoint, exit 0 within 2 s"
  if [ "$sig" = TERM ]; then gen_lines 1 1000 > "$D/a.log"; want=1000; else gen_lines 1001 1500 >> "$D/a.log"; want=500; fi
  run_bg "$T/run-$sig.out" -s "$S" -p stdout -p "file:path=$OUT" -p count --checkpoint-ms 60000 "$D"
  wait_lines "$T/run-$sig.out" "$want" 15 "$RUN_PID"
  stop_bg "$RUN_PID" "$sig"
  echo "  SIG$sig to exit: $STOP_MS ms"
  assert_eq "$STOP_RC" 0 "exit status after SIG$sig"
  [ "$STOP_MS" -le 2000 ] || fail "exit took $STOP_MS ms after SIG$sig (limit 2000)"
  assert_file_eq "$OUT" "$D/a.log" "file output after SIG$sig (the final checkpoint)"
  assert_eq "$(bookmark_of "$S" "$RD/a.log")" "$(fsize "$D/a.log")" "bookmark after SIG$sig"
  grep -q '^count: ' "$T/run-$sig.out" || fail "count printed no totals after SIG$sig"
  assert_contains "$T/run-$sig.out" "lines=$want "
  assert_eq "$(grep -vc '^count: ' "$T/run-$sig.out")" "$want" "lines on stdout after SIG$sig"
done

say "SIGTERM while reading a ~100 MB file: exit 0 within 2 s, output == bookmark"
D2=$T/d2; S2=$T/state2; OUT2=$T/out2
mkdir -p "$D2"
gen_lines 1 1000000 > "$D2/big.log"
run_bg "$T/run-big.out" -s "$S2" -p "file:path=$OUT2" --checkpoint-ms 100 "$D2"
# signal once it is reading (its output has grown or 300 ms have passed)
end=$(( $(now_ms) + 300 ))
until [ "$(fsize "$OUT2" 2>/dev/null || echo 0)" -gt 0 ] || [ "$(now_ms)" -ge "$end" ]; do sleep 0.01; done
stop_bg "$RUN_PID" TERM
echo "  SIGTERM to exit: $STOP_MS ms; output at $(fsize "$OUT2" 2>/dev/null || echo 0) of $(fsize "$D2/big.log") bytes"
assert_eq "$STOP_RC" 0 "exit status after SIGTERM mid-read"
[ "$STOP_MS" -le 2000 ] || fail "exit took $STOP_MS ms after SIGTERM mid-read (limit 2000)"
b=$(bookmark_of "$S2" "$(realpath "$D2")/big.log")
got=$(fsize "$OUT2" 2>/dev/null || echo 0)
assert_eq "$got" "$b" "file output size vs the bookmark after SIGTERM mid-read"
cmp -n "$got" "$OUT2" "$D2/big.log" >/dev/null || fail "the output is not a prefix of big.log"

say "SIGHUP: still running, still delivering"
D3=$T/d3; S3=$T/state3; OUT3=$T/out3
mkdir -p "$D3" "$T/outside"
printf 'h line 1\n' > "$D3/h.log"
ln "$D3/h.log" "$T/outside/h.link"
run_bg "$T/run-hup.out" -s "$S3" -p "file:path=$OUT3" --checkpoint-ms 100 "$D3"
wait_lines "$OUT3" 1 15 "$RUN_PID"
for i in 1 2 3; do kill -HUP "$RUN_PID"; sleep 0.1; done
is_running "$RUN_PID" || fail "tidemark died of SIGHUP"
printf 'h line 2\n' >> "$D3/h.log"
wait_lines "$OUT3" 2 5 "$RUN_PID"

say "SIGHUP finds an append inotify cannot see (through a hard link outside the tree)"
printf 'h line 3 via link\n' >> "$T/outside/h.link"
sleep 1
if [ "$(lines_in "$OUT3")" -ge 3 ]; then
  echo "  note: the append through the link was delivered before SIGHUP"
else
  echo "  not delivered after 1 s without SIGHUP (as expected: no inotify event); sending SIGHUP"
fi
t0=$(now_ms)
kill -HUP "$RUN_PID"
wait_lines "$OUT3" 3 5 "$RUN_PID"
echo "  delivered $(( $(now_ms) - t0 )) ms after SIGHUP"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGHUPs and SIGTERM"
assert_file_eq "$OUT3" "$D3/h.log"
assert_no_sanitizer "$T/run.err"

pass
