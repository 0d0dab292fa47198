#!/usr/bin/env bash
# tests/bench/postgres.sh: the postgres processor's figures (issue 19). Not a
# test: prints a markdown table and exits 0 whatever the figures are.
#
#   p1. `once` of BENCH_PG_LINES (1,000,000) lines of ~150 bytes in one file
#       into a table of tidemark's layout (record_id UNIQUE), vs psql's
#       `\copy` of the same rows (line, path, offset, record_id: the same
#       bytes tidemark sends) into a table with the same unique index, in the
#       same run, best of BENCH_RUNS (2), each into a fresh table  (goal <= 1.5x)
#   p2. the same \copy into a table without the index (a figure)
#   p3. the alternative to a plain COPY that tidemark uses only for a replay:
#       \copy into a temporary staging table, then INSERT ... SELECT ... ON
#       CONFLICT (record_id) DO NOTHING, in one psql session (a figure)
#   p4. append-to-row latency with `run`: a line appended to a watched file
#       until a LISTEN on the table's NOTIFY trigger hears it committed,
#       BENCH_PG_SAMPLES (300) samples: median and p99          (goal <= 5 ms)
#
# A PostgreSQL cluster of its own (initdb under the work directory, as the
# postgres user when run as root, listening on a unix socket only) is started
# here and stopped by pid. Environment: TIDEMARK (build/tidemark), BENCH_DIR.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TIDEMARK=${TIDEMARK:-$repo/build/tidemark}
BENCH_DIR=${BENCH_DIR:-/tmp/tdm-bench}
LINES=${BENCH_PG_LINES:-1000000}
RUNS=${BENCH_RUNS:-2}
SAMPLES=${BENCH_PG_SAMPLES:-300}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
log() { echo "bench: $*" >&2; }

[ -x "$PG_BIN/initdb" ] || { log "PostgreSQL server binaries not found: postgres figures n/a"; exit 0; }
[ -e "$(dirname "$TIDEMARK")/tidemark-plugins/postgres.so" ] || { log "built without libpq: postgres figures n/a"; exit 0; }
WORK=$BENCH_DIR/pg-work
rm -rf "$WORK"; mkdir -p "$WORK/src" "$WORK/pg/sock"
chmod 755 "$BENCH_DIR" "$WORK"
cc -O2 -o "$WORK/pg_latency" "$here/pg_latency.c" $(pkg-config --cflags --libs libpq)

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown -R postgres "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres > "$WORK/initdb.log" 2>&1
PORT=$((20000 + RANDOM % 30000))
printf "listen_addresses = ''\nport = %d\nunix_socket_directories = '%s'\nmax_wal_size = 4GB\n" \
  "$PORT" "$WORK/pg/sock" >> "$WORK/pg/data/postgresql.conf"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w start > /dev/null
PGPID=$(head -n 1 "$WORK/pg/data/postmaster.pid")
trap 'kill -INT "$PGPID" 2>/dev/null || true; while kill -0 "$PGPID" 2>/dev/null; do sleep 0.1; done' EXIT
URI="postgresql:///postgres?host=$WORK/pg/sock&port=$PORT&user=postgres"
export PGOPTIONS="-c client_min_messages=warning"
q() { psql "$URI" -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }

# ~150-byte lines, and the same rows as COPY text for psql
awk -v n="$LINES" 'BEGIN { s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  s = s s s; for (i = 1; i <= n; i++) printf "%09d %s %s\n", i, "INFO request served", substr(s, 1, 110 + (i * 7919) % 30) }' \
  > "$WORK/src/app.log"
awk -v p="$WORK/src/app.log" 'BEGIN { o = 0 } { printf "%s\t%s\t%d\t0123456789abcdef:1:0:%d\n", $0, p, o, o; o += length($0) + 1 }' \
  "$WORK/src/app.log" > "$WORK/rows.copy"
log "p: $(wc -l < "$WORK/src/app.log") lines, $(stat -c %s "$WORK/src/app.log") bytes"

