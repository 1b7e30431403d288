# shellcheck shell=bash
# Shared helpers of the scripts in this folder: Debian packages, a private
# PostgreSQL cluster, the Python venv with the SCIM peer tools, free ports and
# waiting for a server. Sourced, never run.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIAISON_VENV:-$REPO_ROOT/.venv}"
PY_REQUIREMENTS="$REPO_ROOT/scripts/requirements.txt"

# Prints the comment block at the top of script $1 (its help).
usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
}

log() { printf '%s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Prints a free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Installs Debian packages whose marker command or path is missing.
# Usage: ensure_debs "pg_ctl-path:postgresql" "shellcheck:shellcheck" ...
# Each argument is MARKER:PACKAGE; MARKER is a command name or a glob of a path.
ensure_debs() {
	local missing=() spec marker pkg
	for spec in "$@"; do
		marker="${spec%%:*}"
		pkg="${spec#*:}"
		if [[ "$marker" == /* ]]; then
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

# The newest installed PostgreSQL server binaries directory.
pg_bindir() {
	local dir
	dir="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)"
	[[ -n "$dir" ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
	dirname "$dir"
}

# Runs a command as the postgres user when we are root (initdb refuses root).
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Starts a throwaway PostgreSQL cluster on a free loopback port, trust auth.
# Sets PG_DIR, PG_PORT and PG_URL (postgres://postgres@127.0.0.1:PORT/postgres).
# Call pg_stop (e.g. from an EXIT trap) to stop it and remove its files.
pg_start() {
	local bindir
	bindir="$(pg_bindir)"
	PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/liaison-pg.XXXXXX")"
	chmod 755 "$PG_DIR"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
	PG_PORT="$(free_port)"
	as_pg "$bindir/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
		{
			cat "$PG_DIR/initdb.log" >&2
			die "initdb failed"
		}
	as_pg "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
		start >/dev/null ||
		{
			cat "$PG_DIR/server.log" >&2
			die "PostgreSQL did not start"
		}
	# shellcheck disable=SC2034 # read by the scripts that source this file
	PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
	log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $PG_DIR)"
}

pg_stop() {
	[[ -n "${PG_DIR:-}" && -d "$PG_DIR/data" ]] || return 0
	as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
	PG_DIR=""
}

# Creates database $2 on the server of URL $1 (postgres://user@host:port/db) and
# prints the URL of the new database.
pg_create_db() {
	local url="$1" name="$2" base
	PGOPTIONS="-c client_min_messages=warning" psql "$url" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS \"$name\"" -c "CREATE DATABASE \"$name\"" >/dev/null
	base="${url%/*}"
	printf '%s/%s\n' "$base" "$name"
}

# Creates the venv with the pinned SCIM peer tools unless it is already there.
ensure_venv() {
	local stamp="$VENV/.requirements"
	if [[ -x "$VENV/bin/scim2" && -f "$stamp" ]] && cmp -s "$stamp" "$PY_REQUIREMENTS"; then
		return 0
	fi
	log "creating the Python venv $VENV"
	if ! python3 -m venv "$VENV" 2>/dev/null; then
		ensure_debs "/usr/lib/python3*/ensurepip:python3-venv"
		python3 -m venv "$VENV"
	fi
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PY_REQUIREMENTS"
	cp "$PY_REQUIREMENTS" "$stamp"
}

# Creates venv $1 with the pinned packages of requirements file $2 unless it is
# already there with the same file (a tool kept apart from the others, so that
# its dependencies cannot clash with theirs).
ensure_tool_venv() {
	local venv="$1" requirements="$2" stamp="$1/.requirements"
	if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$stamp" "$requirements"; then
		return 0
	fi
	log "creating the Python venv $venv"
	rm -rf "$venv"
	if ! python3 -m venv "$venv" 2>/dev/null; then
		ensure_debs "/usr/lib/python3*/ensurepip:python3-venv"
		python3 -m venv "$venv"
	fi
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
	cp "$requirements" "$stamp"
}

# Polls URL until it answers 2xx, for at most $2 seconds (default 60). Fails early
# when process $3 (optional) has exited.
wait_http() {
	local url="$1" timeout="${2:-60}" pid="${3:-}" i
	for ((i = 0; i < timeout * 10; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
			log "the server (pid $pid) exited before $url answered"
			return 1
		fi
		sleep 0.1
	done
	log "$url did not answer within ${timeout}s"
	return 1
}

# Runs the liaison binary $LIAISON with config file $LIAISON_CONFIG_FILE and the
# given arguments, without the test suite's own variables (LIAISON_TEST_*,
# LIAISON_REQUIRE_*) in its environment.
liaison_cmd() {
	liaison_env
	env "${LIAISON_UNSET[@]}" "$LIAISON" --config "$LIAISON_CONFIG_FILE" "$@"
}

# Starts `liaison serve` in the background, its output going to file $1, and sets
# SERVER_PID to the server's own pid.
liaison_serve() {
	liaison_env
	(exec env "${LIAISON_UNSET[@]}" "$LIAISON" --config "$LIAISON_CONFIG_FILE" serve >"$1" 2>&1) &
	# shellcheck disable=SC2034 # read by the scripts that source this file
	SERVER_PID=$!
}

# Sets LIAISON_UNSET to the `env -u` options that drop the test suite's variables.
liaison_env() {
	local name
	LIAISON_UNSET=()
	while IFS= read -r name; do
		case "$name" in
		LIAISON_TEST_* | LIAISON_REQUIRE_*) LIAISON_UNSET+=(-u "$name") ;;
		esac
	done < <(compgen -e)
}

# Stops process $1 (TERM, then KILL after 10 s) and reaps it.
stop_pid() {
	local pid="$1" i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Replaces the figures of docs/PERFORMANCE.md between `<!-- $1:begin -->` and
# `<!-- $1:end -->` with the content of file $2 (the prose around the markers
# stays). Fails when the markers are missing.
write_doc_figures() {
	python3 - "$REPO_ROOT/docs/PERFORMANCE.md" "$1" "$2" <<'PY'
import sys
doc_path, name, figures_path = sys.argv[1:4]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
doc = open(doc_path, encoding="utf-8").read()
figures = open(figures_path, encoding="utf-8").read().strip()
head, sep, rest = doc.partition(begin)
_, sep2, tail = rest.partition(end)
if not sep or not sep2:
    sys.exit(f"{doc_path}: markers {begin} and {end} not found")
open(doc_path, "w", encoding="utf-8").write(f"{head}{begin}\n{figures}\n{end}{tail}")
PY
}
