#!/usr/bin/env bash
# Provisioning benchmark: the initial provisioning of USERS users and GROUPS
# groups (of M members each) into a fresh Matrix Synapse, once directly (a
# minimal client making the Synapse admin calls) and once through Liaison (SCIM
# writes, deliveries by `liaison serve`'s outbox worker, on SQLite), with the
# same concurrency. The ratio of the two is Liaison's overhead. Writes the table,
# the command, the date and the machine into docs/PERFORMANCE.md (between the
# bench-provision:begin and bench-provision:end markers).
#
# Usage: scripts/bench-provision.sh [USERS] [GROUPS] [options]
#   USERS                  users (default 10000)
#   GROUPS                 groups (default 500)
#   --members M            members per group (default 20)
#   -c, --concurrency C    concurrent requests, and Liaison's worker concurrency (default 8)
#   --synapse-venv DIR     reuse this Synapse venv (e.g. /tmp/synapse-dev/venv)
#                          instead of installing one
#   --no-doc               print the table only; leave docs/PERFORMANCE.md alone
set -euo pipefail
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

COMMAND_LINE="scripts/bench-provision.sh${*:+ $*}"
USERS=10000
GROUPS_N=500
MEMBERS=20
CONCURRENCY=8
SYNAPSE_VENV=""
WRITE_DOC=1
positional=0
while (($#)); do
	case "$1" in
	--members) MEMBERS="${2:?}" && shift ;;
	-c | --concurrency) CONCURRENCY="${2:?}" && shift ;;
	--synapse-venv) SYNAPSE_VENV="${2:?}" && shift ;;
	--no-doc) WRITE_DOC=0 ;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	[0-9]*)
		if ((positional == 0)); then USERS="$1"; else GROUPS_N="$1"; fi
		positional=$((positional + 1))
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
for v in "$USERS" "$GROUPS_N" "$MEMBERS" "$CONCURRENCY"; do
	[[ "$v" =~ ^[0-9]+$ ]] || die "not a whole number: $v"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-provision.XXXXXX")"
LIAISON_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[[ -n "$LIAISON_PID" ]] && kill "$LIAISON_PID" 2>/dev/null && wait "$LIAISON_PID" 2>/dev/null
	[[ -d "$WORK/synapse" ]] && bash scripts/synapse.sh stop "$WORK/synapse" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

log "building release binaries"
cargo build --release --quiet -p liaison -p bench
LIAISON="$REPO_ROOT/target/release/liaison"
BENCH="$REPO_ROOT/target/release/liaison-bench-provision"

# A Synapse of its own: the runs add tens of thousands of accounts and rooms.
mkdir -p "$WORK/synapse"
[[ -n "$SYNAPSE_VENV" ]] && ln -s "$SYNAPSE_VENV" "$WORK/synapse/venv"
SYNAPSE_PORT="$(free_port)"
bash scripts/synapse.sh start "$WORK/synapse" "$SYNAPSE_PORT" >/dev/null
# shellcheck disable=SC1091
source "$WORK/synapse/env"

SHAPE=(--users "$USERS" --groups "$GROUPS_N" --members "$MEMBERS" -c "$CONCURRENCY")
STAMP="$(date +%s)"

# Direct first, on the emptier homeserver: if anything, this favours it.
log "direct: $USERS users, $GROUPS_N rooms of $MEMBERS members"
"$BENCH" direct --synapse "$SYNAPSE_URL" --token "$SYNAPSE_ADMIN_TOKEN" \
	--prefix "d$STAMP" "${SHAPE[@]}" >"$WORK/direct.out"

export LIAISON_DATABASE_URL="sqlite://$WORK/liaison.db"
LIAISON_PORT="$(free_port)"
export LIAISON_LISTEN="127.0.0.1:$LIAISON_PORT"
export LIAISON_LOG="warn"
export LIAISON_PROVISIONING__CONCURRENCY="$CONCURRENCY"
export LIAISON_PROVISIONING__RECONCILE_INTERVAL_SECS=0
export LIAISON_METRICS__PUBLIC=true # the benchmark reads the outbox figures
export BENCH_SYNAPSE_ADMIN_TOKEN="$SYNAPSE_ADMIN_TOKEN"
"$LIAISON" org create bench >/dev/null
TOKEN="$("$LIAISON" token issue bench | tail -n 1)"
"$LIAISON" app add bench synapse --url "$SYNAPSE_URL" \
	--credential-env BENCH_SYNAPSE_ADMIN_TOKEN --server-name localhost >/dev/null
"$LIAISON" serve 2>"$WORK/liaison.log" &
LIAISON_PID=$!
for _ in $(seq 1 300); do
	curl -fsS "http://$LIAISON_LISTEN/metrics" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://$LIAISON_LISTEN/metrics" >/dev/null || die "liaison serve did not start"

log "liaison: $USERS users, $GROUPS_N groups of $MEMBERS members"
"$BENCH" liaison --scim "http://$LIAISON_LISTEN/o/bench/scim/v2" --token "$TOKEN" \
	--metrics "http://$LIAISON_LISTEN/metrics" --prefix "l$STAMP" "${SHAPE[@]}" >"$WORK/liaison.out" || {
	tail -n 20 "$WORK/liaison.log" >&2
	die "the Liaison run failed"
}

DIRECT_TOTAL="$(head -n 1 "$WORK/direct.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_secs"])')"
LIAISON_TOTAL="$(head -n 1 "$WORK/liaison.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_secs"])')"
LIAISON_WRITES="$(head -n 1 "$WORK/liaison.out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["scim_write_secs"], 1))')"
RATIO="$(python3 -c "print(f'{$LIAISON_TOTAL / $DIRECT_TOTAL:.2f}')")"

TABLE="$WORK/table.md"
{
	echo "| path | users | groups | memberships | concurrency | users (s) | groups (s) | memberships (s) | total (s) | deliveries/s |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	tail -n 1 "$WORK/direct.out"
	tail -n 1 "$WORK/liaison.out"
	echo
	echo "Liaison / direct wall time: **${RATIO}×** (of Liaison's time, ${LIAISON_WRITES} s were its SCIM writes, during which deliveries already ran)."
	echo
	echo "Command: \`$COMMAND_LINE\`, $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), shared), $(free -g | awk '/Mem:/ {print $2}') GB RAM; Synapse $(grep -o '"server_version":"[^"]*"' <(curl -fsS "$SYNAPSE_URL/_synapse/admin/v1/server_version" -H "Authorization: Bearer $SYNAPSE_ADMIN_TOKEN") | cut -d'"' -f4) on SQLite; Liaison on SQLite."
} >"$TABLE"
cat "$TABLE"

if ((WRITE_DOC)); then
	DOC="docs/PERFORMANCE.md"
	write_doc_figures bench-provision "$TABLE"
	log "results written to $DOC"
fi
exit 0
}
