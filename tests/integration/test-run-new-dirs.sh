#!/usr/bin/env bash
# `tidemark run` (inotify): directories created after the start are watched.
#   - a file three levels deep under directories made after the start is
#     delivered within a few seconds, and so is a later append to it (the new
#     directory's own watch works, not only the scan that found it);
#   - 20 races: a directory tree made and a file written in it at once, before
#     tidemark can have added the watch (the watch must come before the scan);
#   - a directory tree moved into the source from outside, files already in it;
#   - a new file in a directory that existed at the start;
#   - a directory renamed inside the tree: appends after the rename are
#     delivered once (its files are the same files, not new ones);
#   - a directory deleted and made again at the same path: watched again;
#   - a second source directory deleted and made again, a third one moved away
#     and made again: watched again each time (within a few seconds, not at
#     the 60 s safety-net sweep).
# Every line exactly once in the `file` processor's output.
source "$(dirname "$0")/lib.sh"

D=$T/d; D2=$T/d2; D3=$T/d3; S=$T/state; OUT=$T/out
mkdir -p "$D/old" "$D2" "$D3"
printf 'ready\n' > "$D/ready.log"
printf 'second source\n' > "$D2/s.log"
printf 'third source\n' > "$D3/s.log"
run_bg "$T/run.out" -s "$S" -p "file:path=$OUT" --checkpoint-ms 100 "$D" "$D2" "$D3"
wait_lines "$OUT" 3 15 "$RUN_PID"
n=3

# deliver LABEL: wait (5 s) until OUT holds $n lines; print how long it took.
deliver() { wait_delivered "$OUT" "$n" 5 "$RUN_PID" "$1 (checkpoints every 100 ms)"; }

say "a file three levels deep in directories made after the start"
mkdir -p "$D/a/b/c"
printf 'deep line 1\n' > "$D/a/b/c/f.log"; n=$((n + 1))
deliver "a/b/c/f.log"
printf 'deep line 2\ndeep line 3\n' >> "$D/a/b/c/f.log"; n=$((n + 2))
deliver "append to a/b/c/f.log"
printf 'deep sibling\n' > "$D/a/b/c/g.log"; n=$((n + 1))
deliver "new file a/b/c/g.log"

say "20 races: mkdir -p three levels and write a file in it at once"
for i in $(seq 1 20); do
  mkdir -p "$D/race$i/x/y" && printf 'race %d\n' "$i" > "$D/race$i/x/y/f.log"
  printf 'race %d top\n' "$i" > "$D/race$i/top.log"
done
n=$((n + 40))
deliver "20 raced trees"

say "a directory tree moved into the source, its files already written"
mkdir -p "$T/outside/m/n"
printf 'moved 1\n' > "$T/outside/m/one.log"
printf 'moved 2\n' > "$T/outside/m/n/two.log"
mv "$T/outside/m" "$D/m"; n=$((n + 2))
deliver "moved-in tree"
printf 'moved 3\n' >> "$D/m/n/two.log"; n=$((n + 1))
deliver "append in the moved-in tree"

say "a new file in a directory that existed at the start"
printf 'old dir\n' > "$D/old/new.log"; n=$((n + 1))
deliver "old/new.log"

say "a directory renamed inside the tree: its files keep their bookmarks"
mv "$D/a" "$D/renamed"
printf 'deep line 4\n' >> "$D/renamed/b/c/f.log"; n=$((n + 1))
deliver "append after the directory rename"
printf 'in renamed\n' > "$D/renamed/b/new.log"; n=$((n + 1))
deliver "new file in the renamed directory"

say "a directory deleted and made again at the same path"
rm -rf "$D/race1"
mkdir -p "$D/race1/x"
printf 'race 1 again\n' > "$D/race1/x/again.log"; n=$((n + 1))
deliver "file in the remade directory"
printf 'race 1 again 2\n' >> "$D/race1/x/again.log"; n=$((n + 1))
deliver "append in the remade directory"

say "a source directory deleted and made again"
rm -rf "$D2"
sleep 0.2
mkdir "$D2"
printf 'second source again\n' > "$D2/s2.log"; n=$((n + 1))
deliver "file in the remade source directory"
printf 'second source again 2\n' >> "$D2/s2.log"; n=$((n + 1))
deliver "append in the remade source directory"

say "a source directory moved away and made again"
mv "$D3" "$T/d3.moved"
sleep 0.2
mkdir "$D3"
printf 'third source after move\n' > "$D3/s1.log"; n=$((n + 1))
deliver "file in the source directory made again after a move"

say "SIGTERM: exit 0; every line exactly once"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"
find "$D" "$D2" "$D3" -type f -exec cat {} + > "$T/want"
# files deleted after delivery
printf 'race 1\nrace 1 top\nsecond source\n' >> "$T/want"
cat "$T/d3.moved/s.log" >> "$T/want"
assert_eq "$(lines_in "$T/want")" "$n" "lines written by the test"
assert_lines_once "$T/want" "$OUT"
assert_no_sanitizer "$T/run.err"

pass
