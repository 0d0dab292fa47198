#!/usr/bin/env bash
# Compressed files (--decompress auto): gzip, zstd and a gzip file without
# a suffix are read as text (by their magic bytes); a tracked log that is
# gzipped continues from its bookmark (nothing twice, its unread tail read
# from the .gz); corrupt and truncated data are named with their offset and
# counted, everything before them delivered in whole lines; whole mode
# hashes the uncompressed content, so a drop and its .gz are duplicates;
# --decompress never reads the bytes as they are.
source "$(dirname "$0")/lib.sh"
command -v zstd >/dev/null || skip "zstd is not installed"

D=$T/logs; S=$T/state; OUT=$T/out
mkdir -p "$D"
old() { touch -d '-10 sec' "$@"; }

say "gzip, zstd, and gzip with no suffix: text"
gen_lines 1 20000 > "$T/a"; gzip -c "$T/a" > "$D/a.log.gz"
gen_lines 20001 30000 > "$T/b"; zstd -q -c "$T/b" > "$D/b.log.zst"
gen_lines 30001 30500 > "$T/c"; gzip -c "$T/c" > "$D/c-no-suffix"
# two gzip members in a row (cat a.gz b.gz) are one stream, as for zcat
gen_lines 30501 31000 > "$T/d1"; gen_lines 31001 31500 > "$T/d2"
{ gzip -c "$T/d1"; gzip -c "$T/d2"; } > "$D/d.log.gz"
old "$D"/*
tdm once -s "$S" -p "file:path=$OUT" "$D"
cat "$T/a" "$T/b" "$T/c" "$T/d1" "$T/d2" > "$T/want1"
assert_lines_once "$T/want1" "$OUT" "decompressed output"
status_json "$S"
assert_eq "$(jfile bookmark "$D/a.log.gz")" "$(fsize "$T/a")" "bookmark of a.log.gz (uncompressed bytes)"
tdm once -s "$S" -p "file:path=$OUT" "$D"
assert_lines_once "$T/want1" "$OUT" "a second once delivers nothing"

say "a tracked log gzipped: continues from its bookmark, tail read from the .gz"
rm -f "$D"/*; OUT=$T/out2
gen_lines 40001 45000 > "$D/app.log"
tdm once -s "$S" -p "file:path=$OUT" "$D"
gen_lines 45001 46000 >> "$D/app.log"        # never read as plain text
gzip "$D/app.log"; old "$D/app.log.gz"
tdm once -v -s "$S" -p "file:path=$OUT" "$D"
assert_contains "$STDERR" "continues from its bookmark"
gen_lines 40001 46000 > "$T/want2"
assert_lines_once "$T/want2" "$OUT" "plain, then its .gz"
status_json "$S"
assert_eq "$(jfile state "$D/app.log")" "" "a record of the plain file after it became its .gz"
assert_eq "$(jfile bookmark "$D/app.log.gz")" "$(fsize "$T/want2")" "bookmark of app.log.gz"

say "a log gzipped while tidemark was down, the .gz still young at the next run: once waits for it"
rm -rf "$D" "$S"; mkdir -p "$D"; OUT=$T/out6
gen_lines 80001 83000 > "$D/web.log.1"
tdm once -s "$S" -p "file:path=$OUT" "$D"
gen_lines 83001 83200 >> "$D/web.log.1"
gzip "$D/web.log.1"; touch "$D/web.log.1.gz"
tdm once -v -s "$S" -p "file:path=$OUT" "$D"   # the plain file is gone: a ghost, until the .gz settles
assert_contains "$STDERR" "continues from its bookmark"
gen_lines 80001 83200 > "$T/want6"
assert_lines_once "$T/want6" "$OUT" "plain, then its .gz once it settled"
status_json "$S"
assert_eq "$(jfile state "$D/web.log.1")" "" "the ghost after its .gz took over"

say "a new file given the inode of a plain file gzipped while tidemark was down"
rm -rf "$D" "$S"; mkdir -p "$D"; OUT=$T/out5
gen_lines 60001 64000 > "$D/app.log.1"
tdm once -s "$S" -p "file:path=$OUT" "$D"
ino=$(stat -c %i "$D/app.log.1")
gen_lines 64001 64500 >> "$D/app.log.1"
gzip "$D/app.log.1"; touch "$D/app.log.1.gz"  # app.log.1's inode is free now;
# the .gz is young: the first once leaves it for later, so the new app.log is
# met first, in the inode of the record the .gz must continue
got=""
for i in $(seq 1 200); do                     # a new app.log in that inode
  : > "$D/new.$i"
  if [ "$(stat -c %i "$D/new.$i")" = "$ino" ]; then mv "$D/new.$i" "$D/app.log"; got=1; break; fi
done
rm -f "$D"/new.*
if [ -n "$got" ]; then
  gen_lines 70001 70100 > "$D/app.log.tmp"; cat "$D/app.log.tmp" >> "$D/app.log"; rm "$D/app.log.tmp"
  tdm once -v -s "$S" -p "file:path=$OUT" "$D"
  old "$D/app.log.1.gz"
  tdm once -v -s "$S" -p "file:path=$OUT" "$D"
  { gen_lines 60001 64500; gen_lines 70001 70100; } > "$T/want5"
  assert_lines_once "$T/want5" "$OUT" "the .gz continues app.log.1, the new app.log from 0"
else
  echo "  (the filesystem did not hand the inode out again: part skipped)"
fi

say "corrupt and truncated data: named with the offset, counted, nothing of an unverified member delivered"
rm -f "$D"/*; OUT=$T/out3; rm -rf "$S"
# four gzip members; the damage lies in the third: exactly the first two
# members' lines arrive (corrupt data may inflate to plausible lines before
# the CRC-32 fails: none of those)
# (two files of different lines: the same head would make the second a
# copy of the first, continuing from its bookmark)
for k in 1 2 3 4; do
  gen_lines $((50001 + (k - 1) * 10000)) $((50000 + k * 10000)) > "$T/e$k"; gzip -c "$T/e$k" > "$T/e$k.gz"
  gen_lines $((150001 + (k - 1) * 10000)) $((150000 + k * 10000)) > "$T/f$k"; gzip -c "$T/f$k" > "$T/f$k.gz"
done
cat "$T"/e[1234].gz > "$T/e.gz"; cat "$T"/f[1234].gz > "$T/f.gz"
cat "$T/e1" "$T/e2" > "$T/e12"; cat "$T/f1" "$T/f2" > "$T/f12"
ebefore=$(( $(fsize "$T/e1.gz") + $(fsize "$T/e2.gz") ))
fbefore=$(( $(fsize "$T/f1.gz") + $(fsize "$T/f2.gz") ))
head -c $(( ebefore + $(fsize "$T/e3.gz") / 2 )) "$T/e.gz" > "$D/trunc.gz"
cp "$T/f.gz" "$D/corrupt.gz"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$D/corrupt.gz" bs=1 seek=$(( fbefore + $(fsize "$T/f3.gz") / 3 )) conv=notrunc status=none
old "$D"/*
assert_exit 1 "$TIDEMARK" once -s "$S" -p "file:path=$OUT" "$D"
assert_contains "$STDERR" "$D/trunc.gz: truncated gzip data at compressed offset $ebefore (a member cut short): none of it delivered"
assert_contains "$STDERR" "$D/corrupt.gz: corrupt gzip data at compressed offset $fbefore (a member that fails its check): none of it delivered"
cat "$T/e12" "$T/f12" | sort > "$T/w3s"; sort "$OUT" > "$T/o3s"
cmp -s "$T/w3s" "$T/o3s" || fail "delivered: not exactly the first two members of each file ($(lines_in "$OUT") lines, $(lines_in "$T/w3s") expected)"
status_json "$S"
assert_eq "$(jfile bookmark "$D/trunc.gz")" "$(fsize "$T/e12")" "bookmark of trunc.gz (the end of the verified members)"
assert_eq "$(jfile bookmark "$D/corrupt.gz")" "$(fsize "$T/f12")" "bookmark of corrupt.gz"
assert_exit 0,1 "$TIDEMARK" once -s "$S" -p "file:path=$OUT" "$D"
assert_eq "$(lines_in "$OUT")" "$(lines_in "$T/w3s")" "a second once delivers nothing more"

say "zstd: a frame whose checksum fails and a frame without a checksum are not delivered"
rm -f "$D"/*; OUT=$T/outz; rm -rf "$S"
zstd -q -c "$T/e1" > "$T/z1"; zstd -q -c "$T/e2" > "$T/z2"
cat "$T/z1" "$T/z2" > "$D/bad.zst"
# flip the last byte of the second frame: its content checksum
printf '\x00' | dd of="$D/bad.zst" bs=1 seek=$(( $(fsize "$D/bad.zst") - 1 )) conv=notrunc status=none
zstd -q -c "$T/f1" > "$T/y1"
{ cat "$T/y1"; zstd -q -c --no-check "$T/f2"; } > "$D/nocheck.zst"
old "$D"/*
assert_exit 1 "$TIDEMARK" once -s "$S" -p "file:path=$OUT" "$D"
assert_contains "$STDERR" "$D/bad.zst: corrupt zstd data at compressed offset $(fsize "$T/z1") (a frame that fails its check)"
assert_contains "$STDERR" "$D/nocheck.zst: zstd frame without a checksum at compressed offset $(fsize "$T/y1"): it cannot be verified"
cat "$T/e1" "$T/f1" > "$T/want5"
sort "$T/want5" > "$T/w5s"; sort "$OUT" > "$T/o5s"
cmp -s "$T/w5s" "$T/o5s" || fail "delivered: not exactly the first frame of each file ($(lines_in "$OUT") lines)"

say "pzstd output (a skippable frame first) is zstd"
rm -f "$D"/*; OUT=$T/outp; rm -rf "$S"
command -v pzstd >/dev/null || skip "pzstd is not installed"
pzstd -q "$T/e1" -o "$D/p.zst"; old "$D/p.zst"
tdm once -s "$S" -p "file:path=$OUT" "$D"
assert_file_eq "$OUT" "$T/e1"

say "whole mode: a drop and its .gz are duplicates"
W=$T/drop; WS=$T/wstate; mkdir -p "$W"
gen_lines 1 3000 > "$W/x.csv"; gzip -c "$W/x.csv" > "$W/x.csv.gz"; zstd -q -c "$W/x.csv" -o "$W/x.csv.zst"
old "$W"/*
tdm once -m whole --settle-ms 100 -s "$WS" -p "file:path=$T/wout" "$W"
assert_file_eq "$W/x.csv" "$T/wout"
status_json "$WS"
n_done=$(jq '[.files[] | select(.state == "done")] | length' "$T/status.json")
n_dup=$(jq '[.files[] | select(.state == "duplicate")] | length' "$T/status.json")
assert_eq "$n_done/$n_dup" "1/2" "done/duplicate among x.csv, x.csv.gz, x.csv.zst"

say "fresh compressed files (just written): once waits for them to settle and reads them"
F=$T/fresh; mkdir -p "$F"; rm -rf "$T/fstate"
gen_lines 1 15000 > "$T/f1"; gzip -c "$T/f1" > "$F/a.gz"
gen_lines 15001 30000 > "$T/f2"; zstd -q -c "$T/f2" > "$F/b.zst"
gen_lines 30001 45000 > "$T/f3"; gzip -c "$T/f3" > "$F/c"
tdm once -s "$T/fstate" -p "file:path=$T/fout" "$F"
cat "$T/f1" "$T/f2" "$T/f3" > "$T/fwant"
assert_lines_once "$T/fwant" "$T/fout" "fresh compressed files after one once"

say "--decompress never: the bytes as they are"
rm -rf "$S"; OUT=$T/out4; rm -f "$D"/*
cp "$T/e.gz" "$D/raw.gz"; old "$D/raw.gz"
tdm once --decompress never --records bytes -s "$S" -p "file:path=$OUT" "$D"
assert_file_eq "$T/e.gz" "$OUT"
assert_exit 2 "$TIDEMARK" once --decompress sometimes -s "$S" "$D"
assert_contains "$STDERR" "--decompress"
pass
