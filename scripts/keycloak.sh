#!/usr/bin/env bash
# A throwaway Keycloak on 127.0.0.1 for the tests of the Keycloak source, of
# Keycloak's event webhook and of the console's OpenID Connect login: the
# server distribution from Maven Central (org.keycloak:keycloak-quarkus-dist)
# with phasetwo's event webhook (io.phasetwo.keycloak:keycloak-events) in
# providers/, built once (`kc.sh build`), started with `start --optimized` on an
# H2 file database, the realm of scripts/keycloak/realm-liaison.json imported.
#
# Usage:
#   scripts/keycloak.sh start DIR PORT   download (once, cached in DIR), build
#                                        (once), start, wait until ready, print
#                                        the variables below (also written to
#                                        DIR/env); idempotent
#   scripts/keycloak.sh stop DIR         stop the server started in DIR
#
# DIR/env exports LIAISON_TEST_KEYCLOAK_URL, _REALM, _ADMIN_USER, _ADMIN_PASSWORD
# (the master realm's bootstrap admin), _SOURCE_CLIENT and _SOURCE_SECRET (the
# service account Liaison's source reads the realm with), _CONSOLE_CLIENT and
# _CONSOLE_SECRET (the console's OIDC client), _LOGIN_CLIENT (a public client
# with the password grant), _USER_PASSWORD (of the realm's test users operator,
# acme-admin, alice, bob), _MANAGEMENT_URL and _START_SECONDS (how long the
# server took to be ready). The secrets are generated once per DIR. The
# database is kept between starts (faster); it is recreated when the realm file
# or the build changes. Needs a JDK 17+ (JAVA_HOME, else Debian's OpenJDK 17),
# Maven and curl (installed from apt when missing).
set -euo pipefail

KEYCLOAK_VERSION="26.5.0"
# keycloak-events 0.52 is built against Keycloak 26.5.0 (its pom's keycloak.version).
EVENTS_VERSION="0.52"
REALM="liaison"
ADMIN_USER="admin"

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPTS/lib.sh"
REALM_FILE="$SCRIPTS/keycloak/realm-liaison.json"

