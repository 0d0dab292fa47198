#!/usr/bin/env bash
# Whole mode with the exec processor and hostile file names (spaces, a
# newline, $(...), `...`, ';', quotes, '|&<>', a tab, non-ASCII, a byte that is
# not UTF-8, a hostile directory name): every file is handled, the handler gets
# the exact path as its last argument and in TIDEMARK_PATH, the extra
# arguments of cmd= arrive literally, and nothing is run by a shell (no PWNED
# file anywhere; under strace, no execve of a shell at all).
source "$(dirname "$0")/lib.sh"

D="$T/drop dir; \$(touch PWNED_DIR)"
S=$T/state; LOG=$T/handled
mkdir -p "$D/sub \`touch PWNED_SUB\`"
cd "$T"   # anything executed by accident would land here
make_handler "$T/handler.sh" "$LOG"
# argv.sh logs every argument it got (hex, one line per call), then runs the
# handler with them
cat > "$T/argv.sh" <<ARGV
#!/bin/sh
line=
for a; do line="\$line \$(printf '%s' "\$a" | od -An -v -tx1 | tr -d ' \\n')"; done
printf '%s\\n' "\$line" >> '$T/argv'
exec '$T/handler.sh' "\$@"
ARGV
chmod +x "$T/argv.sh"

names=(
  "with space.csv"
  $'new\nline.csv'
  '$(touch PWNED).csv'
  '`touch PWNED2`.csv'
  'semi;colon;touch PWNED3.csv'
  "quo'te\"s.csv"
  '-dash.csv'
  '--help'
  'back\slash\n.csv'
  $'tab\tchar.csv'
  'ünïcødé.csv'
  'star*and?[x].csv'
  '|pipe&amp>redir<.csv'
  ' leading and trailing space '
  "sub \`touch PWNED_SUB\`/nested \$(touch PWNED4).csv"
  $'caf\xe9\xff.csv'
)
: > "$T/want"
i=0
for n in "${names[@]}"; do
  i=$((i + 1))
  printf 'content %02d of a hostile name\n' "$i" > "$D/$n"
  want_entry "$D/$n" >> "$T/want"
done
echo "created ${#names[@]} files with hostile names"

# cmd= with two extra arguments that a shell would run
ARG1='$(id>PWNED_ARG)'; ARG2=';id>PWNED_ARG2'
P="exec:cmd=$T/argv.sh $ARG1 $ARG2"
say "once -m whole -p '$P'"
if have_strace; then
  # (LeakSanitizer cannot run under ptrace: a sanitizer build leaves leaks
  # to the other tests here)
  assert_exit 0 env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -s 4096 -e trace=execve -o "$T/trace" "$TIDEMARK" once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
else
  echo "  (strace cannot trace here: the execve check is left out)"
  tdm once -m whole --settle-ms 100 -s "$S" -p "$P" "$D"
fi

say "every file handled once, under its exact path (argument and TIDEMARK_PATH)"
assert_handled_once "$LOG" "$T/want" "hostile names"
bad=$(awk '$7 != 3' "$LOG" | sed -n 1,3p)
assert_eq "$bad" "" "calls that did not get 3 arguments (2 from cmd= + the path)"

say "the extra arguments of cmd= arrive literally, before the path"
awk '{ print $1, $2 }' "$T/argv" | sort -u > "$T/args.got"
printf '%s %s\n' "$(hexstr "$ARG1")" "$(hexstr "$ARG2")" > "$T/args.want"
assert_file_eq "$T/args.got" "$T/args.want" "the first two arguments of every call"

say "status: each file done under its exact name"
status_json "$S"
for n in "${names[@]}"; do
  case "$n" in caf*) continue ;; esac   # not UTF-8: its JSON spelling is the product's choice
  assert_eq "$(jfile state "$D/$n")" done "state of $(printf '%q' "$n")"
done
assert_eq "$(jstate_count done)" "${#names[@]}" "files done"

say "nothing was executed by a shell"
found=$( { find "$T" -name 'PWNED*'; find / -maxdepth 1 -name 'PWNED*'; find "$HOME" -maxdepth 1 -name 'PWNED*'; } 2>/dev/null)
assert_eq "$found" "" "files created by executed names or arguments"
if [ -e "$T/trace" ]; then
  # execve of a shell (sh -c ...) by tidemark; the #!/bin/sh handler itself
  # shows as execve of its own path
  shells=$(grep -E 'execve\("[^"]*/(sh|bash|dash|zsh|busybox)"' "$T/trace" | head -n 5 || true)
  assert_eq "$shells" "" "execve of a shell while handling"
  n=$(grep -cE "execve\\(\"$T/argv.sh\"" "$T/trace" || true)
  assert_eq "$n" "${#names[@]}" "execve calls of argv.sh seen by strace"
fi

pass
