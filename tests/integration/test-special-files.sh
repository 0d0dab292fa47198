#!/usr/bin/env bash
# FIFOs, sockets and devices are skipped and never opened (a FIFO without a
# writer would block an open forever); symlinks are not followed; the regular
# files beside them are delivered.
source "$(dirname "$0")/lib.sh"

D=$T/d; S=$T/state
mkdir -p "$D/sub" "$T/outside/dir"
printf 'regular 1\n' > "$D/reg.log"
printf 'regular 2\n' > "$D/sub/reg2.log"
printf 'outside file\n' > "$T/outside/target.log"
printf 'outside dir file\n' > "$T/outside/dir/x.log"

mkfifo "$D/fifo"
mkfifo "$D/sub/fifo.log"
kinds="fifo"
if python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$D/sock" 2>/dev/null; then
  kinds="$kinds socket"
fi
if mknod "$D/zerodev" c 1 5 2>/dev/null; then kinds="$kinds char-device"; fi
if mknod "$D/blockdev" b 7 0 2>/dev/null; then kinds="$kinds block-device"; fi
ln -s "$T/outside/target.log" "$D/link.log"
ln -s "$T/outside/dir" "$D/linkdir"
ln -s "$D/reg.log" "$D/self-link.log"
ln -s "$T/nowhere" "$D/dangling.log"
echo "special files present: $kinds, symlinks (file, dir, dangling)"

say "once completes (does not hang on the FIFOs) and delivers only regular files"
# A hang would be killed by assert_exit's timeout and reported as a failure.
TDM_CMD_TIMEOUT=30 assert_exit 0 "$TIDEMARK" once -s "$S" "$D"
printf 'regular 1\nregular 2\n' > "$T/want"
sort "$STDOUT" > "$T/got"
assert_file_eq "$T/got" "$T/want"

say "the store tracks only the two regular files"
status_json "$S"
jq -r '.files[].path' "$T/status.json" | sort > "$T/got"
printf '%s\n' "$D/reg.log" "$D/sub/reg2.log" | sort > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "including the special files by name still never opens them"
TDM_CMD_TIMEOUT=30 assert_exit 0 "$TIDEMARK" once -s "$T/state2" -i 'fifo*' -i 'sock' -i '*dev' -i '*link*' -i 'dangling.log' "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered from special files and symlinks"

say "a FIFO that has a writer is still not read"
# Keep a writer on the FIFO so that an open would succeed and data would flow.
( exec 3>"$D/fifo"; printf 'from the fifo\n' >&3; exec sleep 20 ) >/dev/null 2>&1 &
TDM_BG_PIDS+=($!)
TDM_CMD_TIMEOUT=30 assert_exit 0 "$TIDEMARK" once -s "$T/state3" "$D"
assert_not_contains "$STDOUT" "from the fifo"
sort "$STDOUT" > "$T/got"
printf 'regular 1\nregular 2\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "appending to the regular files afterwards works as usual"
printf 'regular 1b\n' >> "$D/reg.log"
TDM_CMD_TIMEOUT=30 assert_exit 0 "$TIDEMARK" once -s "$S" "$D"
printf 'regular 1b\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "a DIR that is a symlink to a directory is followed (the root only)"
ln -s "$D" "$T/root-link"
tdm once -s "$T/state4" "$T/root-link"
sort "$STDOUT" > "$T/got"
printf 'regular 1\nregular 1b\nregular 2\n' > "$T/want"
assert_file_eq "$T/got" "$T/want"
say "the files read through the symlinked root are the same files as through the real path"
tdm once -s "$T/state4" "$D"
assert_eq "$(fsize "$STDOUT")" 0 "bytes delivered again through the real path"

pass