java_home() {
	if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
		printf '%s\n' "$JAVA_HOME"
		return
	fi
	local j
	for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/temurin-25-jdk-amd64; do
		[[ -x "$j/bin/java" ]] && {
			printf '%s\n' "$j"
			return
		}
	done
	ensure_debs java:openjdk-17-jdk-headless
	dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

# Downloads the distribution and the provider through Maven (cached in
# DIR/download), unpacks and builds once per version.
install_keycloak() {
	local dir="$1" home="$1/keycloak-$KEYCLOAK_VERSION"
	local stamp="$home/.liaison-build" want
	want="$KEYCLOAK_VERSION events-$EVENTS_VERSION db=dev-file health"
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		return 0
	fi
	ensure_debs mvn:maven
	local started=$SECONDS
	mkdir -p "$dir/download"
	if [[ ! -f "$dir/download/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" ]]; then
		log "downloading Keycloak $KEYCLOAK_VERSION (Maven Central)"
		mvn -B -q dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
			-DoutputDirectory="$dir/download" >&2
	fi
	if [[ ! -f "$dir/download/keycloak-events-$EVENTS_VERSION.jar" ]]; then
		mvn -B -q dependency:copy -Dartifact="io.phasetwo.keycloak:keycloak-events:$EVENTS_VERSION:jar" \
			-DoutputDirectory="$dir/download" >&2
	fi
	rm -rf "$home"
	tar -xzf "$dir/download/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$dir"
	cp "$dir/download/keycloak-events-$EVENTS_VERSION.jar" "$home/providers/"
	log "building Keycloak (kc.sh build)"
	JAVA_HOME="$(java_home)" "$home/bin/kc.sh" build --db=dev-file --health-enabled=true >"$dir/build.log" 2>&1 || {
		tail -n 30 "$dir/build.log" >&2
		die "kc.sh build failed"
	}
	printf '%s\n' "$want" >"$stamp"
	log "Keycloak installed and built in $((SECONDS - started))s"
}

# Prints the secret NAME of DIR, generating it once.
secret() {
	local file="$1/secrets/$2"
	if [[ ! -s "$file" ]]; then
		mkdir -p "$1/secrets"
		(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$file")
	fi
	cat "$file"
}

pid_alive() {
	[[ -f "$1/keycloak.pid" ]] && kill -0 "$(cat "$1/keycloak.pid")" 2>/dev/null
}

start() {
	local dir="$1" port="$2"
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	ensure_debs curl:curl
	if pid_alive "$dir" && [[ -f "$dir/env" ]] && grep -q "127.0.0.1:$port\$" "$dir/env"; then
		cat "$dir/env"
		return 0
	fi
	install_keycloak "$dir"
	pid_alive "$dir" && stop "$dir"
	local home="$dir/keycloak-$KEYCLOAK_VERSION" mport
	mport="$(free_port)"
	while [[ "$mport" == "$port" ]]; do mport="$(free_port)"; done
	# The realm is imported on the first start of a database: a changed realm
	# file (or build) starts from a new database.
	local realm_stamp="$home/data/.realm-sha256" want
	want="$(sha256sum "$REALM_FILE" "$home/.liaison-build" | sha256sum | cut -d' ' -f1)"
	if [[ ! -f "$realm_stamp" || "$(cat "$realm_stamp")" != "$want" ]]; then
		rm -rf "$home/data/h2" "$home/data/transaction-logs"
	fi
	mkdir -p "$home/data/import"
	cp "$REALM_FILE" "$home/data/import/realm-liaison.json"
	printf '%s\n' "$want" >"$realm_stamp"
	local admin_password source_secret console_secret user_password
	admin_password="$(secret "$dir" admin)"
	source_secret="$(secret "$dir" source)"
	console_secret="$(secret "$dir" console)"
	user_password="$(secret "$dir" users)"
	log "starting Keycloak $KEYCLOAK_VERSION on 127.0.0.1:$port"
	local started=$SECONDS
	(
		export JAVA_HOME
		JAVA_HOME="$(java_home)"
		export JAVA_OPTS_KC_HEAP="${KEYCLOAK_HEAP:--Xms128m -Xmx768m}"
		export KC_BOOTSTRAP_ADMIN_USERNAME="$ADMIN_USER" KC_BOOTSTRAP_ADMIN_PASSWORD="$admin_password"
		export LIAISON_KC_SOURCE_SECRET="$source_secret" LIAISON_KC_CONSOLE_SECRET="$console_secret"
		export LIAISON_KC_USER_PASSWORD="$user_password"
		exec setsid "$home/bin/kc.sh" start --optimized --http-enabled=true --http-host=127.0.0.1 \
			--http-port="$port" --http-management-port="$mport" --hostname-strict=false \
			--import-realm --log=file --log-file="$dir/keycloak.log" </dev/null >"$dir/start.log" 2>&1
	) &
	local pid=$!
	printf '%s\n' "$pid" >"$dir/keycloak.pid"
	wait_http "http://127.0.0.1:$mport/health/ready" 300 "$pid" || {
		tail -n 30 "$dir/keycloak.log" "$dir/start.log" >&2 || true
		die "Keycloak did not become ready"
	}
	local took=$((SECONDS - started))
	log "Keycloak ready in ${took}s (start --optimized)"
	(
		umask 077
		{
			printf 'KEYCLOAK_URL=http://127.0.0.1:%s\n' "$port"
			printf 'export LIAISON_TEST_KEYCLOAK_URL=http://127.0.0.1:%s\n' "$port"
			printf 'export LIAISON_TEST_KEYCLOAK_MANAGEMENT_URL=http://127.0.0.1:%s\n' "$mport"
			printf 'export LIAISON_TEST_KEYCLOAK_REALM=%s\n' "$REALM"
			printf 'export LIAISON_TEST_KEYCLOAK_ADMIN_USER=%s\n' "$ADMIN_USER"
			printf 'export LIAISON_TEST_KEYCLOAK_ADMIN_PASSWORD=%s\n' "$admin_password"
			printf 'export LIAISON_TEST_KEYCLOAK_SOURCE_CLIENT=liaison-source\n'
			printf 'export LIAISON_TEST_KEYCLOAK_SOURCE_SECRET=%s\n' "$source_secret"
			printf 'export LIAISON_TEST_KEYCLOAK_CONSOLE_CLIENT=liaison-console\n'
			printf 'export LIAISON_TEST_KEYCLOAK_CONSOLE_SECRET=%s\n' "$console_secret"
			printf 'export LIAISON_TEST_KEYCLOAK_LOGIN_CLIENT=liaison-login-test\n'
			printf 'export LIAISON_TEST_KEYCLOAK_USER_PASSWORD=%s\n' "$user_password"
			printf 'export LIAISON_TEST_KEYCLOAK_START_SECONDS=%s\n' "$took"
		} >"$dir/env"
	)
	cat "$dir/env"
}

stop() {
	local dir="$1" pid i
	[[ -f "$dir/keycloak.pid" ]] || return 0
	pid="$(cat "$dir/keycloak.pid")"
	# The server runs in its own session (setsid): its group is its pid.
	if kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/keycloak.pid" "$dir/env"
}

case "${1:-}" in
start)
	[[ $# -eq 3 ]] || {
		usage "$0"
		exit 1
	}
	start "$2" "$3"
	;;
stop)
	[[ $# -eq 2 ]] || {
		usage "$0"
		exit 1
	}
	stop "$2"
	;;
-h | --help) usage "$0" ;;
*)
	usage "$0"
	exit 1
	;;
esac
