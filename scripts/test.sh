#!/usr/bin/env bash
# The project's one test command. On a Debian 12 machine with Rust and Python 3
# it installs what is missing (PostgreSQL and Chromium from apt, the SCIM peer tools into
# .venv from PyPI), starts a private PostgreSQL cluster on a free loopback port,
# starts a real Matrix Synapse and two scim2-server peers for the provisioning
# tests, a real Keycloak (Maven Central) and Canaille (PyPI, its own venv) for
# the identity-provider tests, a real Prometheus (Debian) with a synthetic month
# and the Boavizta API (PyPI, its own venv) for the footprint tests, and runs,
# in order: rustfmt check, clippy, the workspace tests (on SQLite and
# PostgreSQL), SCIM conformance with scim2-tester, property-based tests of the
# admin API with schemathesis, the Helm chart's and the Containerfile's checks
# (scripts/chart-check.sh), and a fuzz smoke run.
# Every section runs even when an earlier one failed; the run fails if any did.
#
# Usage: scripts/test.sh [--quick]
#   --quick   skip the fuzz smoke run
# Environment: FUZZ_SECONDS (per fuzz target, default 30), CI=true (sets
# CARGO_INCREMENTAL=0).
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs (a checkout, say) cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

QUICK=0
for arg in "$@"; do
	case "$arg" in
	--quick) QUICK=1 ;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	*) die "unknown argument: $arg (see --help)" ;;
	esac
done
if [[ "${CI:-}" == true ]]; then
	export CARGO_INCREMENTAL=0
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==== setup ===="
# The build, the peers and the tools take several GB: say how much there is.
df -h "$REPO_ROOT" | tail -n 1 | awk '{ print "disk: " $4 " free of " $2 " on " $6 }'
ensure_debs "/usr/lib/postgresql/*/bin/initdb:postgresql" psql:postgresql-client curl:curl \
	chromium:chromium "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core" \
	node:nodejs npm:npm \
	prometheus:prometheus tesseract:tesseract-ocr "/usr/share/tesseract-ocr/*/tessdata/eng.traineddata:tesseract-ocr-eng"
# The browser tests of the error pages (crates/liaison/tests/pages_browser.rs) and
# of the console (console_browser.rs: playwright-core and axe-core, which the test
# installs itself from crates/console/browser/package-lock.json into its ignored
# node_modules, npm's cache in .npm-cache) run in headless Chromium; with it
# installed, a missing browser, node or npm is a failure.
export LIAISON_REQUIRE_CHROMIUM=1
ensure_venv
# The real apps the provisioning tests talk to: a Matrix Synapse homeserver
# (its own venv, kept in .synapse between runs) and two scim2-server peers (one
# with PATCH, one without). They are stopped on exit with the database.
SYNAPSE_DIR="$REPO_ROOT/.synapse"

# Peers that take a while start in the background now and are awaited just
# before the tests: start_peer NAME ENV_FILE COMMAND... runs COMMAND with its
# output in a log; await_peers waits for each, sources its ENV_FILE and prints
# how long it took, or prints the end of its log (the tests that require it
# then fail with their own message). STOP_PEERS holds the commands run on exit.
PEER_LOGS="$(mktemp -d "${TMPDIR:-/tmp}/liaison-peers.XXXXXX")"
PEER_NAMES=()
PEER_PIDS=()
PEER_ENVS=()
STOP_PEERS=()
PEERS_STARTED=$SECONDS
start_peer() {
	local name="$1" env="$2"
	shift 2
	"$@" >"$PEER_LOGS/$name.log" 2>&1 &
	PEER_PIDS+=($!)
	PEER_NAMES+=("$name")
	PEER_ENVS+=("$env")
}
# shellcheck disable=SC2317 # called through workspace_tests
await_peers() {
	local i rc
	for i in "${!PEER_PIDS[@]}"; do
		rc=0
		wait "${PEER_PIDS[$i]}" || rc=$?
		if ((rc == 0)) && [[ -f "${PEER_ENVS[$i]}" ]]; then
			# shellcheck disable=SC1090 # written by the peer's script
			source "${PEER_ENVS[$i]}"
			echo "${PEER_NAMES[$i]} ready ($((SECONDS - PEERS_STARTED)) s after the peers were started)"
		else
			echo "${PEER_NAMES[$i]} did not start (exit code $rc):"
			tail -n 40 "$PEER_LOGS/${PEER_NAMES[$i]}.log" || true
		fi
	done
	grep -hE 'installed and built|ready in' "$PEER_LOGS/keycloak.log" 2>/dev/null || true
}

# Keycloak (Maven Central, cached in .keycloak) and Canaille's venv (.canaille).
KEYCLOAK_DIR="$REPO_ROOT/.keycloak"
mkdir -p "$KEYCLOAK_DIR"
start_peer keycloak "$KEYCLOAK_DIR/env" scripts/keycloak.sh start "$KEYCLOAK_DIR" "$(free_port)"
STOP_PEERS+=("scripts/keycloak.sh stop $KEYCLOAK_DIR")
start_peer canaille "$REPO_ROOT/.canaille/env" scripts/canaille.sh install "$REPO_ROOT/.canaille"
# The footprint tests' peers: a real Prometheus holding a synthetic month
# (backfilled with promtool, kept in .prometheus) and the Boavizta API (its own
# venv, .venv-boavizta).
PROMETHEUS_DIR="$REPO_ROOT/.prometheus"
BOAVIZTA_DIR="$PEER_LOGS/boavizta"
start_peer prometheus "$PROMETHEUS_DIR/env" scripts/prometheus.sh start "$PROMETHEUS_DIR" "$(free_port)"
STOP_PEERS+=("scripts/prometheus.sh stop $PROMETHEUS_DIR")
start_peer boavizta "$BOAVIZTA_DIR/env" scripts/boavizta.sh start "$BOAVIZTA_DIR" "$(free_port)"
STOP_PEERS+=("scripts/boavizta.sh stop $BOAVIZTA_DIR")
# helm (built once per machine from the Go module proxy) and the chart's venv,
# installed while the Rust code builds; the chart's checks run later.
# Awaited only by that section, so that the tests never wait for it.
scripts/chart-check.sh --install >"$PEER_LOGS/helm.log" 2>&1 &
HELM_INSTALL_PID=$!

