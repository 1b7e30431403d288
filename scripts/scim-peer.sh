#!/usr/bin/env bash
# A Python scim2-server (from the venv of lib.sh) on 127.0.0.1, as the SCIM peer
# of the outbound SCIM connector's tests (crates/provision/tests/scim_outbound.rs).
#
# Usage:
#   scripts/scim-peer.sh start PORT [--no-patch]
#       starts it with a random bearer token (--no-patch: it announces and
#       accepts no PATCH), prints SCIM_URL=... and SCIM_TOKEN=... and the
#       export lines the tests read, also written to STATE/PORT.env
#   scripts/scim-peer.sh stop [PORT]
#       stops the server of PORT, or every server this script started
#
# STATE is $LIAISON_SCIM_PEER_DIR, by default ${TMPDIR:-/tmp}/liaison-scim-peer.
# Tests: LIAISON_TEST_SCIM_URL and LIAISON_TEST_SCIM_TOKEN (PATCH announced),
# LIAISON_TEST_SCIM_NOPATCH_URL and LIAISON_TEST_SCIM_NOPATCH_TOKEN (--no-patch).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="${LIAISON_SCIM_PEER_DIR:-${TMPDIR:-/tmp}/liaison-scim-peer}"

help() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

answers() {
	curl -fsS -o /dev/null --max-time 2 -H "Authorization: Bearer $2" "$1/ServiceProviderConfig" 2>/dev/null
}

start() {
	local port="$1" no_patch="$2"
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
	mkdir -p "$STATE"
	chmod 700 "$STATE"
	local pidf="$STATE/$port.pid" envf="$STATE/$port.env" url="http://127.0.0.1:$port"
	if [[ -f "$pidf" && -f "$envf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
		cat "$envf"
		return 0
	fi
	ensure_debs curl:curl
	ensure_venv
	local token args=()
	token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
	if [[ "$no_patch" == 1 ]]; then
		cat >"$STATE/$port-spc.json" <<'JSON'
{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
  "patch": {"supported": false},
  "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
  "filter": {"supported": true, "maxResults": 1000},
  "changePassword": {"supported": false},
  "sort": {"supported": true},
  "etag": {"supported": false}
}
JSON
		args+=(--service-provider-config "$STATE/$port-spc.json")
	fi
	setsid "$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$port" \
		--bearer-token="$token" "${args[@]}" >"$STATE/$port.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$pidf"
	local i
	for ((i = 0; i < 300; i++)); do
		answers "$url" "$token" && break
		kill -0 "$pid" 2>/dev/null || {
			cat "$STATE/$port.log" >&2
			die "scim2-server exited"
		}
		sleep 0.1
	done
	answers "$url" "$token" || die "scim2-server did not answer on $url"
	local prefix=LIAISON_TEST_SCIM
	[[ "$no_patch" == 1 ]] && prefix=LIAISON_TEST_SCIM_NOPATCH
	(
		umask 077
		{
			printf 'SCIM_URL=%s\n' "$url"
			printf 'SCIM_TOKEN=%s\n' "$token"
			printf 'export %s_URL=%s\n' "$prefix" "$url"
			printf 'export %s_TOKEN=%s\n' "$prefix" "$token"
		} >"$envf"
	)
	cat "$envf"
}

stop_port() {
	local pidf="$STATE/$1.pid"
	[[ -f "$pidf" ]] || return 0
	stop_pid "$(cat "$pidf")"
	rm -f "$pidf" "$STATE/$1.env" "$STATE/$1-spc.json"
}

stop() {
	if [[ -n "${1:-}" ]]; then
		stop_port "$1"
		return 0
	fi
	local f
	for f in "$STATE"/*.pid; do
		[[ -e "$f" ]] || continue
		f="${f##*/}"
		stop_port "${f%.pid}"
	done
}

case "${1:-}" in
start)
	[[ $# -ge 2 && $# -le 3 ]] || help 1
	no_patch=0
	if [[ $# -eq 3 ]]; then
		[[ "$3" == --no-patch ]] || help 1
		no_patch=1
	fi
	start "$2" "$no_patch"
	;;
stop)
	[[ $# -le 2 ]] || help 1
	stop "${2:-}"
	;;
-h | --help) help 0 ;;
*) help 1 ;;
esac
