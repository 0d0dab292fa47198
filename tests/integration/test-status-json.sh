#!/usr/bin/env bash
# `tidemark status --json`: one JSON object describing the store and every
# tracked file (path, identity, size, bookmark, pending, state, counters,
# times), matching what is on disk; the table form lists the same files.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D/sub"
RD=$(realpath "$D")
printf 'complete 1\ncomplete 2\n' > "$D/a.log"          # 22 bytes
printf 'line\npartial' > "$D/sub/b.log"                  # 12 bytes, 5 deliverable
: > "$D/empty.log"

say "status of a directory that holds no state: exit 1 naming it"
assert_exit 1 "$TIDEMARK" status -s "$T/no-state-here" --json
assert_contains "$STDERR" "no-state-here"

tdm once -s "$S" "$D"

say "top level: state_dir, schema 3 (the store's: 1 until 0.2, 2 before --forget-after), last_checkpoint"
status_json "$S"
assert_eq "$(jq -r .state_dir "$T/status.json")" "$(realpath "$S")" "state_dir"
assert_eq "$(jq -r .schema "$T/status.json")" 3 "schema"
assert_eq "$(jq -r '.last_checkpoint != null' "$T/status.json")" true "last_checkpoint is set"
assert_eq "$(jq -r '.files | type' "$T/status.json")" array "files is an array"
assert_eq "$(jcount)" 3 "files tracked"

say "every field of every file is present with its type"
bad=$(jq -r '.files[] | select(
        (.id == null) or (.path | type) != "string" or (.present | type) != "boolean" or
        (.dev | type) != "number" or (.inode | type) != "number" or
        (.size | type) != "number" or (.bookmark | type) != "number" or
        (.pending | type) != "number" or (.state | type) != "string" or
        (.truncations | type) != "number" or (.pieces | type) != "number" or
        .first_seen == null or (has("updated") | not) or
        (.bookmark > 0 and .updated == null) or
        (has("content_hash") | not) or (has("duplicate_of") | not) or
        (.attempts | type) != "number" or (.exit_status | type) != "number" or
        (has("error") | not)) | .path' "$T/status.json")
assert_eq "$bad" "" "files with a missing or mistyped field"

say "paths are absolute and identity matches the files on disk"
jq -r '.files[].path' "$T/status.json" | sort > "$T/got"
printf '%s\n' "$RD/a.log" "$RD/empty.log" "$RD/sub/b.log" | sort > "$T/want"
assert_file_eq "$T/got" "$T/want"
for f in a.log sub/b.log empty.log; do
  p=$RD/$f
  assert_eq "$(jfile dev "$p")" "$(stat -c %d "$p")" "dev of $f"
  assert_eq "$(jfile inode "$p")" "$(stat -c %i "$p")" "inode of $f"
  assert_eq "$(jfile size "$p")" "$(stat -c %s "$p")" "size of $f"
  assert_eq "$(jfile present "$p")" true "present of $f"
  assert_eq "$(jfile state "$p")" active "state of $f"
  assert_eq "$(jfile truncations "$p")" 0 "truncations of $f"
  assert_eq "$(jfile pieces "$p")" 0 "pieces of $f"
  assert_eq "$(jfile error "$p")" null "error of $f"
done

say "bookmark and pending: complete lines taken, the partial line pending"
assert_eq "$(jfile bookmark "$RD/a.log")" 22 "bookmark of a.log"
assert_eq "$(jfile pending "$RD/a.log")" 0 "pending of a.log"
assert_eq "$(jfile bookmark "$RD/sub/b.log")" 5 "bookmark of b.log"
assert_eq "$(jfile pending "$RD/sub/b.log")" 7 "pending of b.log"
assert_eq "$(jfile bookmark "$RD/empty.log")" 0 "bookmark of empty.log"

say "ids are distinct"
assert_eq "$(jq '[.files[].id] | unique | length' "$T/status.json")" 3 "distinct ids"

say "after an append and a run, size/bookmark/updated move; first_seen does not"
first_seen=$(jfile first_seen "$RD/a.log")
id_a=$(jfile id "$RD/a.log")
sleep 1.1   # times may be kept to the second
printf 'complete 3\n' >> "$D/a.log"
tdm once -s "$S" "$D"
status_json "$S"
assert_eq "$(jfile size "$RD/a.log")" 33 "size after append"
assert_eq "$(jfile bookmark "$RD/a.log")" 33 "bookmark after append"
assert_eq "$(jfile first_seen "$RD/a.log")" "$first_seen" "first_seen after append"
assert_eq "$(jfile id "$RD/a.log")" "$id_a" "id after append"

say "status sees an append not yet processed as pending"
printf 'complete 4\n' >> "$D/a.log"
status_json "$S"
size_seen=$(jfile size "$RD/a.log"); pend=$(jfile pending "$RD/a.log")
# status may report the size on disk (44, pending 11) or the size at the last
# run (33, pending 0); either way pending = size - bookmark.
assert_eq "$pend" "$((size_seen - 33))" "pending = size - bookmark"

say "a deleted file is absent or marked not present after the next run"
rm "$D/empty.log"
tdm once -s "$S" "$D"
status_json "$S"
p=$(jfile present "$RD/empty.log")
[ -z "$p" ] || [ "$p" = false ] || fail "deleted empty.log listed with present=$p"

say "the table form lists the files and exits 0"
tdm status -s "$S"
assert_contains "$STDOUT" "$RD/a.log"
assert_contains "$STDOUT" "$RD/sub/b.log"

say "status from the environment: \$TIDEMARK_STATE"
assert_exit 0 env TIDEMARK_STATE="$S" "$TIDEMARK" status --json
jq -e --arg s "$(realpath "$S")" '.state_dir == $s' "$STDOUT" >/dev/null || fail "status via TIDEMARK_STATE: $(head -c 300 "$STDOUT")"

say "status works while a writer holds the state directory"
hold_lock "$S/writer.lock"
status_json "$S"
assert_eq "$(jfile bookmark "$RD/sub/b.log")" 5 "bookmark of b.log read beside a writer"
release_lock

pass
