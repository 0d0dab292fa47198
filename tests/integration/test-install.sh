#!/usr/bin/env bash
# The install tree: `cmake --install BUILD --prefix P` into a temporary
# prefix puts the command, libtidemark.so with its soname and dev link, the
# static library, both headers, a tidemark.pc that names P, the plugin
# directory, the systemd unit and the man pages under P. A program outside the
# tree (tests/install/app.c) builds with `pkg-config --cflags --libs
# tidemark` alone, and statically with `pkg-config --static`; both run on a
# real directory. The template plugin builds against the installed header
# alone and the installed binary loads it.
source "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$TIDEMARK")
[ -f "$BUILD/CMakeCache.txt" ] || fail "no CMakeCache.txt beside $TIDEMARK: cannot find the build tree"
SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")
[ -f "$SRC/tests/install/app.c" ] || fail "source tree not found ($SRC)"
command -v pkg-config >/dev/null || fail "pkg-config is required"
CC=${CC:-cc}
# A sanitizer build installs an instrumented library: build the programs
# against it the same way.
SAN=()
grep -q '^TDM_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" && SAN=(-fsanitize=address,undefined)

# A prefix with no relation to the configured one.
P="$T/prefix"
say "cmake --install into $P"
assert_exit 0 cmake --install "$BUILD" --prefix "$P"
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BUILD/CMakeCache.txt")
LIBDIR=${LIBDIR:-lib}

for f in bin/tidemark "$LIBDIR/libtidemark.a" "$LIBDIR/pkgconfig/tidemark.pc" \
         include/tidemark.h include/tidemark/processor.h; do
  [ -f "$P/$f" ] || fail "not installed: $f"
done
[ -d "$P/$LIBDIR/tidemark" ] || fail "no plugin directory $LIBDIR/tidemark"

say "libtidemark.so -> libtidemark.so.0 (the soname) -> the real file"
[ -L "$P/$LIBDIR/libtidemark.so" ] || fail "no dev link libtidemark.so"
[ -L "$P/$LIBDIR/libtidemark.so.0" ] || fail "no soname link libtidemark.so.0"
soname=$(objdump -p "$P/$LIBDIR/libtidemark.so" | awk '$1 == "SONAME" { print $2 }')
assert_eq "$soname" "libtidemark.so.0" "SONAME"
[ -f "$(readlink -f "$P/$LIBDIR/libtidemark.so")" ] || fail "dangling dev link"

say "the systemd unit and the man pages are installed"
unit=$(find "$P" -name 'tidemark@.service' | head -n 1)
[ -n "$unit" ] || fail "tidemark@.service not installed"
grep -qF "$P/bin/tidemark" "$unit" || fail "the unit does not run $P/bin/tidemark: $(grep ExecStart "$unit")"
if command -v scdoc >/dev/null; then
  [ -f "$P/share/man/man1/tidemark.1" ] || [ -f "$P/share/man/man1/tidemark.1.gz" ] || fail "tidemark(1) not installed"
  [ -f "$P/share/man/man5/tidemark.conf.5" ] || [ -f "$P/share/man/man5/tidemark.conf.5.gz" ] || fail "tidemark.conf(5) not installed"
fi

export PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig"
say "tidemark.pc says prefix=$P and its flags point there"
assert_exit 0 pkg-config --variable=prefix tidemark
assert_eq "$(cat "$STDOUT")" "$P" "prefix in tidemark.pc"
assert_exit 0 pkg-config --modversion tidemark
assert_eq "$(cat "$STDOUT")" "$("$TIDEMARK" --version | awk '{print $2}')" "Version in tidemark.pc"

D=$T/data
mkdir -p "$D/sub"
gen_lines 1 3000 > "$D/a.log"
gen_lines 1 700 > "$D/sub/b.log"
want_bytes=$(( $(fsize "$D/a.log") + $(fsize "$D/sub/b.log") ))

say "an outside program builds with pkg-config --cflags --libs tidemark and runs"
cp "$SRC/tests/install/app.c" "$T/app.c"
# Word splitting of pkg-config's output is intended: it is a list of flags.
read -r -a flags <<<"$(pkg-config --cflags --libs tidemark)"
assert_exit 0 "$CC" -std=c11 -Wall -Werror "${SAN[@]}" -o "$T/app" "$T/app.c" "${flags[@]}"
LD_LIBRARY_PATH="$P/$LIBDIR" assert_exit 0 "$T/app" "$T/s-shared" "$D"
assert_eq "$(cat "$STDOUT")" "version $("$TIDEMARK" --version | awk '{print $2}') lines 3700 bytes $want_bytes files 2" "app output"
LD_LIBRARY_PATH="$P/$LIBDIR" ldd "$T/app" > "$T/ldd"
grep -qF "$P/$LIBDIR/libtidemark.so.0" "$T/ldd" || { cat "$T/ldd" >&2; fail "app is not linked to the installed libtidemark.so.0"; }
say "a second run sees nothing new (the bookmarks are in the state dir)"
LD_LIBRARY_PATH="$P/$LIBDIR" assert_exit 0 "$T/app" "$T/s-shared" "$D"
assert_contains "$STDOUT" "lines 0 bytes 0 files 2"

say "statically, with pkg-config --static (Requires.private, Libs.private)"
read -r -a sflags <<<"$(pkg-config --static --libs tidemark)"
read -r -a cflags <<<"$(pkg-config --cflags tidemark)"
static=()
for f in "${sflags[@]}"; do
  [ "$f" = -ltidemark ] && f="$P/$LIBDIR/libtidemark.a"
  static+=("$f")
done
assert_exit 0 "$CC" -std=c11 "${SAN[@]}" -o "$T/app-static" "$T/app.c" "${cflags[@]}" "${static[@]}"
ldd "$T/app-static" | grep -q libtidemark && fail "app-static links libtidemark.so"
assert_exit 0 "$T/app-static" "$T/s-static" "$D"
assert_contains "$STDOUT" "lines 3700 bytes $want_bytes files 2"

say "the template plugin builds against the installed header alone"
mkdir -p "$T/plugins"
assert_exit 0 "$CC" -std=c11 -Wall -Werror -shared -fPIC -I"$P/include" \
  -o "$T/plugins/template.so" "$SRC/processors/template/template.c"
assert_exit 0 "$P/bin/tidemark" processors --plugin-dir "$T/plugins"
assert_contains "$STDOUT" "template"
assert_exit 0 "$P/bin/tidemark" once -s "$T/s-plugin" --plugin-dir "$T/plugins" \
  -i b.log -p 'template:prefix=P:' "$D"
sed 's/^/P:/' "$D/sub/b.log" > "$T/want"
assert_file_eq "$STDOUT" "$T/want"

pass
