#!/usr/bin/env bash
# layers.sh [SRC]: check that every #include in the sources points down the
# layers, never up. Prints each wrong include as FILE:LINE and exits 1 if
# there is one; exits 0 when all are right. Registered as the ctest `layers`.
#
# The layers, lowest first (README "Layout"):
#   base < core < engine < live < api < cli
#   cli (the command) sees only the public headers and its own, as any
#     program linking libtidemark.so would
#   state/ and processors/registry.{c,h}, spec.c: base and the public headers
#     only (core and the engine above may include them; core only state/)
#   built-in processors (processors/builtin/): tidemark/processor.h, base/,
#     each other's own headers, and libc
#   plugins (processors/template, processors/nats, processors/postgres,
#     tests/plugins) and the processor ABI itself: tidemark/processor.h only
#   programs outside the library (tests/install, tests/integration/host.c):
#     the public headers only
# The build enforces most of this too (each target's include root holds only
# the layers it may see); this check also catches "../" paths and headers
# that reach a higher layer through a lower one's include root.
set -u
SRC=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC" || exit 2

# The layer of a file, by where it is.
layer_of() {
  case $1 in
    watcher/base/*) echo base ;;
    watcher/core/*) echo core ;;
    watcher/engine/*) echo engine ;;
    watcher/live/*) echo live ;;
    watcher/cli/*) echo cli ;;
    watcher/include/tidemark/processor.h) echo abi ;;
    watcher/include/*) echo public ;;
    watcher/*) echo api ;;
    state/*) echo state ;;
    processors/registry.* | processors/spec.c) echo registry ;;
    processors/builtin/*) echo builtin ;;
    processors/template/* | processors/nats/* | processors/postgres/* | tests/plugins/*) echo plugin ;;
    tests/install/* | tests/integration/host.c) echo program ;;
    *) echo unknown ;;
  esac
}

# What a layer may include (besides libc and the system's headers).
allowed() {
  case $1 in
    base) echo "base public abi" ;;
    core) echo "base core state public abi" ;;
    engine) echo "base core engine state registry public abi" ;;
    live) echo "base core engine live state registry public abi" ;;
    api) echo "base core engine live api state registry public abi" ;;
    cli) echo "cli public abi" ;; # a program over <tidemark.h>
    state) echo "base state public abi" ;;
    registry) echo "base registry builtin public abi" ;;
    builtin) echo "base builtin abi" ;;
    plugin | abi) echo "abi" ;;
    public) echo "public abi" ;;
    program) echo "public abi" ;;
  esac
}

# The file an include names, as the compiler would find it: beside the
# including file, else under one of the include roots.
resolve() { # FILE INCLUDED
  local dir candidate
  dir=$(dirname "$1")
  for candidate in "$dir/$2" "watcher/include/$2" "watcher/$2" "$2"; do
    if [ -f "$candidate" ]; then
      realpath -m --relative-to=. "$candidate"
      return 0
    fi
  done
  case $2 in
    tidemark/version.h) echo watcher/include/tidemark/version.h ;; # generated
    *) return 1 ;;
  esac
}

bad=0
files=$(find watcher state processors tests/plugins tests/install \
             tests/integration/host.c -name '*.[ch]' | sort)
for f in $files; do
  from=$(layer_of "$f")
  if [ "$from" = unknown ]; then
    echo "$f: not in any layer (add it to tests/layers.sh)"
    bad=1
    continue
  fi
  ok=" $(allowed "$from") "
  while IFS=: read -r line inc; do
    # "x.h" anywhere; <x.h> only for the public headers (all else is libc
    # or the system's).
    case $inc in
      *'"'*) name=${inc#*\"}; name=${name%%\"*} ;;
      *'<tidemark'*) name=${inc#*<}; name=${name%%>*} ;;
      *) continue ;;
    esac
    if ! target=$(resolve "$f" "$name"); then
      echo "$f:$line: #include \"$name\": no such header in the tree"
      bad=1
      continue
    fi
    to=$(layer_of "$target")
    case $ok in
      *" $to "*) ;;
      *)
        echo "$f:$line: $from includes $to ($name): a layer includes only" \
             "the ones below it"
        bad=1
        ;;
    esac
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f" |
           sed 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*/\1:/')
done
[ $bad -eq 0 ] && echo "layers: every include points down"
exit $bad
