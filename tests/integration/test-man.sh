#!/usr/bin/env bash
# Man pages: tidemark(1) and tidemark.conf(5), built from scdoc, render with
# `man -l`; every long option `tidemark --help` prints is in tidemark(1), and
# every key the INI file accepts is in tidemark.conf(5).
source "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$TIDEMARK")
command -v scdoc >/dev/null || fail "scdoc is required (Debian: scdoc)"
command -v man >/dev/null || fail "man is required (Debian: man-db)"
for p in tidemark.1 tidemark.conf.5; do
  [ -s "$BUILD/man/$p" ] || fail "$BUILD/man/$p was not built"
done

render() {
  # No hyphenation tricks, no line breaks inside option names: a wide page in
  # ASCII, overstrikes removed.
  LC_ALL=C MANWIDTH=1000 man -l "$1" 2>"$T/man.err" | col -b > "$2"
  [ ! -s "$T/man.err" ] || { cat "$T/man.err" >&2; fail "man -l $1 complains"; }
}

say "tidemark(1) renders, with its sections"
render "$BUILD/man/tidemark.1" "$T/tidemark.1.txt"
for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES; do
  grep -q "^$s" "$T/tidemark.1.txt" || fail "tidemark(1) has no section $s"
done
for cmd in run once status reset processors; do
  grep -qE "^ +tidemark $cmd" "$T/tidemark.1.txt" || fail "tidemark(1) SYNOPSIS lacks '$cmd'"
done

say "every long option of --help is in tidemark(1)"
assert_exit 0 "$TIDEMARK" --help
grep -oE -- '--[a-z][a-z-]+' "$STDOUT" | sort -u > "$T/options"
[ "$(wc -l < "$T/options")" -gt 15 ] || fail "too few options found in --help"
missing=()
while read -r o; do
  grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" "$T/tidemark.1.txt" || missing+=("$o")
done < "$T/options"
[ ${#missing[@]} -eq 0 ] || fail "tidemark(1) lacks: ${missing[*]}"

say "tidemark.conf(5) renders and names every INI key"
render "$BUILD/man/tidemark.conf.5" "$T/conf.5.txt"
for s in NAME DESCRIPTION KEYS ERRORS EXAMPLE; do
  grep -q "^$s" "$T/conf.5.txt" || fail "tidemark.conf(5) has no section $s"
done
# The keys: each one is accepted by the parser (a file with only that key
# parses, or fails on its value, never as an unknown key) and documented.
for k in dir state mode processor include exclude no-recursive from-end records \
         max-record settle-ms checkpoint-ms poll-ms plugin-dir metrics \
         metrics-file progress verbose quiet; do
  printf '%s = x\n' "$k" > "$T/one.conf"
  assert_exit 0,1,2 "$TIDEMARK" status -c "$T/one.conf" -s "$T/nostate"
  assert_not_contains "$STDERR" "unknown key"
  grep -qE "(^|[^a-z-])$k( =|,)" "$T/conf.5.txt" || fail "tidemark.conf(5) does not document key '$k'"
done

pass
