#!/usr/bin/env bash
# Activity-metering benchmark: Keycloak webhook ingest into Liaison (`liaison
# serve`, keyed hashes in meter_seen) and into a peer keeping a login log (one
# row per event, liaison-bench-meter peer), on SQLite and on PostgreSQL (a
# private cluster), with the same client load and the same events; then the
# period count: `liaison meter close --force` against SELECT COUNT(DISTINCT).
# Writes the table, the command, the date and the machine into the section
# "Activity metering" of docs/PERFORMANCE.md (between its bench-meter markers).
#
# Usage: scripts/bench-meter.sh [N] [options]
#   N                     distinct accounts (default 100000)
#   -e, --events E        events per account (default 10)
#   -c, --concurrency C   concurrent clients (default 8)
#   --batch B             also run with B events per request (default 100; 0: only
#                         one event per request)
#   --only LIST           comma-separated subset of sqlite,postgres
#   --no-doc              print the table only; leave docs/PERFORMANCE.md alone
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

COMMAND_LINE="scripts/bench-meter.sh${*:+ $*}"
N=100000
EVENTS=10
CONCURRENCY=8
BATCH=100
ONLY="sqlite,postgres"
WRITE_DOC=1
while (($#)); do
	case "$1" in
	-e | --events) EVENTS="${2:?}" && shift ;;
	-c | --concurrency) CONCURRENCY="${2:?}" && shift ;;
	--batch) BATCH="${2:?}" && shift ;;
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
for v in "$N" "$EVENTS" "$CONCURRENCY" "$BATCH"; do
	[[ "$v" =~ ^[0-9]+$ ]] || die "not a whole number: $v"
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
BATCHES=(1)
((BATCH > 1)) && BATCHES+=("$BATCH")

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-meter.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$SERVER_PID"
	pg_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

ensure_debs curl:curl
if want postgres; then
	ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client
fi

echo "==== building (release) ===="
cargo build --release --quiet -p bench --bin liaison-bench-meter
cargo build --release --quiet -p liaison --bin liaison
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
BENCH="$TARGET/liaison-bench-meter"
LIAISON="$TARGET/liaison"
# The revision the binaries were built from.
REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || REV="$REV (with uncommitted changes)"
# The month the events fall in (they carry the current time).
PERIOD="$(date -u +%Y-%m)"
STARTED="$(date +%s)"

now_ns() { date +%s%N; }

# Sends the events to webhook URL $1 as run $2 (answers $3: liaison or peer,
# events per request $4) against server $SERVER_PID.
load() {
	local url="$1" slug="$2" answers="$3" batch="$4"
	"$BENCH" load --url "$url" -n "$N" -e "$EVENTS" -c "$CONCURRENCY" -b "$batch" \
		--answers "$answers" --pid "$SERVER_PID" --label "$slug" \
		--json-out "$WORK/$slug.load.json" >/dev/null
}

# Liaison on store $1 (sqlite|postgres), database URL $2, $3 events per request.
run_liaison() {
	local store="$1" db_url="$2" batch="$3" slug port out t0 t1
	slug="liaison-$store-b$batch"
	port="$(free_port)"
	LIAISON_CONFIG_FILE="$WORK/$slug.toml"
	# No activity polling of apps during the run (there are none anyway). On
	# PostgreSQL the period keys' key-encryption key is a file of its own (on
	# SQLite it is made beside the database).
	printf '[metering]\npoll_interval_secs = 0\n' >"$LIAISON_CONFIG_FILE"
	if [[ "$store" == postgres ]]; then
		head -c 32 /dev/urandom >"$WORK/$slug.kek"
		chmod 600 "$WORK/$slug.kek"
		printf 'kek_file = "%s"\n' "$WORK/$slug.kek" >>"$LIAISON_CONFIG_FILE"
	fi
	export LIAISON_DATABASE_URL="$db_url" LIAISON_LISTEN="127.0.0.1:$port"
	liaison_cmd migrate >/dev/null
	liaison_cmd org create bench --name "Benchmark" >/dev/null
	export BENCH_METER_SECRET
	BENCH_METER_SECRET="$(liaison_cmd meter webhook-secret bench | tail -n 1)"
	liaison_serve "$WORK/$slug.log"
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID" || {
		tail -n 40 "$WORK/$slug.log" >&2
		return 1
	}
	echo "---- Liaison, $store, $batch event(s) per request"
	load "http://127.0.0.1:$port/o/bench/events/keycloak" "$slug" liaison "$batch"
	"$BENCH" inspect --database "$db_url" --table meter_seen >"$WORK/$slug.inspect.json"
	t0="$(now_ns)"
	out="$(liaison_cmd meter close --period "$PERIOD" --org bench --force)"
	t1="$(now_ns)"
	echo "$out"
	[[ "$(awk -F'\t' '{print $3}' <<<"$out")" == "$N active accounts" ]] ||
		die "the close did not count $N accounts: $out"
	echo "{\"close_seconds\": $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')}" >"$WORK/$slug.close.json"
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

