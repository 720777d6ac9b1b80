#!/usr/bin/env bash
# compare-nats.sh: Rocketry (official Go SDK v5 -> Proxy -> Broker, `rocketry bench produce`)
# against NATS JetStream (`nats bench js pub sync`), both storing 1 KiB messages in files on
# this machine, each sender waiting for every acknowledgement, with 1, 16 and 64 senders:
#
#   durable: NATS `sync_interval: always` (fsync per write)  vs  Rocketry SYNC_FLUSH (group commit)
#   async:   NATS default sync_interval (2 min)              vs  Rocketry ASYNC_FLUSH
#
# Then, per mode, receive + acknowledge MSGS pre-filled messages: NATS `bench js consume
# --acks explicit` (durable: `--doubleack`, waiting for each ack's confirmation) against
# `rocketry bench consume` (4 consumers, batches of 32, every ack confirmed; the acks of a
# batch in flight together, `--ack-parallel 32`, as NATS pipelines its acks).
#
# Servers listen on 127.0.0.1 only, are stopped by PID, and their data directories are
# removed. Prints one table with both rates and their ratio (Rocketry / NATS).
#
# Usage: bench/compare-nats.sh            (from the repository root)
# Env:   MSGS (messages per run, default 20000), SENDERS (default "1 16 64"),
#        MODES (default "durable async"), CONSUME (1: also the receive+ack cells; 0: not),
#        NATS_PORT (14222), RK_BASE_PORT (19800).
# Needs: go (builds rocketry and, when missing, nats-server v2.15.2 and natscli v0.5.1 with
#        `go install`), curl.
set -euo pipefail

MSGS=${MSGS:-20000}
SENDERS=${SENDERS:-"1 16 64"}
MODES=${MODES:-"durable async"}
CONSUME=${CONSUME:-1}
NATS_PORT=${NATS_PORT:-14222}
RK_BASE=${RK_BASE_PORT:-19800}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rocketry-vs-nats.XXXXXX")
PIDS=()

