#!/usr/bin/env bash
# Runs the peer benchmarks (bench/peers) on this machine: starts Redis from
# Debian's redis-server package in a temporary folder, in-memory and then with
# appendfsync always, runs asynq on the project's workload against each, and
# stops it; first it measures the machine's limits (fsync, a bbolt commit, a
# loopback HTTP round trip) in the same folder. Usage: bench/peers/run.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v redis-server >/dev/null; then
	echo "run.sh: redis-server not found; install it: apt-get install -y redis-server" >&2
	exit 1
fi
tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/peers" .

mkdir -p "$tmp/limits"
"$tmp/peers" -limits "$tmp/limits"

port=$(( 30000 + RANDOM % 20000 ))
redis() { # redis MODE ARGS...: start Redis on 127.0.0.1:$port in $tmp/MODE
	local mode=$1; shift
	mkdir -p "$tmp/$mode"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/$mode" --daemonize no --logfile "$tmp/$mode/log" "$@" &
	pid=$!
	for _ in $(seq 1 500); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		sleep 0.01
	done
	echo "run.sh: redis ($mode) did not start; see $tmp/$mode/log" >&2
	exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

redis in-memory --save "" --appendonly no
"$tmp/peers" -redis "127.0.0.1:$port" -redis-mode in-memory
stop
redis fsync-always --save "" --appendonly yes --appendfsync always
"$tmp/peers" -redis "127.0.0.1:$port" -redis-mode fsync-always
stop
