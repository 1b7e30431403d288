#!/usr/bin/env bash
# The SCIM request path under load, with wrk: userName lookups at N users on
# Liaison (SQLite and PostgreSQL) and on the Python peer scim2-server, and, on
# Liaison, an authenticated GET /ServiceProviderConfig against /healthz (what
# authentication and routing cost). Writes the table, the command and the
# machine into docs/PERFORMANCE.md (between its http:begin and http:end markers).
#
# Usage: scripts/bench-http.sh [N] [options]
#   N                     users on every server (default 10000)
#   -c, --connections C   wrk connections (default 16)
#   -t, --threads T       wrk threads (default 2)
#   -d, --seconds D       seconds per wrk run (default 20)
#   --only LIST           comma-separated subset of sqlite,postgres,peer
#   --no-doc              print the table only
set -euo pipefail
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

COMMAND_LINE="scripts/bench-http.sh${*:+ $*}"
N=10000
CONNECTIONS=16
THREADS=2
SECONDS_PER_RUN=20
ONLY="sqlite,postgres,peer"
WRITE_DOC=1
while (($#)); do
	case "$1" in
	-c | --connections) CONNECTIONS="${2:?}" && shift ;;
	-t | --threads) THREADS="${2:?}" && shift ;;
	-d | --seconds) SECONDS_PER_RUN="${2:?}" && shift ;;
	--only) ONLY="${2:?}" && shift ;;
	--no-doc) WRITE_DOC=0 ;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	[0-9]*) N="$1" ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

ensure_debs curl:curl wrk:wrk
want postgres && ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client
want peer && ensure_venv
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-http.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$SERVER_PID"
	pg_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "==== building (release) ===="
cargo build --release --quiet -p bench --bin liaison-bench -p liaison --bin liaison
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
BENCH="$TARGET/liaison-bench"
LIAISON="$TARGET/liaison"
PREFIX=u

# Creates N users with liaison-bench at base URL $1 with token $2.
create_users() {
	SCIM_BENCH_TOKEN="$2" "$BENCH" --url "$1" -n "$N" -c 8 -d 1 -r 1 --skip-group \
		--prefix "$PREFIX" --label setup >/dev/null
}

# Runs wrk with script $1 on URL $2; prints the RESULT line's fields.
run_wrk() {
	local script="$1" url="$2"
	wrk -t "$THREADS" -c "$CONNECTIONS" -d "${SECONDS_PER_RUN}s" --latency -s "$script" "$url" |
		awk '/^RESULT/ { $1 = ""; print }'
}

# field NAME LINE: the value of NAME=... in a RESULT line.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

ROWS=()
# Adds a row: label, lookup RESULT, SPC RESULT (or empty), healthz RESULT (or empty).
row() {
	local label="$1" lookup="$2" spc="${3:-}" health="${4:-}" ratio="" spc_rps="" health_rps=""
	if [[ -n "$spc" ]]; then
		spc_rps="$(field rps "$spc")"
		health_rps="$(field rps "$health")"
		ratio="$(awk -v a="$spc_rps" -v b="$health_rps" 'BEGIN { printf "%.2f", a / b }')"
	fi
	for r in "$lookup" "$spc" "$health"; do
		[[ -z "$r" ]] && continue
		if [[ "$(field errors "$r")" != 0 || "$(field bad "$r")" != 0 ]]; then
			die "$label: failed requests during the run: $r"
		fi
	done
	ROWS+=("| $label | $(field rps "$lookup") | $(field p50_ms "$lookup") | $(field p99_ms "$lookup") | ${spc_rps:--} | ${health_rps:--} | ${ratio:--} |")
	LOOKUP_RPS["$label"]="$(field rps "$lookup")"
}
declare -A LOOKUP_RPS

# Waits until autovacuum has analyzed the tables the lookups read (database
# URL $1), as on a server that has run for a minute or two since a bulk load:
# before that, PostgreSQL's planner has no statistics of them. After 5
# minutes, analyzes them itself and says so.
await_statistics() {
	local i
	for ((i = 0; i < 300; i++)); do
		if [[ "$(psql "$1" -Atc "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('resources', 'attr_values') AND COALESCE(last_autoanalyze, last_analyze) IS NOT NULL")" == 2 ]]; then
			log "autovacuum analyzed the tables $i s after the users were created"
			return 0
		fi
		sleep 1
	done
	log "autovacuum has not analyzed the tables after 300 s: ANALYZE"
	psql "$1" -qc "ANALYZE resources, attr_values"
}

