#!/usr/bin/env bash
# The pages of the metrics port, fetched with curl while a writer appends:
# GET / is a small self-contained HTML page (a meta refresh, no script, no
# external asset) with top's header and the 50 files most behind, most
# pending first, names escaped for HTML; GET /status.json is the document
# `status --json` prints (jq reads it; once the writer stopped and the
# instance caught up, the same files with the same numbers, and the page
# shows those numbers too). HEAD gives the head alone; requests at once get
# 200 or 503, never a broken answer; no child process is left behind.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is required (Debian: curl)"
need_helper TDM_WRITER
MC="python3 $(dirname "$0")/metrics_client.py"

D=$T/d
S=$T/s
mkdir -p "$D/many"
for i in $(seq -w 1 60); do gen_lines 1 3 > "$D/many/f$i.log"; done
gen_lines 1 20000 > "$D/a.log"
gen_lines 1 10000 > "$D/b.log"
HTMLNAME='x<b>&"y.log'
printf 'one\n' > "$D/$HTMLNAME"
CTL=$(printf 'ctl\033[2Jname.log')
printf 'one\n' > "$D/$CTL"
PORT=$($MC port)
URL=http://127.0.0.1:$PORT

run_bg "$T/out" -s "$S" -p "file:path=$T/copy" --checkpoint-ms 200 \
  --metrics "127.0.0.1:$PORT" "$D"
"$TDM_WRITER" append -r 5000 W "$D/a.log" "$D/b.log" > /dev/null &
WRITER_PID=$!
# 64 files tracked, and read but for the two the writer appends to (a new
# file is in the store before it is read: tracked alone, the small ones may
# still be behind and fill the page)
tracked_64() {
  status_quiet "$S" && [ "$(jq '.files | length' "$T/st.json")" = 64 ] &&
    [ "$(jq '[.files[] | select((.path | test("/[ab][.]log$")) | not) |
             select(.bookmark != .size)] | length' "$T/st.json")" = 0 ]
}
wait_for 30 tracked_64

say "GET /: HTML, reloading itself, no script, no external asset"
curl -sS --max-time 30 --retry 5 -D "$T/page.head" -o "$T/page.html" "$URL/"
assert_contains "$T/page.head" "HTTP/1.1 200 OK"
assert_contains "$T/page.head" "Content-Type: text/html; charset=utf-8"
assert_contains "$T/page.html" '<meta http-equiv="refresh" content="2">'
assert_contains "$T/page.html" "</html>"
for bad in '<script' 'src=' '<link' '@import' 'url('; do
  assert_not_contains "$T/page.html" "$bad"
done
status_json "$S"
INST=$(jq -r .instance "$T/status.json")
assert_contains "$T/page.html" "tidemark  instance $INST"
assert_contains "$T/page.html" "files 64"
assert_contains "$T/page.html" "dead letters 0  lost files 0"
assert_contains "$T/page.html" "file:path=$T/copy"
say "names are escaped: HTML and control characters"
assert_contains "$T/page.html" 'x&lt;b&gt;&amp;&quot;y.log'
assert_not_contains "$T/page.html" "$HTMLNAME"
assert_contains "$T/page.html" 'ctl\x1b[2Jname.log'
if grep -q $'\033' "$T/page.html"; then fail "an escape byte reached the page"; fi
say "the 50 files most behind, most pending first"
assert_eq "$(grep -c '^<tr><td>' "$T/page.html")" 50 "file rows on the page"
assert_contains "$T/page.html" "50 of 64 files"
grep '^<tr><td>' "$T/page.html" | sed 's/^<tr><td>\([0-9]*\)<.*/\1/' > "$T/col"
sort -s -n -r "$T/col" | cmp -s - "$T/col" || { cat "$T/page.html" >&2; fail "page rows not sorted by pending"; }

say "the live numbers come on the next loads"
wait_for 20 bash -c "curl -sf $URL/ | grep -qE '^  ok +[0-9.]+[KM]?/s'"

