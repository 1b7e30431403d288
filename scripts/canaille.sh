#!/usr/bin/env bash
# Canaille (PyPI `canaille` with its oidc, scim and sqlite extras) in a venv of
# its own, for the test where Canaille's SCIM client pushes users and groups to
# a Liaison organisation (crates/liaison/tests/canaille_scim.rs, driven through
# scripts/canaille/driver.py). Its pins are in scripts/canaille/requirements.txt
# (they clash with scripts/requirements.txt); the venv is rebuilt when they change.
#
# Usage:
#   scripts/canaille.sh install DIR   create DIR/venv (once), print
#                                     LIAISON_TEST_CANAILLE_PYTHON=... (also
#                                     written to DIR/env, to source)
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPTS/lib.sh"
REQUIREMENTS="$SCRIPTS/canaille/requirements.txt"

install() {
	local dir="$1"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	local venv="$dir/venv" stamp="$dir/venv/.requirements"
	if ! [[ -x "$venv/bin/python" && -f "$stamp" ]] || ! cmp -s "$stamp" "$REQUIREMENTS"; then
		log "creating the Canaille venv $venv"
		rm -rf "$venv"
		if ! python3 -m venv "$venv" 2>/dev/null; then
			ensure_debs "/usr/lib/python3*/ensurepip:python3-venv"
			python3 -m venv "$venv"
		fi
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
		cp "$REQUIREMENTS" "$stamp"
	fi
	"$venv/bin/python" -c 'import canaille.scim.client' || die "Canaille does not import"
	printf 'export LIAISON_TEST_CANAILLE_PYTHON=%s\n' "$venv/bin/python" | tee "$dir/env"
}

case "${1:-}" in
install)
	[[ $# -eq 2 ]] || {
		usage "$0"
		exit 1
	}
	install "$2"
	;;
-h | --help) usage "$0" ;;
*)
	usage "$0"
	exit 1
	;;
esac
