#!/usr/bin/env bash
# Debian's logrotate with `compress` + `delaycompress` every second under
# kill -9: every line once, nothing binary (see logrotate-compress.inc).
source "$(dirname "$0")/lib.sh"
DELAY=1
source "$(dirname "$0")/logrotate-compress.inc"
