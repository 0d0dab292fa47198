#!/usr/bin/env bash
# Plugins from --plugin-dir: the template plugin loads through dlopen and
# prefixes every line; a plugin with a wrong ABI, a too-small descriptor, no
# entry symbol, a NULL descriptor, a duplicate name, or a file that is not a
# shared object is skipped with a warning naming the file, and no crash: the
# built-ins still run (`once -p count`), and naming the skipped processor is
# an unknown processor (exit 2). A plugin's summary is printed escaped.
source "$(dirname "$0")/lib.sh"

[ -n "$TDM_PLUGIN_DIR" ] && [ -f "$TDM_PLUGIN_DIR/template.so" ] ||
  fail "template.so not found in TDM_PLUGIN_DIR=$TDM_PLUGIN_DIR"
[ -n "$TDM_TEST_PLUGINS" ] && [ -d "$TDM_TEST_PLUGINS" ] ||
  fail "test plugins not found in TDM_TEST_PLUGINS=$TDM_TEST_PLUGINS"

D=$T/d
mkdir -p "$D"
gen_lines 1 5000 > "$D/a.log"
printf 'x\n\ny\n' > "$D/b.log"

say "processors --plugin-dir lists the template plugin"
assert_exit 0 "$TIDEMARK" processors --plugin-dir "$TDM_PLUGIN_DIR"
assert_contains "$STDOUT" "template"
assert_contains "$STDOUT" "count"

say "template:prefix=STR prefixes every line, nothing else changes"
tdm once -s "$T/s1" --plugin-dir "$TDM_PLUGIN_DIR" -i a.log -p 'template:prefix=[app] ' "$D"
sed 's/^/[app] /' "$D/a.log" > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "template default prefix, empty lines, a second instance beside stdout"
tdm once -s "$T/s2" --plugin-dir "$TDM_PLUGIN_DIR" -i b.log -p template -p 'template:prefix=2: ' "$D"
# Two instances each print every line; their interleaving is per chunk.
sort "$STDOUT" > "$T/got"
printf '> x\n> \n> y\n2: x\n2: \n2: y\n' | sort > "$T/want"
assert_file_eq "$T/got" "$T/want"

say "appends reach the plugin once"
printf 'z\n' >> "$D/b.log"
tdm once -s "$T/s2" --plugin-dir "$TDM_PLUGIN_DIR" -i b.log -p 'template:prefix=P' "$D"
printf 'Pz\n' > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

say "a plugin processor without --plugin-dir is unknown: exit 2"
assert_exit 2 "$TIDEMARK" once -s "$T/s3" -p template "$D"
assert_contains "$STDERR" "template"

say "the good test plugin loads and runs"
assert_exit 0 "$TIDEMARK" processors --plugin-dir "$TDM_TEST_PLUGINS/good"
grep -qw good "$STDOUT" || fail "processors does not list 'good': $(cat "$STDOUT")"
tdm once -s "$T/s4" --plugin-dir "$TDM_TEST_PLUGINS/good" -p good -p count "$D"
assert_contains "$STDOUT" "bytes=$(cat "$D/a.log" "$D/b.log" | wc -c)"

refused() {   # refused NAME: NAME.so in the plugin dir is skipped, with a warning
  local name=$1 dir=$2
  say "plugin $name: skipped with a warning naming $name.so (once and processors)"
  [ -f "$dir/$name.so" ] || fail "test plugin $dir/$name.so is missing"
  assert_exit 0 "$TIDEMARK" once -s "$T/s-$name" --plugin-dir "$dir" -p count "$D"
  assert_contains "$STDERR" "warning"
  assert_contains "$STDERR" "$name.so"
  assert_contains "$STDOUT" "bytes=$(cat "$D/a.log" "$D/b.log" | wc -c)"
  assert_exit 0 "$TIDEMARK" processors --plugin-dir "$dir"
  assert_contains "$STDERR" "$name.so"
  assert_contains "$STDOUT" "count"
}
refused bad_abi "$TDM_TEST_PLUGINS/bad_abi"
assert_contains "$STDERR" "ABI"
refused too_small "$TDM_TEST_PLUGINS/too_small"
refused no_symbol "$TDM_TEST_PLUGINS/no_symbol"
[ -f "$TDM_TEST_PLUGINS/null_entry/null_entry.so" ] && refused null_entry "$TDM_TEST_PLUGINS/null_entry"
[ -f "$TDM_TEST_PLUGINS/dup_name/dup_name.so" ] && refused dup_name "$TDM_TEST_PLUGINS/dup_name"

say "two copies of one plugin in a dir: duplicate name refused, naming a file"
mkdir -p "$T/dups"
cp "$TDM_PLUGIN_DIR/template.so" "$T/dups/template.so"
cp "$TDM_PLUGIN_DIR/template.so" "$T/dups/template-copy.so"
assert_exit 0 "$TIDEMARK" once -s "$T/s-dups" --plugin-dir "$T/dups" -p count "$D"
grep -qE 'template(-copy)?\.so' "$STDERR" || fail "duplicate plugin message names no file: $(cat "$STDERR")"

say "a processor whose plugin was skipped is unknown: exit 2 naming it"
assert_exit 2 "$TIDEMARK" once -s "$T/s-junkp" --plugin-dir "$TDM_TEST_PLUGINS/bad_abi" -p bad_abi "$D"
assert_contains "$STDERR" "bad_abi.so"
assert_contains "$STDERR" "unknown processor"

say "a plugin's summary is printed escaped"
assert_exit 0 "$TIDEMARK" processors --plugin-dir "$TDM_TEST_PLUGINS/odd_summary"
assert_contains "$STDOUT" 'line one\nFORGED'
assert_contains "$STDOUT" '\x1b[31mred'
if grep -q $'\x1b' "$STDOUT"; then fail "a raw ESC byte in the processors table"; fi
assert_eq "$(grep -c FORGED "$STDOUT")" 1 "lines naming FORGED"
if grep -q '^FORGED' "$STDOUT"; then fail "the summary forged a line: $(cat "$STDOUT")"; fi

say "a file that is not a shared object: refused naming it"
mkdir -p "$T/junk"
printf 'not an ELF file\n' > "$T/junk/junk.so"
refused junk "$T/junk"

say "a missing plugin dir: refused naming it"
assert_exit 1,2 "$TIDEMARK" once -s "$T/s-missing" --plugin-dir "$T/no-such-plugins" -p stdout "$D"
assert_contains "$STDERR" "no-such-plugins"

say "the refusals did not create state or deliver anything"
[ ! -e "$T/s-bad_abi/data.mdb" ] || echo "note: the state was created before the plugin was refused"

pass
