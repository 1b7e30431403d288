#!/usr/bin/env bash
# SCIM conformance: runs scim2-tester (through `scim2 test` of scim2-cli) against
# a live Liaison server on each store, SQLite and PostgreSQL. Any check that does
# not report SUCCESS fails the script.
#
# Usage: scripts/conformance.sh [--store sqlite|postgres|all] [--peer] [-v]
#   --store S   which stores to test (default all)
#   --peer      test the Python peer scim2-server instead of Liaison
#   -v          pass --verbose to scim2 test (prints the data of failed checks)
# Environment:
#   LIAISON_TEST_POSTGRES_URL  a PostgreSQL server to create the test database on;
#                              without it a private cluster is started and stopped
#   CONFORMANCE_MIN_CHECKS     fewer checks than this fail the run (default 50)
#   LIAISON_BIN                a prebuilt liaison binary (skips cargo build)
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs (a checkout, say) cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

STORE_ARG=all
PEER=0
VERBOSE=()
while (($#)); do
	case "$1" in
	--store)
		STORE_ARG="${2:-}"
		shift
		;;
	--store=*) STORE_ARG="${1#*=}" ;;
	--peer) PEER=1 ;;
	-v | --verbose) VERBOSE=(--verbose) ;;
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
MIN_CHECKS="${CONFORMANCE_MIN_CHECKS:-50}"

ensure_debs curl:curl
ensure_venv

WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-conformance.XXXXXX")"
chmod 755 "$WORK"
SERVER_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$SERVER_PID"
	pg_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

# Runs `scim2 test` against base URL $1 with bearer token $2; the output goes to
# $3. Fails unless the tool exits 0, every check reports SUCCESS and there are at
# least MIN_CHECKS of them.
run_tester() {
	local url="$1" token="$2" out="$3" name="$4" rc=0 total ok bad
	log "scim2 test --url $url"
	SCIM_CLI_HEADERS="Authorization: Bearer $token" \
		"$VENV/bin/scim2" --url "$url" test "${VERBOSE[@]}" >"$out" 2>&1 || rc=$?
	cat "$out"
	# Each check prints one line "STATUS title"; STATUS is one of scim2-tester's
	# Status names. Everything but SUCCESS is a failure for scim2-cli too.
	total="$(grep -cE '^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL) ' "$out" || true)"
	ok="$(grep -cE '^SUCCESS ' "$out" || true)"
	bad=$((total - ok))
	echo "conformance $name: $total checks, $ok SUCCESS, $bad not SUCCESS, scim2 exit code $rc"
	if ((bad > 0)); then
		echo "conformance $name: checks that did not succeed:"
		# Each failing check with the indented lines (its reason) that follow it.
		awk '/^[A-Z]+ / { show = ($1 != "SUCCESS") } show { print "  " $0 }' "$out"
	fi
	((rc == 0 && bad == 0 && total >= MIN_CHECKS))
}

run_peer() {
	local port token=conformance-token pid_file="$WORK/peer.pid"
	port="$(free_port)"
	"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token "$token" --tenant conf \
		>"$WORK/peer.log" 2>&1 &
	SERVER_PID=$!
	echo "$SERVER_PID" >"$pid_file"
	wait_http "http://127.0.0.1:$port/conf/v2/ServiceProviderConfig" 30 "$SERVER_PID" ||
		{
			cat "$WORK/peer.log" >&2
			return 1
		}
	local rc=0
	run_tester "http://127.0.0.1:$port/conf/v2" "$token" "$WORK/peer.out" peer || rc=$?
	stop_pid "$SERVER_PID"
	SERVER_PID=""
	return "$rc"
}

LIAISON=""
build_liaison() {
	if [[ -n "${LIAISON_BIN:-}" ]]; then
		LIAISON="$LIAISON_BIN"
	else
		# A debug build: `cargo test` has already built most of it, so it is quick.
		cargo build --quiet -p liaison --bin liaison
		LIAISON="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/liaison"
	fi
	[[ -x "$LIAISON" ]] || die "no liaison binary at $LIAISON"
}

# Tests Liaison on store $1 (sqlite|postgres) with database URL $2.
run_liaison() {
	local store="$1" db_url="$2" port config token rc=0
	port="$(free_port)"
	config="$WORK/liaison-$store.toml"
	echo "# conformance run: settings come from the environment" >"$config"
	export LIAISON_DATABASE_URL="$db_url" LIAISON_LISTEN="127.0.0.1:$port"
	LIAISON_CONFIG_FILE="$config"
	liaison_cmd migrate
	liaison_cmd org create conf --name "Conformance"
	token="$(liaison_cmd token issue conf | tail -n 1)"
	[[ -n "$token" ]] || die "liaison token issue printed no token"
	liaison_serve "$WORK/server-$store.log"
	wait_http "http://127.0.0.1:$port/healthz" 60 "$SERVER_PID" ||
		{
			cat "$WORK/server-$store.log" >&2
			return 1
		}
	run_tester "http://127.0.0.1:$port/o/conf/scim/v2" "$token" "$WORK/$store.out" "$store" || rc=$?
	stop_pid "$SERVER_PID"
	SERVER_PID=""
	if ((rc != 0)); then
		echo "--- last lines of the server log ($store) ---"
		tail -n 40 "$WORK/server-$store.log"
	fi
	return "$rc"
}

FAILED=0
if ((PEER)); then
	run_peer || FAILED=1
else
	build_liaison
	for store in "${STORES[@]}"; do
		echo "=== conformance: Liaison on $store ==="
		case "$store" in
		sqlite) url="sqlite://$WORK/conformance.db" ;;
		postgres)
			base="${LIAISON_TEST_POSTGRES_URL:-}"
			if [[ -z "$base" ]]; then
				ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client
				pg_start
				base="$PG_URL"
			fi
			url="$(pg_create_db "$base" "liaison_conformance_$$")"
			;;
		esac
		run_liaison "$store" "$url" || FAILED=1
	done
fi
if ((FAILED)); then
	echo "conformance: FAILED"
	exit 1
fi
echo "conformance: all checks succeeded"
exit
}
