#!/usr/bin/env bash
# standalone-startup.sh: how long `rocketry standalone` takes from exec to a 200 on /healthz
# (NameServer serving, Broker registered, Proxy accepting), on an empty data dir and on the
# same data dir again (restart), and its resident memory when idle.
#
# Usage: bench/standalone-startup.sh [runs]   (default 5 runs of each)
# Env:   SEGMENT (mappedFileSizeCommitLog in bytes; default: standalone's 64 MiB),
#        BASE_PORT (default 19700). Servers listen on 127.0.0.1 only, are stopped by PID
#        (SIGTERM, clean exit checked), and the data directory is removed.
set -euo pipefail
RUNS=${1:-5}
BASE=${BASE_PORT:-19700}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rocketry-startup.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "${KEEPLOG:-}" ] && cp "$WORK/log" "$KEEPLOG"; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
KEEPLOG=${KEEPLOG:-}
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/rocketry" ./cmd/rocketry)
CONF=()
if [ -n "${SEGMENT:-}" ]; then
	echo "mappedFileSizeCommitLog=$SEGMENT" >"$WORK/broker.conf"
	CONF=(--config "$WORK/broker.conf")
fi
HTTP=127.0.0.1:$((BASE + 3))

now_ms() { date +%s%3N; }

# start DATA: sets PID and ELAPSED (ms from exec until /healthz answered 200)
start() {
	local t0 t1
	t0=$(now_ms)
	"$WORK/rocketry" standalone "${CONF[@]}" --data-dir "$1" --namesrv-listen 127.0.0.1:$BASE --broker-listen 127.0.0.1:$((BASE + 1)) \
		--grpc-listen 127.0.0.1:$((BASE + 2)) --http-listen "$HTTP" --log-level warn >>"$WORK/log" 2>&1 &
	PID=$!
	until curl -fs "http://$HTTP/healthz" >/dev/null 2>&1; do
		kill -0 "$PID" 2>/dev/null || { echo "standalone exited" >&2; cat "$WORK/log" >&2; exit 1; }
		sleep 0.005
	done
	t1=$(now_ms)
	ELAPSED=$((t1 - t0))
}

stop() {
	kill -TERM "$PID"
	local rc=0
	wait "$PID" || rc=$?
	PID=
	[ "$rc" = 0 ] || { echo "standalone exited $rc after SIGTERM" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

cold=() warm=() rss=()
for i in $(seq "$RUNS"); do
	data=$WORK/data-$i
	start "$data"
	cold+=("$ELAPSED")
	sleep 5 # idle
	rss+=("$(rss_kib "$PID")")
	stop
	start "$data"
	warm+=("$ELAPSED")
	stop
	rm -rf "$data"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
range() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) vCPU, $RUNS runs, segment ${SEGMENT:-default}"
echo "empty data dir: exec -> healthy  median $(median "${cold[@]}") ms  [$(range "${cold[@]}")]"
echo "restart:        exec -> healthy  median $(median "${warm[@]}") ms  [$(range "${warm[@]}")]"
echo "idle RSS after 5 s: median $(( $(median "${rss[@]}") / 1024 )) MiB  [$(range "${rss[@]}") KiB]"