bench_liaison() {
	local store="$1" db_url="$2" label="$3" port token base lookup spc health
	port="$(free_port)"
	LIAISON_CONFIG_FILE="$WORK/liaison-$store.toml"
	echo "# benchmark run: settings come from the environment" >"$LIAISON_CONFIG_FILE"
	export LIAISON_DATABASE_URL="$db_url" LIAISON_LISTEN="127.0.0.1:$port" LIAISON_LOG=warn
	liaison_cmd migrate >/dev/null
	liaison_cmd org create bench --name "Benchmark" >/dev/null
	token="$(liaison_cmd token issue bench | tail -n 1)"
	liaison_serve "$WORK/server-$store.log"
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID"
	base="http://127.0.0.1:$port/o/bench/scim/v2"
	create_users "$base" "$token"
	[[ "$store" == postgres ]] && await_statistics "$db_url"
	export WRK_PREFIX="$PREFIX" WRK_USERS="$N" WRK_TOKEN="$token" WRK_BASE_PATH="/o/bench/scim/v2"
	lookup="$(run_wrk scripts/wrk/lookup.lua "http://127.0.0.1:$port")"
	spc="$(run_wrk scripts/wrk/get.lua "$base/ServiceProviderConfig")"
	health="$(WRK_TOKEN="" run_wrk scripts/wrk/get.lua "http://127.0.0.1:$port/healthz")"
	row "$label" "$lookup" "$spc" "$health"
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

PEER_LABEL=""
bench_peer() {
	local port token=bench-token version lookup
	version="$("$VENV/bin/python" -m pip show scim2-server 2>/dev/null | awk '/^Version:/ {print $2}')"
	PEER_LABEL="scim2-server $version (Python, in memory)"
	port="$(free_port)"
	"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token="$token" >"$WORK/peer.log" 2>&1 &
	SERVER_PID=$!
	wait_http "http://127.0.0.1:$port/ServiceProviderConfig" 30 "$SERVER_PID"
	create_users "http://127.0.0.1:$port/v2" "$token"
	export WRK_PREFIX="$PREFIX" WRK_USERS="$N" WRK_TOKEN="$token" WRK_BASE_PATH="/v2"
	lookup="$(run_wrk scripts/wrk/lookup.lua "http://127.0.0.1:$port")"
	row "$PEER_LABEL" "$lookup"
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

PG_VERSION=""
if want sqlite; then
	echo "==== Liaison on SQLite ===="
	bench_liaison sqlite "sqlite://$WORK/bench.db" "Liaison, SQLite"
fi
if want postgres; then
	echo "==== Liaison on PostgreSQL ===="
	pg_start
	PG_VERSION="$("$(pg_bindir)/postgres" --version | awk '{print $3}')"
	bench_liaison postgres "$(pg_create_db "$PG_URL" liaison_bench)" "Liaison, PostgreSQL $PG_VERSION"
	pg_stop
fi
if want peer; then
	echo "==== scim2-server ===="
	bench_peer
fi

TABLE="| server | lookups/s | lookup p50 ms | lookup p99 ms | authenticated SPC/s | /healthz/s | SPC ÷ healthz |
|---|--:|--:|--:|--:|--:|--:|"
TABLE+=$'\n'"$(printf '%s\n' "${ROWS[@]}")"
echo
echo "$TABLE"
RATIOS=""
if [[ -n "$PEER_LABEL" && -n "${LOOKUP_RPS[$PEER_LABEL]:-}" ]]; then
	for label in "${!LOOKUP_RPS[@]}"; do
		[[ "$label" == "$PEER_LABEL" ]] && continue
		RATIOS+="$label: $(awk -v a="${LOOKUP_RPS[$label]}" -v b="${LOOKUP_RPS[$PEER_LABEL]}" 'BEGIN { printf "%.1fx", a / b }') the peer's lookups; "
	done
fi
[[ -n "$RATIOS" ]] && echo "$RATIOS"
((WRITE_DOC)) || exit 0

rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || rev="$rev (with uncommitted changes)"
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with:"
	echo
	echo '```'
	echo "$COMMAND_LINE"
	echo '```'
	echo
	echo "$TABLE"
	echo
	[[ -n "$RATIOS" ]] && echo "- ${RATIOS%; }."
	echo "- Settings: $N users on every server; wrk $(wrk --version 2>&1 | awk 'NR == 1 {print $2}') with $THREADS threads and $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run; a lookup is \`GET /Users?filter=userName eq \"u-NNNNNNN\"\` for a random user, checked to find exactly one."
	echo "- Machine: $(nproc) cores ($cpu); wrk and the server share it; load average $LOAD_BEFORE before the run, $(cut -d" " -f1-3 /proc/loadavg) after it."
	echo "- Versions: Liaison $rev ($(rustc --version))${PG_VERSION:+; PostgreSQL $PG_VERSION}."
} >"$WORK/section.md"
write_doc_figures http "$WORK/section.md"
echo "docs/PERFORMANCE.md updated"
exit
}