say "GET /status.json: status --json, read by jq"
curl -sS --max-time 30 --retry 5 -D "$T/json.head" -o "$T/page.json" "$URL/status.json"
assert_contains "$T/json.head" "Content-Type: application/json"
jq -e . "$T/page.json" > /dev/null || fail "/status.json is not JSON"
assert_eq "$(jq -r .instance "$T/page.json")" "$INST" "instance"
assert_eq "$(jq '.files | length' "$T/page.json")" 64 "files in /status.json"
assert_eq "$(jq -r .state_dir "$T/page.json")" "$(jq -r .state_dir "$T/status.json")" "state_dir"
assert_eq "$(jq -r '.files[] | select(.path | endswith("y.log")) | .path' "$T/page.json")" "$D/$HTMLNAME" "a path with HTML in it"

say "HEAD: the head only"
curl -sS --max-time 30 --retry 5 -I "$URL/status.json" > "$T/head"
assert_contains "$T/head" "HTTP/1.1 200 OK"
curl -sS --max-time 30 --retry 5 -I "$URL/" -o "$T/head.body" -D "$T/head2"
assert_contains "$T/head2" "text/html"

say "several at once: each 200 with the whole document, or 503"
for i in 1 2 3 4 5 6; do
  curl -sS --max-time 30 -o "$T/par$i" -w '%{http_code}\n' "$URL/status.json" > "$T/code$i" &
done
wait $(jobs -p | grep -v "^$WRITER_PID$" | grep -v "^$RUN_PID$")
ok=0
for i in 1 2 3 4 5 6; do
  case $(cat "$T/code$i") in
    200) jq -e '.files | length == 64' "$T/par$i" > /dev/null || fail "answer $i is not the whole document"; ok=$((ok + 1)) ;;
    503) assert_contains "$T/par$i" "busy" ;;
    *) fail "answer $i: HTTP $(cat "$T/code$i")" ;;
  esac
done
[ "$ok" -ge 1 ] || fail "no request got the document"

say "the writer stops; caught up, the page and /status.json give status's numbers"
kill "$WRITER_PID"
wait "$WRITER_PID" 2>/dev/null || true
caught_up() {
  status_quiet "$S" && [ "$(jq '[.files[].pending] | add' "$T/st.json")" = 0 ]
}
wait_for 60 caught_up
sleep 0.5
status_json "$S"
curl -sS --max-time 30 --retry 5 -o "$T/page.json" "$URL/status.json"
jq -S '.files' "$T/status.json" > "$T/want.files"
jq -S '.files' "$T/page.json" > "$T/got.files"
assert_file_eq "$T/want.files" "$T/got.files"
curl -sS --max-time 30 --retry 5 -o "$T/page.html" "$URL/"
for p in "$D/a.log" "$D/b.log"; do
  sz=$(jq -r --arg p "$p" '.files[] | select(.path == $p) | .size' "$T/status.json")
  bm=$(jq -r --arg p "$p" '.files[] | select(.path == $p) | .bookmark' "$T/status.json")
  assert_eq "$sz" "$(fsize "$p")" "size of $p"
  assert_contains "$T/page.html" "<tr><td>0</td><td>$bm</td><td>$sz</td><td>-</td><td class=\"p\">active</td><td class=\"p\">$p</td></tr>"
done
assert_contains "$T/page.html" "files 64, 0 behind, 0 pending"
assert_contains "$T/page.html" "dead letters $(jq .dead_letters "$T/status.json")  lost files $(jq .lost_files "$T/status.json")"

say "other paths: 404 naming the pages"
assert_eq "$(curl -s -o "$T/nf" -w '%{http_code}' "$URL/nope")" 404 "GET /nope"
assert_contains "$T/nf" "try /, /status.json or /metrics"

say "no child process is left"
wait_for 10 bash -c "[ -z \"\$(ps -o pid= --ppid $RUN_PID)\" ]"
stop_bg "$RUN_PID"
assert_eq "$STOP_RC" 0 "run's exit status"
assert_no_sanitizer "$T/run.err"
pass
