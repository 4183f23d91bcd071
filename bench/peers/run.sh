#!/usr/bin/env bash
# Runs the peer comparison on this machine and prints one Markdown table:
# the project's local mode (its go test benchmarks in app/), asynq on Redis
# (in-memory, then appendfsync always) and River on PostgreSQL, on the same
# workload (10-step no-op chains; 50 chains one at a time, then 200 chains
# at concurrency 10 and 50), with the machine's limits (fsync, a bbolt
# commit, a loopback HTTP round trip) measured first.
#
# Each peer runs twice: a timed pass (latency, steps/s, CPU per step: this
# process's and the server's) and a counting pass under strace, which counts
# the fdatasync and fsync calls of the server (or of the project's test
# process) per run; the project's counting pass times no bare commits
# (PIPELINE_BENCH_BARE_COMMITS=off), whose fdatasyncs would count as its own.
# Redis and PostgreSQL are started from the machine's packages in a
# temporary folder and stopped on exit.
#
# Usage: bench/peers/run.sh [pipeline] [asynq] [river]   (from anywhere; the
# parts named, all by default; needs redis-server, redis-cli,
# PostgreSQL's initdb/postgres/pg_ctl and strace; as root it runs PostgreSQL
# as the user pgbench, which it creates if missing)
set -euo pipefail
cd "$(dirname "$0")"
parts=" ${*:-pipeline asynq river} "
want() { [[ $parts == *" $1 "* ]]; }
root=$(cd ../.. && pwd)
for c in redis-server redis-cli initdb postgres pg_ctl strace; do
	if ! command -v "$c" >/dev/null; then
		echo "run.sh: $c not found; install it: apt-get install -y redis-server postgresql strace" >&2
		exit 1
	fi
