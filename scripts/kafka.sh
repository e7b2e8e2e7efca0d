#!/usr/bin/env bash
# Apache Kafka from Maven Central (kafka/pom.xml, pinned): one launcher for people, tests and
# benchmarks.
#
#   scripts/kafka.sh start [--nodes 1|3] [--dir DIR] [--watch PID [--ephemeral]]
#                                                                     prints "bootstrap: HOST:PORT,..."
#   scripts/kafka.sh stop [--dir DIR]                                 SIGTERM, then SIGKILL after 20 s
#   scripts/kafka.sh kill --node N [--signal KILL|STOP|CONT|TERM] [--dir DIR]
#   scripts/kafka.sh restart --node N [--dir DIR]                     same ports, same log dirs
#   scripts/kafka.sh status [--dir DIR]
#   scripts/kafka.sh classpath                                         the broker's runtime classpath
#
# `start` formats KRaft storage in a fresh DIR (default ~/.cache/finstream/kafka/local), starts a
# single broker+controller (or three, replication factor 3, min.insync.replicas=2) on free
# loopback ports with the settings Kafka's own integration tests use to be quick, and returns
# once every node serves. With --watch PID the cluster is stopped when that process exits (a
# test binary that dies does not leave brokers behind); with --ephemeral as well, its data is
# thrown away then: the nodes are killed without a graceful shutdown and DIR is removed.
# Environment: KAFKA_HEAP_OPTS (default -Xmx512m -Xms256m), KAFKA_JVM_OPTS, JAVA (default java).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${FINSTREAM_CACHE:-$HOME/.cache/finstream}
java=${JAVA:-java}

die() { echo "kafka.sh: $*" >&2; exit 1; }

classpath() {
  local pom="$here/kafka/pom.xml"
  local sum; sum=$(sha256sum "$pom" | cut -c1-16)
  local file="$cache/kafka-classpath-$sum.txt"
  if [ ! -s "$file" ] || ! head -c 4096 "$file" | tr ':' '\n' | head -1 | xargs test -f; then
    mkdir -p "$cache"
    command -v mvn >/dev/null || die "Maven is missing (scripts/setup.sh installs it)"
    mvn -q -B -f "$pom" dependency:build-classpath -DincludeScope=runtime -Dmdep.outputFile="$file.tmp" >&2 \
      || die "could not resolve the Kafka jars from Maven Central"
    mv "$file.tmp" "$file"
  fi
  cat "$file"
}

# The per-node JVM's main class: kafka/FormatAndRun.java (format a fresh log dir, then run the
# broker, in one JVM), compiled once into the cache; without javac, a separate StorageTool JVM
# formats first and kafka.Kafka runs the node.
launcher() {
  local src="$here/kafka/FormatAndRun.java"
  local sum; sum=$( (cat "$src"; classpath) | sha256sum | cut -c1-16)
  local jar="$cache/kafka-launcher-$sum.jar"
  if [ ! -f "$jar" ] && command -v javac >/dev/null && command -v jar >/dev/null; then
    local tmp; tmp=$(mktemp -d)
    javac -nowarn -cp "$(classpath)" -d "$tmp" "$src" >&2 && jar cf "$jar.tmp" -C "$tmp" . && mv "$jar.tmp" "$jar"
    rm -rf "$tmp"
  fi
  [ -f "$jar" ] && echo "$jar"
}

# Class data sharing: the classes a node loads while starting, archived by the first node that
# stops gracefully after starting without an archive, then mapped by every later node JVM (about
# 1 s less per start on a busy 2-core machine). Keyed by classpath and JDK; a stale archive is
# ignored by the JVM.
cds_archive() {
  echo "$cache/kafka-cds-$( (classpath; launcher; readlink -f "$(command -v "$java")") | sha256sum | cut -c1-16).jsa"
}

cluster_id() { # what `StorageTool random-uuid` prints, without starting a JVM for it
  python3 -c 'import base64, os
while True:
    u = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not u.startswith("-"): print(u); break'
}

