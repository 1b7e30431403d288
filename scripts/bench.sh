#!/usr/bin/env bash
# SCIM benchmark: runs liaison-bench against Liaison on SQLite, Liaison on
# PostgreSQL (a private cluster) and the Python peer scim2-server (in memory),
# one after the other on this machine with the same settings, then writes the
# results table, the command, the date, the machine and the versions into
# docs/PERFORMANCE.md (between its bench:begin and bench:end markers).
#
# Usage: scripts/bench.sh [N] [options]
#   N                     users to create on Liaison (default 100000)
#   --peer-n N            users to create on scim2-server (default: N, at most
#                         10000: the peer slows down with size, see PERFORMANCE.md)
#   -c, --concurrency C   concurrent clients (default 8)
#   -d, --lookup-seconds D  seconds of filtered lookups (default 30)
#   --group-members M     members of the large group (default: the number of users)
#   --only LIST           comma-separated subset of sqlite,postgres,peer
#   --pg-url URL          run Liaison on this PostgreSQL server (a database
#                         liaison_bench_PID created on it, dropped at the end)
#                         rather than on a private cluster started for the run
#   --no-doc              print the table only; leave docs/PERFORMANCE.md alone
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs (a checkout, say) cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

COMMAND_LINE="scripts/bench.sh${*:+ $*}"
N=100000
PEER_N=""
CONCURRENCY=8
LOOKUP_SECONDS=30
GROUP_MEMBERS=""
ONLY="sqlite,postgres,peer"
WRITE_DOC=1
PG_SERVER_URL=""
while (($#)); do
	case "$1" in
	--peer-n) PEER_N="${2:?}" && shift ;;
	-c | --concurrency) CONCURRENCY="${2:?}" && shift ;;
	-d | --lookup-seconds) LOOKUP_SECONDS="${2:?}" && shift ;;
	--group-members) GROUP_MEMBERS="${2:?}" && shift ;;
	--only) ONLY="${2:?}" && shift ;;
	--pg-url) PG_SERVER_URL="${2:?}" && shift ;;
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
PEER_N="${PEER_N:-$((N < 10000 ? N : 10000))}"
for v in "$N" "$PEER_N" "$CONCURRENCY" "$LOOKUP_SECONDS" ${GROUP_MEMBERS:+"$GROUP_MEMBERS"}; do
	[[ "$v" =~ ^[0-9]+$ ]] || die "not a whole number: $v"
done
# Liaison's request body limit for the run: room for the PUT of the large group.
BODY_LIMIT=$(((${GROUP_MEMBERS:-$N} * 64 / 1048576 + 16) * 1048576))
want() { [[ ",$ONLY," == *",$1,"* ]]; }

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
PG_BENCH_DB="liaison_bench_$$"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$SERVER_PID"
	pg_stop
	if [[ -n "$PG_SERVER_URL" ]] && want postgres; then
		psql "$PG_SERVER_URL" -q -c "DROP DATABASE IF EXISTS \"$PG_BENCH_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

ensure_debs curl:curl
if want postgres; then
	if [[ -n "$PG_SERVER_URL" ]]; then
		ensure_debs psql:postgresql-client
	else
		ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client
	fi
fi
want peer && ensure_venv

echo "==== building (release) ===="
# One build of both binaries (building them apart would resolve the shared
# dependencies' features twice and compile them twice).
if want sqlite || want postgres; then
	cargo build --release --quiet -p bench --bin liaison-bench -p liaison --bin liaison
else
	cargo build --release --quiet -p bench --bin liaison-bench
fi
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
BENCH="$TARGET/liaison-bench"
LIAISON="$TARGET/liaison"

ROWS=()
# Runs liaison-bench against base URL $1, token $2, server pid $3, label $4, users $5.
bench() {
	local url="$1" token="$2" pid="$3" label="$4" users="$5" slug="$6"
	local members="${GROUP_MEMBERS:-$users}"
	SCIM_BENCH_TOKEN="$token" "$BENCH" --url "$url" -n "$users" -c "$CONCURRENCY" \
		-d "$LOOKUP_SECONDS" --group-members "$members" --pid "$pid" --label "$label" \
		--json-out "$WORK/$slug.json" --markdown-out "$WORK/$slug.md" >/dev/null
	cat "$WORK/$slug.json"
	ROWS+=("$(cat "$WORK/$slug.md")")
}