cleanup() {
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

GOBIN_DIR=$(go env GOPATH)/bin
NATS_SERVER=$(command -v nats-server || true)
NATS=$(command -v nats || true)
if [ -z "$NATS_SERVER" ] || ! "$NATS_SERVER" --version 2>/dev/null | grep -q 'v2.15.2'; then
	[ -x "$GOBIN_DIR/nats-server" ] || go install github.com/nats-io/nats-server/v2@v2.15.2
	NATS_SERVER=$GOBIN_DIR/nats-server
fi
if [ -z "$NATS" ] || ! "$NATS" --version 2>/dev/null | grep -q '0.5.1'; then
	[ -x "$GOBIN_DIR/nats" ] || go install github.com/nats-io/natscli/nats@v0.5.1
	NATS=$GOBIN_DIR/nats
fi
echo "building rocketry..." >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/rocketry" ./cmd/rocketry)
RK=$WORK/rocketry

wait_port() { # host:port, seconds
	local end=$((SECONDS + $2))
	until (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; do
		[ $SECONDS -lt $end ] || { echo "timeout waiting for $1" >&2; return 1; }
		sleep 0.1
	done
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=()
	for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
	PIDS=("${keep[@]:-}")
}

# nats_run MODE SENDERS -> "msgs/s p50 p99" (latencies in ms)
nats_run() {
	local mode=$1 n=$2 dir=$WORK/js-$1 conf=$WORK/js-$1.conf out
	mkdir -p "$dir"
	{
		echo "listen: 127.0.0.1:$NATS_PORT"
		echo "jetstream { store_dir: \"$dir\"; max_file_store: 8GB; max_memory_store: 1GB$([ "$mode" = durable ] && echo '; sync_interval: always') }"
	} >"$conf"
	"$NATS_SERVER" -c "$conf" >"$WORK/nats-$mode-$n.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	wait_port "127.0.0.1:$NATS_PORT" 20
	out=$("$NATS" -s "nats://127.0.0.1:$NATS_PORT" bench js pub sync bench.x --create --purge --storage file --replicas 1 \
		--size 1KB --msgs "$MSGS" --clients "$n" --maxbytes 4GB --no-progress 2>&1)
	stop_pid "$pid"
	rm -rf "$dir"
	local rate p50 p99
	# One client prints "... publisher stats: N msgs/sec ~ ... P50: Xus ~ ... P99: Yus ~ ...";
	# several print "aggregated stats: N msgs/sec" and "latencies per operation ... P50 Xus | ...".
	rate=$(echo "$out" | sed -n 's/.*stats: \([0-9,]*\) msgs\/sec.*/\1/p' | tail -1 | tr -d ,)
	local latline
	latline=$(echo "$out" | grep -E 'latencies per operation|publisher stats' | tail -1)
	p50=$(echo "$latline" | grep -oE 'P50:? [0-9.,]+(us|ms)' | head -1 | tr -d ,: | awk '{ v=$2; u=substr(v, length(v)-1); sub(/(us|ms)$/, "", v); printf "%.3f", (u=="us") ? v/1000 : v }')
	p99=$(echo "$latline" | grep -oE 'P99:? [0-9.,]+(us|ms)' | head -1 | tr -d ,: | awk '{ v=$2; u=substr(v, length(v)-1); sub(/(us|ms)$/, "", v); printf "%.3f", (u=="us") ? v/1000 : v }')
	echo "${rate:-0} ${p50:-?} ${p99:-?}"
}

# nats_consume MODE -> "msgs/s": pre-fill MSGS messages, then receive and ack them all.
nats_consume() {
	local mode=$1 dir=$WORK/jsc-$1 conf=$WORK/jsc-$1.conf out dbl=""
	[ "$mode" = durable ] && dbl=--doubleack
	mkdir -p "$dir"
	{
		echo "listen: 127.0.0.1:$NATS_PORT"
		echo "jetstream { store_dir: \"$dir\"; max_file_store: 8GB; max_memory_store: 1GB$([ "$mode" = durable ] && echo '; sync_interval: always') }"
	} >"$conf"
	"$NATS_SERVER" -c "$conf" >"$WORK/natsc-$mode.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	wait_port "127.0.0.1:$NATS_PORT" 20
	"$NATS" -s "nats://127.0.0.1:$NATS_PORT" bench js pub async bench.x --create --purge --storage file --replicas 1 \
		--size 1KB --msgs "$MSGS" --maxbytes 4GB --no-progress >/dev/null 2>&1
	out=$("$NATS" -s "nats://127.0.0.1:$NATS_PORT" bench js consume --msgs "$MSGS" --size 1KB --acks explicit $dbl --no-progress 2>&1)
	stop_pid "$pid"
	rm -rf "$dir"
	local rate
	rate=$(echo "$out" | sed -n 's/.*stats: \([0-9,]*\) msgs\/sec.*/\1/p' | tail -1 | tr -d ,)
	echo "${rate:-0}"
}

# rocketry_start MODE NAME: starts a standalone (SYNC_FLUSH for durable) with topic "bench";
# sets RK_PID and the address variables.
rocketry_start() {
	local mode=$1 name=$2 flush=ASYNC_FLUSH
	[ "$mode" = durable ] && flush=SYNC_FLUSH
	RK_DIR=$WORK/rk-$name
	ns=127.0.0.1:$RK_BASE br=127.0.0.1:$((RK_BASE + 1)) grpc=127.0.0.1:$((RK_BASE + 2)) http=127.0.0.1:$((RK_BASE + 3))
	"$RK" standalone --data-dir "$RK_DIR" --flush-disk-type "$flush" --namesrv-listen "$ns" --broker-listen "$br" \
		--grpc-listen "$grpc" --http-listen "$http" --log-level warn >"$WORK/rk-$name.log" 2>&1 &
	RK_PID=$!
	PIDS+=("$RK_PID")
	local end=$((SECONDS + 30))
	until curl -fs "http://$http/healthz" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "rocketry not ready" >&2; cat "$WORK/rk-$name.log" >&2; return 1; }
		sleep 0.1
	done
	"$RK" admin -n "$ns" topic create --name bench --queues 8 >/dev/null
}

# rocketry_consume MODE -> "msgs/s": pre-fill MSGS messages, then receive and ack them all.
rocketry_consume() {
	local mode=$1 out
	rocketry_start "$mode" "c-$mode"
	"$RK" bench produce --endpoint "$grpc" -t bench -c 64 -s 1024 -n "$MSGS" --json --progress never >/dev/null
	out=$("$RK" bench consume --endpoint "$grpc" -t bench -g bench-g -n "$MSGS" --drain 5s --ack-parallel 32 --json --progress never)
	stop_pid "$RK_PID"
	rm -rf "$RK_DIR"
	local rate
	rate=$(echo "$out" | sed -n 's/.*"recv_msgs_per_s": \([0-9.]*\).*/\1/p' | head -1)
	echo "${rate:-0}"
}

# rocketry_run MODE SENDERS -> "msgs/s p50 p99"
rocketry_run() {
	local mode=$1 n=$2 dir=$WORK/rk-$1 flush=ASYNC_FLUSH out
	[ "$mode" = durable ] && flush=SYNC_FLUSH
	local ns=127.0.0.1:$RK_BASE br=127.0.0.1:$((RK_BASE + 1)) grpc=127.0.0.1:$((RK_BASE + 2)) http=127.0.0.1:$((RK_BASE + 3))
	"$RK" standalone --data-dir "$dir" --flush-disk-type "$flush" --namesrv-listen "$ns" --broker-listen "$br" \
		--grpc-listen "$grpc" --http-listen "$http" --log-level warn >"$WORK/rk-$mode-$n.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	local end=$((SECONDS + 30))
	until curl -fs "http://$http/healthz" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "rocketry not ready" >&2; cat "$WORK/rk-$mode-$n.log" >&2; return 1; }
		sleep 0.1
	done
	"$RK" admin -n "$ns" topic create --name bench --queues 8 >/dev/null
	out=$("$RK" bench produce --endpoint "$grpc" -t bench -c "$n" -s 1024 -n "$MSGS" --json --progress never)
	stop_pid "$pid"
	rm -rf "$dir"
	local rate p50 p99
	rate=$(echo "$out" | sed -n 's/.*"send_msgs_per_s": \([0-9.]*\).*/\1/p' | head -1)
	p50=$(echo "$out" | sed -n '/"send_latency"/,/}/s/.*"p50_ms": \([0-9.]*\).*/\1/p' | head -1)
	p99=$(echo "$out" | sed -n '/"send_latency"/,/}/s/.*"p99_ms": \([0-9.]*\).*/\1/p' | head -1)
	echo "${rate:-0} ${p50:-?} ${p99:-?}"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) vCPU, 1 KiB messages, $MSGS per run, sync sends (each sender waits for its ack)"
