#!/usr/bin/env bash
# Footprint benchmark: `liaison footprint report` for a month of a cluster of
# NAMESPACES namespaces over NODES nodes (default 1,000 over 20, 50 organisations),
# with the usage read from a real Prometheus (Debian's, holding the month's series
# backfilled with promtool by scripts/prometheus.sh) and from the same month as a
# usage CSV. Wall time and peak memory (GNU time's maximum resident set) of the
# release binary, ROUNDS rounds each (medians), side by side in the same run with
# the floors they stand on: Prometheus answering the same PromQL queries to curl
# (what `liaison footprint queries` prints), and pandas reading the same CSV and
# summing it per namespace. Writes the section "## Carbon footprint" of
# docs/PERFORMANCE.md (between its footprint markers), leaving the rest alone.
#
# Usage: scripts/bench-footprint.sh [options]
#   --namespaces N   namespaces (default 1000)
#   --nodes N        nodes (default 20)
#   --orgs N         organisations (default 50)
#   -r, --rounds N   rounds per measurement (default 3)
#   --no-doc         print the table only; leave docs/PERFORMANCE.md alone
set -euo pipefail
# The whole script is one block, read before it runs.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
trap 'log "error: line $LINENO: $BASH_COMMAND failed"' ERR

COMMAND_LINE="scripts/bench-footprint.sh${*:+ $*}"
NAMESPACES=1000
NODES=20
ORGS=50
ROUNDS=3
WRITE_DOC=1
while (($#)); do
	case "$1" in
	--namespaces) NAMESPACES="${2:?}" && shift ;;
	--nodes) NODES="${2:?}" && shift ;;
	--orgs) ORGS="${2:?}" && shift ;;
	-r | --rounds) ROUNDS="${2:?}" && shift ;;
	--no-doc) WRITE_DOC=0 ;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

ensure_debs /usr/bin/time:time curl:curl prometheus:prometheus
cargo build --release -p liaison --quiet
LIAISON="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/liaison"
BOA_VENV="${LIAISON_BOAVIZTA_VENV:-$REPO_ROOT/.venv-boavizta}"
[[ -x "$BOA_VENV/bin/python" ]] || scripts/boavizta.sh start "$(mktemp -d)" "$(free_port)" >/dev/null 2>&1 || true

PROM_DIR="$REPO_ROOT/.prometheus-bench"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-footprint.XXXXXX")"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	scripts/prometheus.sh stop "$PROM_DIR" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

log "the synthetic month: $NAMESPACES namespaces, $NODES nodes, $ORGS organisations"
setup_start=$SECONDS
scripts/prometheus.sh start "$PROM_DIR" "$(free_port)" --namespaces "$NAMESPACES" --nodes "$NODES" --orgs "$ORGS" >"$WORK/prometheus.out" 2>"$WORK/prometheus.err"
SETUP_SECONDS=$((SECONDS - setup_start))
if grep -q "generating" "$WORK/prometheus.out" 2>/dev/null || grep -q "generating" "$WORK/prometheus.err" 2>/dev/null; then
	SETUP_NOTE="generating, backfilling and starting Prometheus took ${SETUP_SECONDS}s"
else
	SETUP_NOTE="the blocks of an earlier run were reused (.prometheus-bench); starting Prometheus took ${SETUP_SECONDS}s"
fi
# shellcheck disable=SC1091 # written by prometheus.sh
source "$PROM_DIR/env"
DATA="$LIAISON_TEST_PROMETHEUS_DATA"
MONTH="$(sed -n 's/^MONTH=//p' "$DATA/expected.env")"
# Series: those with a sample at the month's last hour; samples: the blocks' own count.
BLOCK_SERIES="$(curl -fsS "$LIAISON_TEST_PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count({__name__!=""})' \
	--data-urlencode "time=$(($(date -u -d "$MONTH-01 +1 month" +%s) - 3600))" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')"
read -r _ SAMPLES < <(python3 - "$PROM_DIR/tsdb" <<'PY'
import json, os, sys
series = samples = 0
for d in os.listdir(sys.argv[1]):
    meta = os.path.join(sys.argv[1], d, "meta.json")
    if os.path.exists(meta):
        stats = json.load(open(meta))["stats"]
        series += stats["numSeries"]
        samples += stats["numSamples"]
print(series, samples)
PY
)
CSV_ROWS="$(($(wc -l <"$DATA/usage.csv") - 1))"
CSV_BYTES="$(stat -c %s "$DATA/usage.csv")"

# Liaison's configuration: the generator's inventory and mapping, Prometheus.
export LIAISON_DATABASE_URL="sqlite://$WORK/liaison.db"
python3 - "$DATA" "$LIAISON_TEST_PROMETHEUS_URL" >"$WORK/liaison.toml" <<'PY'
import sys, tomllib
data, url = sys.argv[1:3]
m = tomllib.load(open(f"{data}/mapping.toml", "rb"))
print("[footprint]")
print(f'inventory = "{data}/inventory.toml"')
print('org_label = "liaison.coop/org"')
print("shared_namespaces = [%s]" % ", ".join(f'"{s}"' for s in m["shared_namespaces"]))
print("[footprint.prometheus]")
print(f'url = "{url}"')
print("[footprint.buckets]")
for b, org in m["buckets"].items():
    print(f'"{b}" = "{org}"')
PY
"$LIAISON" --config "$WORK/liaison.toml" migrate >/dev/null
for i in $(seq 1 "$ORGS"); do
	"$LIAISON" --config "$WORK/liaison.toml" org create "org-$i" >/dev/null
done

