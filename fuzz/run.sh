#!/usr/bin/env bash
# Runs the fuzz targets one after the other, each for a fixed time.
# Usage (from anywhere): fuzz/run.sh [seconds-per-target] [target...]
# Defaults: 30 seconds, every target that `cargo fuzz list` names.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
# cargo-fuzz needs nightly flags (-Zsanitizer); this lets the stable toolchain
# accept them.
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    seeds=()
    if [ -d "fuzz/seeds/$t" ]; then
        seeds=("fuzz/seeds/$t")
    fi
    echo "== $t: ${secs}s"
    cargo fuzz run "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -dict=fuzz/scim.dict -print_final_stats=1
done