echo "# NATS: $("$NATS_SERVER" --version), natscli $("$NATS" --version 2>&1); Rocketry: $("$RK" version)"
printf '%-8s %7s | %12s %8s %8s | %12s %8s %8s | %7s\n' mode senders "nats msg/s" "p50 ms" "p99 ms" "rocketry" "p50 ms" "p99 ms" ratio
for mode in $MODES; do
	for n in $SENDERS; do
		read -r nr n50 n99 < <(nats_run "$mode" "$n")
		read -r rr r50 r99 < <(rocketry_run "$mode" "$n")
		ratio=$(awk -v a="$rr" -v b="$nr" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
		printf '%-8s %7s | %12.0f %8s %8s | %12.0f %8s %8s | %7s\n' "$mode" "$n" "$nr" "$n50" "$n99" "$rr" "$r50" "$r99" "$ratio"
	done
done
if [ "$CONSUME" = 1 ]; then
	echo "# receive + ack of $MSGS pre-filled messages (msgs/s)"
	for mode in $MODES; do
		nr=$(nats_consume "$mode")
		rr=$(rocketry_consume "$mode")
		ratio=$(awk -v a="$rr" -v b="$nr" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
		printf '%-8s %7s | %12.0f %8s %8s | %12.0f %8s %8s | %7s\n' "$mode" recv+ack "$nr" - - "$rr" - - "$ratio"
	done
fi
