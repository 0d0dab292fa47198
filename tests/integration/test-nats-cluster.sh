#!/usr/bin/env bash
# nats against a 3-node JetStream cluster on loopback (three nats-server
# processes with cluster routes; an R3 stream), the spec naming all three
# (url=A|B|C). Under a writer, `tidemark run` must never exit and the stream
# must end with every line exactly once, through:
#   0. started before any server is up: one warning naming the URLs,
#      reading paused; the cluster comes up, the stream is created a little
#      later (the missing stream is said, and waited for), delivery starts;
#   1. kill -9 of the node tidemark is connected to;
#   2. kill -9 and restart of tidemark while that node is still down;
#   3. the node back; another node killed and tidemark restarted at once,
#      during the election that follows.
# A few seconds of load per phase.
source "$(dirname "$0")/lib.sh"
need_nats
need_helper TDM_WRITER
command -v curl >/dev/null || skip "curl is needed to ask the servers whom they serve"

# Six free loopback ports: client, cluster and monitoring ports of 3 nodes
# (plus 3 more for monitoring).
read -r -a PORTS <<< "$(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()')"
declare -a NODE_PID URL
ROUTES=""
for i in 0 1 2; do
  URL[$i]=nats://127.0.0.1:${PORTS[$i]}
  ROUTES="$ROUTES nats-route://127.0.0.1:${PORTS[$((i + 3))]}"
done
ALL="${URL[0]}|${URL[1]}|${URL[2]}"
CLIENT="${URL[0]},${URL[1]},${URL[2]}" # tdm-jsclient's list

node_conf() {
  local i=$1
  mkdir -p "$T/n$i"
  cat > "$T/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${PORTS[$i]}
http: 127.0.0.1:${PORTS[$((i + 6))]}
jetstream { store_dir: "$T/n$i" }
cluster {
  name: tdm
  listen: 127.0.0.1:${PORTS[$((i + 3))]}
  routes: [$(echo $ROUTES | sed 's/ /, /g')]
}
CONF
}
node_start() {
  "$NATS_SERVER" -c "$T/n$1.conf" >>"$T/n$1.log" 2>&1 </dev/null &
  NODE_PID[$1]=$!
  TDM_BG_PIDS+=("${NODE_PID[$1]}")
}
node_kill9() {
  kill -9 "${NODE_PID[$1]}" 2>/dev/null || true
  { wait "${NODE_PID[$1]}"; } 2>/dev/null || true
}
# the node whose monitoring lists a connection named "tidemark"
serving_node() {
  for i in 0 1 2; do
    if curl -s "http://127.0.0.1:${PORTS[$((i + 6))]}/connz" 2>/dev/null |
       grep -q '"name": "tidemark"'; then
      echo "$i"; return 0
    fi
  done
  return 1
}
jsc() { "$TDM_JSCLIENT" "$CLIENT" "$@"; }
in_stream() { jsc count LOGS 2>/dev/null || echo 0; }
alive() { is_running "$RUN_PID" || fail "tidemark exited ($1): $(tail -n 5 "$T/run.err")"; }

D=$T/d; S=$T/state
mkdir -p "$D"
FILES=("$D/a.log" "$D/b.log")
SPEC="nats:url=$ALL,subject=logs.c"
for i in 0 1 2; do node_conf "$i"; done

"$TDM_WRITER" append -r 1500 -c "$T/written" -t "$T/tee" c "${FILES[@]}" >/dev/null 2>"$T/writer.err" &
WPID=$!; TDM_BG_PIDS+=("$WPID")
wait_for 5 test -s "$D/b.log"

say "0. tidemark started before any server: it waits, naming the URLs"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
sleep 2
alive "no server up"
assert_contains "$T/run.err" "waiting for a server of $ALL to answer"
for i in 0 1 2; do node_start "$i"; done
# JetStream up and answering, but no stream yet: said, and waited for
until { jsc count __none__ 2>&1 || true; } | grep -qi "not found"; do alive "cluster starting"; sleep 0.1; done
sleep 1.5
alive "no stream yet"
assert_contains "$T/run.err" "no stream captures subject \"logs.c\""
until jsc create LOGS 'logs.>' 120 3 2>/dev/null; do alive "creating the stream"; sleep 0.2; done
wait_count_c() { # N SECS
  local end=$((SECONDS + $2))
  until [ "$(in_stream)" -ge "$1" ]; do
    alive "waiting for $1 messages"
    [ "$SECONDS" -lt "$end" ] || fail "the stream has $(in_stream) of $1 messages after $2 s"
    sleep 0.2
  done
}
wait_count_c 3000 30
echo "  delivering: $(in_stream) messages"

say "1. kill -9 the node tidemark is connected to"
wait_for 10 serving_node
A=$(serving_node)
echo "  tidemark is on n$A; killing it"
node_kill9 "$A"
n=$(in_stream)
sleep 3
alive "its node was killed"
wait_count_c $((n + 3000)) 30

say "2. kill -9 tidemark and restart it while n$A is still down"
kill9_bg "$RUN_PID"
sleep 0.5
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
n=$(in_stream)
sleep 3
alive "restarted with n$A down"
wait_count_c $((n + 3000)) 30

say "3. n$A back; another node killed and tidemark restarted during the election"
node_start "$A"
sleep 3
B=$(( (A + 1) % 3 ))
node_kill9 "$B"
kill9_bg "$RUN_PID"
run_bg "$T/run.out" -s "$S" -p "$SPEC" --checkpoint-ms 200 "$D"
n=$(in_stream)
sleep 3
alive "restarted during the election"
wait_count_c $((n + 3000)) 30

say "stop the writer; everything arrives"
stop_bg "$WPID" TERM
assert_eq "$STOP_RC" 0 "writer exit status"
written=$(cat "$T/written")
echo "  writer wrote $written lines"
wait_count_c "$written" 120
sleep 1
alive "at the end"
stop_bg "$RUN_PID" TERM
assert_eq "$STOP_RC" 0 "exit status after SIGTERM"

say "every line exactly once"
jsc dump LOGS > "$T/dump" || fail "dump: $(tail -n 3 "$T/dump")"
cut -f5 "$T/dump" > "$T/got"
assert_lines_once "$T/tee" "$T/got" "stream after the cluster's failures"
assert_eq "$(cut -f2 "$T/dump" | sort | uniq -d | wc -l)" 0 "duplicated ids"
assert_no_sanitizer "$T/run.err"
for i in 0 1 2; do node_kill9 "$i"; done
pass
