#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus`) on 127.0.0.1 holding a synthetic month
# of per-namespace series, for the footprint tests (crates/footprint/tests/prometheus.rs)
# and benchmark (scripts/bench-footprint.sh).
#
# Usage:
#   scripts/prometheus.sh start DIR PORT [SYNTH ARGS...]
#       generates the month with scripts/footprint-synth.py (SYNTH ARGS, e.g.
#       --namespaces 1000 --nodes 20), backfills it with `promtool tsdb
#       create-blocks-from openmetrics` into DIR/tsdb (kept between runs while
#       the arguments and the generator are unchanged), starts Prometheus on PORT
#       with no scrape target, waits until it is ready, and writes DIR/env with
#       the variables the tests read: LIAISON_TEST_PROMETHEUS_URL and
#       LIAISON_TEST_PROMETHEUS_DATA (the generator's ground truth: usage.csv,
#       inventory.toml, mapping.toml, expected.env).
#   scripts/prometheus.sh stop DIR
#       stops the Prometheus started for DIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

help() {
	usage "$0"
	exit "${1:-0}"
}

start() {
	local dir="$1" port="$2"
	shift 2
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	stop "$dir" >/dev/null 2>&1 || true
	ensure_debs prometheus:prometheus promtool:prometheus curl:curl
	local synth="$REPO_ROOT/scripts/footprint-synth.py" stamp="$dir/stamp" want
	want="$(printf '%s\n' "$*" "$(sha256sum "$synth" | cut -d' ' -f1)" "$(promtool --version 2>&1 | head -n 1)")"
	if [[ ! -d "$dir/tsdb" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
		rm -rf "$dir/tsdb" "$dir/synth" "$stamp"
		log "generating the synthetic month ($*)"
		# The OpenMetrics text is large (a gigabyte for the benchmark's month):
		# in memory when /dev/shm is there, and deleted once backfilled.
		local om="$dir/synth/metrics.om"
		[[ -d /dev/shm && -w /dev/shm ]] && om="$(mktemp /dev/shm/liaison-footprint-XXXXXX.om)"
		python3 "$synth" --out "$dir/synth" --metrics "$om" "$@"
		log "backfilling it with promtool"
		promtool tsdb create-blocks-from openmetrics --max-block-duration=768h \
			"$om" "$dir/tsdb" >"$dir/promtool.log" 2>&1 ||
			{
				rm -f "$om"
				tail -n 20 "$dir/promtool.log" >&2
				die "promtool failed"
			}
		rm -f "$om"
		printf '%s' "$want" >"$stamp"
	fi
	cat >"$dir/prometheus.yml" <<'YAML'
global:
  scrape_interval: 1h
scrape_configs: []
YAML
	setsid prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
		--storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$port" \
		--query.max-samples=200000000 >"$dir/prometheus.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"
	wait_http "http://127.0.0.1:$port/-/ready" 120 "$pid" || {
		tail -n 20 "$dir/prometheus.log" >&2
		die "Prometheus did not start"
	}
	cat >"$dir/env" <<EOF
export LIAISON_TEST_PROMETHEUS_URL=http://127.0.0.1:$port
export LIAISON_TEST_PROMETHEUS_DATA=$dir/synth
EOF
	log "Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}') on 127.0.0.1:$port (data in $dir)"
	cat "$dir/env"
}

stop() {
	local dir="$1" pid
	[[ -f "$dir/pid" ]] || return 0
	pid="$(cat "$dir/pid")"
	stop_pid "$pid"
	rm -f "$dir/pid" "$dir/env"
}

case "${1:-}" in
start)
	[[ $# -ge 3 ]] || help 1
	shift
	start "$@"
	;;
stop)
	[[ $# -eq 2 ]] || help 1
	stop "$2"
	;;
-h | --help) help 0 ;;
*) help 1 ;;
esac
