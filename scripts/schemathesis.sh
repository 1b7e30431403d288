#!/usr/bin/env bash
# Property-based tests of the admin API with schemathesis: a live Liaison on
# each store (SQLite, PostgreSQL) with an organisation `alpha`, tested from its
# own `/openapi.json` with an operator token and every check schemathesis has
# (no server error, statuses, content types, headers and bodies as documented,
# invalid input refused, valid input accepted). Any failure fails the script.
#
# Usage: scripts/schemathesis.sh [--store sqlite|postgres|all] [--max-examples N]
# Environment:
#   LIAISON_TEST_POSTGRES_URL  a PostgreSQL server to create the test database on;
#                              without it a private cluster is started and stopped
#   LIAISON_BIN                a prebuilt liaison binary (skips cargo build)
#   SCHEMATHESIS_SEED          the seed (default: a fixed one, for repeatable runs)
set -euo pipefail
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

STORE_ARG=all
MAX_EXAMPLES=60
while (($#)); do
	case "$1" in
	--store)
		STORE_ARG="${2:-}"
		shift
		;;
	--store=*) STORE_ARG="${1#*=}" ;;
	--max-examples)
		MAX_EXAMPLES="${2:-}"
		shift
		;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
case "$STORE_ARG" in
all) STORES=(sqlite postgres) ;;
sqlite | postgres) STORES=("$STORE_ARG") ;;
*) die "--store must be sqlite, postgres or all" ;;
esac

ensure_debs curl:curl
ST_VENV="$REPO_ROOT/.venv-schemathesis"
ensure_tool_venv "$ST_VENV" "$REPO_ROOT/scripts/requirements-schemathesis.txt"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-schemathesis.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$SERVER_PID"
	pg_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

LIAISON="${LIAISON_BIN:-}"
if [[ -z "$LIAISON" ]]; then
	cargo build --quiet -p liaison --bin liaison
	LIAISON="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/liaison"
fi
[[ -x "$LIAISON" ]] || die "no liaison binary at $LIAISON"

# Tests Liaison on store $1 (sqlite|postgres) with database URL $2.
run_store() {
	local store="$1" db_url="$2" port config token rc=0
	port="$(free_port)"
	config="$WORK/liaison-$store.toml"
	echo "# schemathesis run: settings come from the environment" >"$config"
	export LIAISON_DATABASE_URL="$db_url" LIAISON_LISTEN="127.0.0.1:$port"
	LIAISON_CONFIG_FILE="$config"
	liaison_cmd migrate >/dev/null
	liaison_cmd org create alpha --name "Alpha" >/dev/null
	token="$(liaison_cmd token issue --operator | tail -n 1)"
	[[ -n "$token" ]] || die "liaison token issue printed no token"
	liaison_serve "$WORK/server-$store.log"
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID" ||
		{
			cat "$WORK/server-$store.log" >&2
			return 1
		}
	"$ST_VENV/bin/schemathesis" --config-file "$REPO_ROOT/scripts/schemathesis.toml" run \
		"http://127.0.0.1:$port/openapi.json" \
		--url "http://127.0.0.1:$port" \
		-H "Authorization: Bearer $token" \
		--checks all --max-examples "$MAX_EXAMPLES" \
		--seed "${SCHEMATHESIS_SEED:-20261202}" --generation-database none \
		--no-color --workers 2 || rc=$?
	stop_pid "$SERVER_PID"
	SERVER_PID=""
	if ((rc != 0)); then
		echo "--- last lines of the server log ($store) ---"
		tail -n 40 "$WORK/server-$store.log"
	fi
	return "$rc"
}

FAILED=0
for store in "${STORES[@]}"; do
	echo "=== schemathesis: Liaison on $store ==="
	case "$store" in
	sqlite) url="sqlite://$WORK/schemathesis.db" ;;
	postgres)
		base="${LIAISON_TEST_POSTGRES_URL:-}"
		if [[ -z "$base" ]]; then
			ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client
			pg_start
			base="$PG_URL"
		fi
		url="$(pg_create_db "$base" "liaison_schemathesis_$$")"
		;;
	esac
	run_store "$store" "$url" || FAILED=1
done
if ((FAILED)); then
	echo "schemathesis: FAILED"
	exit 1
fi
echo "schemathesis: no failures"
exit
}