TABLE='(line text NOT NULL, path text NOT NULL, "offset" bigint NOT NULL, record_id text NOT NULL UNIQUE, ingested_at timestamptz NOT NULL DEFAULT now())'
PLAIN='(line text NOT NULL, path text NOT NULL, "offset" bigint NOT NULL, record_id text NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now())'
fresh() { q "DROP TABLE IF EXISTS b; CREATE TABLE b $1; CHECKPOINT"; }
elapsed() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>> "$WORK/err" || log "failed: $*"; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; }
COPY="\\copy b (line, path, \"offset\", record_id) from '$WORK/rows.copy'"
STAGE="CREATE TEMP TABLE s (line text, path text, \"offset\" bigint, record_id text);
$COPY
INSERT INTO b (line, path, \"offset\", record_id) SELECT * FROM s ON CONFLICT (record_id) DO NOTHING;"
STAGE=${STAGE/\\copy b /\\copy s }
best_of() { # best_of KIND: min seconds over RUNS
  local best="" s c
  for _ in $(seq 1 "$RUNS"); do
    case "$1" in
      tidemark) fresh "$TABLE"; rm -rf "$WORK/state"
        s=$(elapsed "$TIDEMARK" once -q -s "$WORK/state" -p "postgres:conninfo=$URI,table=b" "$WORK/src") ;;
      copy) fresh "$TABLE"; s=$(elapsed psql "$URI" -X -q -v ON_ERROR_STOP=1 -c "$COPY") ;;
      plain) fresh "$PLAIN"; s=$(elapsed psql "$URI" -X -q -v ON_ERROR_STOP=1 -c "$COPY") ;;
      stage) fresh "$TABLE"; s=$(echo "$STAGE" | elapsed psql "$URI" -X -q -v ON_ERROR_STOP=1) ;;
    esac
    c=$(q "select count(*) from b")
    [ "$c" = "$LINES" ] || log "$1: table holds $c rows, not $LINES"
    log "  $1: $s s ($c rows)"
    best=$(awk -v a="${best:-1e9}" -v b="$s" 'BEGIN { print (b < a ? b : a) }')
  done
  echo "$best"
}
log "p1-p3: best of $RUNS"
copy=$(best_of copy)
tdm=$(best_of tidemark)
plain=$(best_of plain)
stage=$(best_of stage)

log "p4: append-to-row latency with run, $SAMPLES samples"
q "DROP TABLE IF EXISTS lat; CREATE TABLE lat $TABLE;
   CREATE FUNCTION lat_notify() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_notify('tdm_lat', NEW.line); RETURN NULL; END \$\$;
   CREATE TRIGGER lat AFTER INSERT ON lat FOR EACH ROW EXECUTE FUNCTION lat_notify()"
rm -rf "$WORK/state" "$WORK/lat"; mkdir -p "$WORK/lat"; : > "$WORK/lat/live.log"
"$TIDEMARK" run -q -s "$WORK/state" -p "postgres:conninfo=$URI,table=lat" "$WORK/lat" 2>>"$WORK/err" &
RPID=$!
sleep 1
l=$("$WORK/pg_latency" "$URI" tdm_lat "$WORK/lat/live.log" "$SAMPLES" || true)
kill -TERM "$RPID"; wait "$RPID" || true
log "$l"
med=$(echo "$l" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
p99=$(echo "$l" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
v_tdm=$(awk -v a="$tdm" -v b="$copy" 'BEGIN { print (a / b <= 1.5 ? "PASS" : "MISS") }')
v_lat=$(awk -v a="${med:-1e9}" 'BEGIN { print (a <= 5 ? "PASS" : "MISS") }')
echo
echo "| workload | tidemark | baseline | ratio | target | result |"
echo "|---|---|---|---|---|---|"
echo "| p1. \`once\` $LINES lines (~150 B) into a table, record_id UNIQUE | $tdm s | $copy s (psql \\copy of the same rows, same unique index) | $(ratio "$tdm" "$copy") | ≤ 1.5x | $v_tdm |"
echo "| p2. psql \\copy into a table without the index | | $plain s | $(ratio "$tdm" "$plain") | | |"
echo "| p3. psql \\copy into a temporary table, then INSERT ... ON CONFLICT DO NOTHING | | $stage s | $(ratio "$tdm" "$stage") | | |"
echo "| p4. \`run\` append-to-row latency, median ($SAMPLES samples) | ${med:-failed} ms | | | ≤ 5 ms | $v_lat |"
echo "| p4. \`run\` append-to-row latency, p99 | ${p99:-failed} ms | | | | |"