done
tmp=$(mktemp -d)
chmod 755 "$tmp"
results=$tmp/results
spid=""     # the running server (or strace running it)
stopcmd=""  # how to stop it
cleanup() {
	if [ -n "$spid" ]; then eval "$stopcmd" >/dev/null 2>&1 || kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trace() { # trace FILE CMD...: run CMD counting its fdatasync and fsync calls into FILE
	local out=$1; shift
	strace -f --seccomp-bpf -qq -e trace=fdatasync,fsync -e signal=none -o "$out" "$@"
}
calls() { grep -cE '(^|[^a-z])f(data)?sync\(' "$1" 2>/dev/null || true; }
wait_port() { # wait_port PORT NAME LOG
	for _ in $(seq 1 1000); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.01
	done
	echo "run.sh: $2 did not start; see $3" >&2
	exit 1
}
free_port() { # a port on 127.0.0.1 nothing listens on
	local p
	while :; do
		p=$(( 30000 + RANDOM % 20000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}
stop() { eval "$stopcmd" >/dev/null 2>&1 || true; wait "$spid" 2>/dev/null || true; spid=""; }

echo "building" >&2
go build -o "$tmp/peers" .
(cd "$root" && go test -c -o "$tmp/app.test" ./app)

mkdir -p "$tmp/limits"
"$tmp/peers" -limits "$tmp/limits" | tee -a "$results"

# The project: its benchmarks, one chain at a time (50 chains, after one
# warm-up chain) and 200 chains at concurrency 10 and 50.
lone=50
if want pipeline; then
echo "pipeline (local mode)" >&2
(cd "$root/app" && "$tmp/app.test" -test.run '^$' -test.bench '^BenchmarkLocalStepToStep$' -test.benchtime "${lone}x") | grep '^Benchmark' | tee -a "$results"
(cd "$root/app" && "$tmp/app.test" -test.run '^$' -test.bench '^BenchmarkLocalChainsConcurrency(10|50)$' -test.benchtime 1x) | grep '^Benchmark' | tee -a "$results"
for b in "StepToStep 1 $lone" "ChainsConcurrency10 10 1" "ChainsConcurrency50 50 1"; do
	read -r bench conc iters <<<"$b"
	(cd "$root/app" && PIPELINE_BENCH_BARE_COMMITS=off trace "$tmp/trace.pipeline.$conc" "$tmp/app.test" -test.run '^$' -test.bench "^BenchmarkLocal$bench\$" -test.benchtime "${iters}x" >/dev/null)
	chains=$(( conc == 1 ? iters + 1 : 200 * iters + 1 )) # and one warm-up chain
	echo "fsyncs peer=pipeline mode=local conc=$conc calls=$(calls "$tmp/trace.pipeline.$conc") steps=$(( chains * 10 ))" | tee -a "$results"
done
fi

# peer_counts PEER MODE TRACEFILE FLAGS...: the counting pass, one run at a
# time, each run's calls being the growth of the server's strace output.
peer_counts() {
	local peer=$1 mode=$2 file=$3; shift 3
	local name conc chains before after
	for r in "lone 1 $lone" "c10 10 200" "c50 50 200"; do
		read -r name conc chains <<<"$r"
		before=$(calls "$file")
		"$tmp/peers" "$@" -only "$name" >/dev/null
		after=$(calls "$file")
		echo "fsyncs peer=$peer mode=$mode conc=$conc calls=$(( after - before )) steps=$(( chains * 10 ))" | tee -a "$results"
	done
}

# Redis, for asynq.
port=$(free_port)
redis_start() { # redis_start MODE TRACE(yes|no) ARGS...
	local mode=$1 traced=$2; shift 2
	mkdir -p "$tmp/redis-$mode"
	local cmd=(redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis-$mode" --daemonize no --logfile "$tmp/redis-$mode/log" "$@")
	if [ "$traced" = yes ]; then
		trace "$tmp/trace.redis-$mode" "${cmd[@]}" &
	else
		"${cmd[@]}" &
	fi
	spid=$!
	stopcmd="redis-cli -p $port shutdown nosave"
	wait_port "$port" "redis ($mode)" "$tmp/redis-$mode/log"
}
want asynq && for m in "in-memory --save '' --appendonly no" "fsync-always --save '' --appendonly yes --appendfsync always"; do
	eval "set -- $m"
	mode=$1; shift
	echo "asynq, Redis $mode" >&2
	redis_start "$mode" no "$@"
	"$tmp/peers" -redis "127.0.0.1:$port" -redis-mode "$mode" -server-pid "$spid" | tee -a "$results"
	stop
	rm -rf "$tmp/redis-$mode"
	redis_start "$mode" yes "$@"
	peer_counts asynq "$mode" "$tmp/trace.redis-$mode" -redis "127.0.0.1:$port" -redis-mode "$mode"
	stop
done

if want river; then
# PostgreSQL, for River: fsync and synchronous_commit on (the defaults), run
# as a user other than root.
pguser=$(id -un)
as_pg=()
if [ "$(id -u)" = 0 ]; then
	pguser=pgbench
	id "$pguser" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$pguser"
	as_pg=(runuser -u "$pguser" --)
fi
pgdata=$tmp/pg
mkdir -p "$pgdata" "$tmp/pgsock"
chown "$pguser" "$pgdata" "$tmp/pgsock"
"${as_pg[@]}" initdb -D "$pgdata" -U postgres --auth=trust >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
pgport=$(free_port)
pg_start() { # pg_start TRACE(yes|no)
	local cmd=("${as_pg[@]}" postgres -D "$pgdata" -p "$pgport" -k "$tmp/pgsock" -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on)
	if [ "$1" = yes ]; then
		trace "$tmp/trace.postgres" "${cmd[@]}" >>"$tmp/pg.log" 2>&1 &
	else
		"${cmd[@]}" >>"$tmp/pg.log" 2>&1 &
	fi
	spid=$!
	stopcmd="${as_pg[*]} pg_ctl stop -D $pgdata -m fast"
	for _ in $(seq 1 3000); do # line 8 of postmaster.pid is "ready" once it accepts connections
		if [ "$(sed -n 8p "$pgdata/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; then
			pgpid=$(head -1 "$pgdata/postmaster.pid")
			return 0
		fi
		if ! kill -0 "$spid" 2>/dev/null; then break; fi
		sleep 0.01
	done
	echo "run.sh: postgres did not start:" >&2
	cat "$tmp/pg.log" >&2
	exit 1
}
url="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
echo "River, PostgreSQL" >&2
pg_start no
"$tmp/peers" -postgres "$url" -migrate
"$tmp/peers" -postgres "$url" -server-pid "$pgpid" | tee -a "$results"
stop
pg_start yes
peer_counts river postgres "$tmp/trace.postgres" -postgres "$url"
stop
fi

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$root" rev-parse --short HEAD)"
echo
"$tmp/peers" -table "$results"
