#!/usr/bin/env bash
# The Boavizta API (PyPI `boaviztapi`, pinned in requirements-boavizta.txt, in its own
# venv .venv-boavizta kept between runs) under uvicorn on 127.0.0.1, as the peer of the
# footprint tests (crates/footprint/tests/boavizta.rs).
#
# Usage:
#   scripts/boavizta.sh start DIR PORT
#       creates or updates the venv when the pins changed, starts the API on PORT,
#       waits until /v1/utils/version answers and writes DIR/env with
#       LIAISON_TEST_BOAVIZTA_URL.
#   scripts/boavizta.sh stop DIR
#       stops the API started for DIR.
# Environment: LIAISON_BOAVIZTA_VENV (default REPO/.venv-boavizta).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BOA_VENV="${LIAISON_BOAVIZTA_VENV:-$REPO_ROOT/.venv-boavizta}"
BOA_REQUIREMENTS="$REPO_ROOT/scripts/requirements-boavizta.txt"

help() {
	usage "$0"
	exit "${1:-0}"
}

ensure_boavizta_venv() {
	local stamp="$BOA_VENV/.requirements"
	if [[ -x "$BOA_VENV/bin/uvicorn" && -f "$stamp" ]] && cmp -s "$stamp" "$BOA_REQUIREMENTS"; then
		return 0
	fi
	log "creating the Boavizta API venv $BOA_VENV"
	if ! python3 -m venv "$BOA_VENV" 2>/dev/null; then
		ensure_debs "/usr/lib/python3*/ensurepip:python3-venv"
		python3 -m venv "$BOA_VENV"
	fi
	"$BOA_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$BOA_REQUIREMENTS"
	cp "$BOA_REQUIREMENTS" "$stamp"
}

start() {
	local dir="$1" port="$2"
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	stop "$dir" >/dev/null 2>&1 || true
	ensure_debs curl:curl
	ensure_boavizta_venv
	(cd "$dir" && exec setsid "$BOA_VENV/bin/uvicorn" boaviztapi.main:app --host 127.0.0.1 --port "$port" \
		>"$dir/boavizta.log" 2>&1 </dev/null) &
	local pid=$!
	echo "$pid" >"$dir/pid"
	wait_http "http://127.0.0.1:$port/v1/utils/version" 120 "$pid" || {
		tail -n 20 "$dir/boavizta.log" >&2
		die "the Boavizta API did not start"
	}
	echo "export LIAISON_TEST_BOAVIZTA_URL=http://127.0.0.1:$port" >"$dir/env"
	log "Boavizta API $(curl -fsS "http://127.0.0.1:$port/v1/utils/version") on 127.0.0.1:$port"
	cat "$dir/env"
}

stop() {
	local dir="$1"
	[[ -f "$dir/pid" ]] || return 0
	stop_pid "$(cat "$dir/pid")"
	rm -f "$dir/pid" "$dir/env"
}

case "${1:-}" in
start)
	[[ $# -eq 3 ]] || help 1
	start "$2" "$3"
	;;
stop)
	[[ $# -eq 2 ]] || help 1
	stop "$2"
	;;
-h | --help) help 0 ;;
*) help 1 ;;
esac
