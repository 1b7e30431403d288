#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target of fuzz/ for a short, fixed time.
# Installs cargo-fuzz when missing; uses RUSTC_BOOTSTRAP=1 so the stable
# toolchain accepts the sanitizer flags. Does nothing when fuzz/ does not exist.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 30, or $FUZZ_SECONDS)
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs (a checkout, say) cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-30}}"
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "seconds must be a whole number"

if [[ ! -d fuzz ]]; then
	echo "fuzz: no fuzz/ directory, nothing to run"
	exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	log "installing cargo-fuzz"
	cargo install --locked --quiet cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
mapfile -t targets < <(cargo fuzz list)
if ((${#targets[@]} == 0)); then
	echo "fuzz: no targets"
	exit 0
fi
failed=()
for target in "${targets[@]}"; do
	echo "=== fuzz: $target for ${SECONDS_PER_TARGET}s ==="
	# -rss_limit_mb keeps a runaway input from taking the shared machine's memory.
	if ! cargo fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1; then
		failed+=("$target")
	fi
done
if ((${#failed[@]})); then
	echo "fuzz: failing targets: ${failed[*]} (crashing inputs are under fuzz/artifacts/)"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${SECONDS_PER_TARGET}s each without a crash"
exit
}