free_ports() { # n free loopback TCP ports
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

node_props() { # dir node nodes port cport voters
  local dir=$1 n=$2 nodes=$3 port=$4 cport=$5 voters=$6 rf=1 isr=1
  if [ "$nodes" -gt 1 ]; then rf=3; isr=2; fi
  cat <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/node-$n/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=200
transaction.remove.expired.transaction.cleanup.interval.ms=500
# No time-based retention: records carry event time (test data and backfills are months or years
# old), and a 7-day retention would delete them as soon as they are written.
log.retention.ms=-1
log.cleaner.dedupe.buffer.size=2097152
log.cleaner.backoff.ms=1000
auto.create.topics.enable=true
delete.topic.enable=true
# A SIGKILLed node is fenced (its partitions get new leaders) 5 s after its last heartbeat
# instead of the default 9 s.
broker.session.timeout.ms=5000
broker.heartbeat.interval.ms=500
EOF
}

launch() { # dir node: starts one node in the background (formatting it first if fresh), records its pid
  local dir=$1 n=$2
  local cp; cp=$(classpath)
  local main=(kafka.Kafka "$dir/node-$n/server.properties") l
  if l=$(launcher); then
    cp="$l:$cp"; main=(FormatAndRun "$dir/node-$n/server.properties" "$(cat "$dir/cluster-id")")
  elif [ ! -f "$dir/node-$n/data/meta.properties" ]; then
    "$java" -cp "$cp" -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" kafka.tools.StorageTool format \
      -t "$(cat "$dir/cluster-id")" -c "$dir/node-$n/server.properties" >"$dir/node-$n/format.log" 2>&1 \
      || { cat "$dir/node-$n/format.log" >&2; die "formatting node $n failed"; }
  fi
  local jsa cds=(); jsa=$(cds_archive)
  if [ -s "$jsa" ]; then
    cds=(-XX:SharedArchiveFile="$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
  elif [ "$n" = 1 ]; then
    cds=(-XX:ArchiveClassesAtExit="$dir/node-$n/classes.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
  fi
  # shellcheck disable=SC2086
  setsid nohup "$java" ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${cds[@]}" \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" ${KAFKA_JVM_OPTS:-} \
    -cp "$cp" "${main[@]}" >>"$dir/node-$n/broker.log" 2>&1 </dev/null &
  echo $! >"$dir/node-$n/pid"
}

wait_ready() { # dir node: the node logged its start and accepts connections
  local dir=$1 n=$2 port; port=$(cat "$dir/node-$n/port")
  local deadline=$((SECONDS + 120)) pid; pid=$(cat "$dir/node-$n/pid")
  local mark; mark=$(cat "$dir/node-$n/started-mark" 2>/dev/null || echo 0)
  until [ "$(grep -c 'Kafka Server started' "$dir/node-$n/broker.log" 2>/dev/null || true)" -gt "$mark" ] \
        && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/node-$n/broker.log" >&2; die "node $n exited during start"; }
    [ $SECONDS -lt $deadline ] || die "node $n did not start within 120 s (log: $dir/node-$n/broker.log)"
    sleep 0.1
  done
}

nodes_of() { ls -d "$1"/node-* 2>/dev/null | sed 's/.*node-//' | sort -n; }

cmd_start() {
  local nodes=1 dir="$cache/kafka/local" watch="" ephemeral=""
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --dir) dir=$2; shift 2 ;;
      --watch) watch=$2; shift 2 ;;
      --ephemeral) ephemeral=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -z "$ephemeral" ] || [ -n "$watch" ] || die "--ephemeral needs --watch PID"
  [ "$nodes" = 1 ] || [ "$nodes" = 3 ] || die "--nodes is 1 or 3"
  command -v "$java" >/dev/null || die "Java is missing (scripts/setup.sh installs a JDK)"
  if [ -d "$dir" ]; then cmd_stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; fi
  mkdir -p "$dir"
  local cp; cp=$(classpath)
  read -r -a ports <<<"$(free_ports $((nodes * 2)))"
  local voters="" bootstrap="" n
  for n in $(seq 1 "$nodes"); do
    voters+="${voters:+,}$n@127.0.0.1:${ports[$((nodes + n - 1))]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${ports[$((n - 1))]}"
  done
  cluster_id >"$dir/cluster-id"
  for n in $(seq 1 "$nodes"); do
    mkdir -p "$dir/node-$n"
    echo "${ports[$((n - 1))]}" >"$dir/node-$n/port"
    node_props "$dir" "$n" "$nodes" "${ports[$((n - 1))]}" "${ports[$((nodes + n - 1))]}" "$voters" \
      >"$dir/node-$n/server.properties"
  done
  launcher >/dev/null || true # compiled once, before the nodes race for it
  for n in $(seq 1 "$nodes"); do launch "$dir" "$n"; done
  for n in $(seq 1 "$nodes"); do wait_ready "$dir" "$n"; done
  echo "$bootstrap" >"$dir/bootstrap"
  if [ -n "$watch" ]; then
    local self="$here/scripts/kafka.sh" after="stop --dir '$dir'"
    [ -n "$ephemeral" ] && after="discard --dir '$dir'"
    setsid nohup bash -c "while kill -0 $watch 2>/dev/null; do sleep 0.5; done; '$self' $after" \
      >/dev/null 2>&1 </dev/null &
  fi
  echo "bootstrap: $bootstrap"
}