# Benchmarks Liaison on store $1 with database URL $2.
bench_liaison() {
	local store="$1" db_url="$2" label="$3" port config token
	port="$(free_port)"
	config="$WORK/liaison-$store.toml"
	echo "# benchmark run: settings come from the environment" >"$config"
	export LIAISON_DATABASE_URL="$db_url" LIAISON_LISTEN="127.0.0.1:$port"
	# A PUT of the large group carries every member: about 50 bytes each.
	export LIAISON_LIMITS__MAX_BODY_BYTES="$BODY_LIMIT"
	LIAISON_CONFIG_FILE="$config"
	liaison_cmd migrate >/dev/null
	liaison_cmd org create bench --name "Benchmark" >/dev/null
	token="$(liaison_cmd token issue bench | tail -n 1)"
	liaison_serve "$WORK/server-$store.log"
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID" || {
		tail -n 40 "$WORK/server-$store.log" >&2
		return 1
	}
	bench "http://127.0.0.1:$port/o/bench/scim/v2" "$token" "$SERVER_PID" "$label" "$N" "$store"
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

bench_peer() {
	local port token=bench-token label="$1"
	port="$(free_port)"
	"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token "$token" >"$WORK/peer.log" 2>&1 &
	SERVER_PID=$!
	wait_http "http://127.0.0.1:$port/ServiceProviderConfig" 30 "$SERVER_PID" || {
		tail -n 40 "$WORK/peer.log" >&2
		return 1
	}
	bench "http://127.0.0.1:$port/v2" "$token" "$SERVER_PID" "$label" "$PEER_N" peer
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

PG_VERSION=""
PEER_VERSION=""
if want sqlite; then
	echo "==== Liaison on SQLite: $N users ===="
	bench_liaison sqlite "sqlite://$WORK/bench.db" "Liaison, SQLite"
fi
if want postgres; then
	echo "==== Liaison on PostgreSQL: $N users ===="
	if [[ -n "$PG_SERVER_URL" ]]; then
		PG_VERSION="$(psql "$PG_SERVER_URL" -Atq -c "SHOW server_version" | awk '{print $1}')"
		bench_liaison postgres "$(pg_create_db "$PG_SERVER_URL" "$PG_BENCH_DB")" "Liaison, PostgreSQL $PG_VERSION"
	else
		pg_start
		PG_VERSION="$("$(pg_bindir)/postgres" --version | awk '{print $3}')"
		bench_liaison postgres "$(pg_create_db "$PG_URL" liaison_bench)" "Liaison, PostgreSQL $PG_VERSION"
		pg_stop
	fi
fi
if want peer; then
	PEER_VERSION="$("$VENV/bin/python" -m pip show scim2-server 2>/dev/null | awk '/^Version:/ {print $2}')"
	echo "==== scim2-server $PEER_VERSION (Python, in memory): $PEER_N users ===="
	bench_peer "scim2-server $PEER_VERSION (Python, in memory)"
fi

TABLE="$("$BENCH" --markdown-header)"$'\n'"$(printf '%s\n' "${ROWS[@]}")"
echo
echo "$TABLE"

((WRITE_DOC)) || exit 0

rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || rev="$rev (with uncommitted changes)"
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
mem_gib="$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
sqlite_crate="$(awk '/^name = "libsqlite3-sys"/ {getline; gsub(/"/, "", $3); print $3}' Cargo.lock)"
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with:"
	echo
	echo '```'
	echo "$COMMAND_LINE"
	echo '```'
	echo
	echo "$TABLE"
	echo
	settings=""
	if want sqlite || want postgres; then
		settings="$N users on Liaison (request body limit $((BODY_LIMIT / 1048576)) MiB); "
	fi
	if want peer; then
		settings+="$PEER_N users on scim2-server; "
	fi
	echo "- Settings: $settings$CONCURRENCY concurrent clients; ${LOOKUP_SECONDS}s of lookups; a group of ${GROUP_MEMBERS:+$GROUP_MEMBERS members}${GROUP_MEMBERS:-all but 7 of the users}, then 7 single-member PATCHes and 7 PUTs."
	echo "- Machine: $(nproc) cores ($cpu), ${mem_gib} GiB RAM, $(uname -sr); client and server share it; load average $LOAD_BEFORE before the run, $(cut -d" " -f1-3 /proc/loadavg) after it."
	echo "- Versions: Liaison $rev ($(rustc --version)); SQLite bundled by libsqlite3-sys ${sqlite_crate:-?}${PG_VERSION:+; PostgreSQL $PG_VERSION}${PEER_VERSION:+; scim2-server $PEER_VERSION on $("$VENV/bin/python" --version)}."
} >"$WORK/section.md"

write_doc_figures bench "$WORK/section.md"
echo "docs/PERFORMANCE.md updated"
exit
}