# shellcheck disable=SC2317 # called by the EXIT trap
stop_services() {
	local stop
	for stop in "${STOP_PEERS[@]}"; do
		$stop >/dev/null 2>&1 || true
	done
	scripts/scim-peer.sh stop >/dev/null 2>&1 || true
	scripts/synapse.sh stop "$SYNAPSE_DIR" >/dev/null 2>&1 || true
	pg_stop
	rm -rf "$PEER_LOGS"
}
trap stop_services EXIT
pg_start
scripts/synapse.sh start "$SYNAPSE_DIR" "$(free_port)" >/dev/null
# shellcheck disable=SC1091 # written by synapse.sh
source "$SYNAPSE_DIR/env"
SCIM_PEER_PORT="$(free_port)"
SCIM_NOPATCH_PORT="$(free_port)"
while [[ "$SCIM_NOPATCH_PORT" == "$SCIM_PEER_PORT" ]]; do SCIM_NOPATCH_PORT="$(free_port)"; done
scripts/scim-peer.sh start "$SCIM_PEER_PORT" >/dev/null
scripts/scim-peer.sh start "$SCIM_NOPATCH_PORT" --no-patch >/dev/null
SCIM_PEER_STATE="${LIAISON_SCIM_PEER_DIR:-${TMPDIR:-/tmp}/liaison-scim-peer}"
# shellcheck disable=SC1090 # written by scim-peer.sh
source "$SCIM_PEER_STATE/$SCIM_PEER_PORT.env"
# shellcheck disable=SC1090
source "$SCIM_PEER_STATE/$SCIM_NOPATCH_PORT.env"
export LIAISON_REQUIRE_SYNAPSE=1 LIAISON_REQUIRE_SCIM=1 LIAISON_REQUIRE_KEYCLOAK=1 \
	LIAISON_REQUIRE_CANAILLE=1 LIAISON_REQUIRE_PROMETHEUS=1 LIAISON_REQUIRE_BOAVIZTA=1

RESULTS=()
PASSED=0
FAILED=0
SKIPPED=0
# Runs one section: section NAME COMMAND... ; records PASS or FAIL and goes on.
section() {
	local name="$1" start rc=0
	shift
	echo
	echo "==== $name ===="
	echo "\$ $*"
	start=$SECONDS
	"$@" || rc=$?
	if ((rc == 0)); then
		PASSED=$((PASSED + 1))
		RESULTS+=("PASS  $name ($((SECONDS - start))s)")
	else
		FAILED=$((FAILED + 1))
		RESULTS+=("FAIL  $name ($((SECONDS - start))s, exit code $rc)")
	fi
	echo "==== $name: $([[ $rc -eq 0 ]] && echo passed || echo "FAILED (exit code $rc)") ===="
}

TEST_LOG="$PG_DIR/cargo-test.log"
# shellcheck disable=SC2317 # called through section
workspace_tests() {
	await_peers
	LIAISON_TEST_POSTGRES_URL="$PG_URL" LIAISON_REQUIRE_POSTGRES=1 \
		cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$TEST_LOG"
}

section "rustfmt" cargo fmt --all -- --check
section "clippy" cargo clippy --workspace --all-targets -- -D warnings
section "cargo test (SQLite and PostgreSQL)" workspace_tests
section "SCIM conformance (scim2-tester)" env LIAISON_TEST_POSTGRES_URL="$PG_URL" scripts/conformance.sh
section "admin API properties (schemathesis)" env LIAISON_TEST_POSTGRES_URL="$PG_URL" scripts/schemathesis.sh
# shellcheck disable=SC2317 # called through section
chart_checks() {
	if ! wait "$HELM_INSTALL_PID"; then
		echo "installing helm and the chart's tools failed:"
		tail -n 40 "$PEER_LOGS/helm.log"
		return 1
	fi
	grep -h 'helm built in' "$PEER_LOGS/helm.log" || true
	scripts/chart-check.sh
}
section "Helm chart and Containerfile" chart_checks
if ((QUICK)); then
	SKIPPED=$((SKIPPED + 1))
	RESULTS+=("SKIP  fuzz smoke run (--quick)")
else
	section "fuzz smoke run" scripts/fuzz-smoke.sh
fi

echo
echo "==== summary ===="
printf '%s\n' "${RESULTS[@]}"
if [[ -f "$TEST_LOG" ]]; then
	# Totals of every "test result:" line cargo printed (unit, integration, doc tests).
	awk '/^test result:/ { for (i = 1; i < NF; i++) { v = $i + 0; w = $(i + 1); sub(/[;,.]$/, "", w);
		if (w == "passed") p += v; else if (w == "failed") f += v; else if (w == "ignored") g += v } }
		END { printf "cargo tests: %d passed, %d failed, %d ignored\n", p, f, g }' "$TEST_LOG"
fi
if ((SKIPPED)); then
	echo "sections: $PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "sections: $PASSED passed, $FAILED failed"
fi
((FAILED == 0))
exit
}