cmd_stop() {
  local dir="$cache/kafka/local"
  [ "${1:-}" = --dir ] && dir=$2
  [ -d "$dir" ] || return 0
  local n pid
  for n in $(nodes_of "$dir"); do
    pid=$(cat "$dir/node-$n/pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 20))
  for n in $(nodes_of "$dir"); do
    pid=$(cat "$dir/node-$n/pid" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -KILL "$pid" 2>/dev/null; then
      rm -f "$dir/node-$n/classes.jsa" # killed: the archive may be incomplete
    elif [ -s "$dir/node-$n/classes.jsa" ] && [ ! -s "$(cds_archive)" ]; then
      mv "$dir/node-$n/classes.jsa" "$(cds_archive)"
    fi
    rm -f "$dir/node-$n/pid"
  done
  echo "stopped: $dir"
}

cmd_discard() { # kills every node at once and removes DIR (throwaway test clusters)
  local dir=$2
  [ "${1:-}" = --dir ] && [ -n "$dir" ] && [ -d "$dir" ] || return 0
  local n pid
  for n in $(nodes_of "$dir"); do
    pid=$(cat "$dir/node-$n/pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  done
  for n in $(nodes_of "$dir"); do
    pid=$(cat "$dir/node-$n/pid" 2>/dev/null || true)
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  rm -rf "$dir"
}

node_arg() { # parses --node N [--signal S] [--dir D]
  node=""; signal=KILL; dir="$cache/kafka/local"
  while [ $# -gt 0 ]; do
    case $1 in
      --node) node=$2; shift 2 ;;
      --signal) signal=$2; shift 2 ;;
      --dir) dir=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -n "$node" ] && [ -d "$dir/node-$node" ] || die "no node $node in $dir"
}

cmd_kill() {
  node_arg "$@"
  local pid; pid=$(cat "$dir/node-$node/pid")
  kill "-$signal" "$pid"
  if [ "$signal" = KILL ]; then
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/node-$node/pid"
  fi
}

cmd_restart() {
  node_arg "$@"
  local pid; pid=$(cat "$dir/node-$node/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then die "node $node is running (pid $pid)"; fi
  grep -c 'Kafka Server started' "$dir/node-$node/broker.log" >"$dir/node-$node/started-mark" || true
  launch "$dir" "$node"
  wait_ready "$dir" "$node"
  echo "restarted: node $node"
}

cmd_status() {
  local dir="$cache/kafka/local"
  [ "${1:-}" = --dir ] && dir=$2
  [ -f "$dir/bootstrap" ] || { echo "not started: $dir"; return 1; }
  echo "bootstrap: $(cat "$dir/bootstrap")"
  local n pid
  for n in $(nodes_of "$dir"); do
    pid=$(cat "$dir/node-$n/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "node $n: running (pid $pid)"; else echo "node $n: stopped"; fi
  done
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  discard) shift; cmd_discard "$@" ;;
  kill) shift; cmd_kill "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  status) shift; cmd_status "$@" ;;
  classpath) classpath ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
