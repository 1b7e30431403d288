#!/usr/bin/env bash
# A throwaway Matrix Synapse homeserver on 127.0.0.1 for the Synapse connector's
# tests and benchmarks: SQLite, no federation key servers, registration closed,
# rate limits raised so tests are not throttled, and an admin user whose access
# token is printed.
#
# Usage:
#   scripts/synapse.sh start DIR PORT   install (DIR/venv), configure, start, print
#                                       SYNAPSE_URL=... and SYNAPSE_ADMIN_TOKEN=...
#                                       (also written to DIR/env); idempotent
#   scripts/synapse.sh stop DIR         stop the server started in DIR
#
# The server name is "localhost". Needs python3 with venv (installed from apt when
# missing) and curl. Tests read LIAISON_TEST_SYNAPSE_URL and
# LIAISON_TEST_SYNAPSE_TOKEN: `source DIR/env` exports both.
set -euo pipefail

SYNAPSE_VERSION="1.163.2"
SERVER_NAME="localhost"
ADMIN_USER="liaison-admin"

log() { printf '%s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

ensure_debs() {
	local missing=() spec marker pkg
	for spec in "$@"; do
		marker="${spec%%:*}"
		pkg="${spec#*:}"
		if [[ "$marker" == /* ]]; then
			# shellcheck disable=SC2086 # the marker is a glob on purpose
			compgen -G "$marker" >/dev/null || missing+=("$pkg")
		else
			command -v "$marker" >/dev/null 2>&1 || missing+=("$pkg")
		fi
	done
	((${#missing[@]} == 0)) && return 0
	log "installing Debian packages: ${missing[*]}"
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pid_alive() {
	[[ -f "$1/homeserver.pid" ]] && kill -0 "$(cat "$1/homeserver.pid")" 2>/dev/null
}

health_ok() {
	curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null
}

install_synapse() {
	local dir="$1" stamp="$1/venv/.synapse-version"
	if [[ -x "$dir/venv/bin/synapse_homeserver" && -f "$stamp" && "$(cat "$stamp")" == "$SYNAPSE_VERSION" ]]; then
		return 0
	fi
	if ! python3 -c 'import ensurepip' 2>/dev/null; then
		ensure_debs "/usr/lib/python3*/ensurepip:python3-venv"
	fi
	log "installing matrix-synapse $SYNAPSE_VERSION into $dir/venv"
	python3 -m venv "$dir/venv"
	"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
	printf '%s\n' "$SYNAPSE_VERSION" >"$stamp"
}

configure() {
	local dir="$1" port="$2"
	if [[ ! -f "$dir/homeserver.yaml" ]]; then
		(cd "$dir" && "$dir/venv/bin/python" -m synapse.app.homeserver --generate-config \
			--server-name "$SERVER_NAME" --report-stats=no -c "$dir/homeserver.yaml" >/dev/null)
	fi
	# Rewrites the generated file with the test settings (on every start, so a new
	# PORT takes effect).
	"$dir/venv/bin/python" - "$dir" "$port" <<'PY'
import os, secrets, sys, yaml
d, port = sys.argv[1], int(sys.argv[2])
path = os.path.join(d, "homeserver.yaml")
with open(path) as f:
    c = yaml.safe_load(f)
high = {"per_second": 10000, "burst_count": 100000}
c["listeners"] = [{
    "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
    "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}],
}]
c["database"] = {"name": "sqlite3", "args": {"database": os.path.join(d, "homeserver.db")}}
c["trusted_key_servers"] = []
c["suppress_key_server_warning"] = True
c["enable_registration"] = False
c["registration_shared_secret"] = c.get("registration_shared_secret") or secrets.token_hex(32)
c["pid_file"] = os.path.join(d, "homeserver.pid")
c["media_store_path"] = os.path.join(d, "media_store")
c["report_stats"] = False
c["presence"] = {"enabled": False}
c["rc_message"] = high
c["rc_registration"] = high
c["rc_login"] = {"address": high, "account": high, "failed_attempts": high}
c["rc_admin_redaction"] = high
c["rc_joins"] = {"local": high, "remote": high}
c["rc_joins_per_room"] = high
c["rc_invites"] = {"per_room": high, "per_user": high, "per_issuer": high}
c["rc_3pid_validation"] = high
c["rc_room_creation"] = high
c["rc_profile"] = high
c["rc_user_directory"] = high
with open(path, "w") as f:
    yaml.safe_dump(c, f, sort_keys=False)
PY
	# Logs go to DIR/homeserver.log only.
	sed -i "s|filename: .*|filename: $dir/homeserver.log|" "$dir/$SERVER_NAME.log.config"
}

start() {
	local dir="$1" port="$2"
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	ensure_debs curl:curl
	if pid_alive "$dir" && health_ok "$port" && [[ -f "$dir/env" ]]; then
		cat "$dir/env"
		return 0
	fi
	install_synapse "$dir"
	pid_alive "$dir" && stop "$dir"
	configure "$dir" "$port"
	log "starting Synapse on 127.0.0.1:$port"
	"$dir/venv/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --daemonize \
		>"$dir/start.log" 2>&1 || {
		cat "$dir/start.log" >&2
		die "Synapse did not start"
	}
	local i
	for ((i = 0; i < 600; i++)); do
		health_ok "$port" && break
		sleep 0.1
	done
	health_ok "$port" || {
		tail -n 30 "$dir/homeserver.log" >&2 || true
		die "Synapse did not answer /health within 60s"
	}

	local password_file="$dir/admin-password"
	if [[ ! -f "$password_file" ]]; then
		(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$password_file")
		"$dir/venv/bin/register_new_matrix_user" -c "$dir/homeserver.yaml" --admin \
			-u "$ADMIN_USER" -p "$(cat "$password_file")" "http://127.0.0.1:$port" >/dev/null
	fi
	local token
	token="$(
		ADMIN_USER="$ADMIN_USER" PASSWORD_FILE="$password_file" PORT="$port" python3 - <<'PY'
import json, os, urllib.request
with open(os.environ["PASSWORD_FILE"]) as f:
    password = f.read().strip()
body = json.dumps({
    "type": "m.login.password",
    "identifier": {"type": "m.id.user", "user": os.environ["ADMIN_USER"]},
    "password": password,
    "initial_device_display_name": "liaison-tests",
}).encode()
req = urllib.request.Request(
    f"http://127.0.0.1:{os.environ['PORT']}/_matrix/client/v3/login",
    data=body, headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=30) as r:
    print(json.load(r)["access_token"])
PY
	)"
	[[ -n "$token" ]] || die "login of $ADMIN_USER failed"
	(
		umask 077
		{
			printf 'SYNAPSE_URL=http://127.0.0.1:%s\n' "$port"
			printf 'SYNAPSE_ADMIN_TOKEN=%s\n' "$token"
			printf 'export LIAISON_TEST_SYNAPSE_URL=http://127.0.0.1:%s\n' "$port"
			printf 'export LIAISON_TEST_SYNAPSE_TOKEN=%s\n' "$token"
		} >"$dir/env"
	)
	cat "$dir/env"
}

stop() {
	local dir="$1" pid i
	[[ -f "$dir/homeserver.pid" ]] || return 0
	pid="$(cat "$dir/homeserver.pid")"
	if kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/homeserver.pid" "$dir/env"
}

case "${1:-}" in
start)
	[[ $# -eq 3 ]] || usage 1
	start "$2" "$3"
	;;
stop)
	[[ $# -eq 2 ]] || usage 1
	stop "$2"
	;;
-h | --help) usage 0 ;;
*) usage 1 ;;
esac
