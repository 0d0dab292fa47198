#!/usr/bin/env bash
# soak: backpressure. A plugin built by the test (`stall`) answers
# TDM_PROC_RETRY to every chunk while a flag file exists, otherwise appends
# the chunk to its output. tidemark run is fed a ~100 MB log while the flag
# stays for 10 s: its RSS (VmRSS, sampled) stays under 64 MiB, the bookmark
# does not move (reading pauses), it keeps running; once the flag is removed
# everything arrives within a few seconds, each line exactly once.
source "$(dirname "$0")/lib.sh"
command -v cc >/dev/null || skip "no C compiler (cc) to build the test plugin"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
LINES=${TDM_SOAK_LINES:-1000000}
HOLD=${TDM_SOAK_HOLD_S:-10}
D=$T/d; S=$T/state; P=$T/plugins; OUT=$T/out; FLAG=$T/stall.flag
mkdir -p "$D" "$P"

cat > "$T/stall.c" <<'C'
#include "tidemark/processor.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { int fd; char *flag; } st_t;

static int st_open(void **state, const tdm_open_args_t *a) {
  const char *out = NULL, *flag = NULL;
  st_t *st;
  for (size_t i = 0; i < a->n_params; i++) {
    if (strcmp(a->params[i].key, "out") == 0) out = a->params[i].value;
    else if (strcmp(a->params[i].key, "flag") == 0) flag = a->params[i].value;
    else { snprintf(a->msg, TDM_MSG_MAX, "stall: unknown parameter \"%s\"", a->params[i].key); return TDM_PROC_FAIL; }
  }
  if (!out || !flag) { snprintf(a->msg, TDM_MSG_MAX, "stall: out= and flag= are required"); return TDM_PROC_FAIL; }
  if (!(st = calloc(1, sizeof *st)) || !(st->flag = strdup(flag))) return TDM_PROC_FAIL;
  if ((st->fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    snprintf(a->msg, TDM_MSG_MAX, "stall: %s: %s", out, strerror(errno));
    free(st->flag); free(st); return TDM_PROC_FAIL;
  }
  *state = st;
  return TDM_PROC_OK;
}

static int st_process(void *state, const tdm_chunk_t *c, char *msg) {
  st_t *st = state;
  const char *p = c->data;
  size_t n = c->len;
  if (access(st->flag, F_OK) == 0) {
    snprintf(msg, TDM_MSG_MAX, "stall: %s exists: busy, retry later", st->flag);
    return TDM_PROC_RETRY;
  }
  while (n > 0) {
    ssize_t w = write(st->fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; snprintf(msg, TDM_MSG_MAX, "stall: write: %s", strerror(errno)); return TDM_PROC_FAIL; }
    p += w; n -= (size_t)w;
  }
  return TDM_PROC_OK;
}

static int st_commit(void *state, void *restore, size_t *restore_len, char *msg) {
  st_t *st = state;
  (void)restore; (void)msg;
  fsync(st->fd);
  *restore_len = 0;
  return TDM_PROC_OK;
}

static void st_close(void *state) {
  st_t *st = state;
  if (!st) return;
  close(st->fd); free(st->flag); free(st);
}

static const tdm_processor_t stall = {
  .abi_version = TDM_PROCESSOR_ABI_VERSION, .size = sizeof(tdm_processor_t),
  .name = "stall", .summary = "test: RETRY while a flag file exists, else append to out=",
  .open = st_open, .process = st_process, .commit = st_commit, .close = st_close,
};

__attribute__((visibility("default"))) const tdm_processor_t *tdm_processor_entry(void) { return &stall; }
C
cc -shared -fPIC -O2 -I"$SRC/watcher/include" -o "$P/stall.so" "$T/stall.c" 2>"$T/cc.err" ||
  fail "building the test plugin: $(cat "$T/cc.err")"

gen_lines 1 "$LINES" > "$D/big.log"
RD=$(realpath "$D")
total=$(fsize "$D/big.log")
echo "input: $LINES lines, $total bytes; the processor answers RETRY for $HOLD s"

touch "$FLAG"
t_start=$(now_ms)
run_bg "$T/run.out" -s "$S" --plugin-dir "$P" -p "stall:out=$OUT,flag=$FLAG" --checkpoint-ms 100 "$D"
say "while it retries: RSS bounded, bookmark still, running"
max_rss=0
while [ $(( $(now_ms) - t_start )) -lt $((HOLD * 1000)) ]; do
  is_running "$RUN_PID" || fail "tidemark exited while the processor answered retry"
  r=$(rss_kb "$RUN_PID")
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  sleep 0.2
done
echo "  peak VmRSS while stalled: $((max_rss / 1024)) MiB ($max_rss KiB)"
[ "$max_rss" -lt $((64 * 1024)) ] || fail "VmRSS reached $max_rss KiB (>= 64 MiB) while stalled"
status_json "$S"
bm=$(jfile bookmark "$RD/big.log")
echo "  bookmark while stalled: ${bm:-none}"
[ "${bm:-0}" = null ] || [ "${bm:-0}" -eq 0 ] || fail "the bookmark moved to $bm while the processor refused everything"
[ ! -s "$OUT" ] || fail "the stalled processor wrote output"
grep -q 'retry' "$T/run.err" || fail "no message about the processor asking to retry"

say "the processor recovers: everything arrives within a few seconds"
rm -f "$FLAG"
t0=$(now_ms)
while :; do
  r=$(rss_kb "$RUN_PID"); [ "$r" -gt "$max_rss" ] && max_rss=$r
  [ -e "$OUT" ] && [ "$(fsize "$OUT")" -ge "$total" ] && break
  is_running "$RUN_PID" || fail "tidemark exited while catching up"
  [ $(( $(now_ms) - t0 )) -lt 30000 ] || fail "30 s after the processor recovered, OUT holds $(fsize "$OUT") of $total bytes"
  sleep 0.05
done
ms=$(( $(now_ms) - t0 ))
echo "  all $total bytes delivered $ms ms after the retry window ended" \
     "($(awk -v b="$total" -v m="$ms" 'BEGIN { printf "%.0f", b / 1048576 / ((m + 1) / 1000) }') MiB/s); peak VmRSS $((max_rss / 1024)) MiB"
[ "$ms" -lt 15000 ] || fail "throughput did not recover: $ms ms to deliver $total bytes"
[ "$max_rss" -lt $((64 * 1024)) ] || fail "VmRSS reached $max_rss KiB"
sleep 0.3
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
assert_file_eq "$OUT" "$D/big.log" "output after $HOLD s of backpressure"
assert_no_sanitizer "$T/run.err"

pass
