#!/usr/bin/env bash
# INI configuration (-c FILE): every option settable, the command line wins,
# an unknown key / section / bad value is exit 2 naming FILE:LINE. Also the
# state directory's defaults ($TIDEMARK_STATE, then ./.tidemark).
source "$(dirname "$0")/lib.sh"

D=$T/d
mkdir -p "$D/sub"
printf 'top log\n' > "$D/a.log"
printf 'top txt\n' > "$D/b.txt"
printf 'top skip\n' > "$D/skip.log"
printf 'nested log\n' > "$D/sub/c.log"

say "values from the file: state, processors, include/exclude, no-recursive"
cat > "$T/good.ini" <<EOF
# a comment
; another comment
[tidemark]
state = $T/cfg-state
processor = file:path=$T/out
processor = count
include = *.log
include = *.txt   ; trailing comment
exclude = skip.*
no-recursive = yes
records = lines
max-record = 4096
checkpoint-ms = 200
EOF
tdm once -c "$T/good.ini" "$D"
[ -d "$T/cfg-state" ] || fail "the state directory from the config file was not used"
sort "$T/out" > "$T/got"
printf 'top log\ntop txt\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"
assert_contains "$STDOUT" "count: files=2 "
assert_contains "$STDOUT" "lines=2 "

say "keys before any section work too; booleans as false"
cat > "$T/nosection.ini" <<EOF
state=$T/cfg-state2
no-recursive=false
include=*.log
EOF
tdm once -c "$T/nosection.ini" "$D"
sort "$STDOUT" > "$T/got"
printf 'nested log\ntop log\ntop skip\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "the command line wins: -s and -p replace the file's values"
tdm once -c "$T/good.ini" -s "$T/cli-state" -p stdout "$D"
[ -d "$T/cli-state" ] || fail "-s on the command line did not override the file"
sort "$STDOUT" > "$T/got"
printf 'top log\ntop txt\n' > "$T/want"   # include/exclude/no-recursive still from the file
assert_file_eq "$T/got" "$T/want"
say "--records bytes on the command line beats records = lines"
printf 'no newline' > "$D/partial.log"
tdm once -c "$T/good.ini" -s "$T/cli-state2" -p stdout --records bytes -i partial.log "$D"
printf 'no newline' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "an unknown key: exit 2 naming FILE:LINE and the key"
printf '[tidemark]\nstate = %s\nno-such-key = 1\n' "$T/x" > "$T/badkey.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/badkey.ini" "$D"
assert_contains "$STDERR" "badkey.ini:3"
assert_contains "$STDERR" "no-such-key"

say "a bad value: exit 2 naming FILE:LINE"
printf '# c\n\nrecords = words\n' > "$T/badvalue.ini"
assert_exit 2 "$TIDEMARK" once -s "$T/x" -c "$T/badvalue.ini" "$D"
assert_contains "$STDERR" "badvalue.ini:3"
printf 'checkpoint-ms = soon\n' > "$T/badnum.ini"
assert_exit 2 "$TIDEMARK" once -s "$T/x" -c "$T/badnum.ini" "$D"
assert_contains "$STDERR" "badnum.ini:1"
printf 'no-recursive = perhaps\n' > "$T/badbool.ini"
assert_exit 2 "$TIDEMARK" once -s "$T/x" -c "$T/badbool.ini" "$D"
assert_contains "$STDERR" "badbool.ini:1"

say "an unknown section: exit 2 naming FILE:LINE"
printf 'state = %s\n[elsewhere]\nstate = /tmp\n' "$T/x" > "$T/badsection.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/badsection.ini" "$D"
assert_contains "$STDERR" "badsection.ini:2"

say "a malformed line: exit 2 naming FILE:LINE"
printf 'state = %s\nthis line has no equals sign\n' "$T/x" > "$T/malformed.ini"
assert_exit 2 "$TIDEMARK" once -c "$T/malformed.ini" "$D"
assert_contains "$STDERR" "malformed.ini:2"

say "an unknown processor in the file: exit 2 naming it"
printf 'processor = nope\n' > "$T/badproc.ini"
assert_exit 2 "$TIDEMARK" once -s "$T/x" -c "$T/badproc.ini" "$D"
assert_contains "$STDERR" "nope"

say "the refused configurations tracked nothing"
if [ -e "$T/x/data.mdb" ]; then
  echo "note: a refused configuration created the store $T/x (empty)"
  status_json "$T/x"
  assert_eq "$(jcount)" 0 "files tracked by refused configurations"
fi

say "keys for other commands are ignored by status"
tdm status -c "$T/good.ini" --json
jq -e --arg s "$T/cfg-state" '.state_dir == $s' "$STDOUT" >/dev/null ||
  fail "status -c did not use the file's state: $(head -c 300 "$STDOUT")"

say "state from \$TIDEMARK_STATE, and -s beats it"
assert_exit 0 env TIDEMARK_STATE="$T/env-state" "$TIDEMARK" once "$D/sub"
[ -f "$T/env-state/data.mdb" ] || fail "\$TIDEMARK_STATE was not used"
printf 'nested log\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
assert_exit 0 env TIDEMARK_STATE="$T/env-state" "$TIDEMARK" once -s "$T/env-beaten" "$D/sub"
[ -f "$T/env-beaten/data.mdb" ] || fail "-s did not beat \$TIDEMARK_STATE"
assert_file_eq "$STDOUT" "$T/want"

say "default state: ./.tidemark in the working directory"
mkdir -p "$T/cwd"
assert_exit 0 bash -c 'cd "$1" && unset TIDEMARK_STATE && exec "$2" once "$3"' _ "$T/cwd" "$TIDEMARK" "$D/sub"
[ -f "$T/cwd/.tidemark/data.mdb" ] || fail "no ./.tidemark state created"
assert_file_eq "$STDOUT" "$T/want"

pass