# The login-log peer on database URL $2 (store $1), $3 events per request.
run_peer() {
	local store="$1" db_url="$2" batch="$3" slug port
	slug="peer-$store-b$batch"
	port="$(free_port)"
	export BENCH_METER_SECRET="bench-peer-secret-$RANDOM$RANDOM"
	"$BENCH" peer --database "$db_url" --listen "127.0.0.1:$port" >"$WORK/$slug.log" 2>&1 &
	SERVER_PID=$!
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID" || {
		tail -n 40 "$WORK/$slug.log" >&2
		return 1
	}
	echo "---- login-log peer, $store, $batch event(s) per request"
	load "http://127.0.0.1:$port/o/bench/events/keycloak" "$slug" peer "$batch"
	"$BENCH" inspect --database "$db_url" --table login_log --count-runs 3 >"$WORK/$slug.inspect.json"
	python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["count"]; sys.exit(0 if c == int(sys.argv[2]) else f"the login log counts {c} accounts, not {sys.argv[2]}")' \
		"$WORK/$slug.inspect.json" "$N"
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

RUNS=()
PG_VERSION=""
if want sqlite; then
	echo "==== SQLite: $N accounts × $EVENTS events ===="
	for b in "${BATCHES[@]}"; do
		run_liaison sqlite "sqlite://$WORK/liaison-b$b.db" "$b"
		run_peer sqlite "sqlite://$WORK/peer-b$b.db" "$b"
		RUNS+=("sqlite:$b")
	done
fi
if want postgres; then
	pg_start
	PG_VERSION="$("$(pg_bindir)/postgres" --version | awk '{print $3}')"
	echo "==== PostgreSQL $PG_VERSION: $N accounts × $EVENTS events ===="
	for b in "${BATCHES[@]}"; do
		run_liaison postgres "$(pg_create_db "$PG_URL" "liaison_meter_b$b")" "$b"
		run_peer postgres "$(pg_create_db "$PG_URL" "peer_meter_b$b")" "$b"
		RUNS+=("postgres:$b")
	done
	pg_stop
fi
ELAPSED=$(($(date +%s) - STARTED))

TABLE="$(python3 - "$WORK" "${PG_VERSION:-?}" "${RUNS[@]}" <<'PY'
import json, sys
work, pg_version, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
def read(name):
    try:
        return json.load(open(f"{work}/{name}.json"))
    except FileNotFoundError:
        return {}
print("| Store | Server | Events per request | Events/s | p50 ms | p99 ms | Peak RSS MiB "
      "| Table MiB | Database MiB | Period count s |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
mib = lambda b: f"{b / 1048576:.1f}"
for run in runs:
    store, batch = run.split(":")
    store_name = "SQLite" if store == "sqlite" else f"PostgreSQL {pg_version}"
    for who, name, table in (("liaison", "Liaison (keyed hashes)", "meter_seen"),
                             ("peer", "login log (peer)", "login_log")):
        slug = f"{who}-{store}-b{batch}"
        l, i = read(f"{slug}.load"), read(f"{slug}.inspect")
        count = read(f"{slug}.close")["close_seconds"] if who == "liaison" else i["count_median_ms"] / 1000
        print(f"| {store_name} | {name} | {batch} | {l['events_per_second']:.0f} | {l['p50_ms']:.2f} "
              f"| {l['p99_ms']:.2f} | {l['peak_rss_mib']:.0f} | {mib(i['table_bytes'])} "
              f"| {mib(i['database_bytes'])} | {count:.3f} |")
PY
)"
echo
echo "$TABLE"

((WRITE_DOC)) || exit 0

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
	echo "- Settings: $N distinct accounts × $EVENTS events = $((N * EVENTS)) events per run; $CONCURRENCY concurrent clients; events per request: ${BATCHES[*]}; period $PERIOD (monthly); a fresh database and server process per run; the runs took $((ELAPSED / 60)) min $((ELAPSED % 60)) s in all."
	echo "- Machine: $(nproc) cores ($cpu), ${mem_gib} GiB RAM, $(uname -sr); client and server share it; load average $LOAD_BEFORE before the run, $(cut -d" " -f1-3 /proc/loadavg) after it."
	echo "- Versions: Liaison $REV ($(rustc --version)); SQLite bundled by libsqlite3-sys ${sqlite_crate:-?}${PG_VERSION:+; PostgreSQL $PG_VERSION (private cluster, fsync=off)}."
} >"$WORK/section.md"

write_doc_figures bench-meter "$WORK/section.md"
echo "docs/PERFORMANCE.md updated"
exit
}
