#!/usr/bin/env bash
# The library embedded in a host program on the host's own libuv loop
# (tdm_start) beside a timer of the host's: tests/integration/host.c, built as
# tdm-host. It checks every line seen exactly once, the stopped callback's
# status, that the timer kept firing (the loop thread was never blocked) and
# that uv_loop_close() succeeds (every handle closed); then that a fresh
# run_once delivers nothing, then tdm_run() on tidemark's own loop.
source "$(dirname "$0")/lib.sh"
need_helper TDM_HOST

mkdir -p "$T/w"
TDM_CMD_TIMEOUT=60 assert_exit 0 "$TDM_HOST" "$T/w"
cat "$STDOUT"
assert_contains "$STDOUT" "PASS"
assert_no_sanitizer "$STDERR"

pass
