#!/usr/bin/env bash
# File names that are not UTF-8: `status --json` stays valid JSON (RFC 8259:
# UTF-8), such a path is given escaped (\xNN per bad byte, \\ for a
# backslash, as the table prints it) with "path_escaped": true, and `reset`
# accepts that form. Valid UTF-8 names are given as they are.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is required"

D=$T/logs; S=$T/st
mkdir -p "$D"
RD=$(realpath "$D")
BAD=$(printf 'bad\xff\xfename')
printf 'x\n' > "$D/$BAD"
printf 'y\n' > "$D/café"                    # valid UTF-8: kept as is
printf 'z\n' > "$D/lit\\xffname"            # a literal backslash, x, f, f
printf 'w\n' > "$D/$(printf 'half\xc3')"   # a cut multi-byte sequence
tdm once -q -s "$S" -p count "$D"

say "status --json is valid UTF-8 JSON"
"$TIDEMARK" status -s "$S" --json > "$T/s.json"
python3 - "$T/s.json" <<'PY' || fail "status --json is not valid JSON in UTF-8"
import json, sys
json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
PY

say "the escaped forms, and the flag"
assert_eq "$(jq -r --arg p "$RD/bad\\xff\\xfename" '.files[] | select(.path == $p) | .path_escaped' "$T/s.json")" true "bad name escaped"
assert_eq "$(jq -r --arg p "$RD/half\\xc3" '.files[] | select(.path == $p) | .path_escaped' "$T/s.json")" true "cut sequence escaped"
assert_eq "$(jq -r --arg p "$RD/café" '.files[] | select(.path == $p) | .path_escaped' "$T/s.json")" false "UTF-8 name as is"
assert_eq "$(jq -r --arg p "$RD/lit\\xffname" '.files[] | select(.path == $p) | .path_escaped' "$T/s.json")" false "literal backslash name as is"

say "the table escapes the bytes too (no raw 0xff on the terminal)"
tdm status -s "$S"
assert_contains "$STDOUT" "bad\\xff\\xfename"
assert_contains "$STDOUT" "café"
if LC_ALL=C grep -q $'\xff' "$STDOUT"; then fail "raw 0xff byte in the table"; fi

say "reset takes the path as status --json gave it"
P=$(jq -r '.files[] | select(.path_escaped) | .path' "$T/s.json" | grep bad)
tdm reset -s "$S" "$P"
assert_contains "$STDOUT" "forgot 1 file"
status_json "$S"
assert_eq "$(jcount)" 3 "files left after the reset"
P=$(jq -r --arg p "$RD/lit\\xffname" '.files[] | select(.path == $p) | .path' "$T/s.json")
tdm reset -s "$S" "$P"
assert_contains "$STDOUT" "forgot 1 file"
status_json "$S"
assert_eq "$(jcount)" 2 "the literal name was reset, not another"
assert_eq "$(jq -r --arg p "$RD/half\\xc3" '.files[] | select(.path == $p) | .path_escaped' "$T/status.json")" true "the cut name is still tracked"

say "reset on the raw bytes still works"
tdm reset -s "$S" "$D/$(printf 'half\xc3')"
assert_contains "$STDOUT" "forgot 1 file"
