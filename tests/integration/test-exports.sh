#!/usr/bin/env bash
# libtidemark.so exports exactly what include/tidemark.h declares TDM_EXTERN:
# nothing internal (tdm__*, tdm_store_*, tdm_registry_*) leaks into the ABI.
source "$(dirname "$0")/lib.sh"

[ -n "${TDM_LIB:-}" ] && [ -f "$TDM_LIB" ] || fail "TDM_LIB (libtidemark.so) not set"
header="$(dirname "$0")/../../watcher/include/tidemark.h"

say "the public declarations"
grep -v '^#' "$header" | tr '\n' ' ' | grep -oE 'TDM_EXTERN [a-z_0-9 *]+\(' |
  sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort -u > "$T/declared"
[ "$(wc -l < "$T/declared")" -ge 10 ] || fail "found only $(wc -l < "$T/declared") declarations"

say "the exported symbols"
nm -D --defined-only "$TDM_LIB" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u > "$T/exported"

if ! diff -u "$T/declared" "$T/exported" > "$T/diff"; then
  cat "$T/diff"
  fail "libtidemark.so exports differ from the TDM_EXTERN declarations"
fi

say "a soname"
grep -q 'SONAME *libtidemark\.so\.0' <<<"$(objdump -p "$TDM_LIB")" || fail "no soname libtidemark.so.0"
pass