# Runs "$@" once under GNU time; appends "seconds max_rss_kib" to $WORK/$1.times.
once() {
	local name="$1"
	shift
	/usr/bin/time -o "$WORK/time.txt" -f '%e %M' "$@" >/dev/null 2>"$WORK/stderr.txt" ||
		die "$* failed: $(tail -n 5 "$WORK/stderr.txt")"
	tail -n 1 "$WORK/time.txt" >>"$WORK/$name.times"
}
# Prints "median_seconds max_rss_kib" of $WORK/$1.times.
summary() {
	local median rss
	median="$(cut -d' ' -f1 "$WORK/$1.times" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
	rss="$(cut -d' ' -f2 "$WORK/$1.times" | sort -g | tail -n 1)"
	echo "$median $rss"
}

"$LIAISON" --config "$WORK/liaison.toml" footprint queries --period "$MONTH" >"$WORK/queries.tsv"
cat >"$WORK/curl-queries.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
while IFS=\$'\t' read -r t q; do
	curl -fsS -o /dev/null --data-urlencode "query=\$q" --data-urlencode "time=\$t" "$LIAISON_TEST_PROMETHEUS_URL/api/v1/query"
done <"$WORK/queries.tsv"
EOF
chmod +x "$WORK/curl-queries.sh"
cat >"$WORK/sum-csv.py" <<'PY'
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
df.groupby("namespace").sum(numeric_only=True).to_json(sys.argv[2])
PY

# A warm-up of each, then the measured rounds.
"$LIAISON" --config "$WORK/liaison.toml" footprint report --period "$MONTH" --output "$WORK/out-prom" >/dev/null
"$WORK/curl-queries.sh"
log "measuring ($ROUNDS rounds each, alternating which goes first)"
PROM_CMD=("$LIAISON" --config "$WORK/liaison.toml" footprint report --period "$MONTH" --output "$WORK/out-prom")
CSV_CMD=("$LIAISON" --config "$WORK/liaison.toml" footprint report --period "$MONTH" --usage "$DATA/usage.csv" --output "$WORK/out-csv")
PANDAS_CMD=("$BOA_VENV/bin/python" "$WORK/sum-csv.py" "$DATA/usage.csv" "$WORK/pandas.json")
for ((k = 0; k < ROUNDS; k++)); do
	if ((k % 2 == 0)); then
		once prom "${PROM_CMD[@]}"
		once curl "$WORK/curl-queries.sh"
		once csv "${CSV_CMD[@]}"
		[[ -x "$BOA_VENV/bin/python" ]] && once pandas "${PANDAS_CMD[@]}"
	else
		once curl "$WORK/curl-queries.sh"
		once prom "${PROM_CMD[@]}"
		[[ -x "$BOA_VENV/bin/python" ]] && once pandas "${PANDAS_CMD[@]}"
		once csv "${CSV_CMD[@]}"
	fi
done
read -r PROM_T PROM_M < <(summary prom)
read -r CURL_T CURL_M < <(summary curl)
read -r CSV_T CSV_M < <(summary csv)
PANDAS_T="" PANDAS_M=""
[[ -f "$WORK/pandas.times" ]] && read -r PANDAS_T PANDAS_M < <(summary pandas)
once html "$LIAISON" --config "$WORK/liaison.toml" footprint report --period "$MONTH" --usage "$DATA/usage.csv" --format html --lang fr --output "$WORK/out-html"
read -r HTML_T _ < <(summary html)
ORGS_OUT="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["organisations"]))' "$WORK/out-prom/footprint-$MONTH.json")"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
PROM_VERSION="$(prometheus --version 2>&1 | awk 'NR == 1 { print $3 }')"
FIGURES="$WORK/figures.md"
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M') UTC with:"
	echo
	echo '```'
	echo "$COMMAND_LINE"
	echo '```'
	echo
	echo "| What | Wall time (s, median of $ROUNDS) | Peak memory (MiB, largest) |"
	echo "|---|--:|--:|"
	echo "| \`liaison footprint report\` ($COMMIT), usage from Prometheus | $PROM_T | $(mib "$PROM_M") |"
	echo "| Prometheus $PROM_VERSION answering the same $(wc -l <"$WORK/queries.tsv") queries to curl (client side) | $CURL_T | $(mib "$CURL_M") |"
	echo "| \`liaison footprint report\`, usage from the CSV | $CSV_T | $(mib "$CSV_M") |"
	if [[ -n "$PANDAS_T" ]]; then
		echo "| pandas $("$BOA_VENV/bin/python" -c 'import pandas; print(pandas.__version__)') reading the same CSV and summing it per namespace | $PANDAS_T | $(mib "$PANDAS_M") |"
	fi
	echo
	echo "- Cluster: $NAMESPACES namespaces (3 shared) on $NODES nodes and one S3 server, $ORGS organisations; $ORGS_OUT organisations in the report."
	echo "- Prometheus: $BLOCK_SERIES series, $SAMPLES samples (one per hour for the month $MONTH), backfilled with \`promtool tsdb create-blocks-from openmetrics\`; $SETUP_NOTE. Prometheus' own memory is not in the figures."
	echo "- CSV: $CSV_ROWS rows, $((CSV_BYTES / 1024)) KiB. The French HTML pages of all $ORGS_OUT organisations from it: ${HTML_T}s."
	echo "- Each Liaison run is the whole command: configuration, SQLite, the queries or the CSV, the allocation, the report (JSON) and keeping each organisation's month."
	echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average $(cut -d' ' -f1-3 /proc/loadavg) after the run."
} >"$FIGURES"
cat "$FIGURES"
if ((WRITE_DOC)); then
	write_doc_figures footprint "$FIGURES"
	log "docs/PERFORMANCE.md updated"
fi
exit
}
