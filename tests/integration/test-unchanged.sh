#!/usr/bin/env bash
# A file whose size, mtime and inode match the store is not opened at all on a
# nothing-new run; a changed one is; special files are never opened. Seen
# through strace (skipped when strace is not available).
source "$(dirname "$0")/lib.sh"

have_strace || skip "strace is not installed or cannot trace here"

D=$T/d; S=$T/state
mkdir -p "$D/sub"
RD=$(realpath "$D")
for i in $(seq 1 200); do printf 'file %d\n' "$i" > "$D/sub/f$i.log"; done
printf 'keep\n' > "$D/a.log"
mkfifo "$D/pipe.log"

traced() {   # traced OUT ARGS...: tidemark ARGS under strace, opens to OUT
  local out=$1; shift
  # (LeakSanitizer cannot run under ptrace: off here in sanitizer builds.)
  assert_exit 0 env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=open,openat,openat2 -o "$out" "$TIDEMARK" "$@"
}
opened() { grep -F -- "\"$RD/" "$1" | grep -v ENOENT | grep -v 'O_DIRECTORY' || true; }

say "first run opens the files (sanity check of the tracing)"
traced "$T/t1" once -s "$S" "$D"
n1=$(opened "$T/t1" | wc -l)
[ "$n1" -ge 201 ] || fail "first run opened only $n1 files under $RD (strace sees nothing?)"

say "nothing new: none of the 201 tracked files is opened"
traced "$T/t2" once -s "$S" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered by a nothing-new run"
opened "$T/t2" > "$T/o2"
assert_eq "$(wc -l < "$T/o2")" 0 "files opened by a nothing-new run: $(head -n 3 "$T/o2")"

say "one file appended: only that file is opened"
printf 'more\n' >> "$D/sub/f7.log"
traced "$T/t3" once -s "$S" "$D"
printf 'more\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"
opened "$T/t3" > "$T/o3"
assert_eq "$(wc -l < "$T/o3")" 1 "files opened: $(cat "$T/o3")"
assert_contains "$T/o3" "f7.log"

say "the FIFO was never opened by any run"
cat "$T/t1" "$T/t2" "$T/t3" | grep -F 'pipe.log' > "$T/fifo-opens" || true
assert_eq "$(wc -l < "$T/fifo-opens")" 0 "opens of the FIFO: $(cat "$T/fifo-opens")"

pass
