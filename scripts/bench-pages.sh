#!/usr/bin/env bash
# Error pages benchmark: `liaison pages` (the ingress default backend) against
# nginx serving the same rendered page as a static file, with wrk, on this
# machine, in the same run. Builds the release binary, starts `liaison pages
# --static crates/pages/examples/pages.toml`, fetches the page wrk will ask for
# (the French 503 of ecole-jaures.example.org) with curl, serves that body from a
# private nginx with the same response headers, then runs wrk with identical
# settings against both: a warm-up each, then ROUNDS rounds alternating which
# server goes first. A round during which other processes used more than
# --max-other percent of the machine's CPU is run again (at most 3 times). Writes
# the section "## Error pages" of docs/PERFORMANCE.md (between its bench-pages
# markers), leaving the rest of the file alone.
#
# Usage: scripts/bench-pages.sh [options]
#   -d, --duration S      seconds per measured round (default 20)
#   -r, --rounds N        measured rounds per server (default 3)
#   -t, --threads T       wrk threads (default 2)
#   -c, --connections C   wrk connections (default 64)
#   --warmup S            seconds of warm-up per server (default 5)
#   --max-load L          wait (up to 10 min) for a 1-minute load average below L
#                         before starting (default: the number of cores; 0 does
#                         not wait)
#   --max-other P         rerun a round when other processes used more than P% of
#                         the CPU during it (default 10)
#   --no-doc              print the table only; leave docs/PERFORMANCE.md alone
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while it
# runs (a checkout, say) cannot change what the running shell does.
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
# Names the command when `set -e` stops the script.
trap 'log "error: line $LINENO: $BASH_COMMAND failed"' ERR

COMMAND_LINE="scripts/bench-pages.sh${*:+ $*}"
DURATION=20
ROUNDS=3
THREADS=2
CONNECTIONS=64
WARMUP=5
MAX_LOAD="$(nproc)"
MAX_OTHER=10
WRITE_DOC=1
while (($#)); do
	case "$1" in
	-d | --duration) DURATION="${2:?}" && shift ;;
	-r | --rounds) ROUNDS="${2:?}" && shift ;;
	-t | --threads) THREADS="${2:?}" && shift ;;
	-c | --connections) CONNECTIONS="${2:?}" && shift ;;
	--warmup) WARMUP="${2:?}" && shift ;;
	--max-load) MAX_LOAD="${2:?}" && shift ;;
	--max-other) MAX_OTHER="${2:?}" && shift ;;
	--no-doc) WRITE_DOC=0 ;;
	-h | --help)
		usage "$0"
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

SNAPSHOT="crates/pages/examples/pages.toml"
HOST="ecole-jaures.example.org"
DISPLAY_NAME="École Jean Jaurès"
# The request wrk sends to both servers, as ingress-nginx would ask for a 503.
HEADERS=(-H "Host: $HOST" -H "X-Code: 503" -H "Accept: text/html" -H "Accept-Language: fr-FR,fr;q=0.9")
NGINX=/usr/sbin/nginx
CORES="$(nproc)"

ensure_debs wrk:wrk "$NGINX:nginx" curl:curl
cargo build --release -p liaison --quiet
LIAISON="$REPO_ROOT/target/release/liaison"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-pages.XXXXXX")"
# nginx's workers run as another user when it starts as root: they read the page.
chmod 755 "$WORK"
PAGES_PID=""
NGINX_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$PAGES_PID"
	stop_pid "$NGINX_PID"
	rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for a quiet machine: the 1-minute load average below MAX_LOAD.
if awk -v l="$MAX_LOAD" 'BEGIN { exit !(l > 0) }'; then
	for ((i = 0; ; i++)); do
		load="$(cut -d' ' -f1 /proc/loadavg)"
		awk -v a="$load" -v l="$MAX_LOAD" 'BEGIN { exit !(a < l) }' && break
		((i < 40)) || die "load average $load still above $MAX_LOAD after 10 minutes (see --max-load)"
		log "load average $load is above $MAX_LOAD; waiting"
		sleep 15
	done
fi
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- liaison pages ---
PAGES_PORT="$(free_port)"
liaison_env
(exec env "${LIAISON_UNSET[@]}" LIAISON_LOG=warn "$LIAISON" pages --static "$SNAPSHOT" \
	--listen "127.0.0.1:$PAGES_PORT" >"$WORK/pages.log" 2>&1) &
PAGES_PID=$!
wait_http "http://127.0.0.1:$PAGES_PORT/healthz" 60 "$PAGES_PID" || {
	cat "$WORK/pages.log" >&2
	die "liaison pages did not start"
}

# The page, fetched with the request wrk will send.
mkdir -p "$WORK/www"
code="$(curl -sS -o "$WORK/www/page.html" -D "$WORK/headers.txt" -w '%{http_code}' \
	"${HEADERS[@]}" "http://127.0.0.1:$PAGES_PORT/")"
[[ "$code" == 503 ]] || die "liaison pages answered $code, not 503"
grep -qF "$DISPLAY_NAME" "$WORK/www/page.html" || die "the page is not branded for $HOST"
grep -qF '<html lang="fr"' "$WORK/www/page.html" || die "the page is not in French"
PAGE_BYTES="$(wc -c <"$WORK/www/page.html")"

# --- nginx: the same body and the same response headers ---
NGINX_PORT="$(free_port)"
while [[ "$NGINX_PORT" == "$PAGES_PORT" ]]; do NGINX_PORT="$(free_port)"; done
content_type=""
add_headers=""
while IFS= read -r line; do
	line="${line%$'\r'}"
	name="${line%%:*}"
	value="${line#*: }"
	[[ "$line" == *:* ]] || continue
	[[ "$value" != *[\"\$\\]* ]] || die "header $name has a character this script does not quote: $value"
	case "${name,,}" in
	content-type) content_type="$value" ;;
	cache-control | x-robots-tag | x-content-type-options | referrer-policy | content-security-policy | content-language)
		add_headers+="      add_header $name \"$value\" always;"$'\n'
		;;
	esac
done <"$WORK/headers.txt"
[[ -n "$content_type" ]] || die "no Content-Type in the answer of liaison pages"
mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
worker_processes $CORES;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  server_tokens off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  open_file_cache max=16 inactive=60s;
  etag off;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  types { }
  default_type "$content_type";
  server {
    listen 127.0.0.1:$NGINX_PORT default_server;
    root $WORK/www;
    location / {
      try_files /page.html =404;
$add_headers    }
  }
}
EOF
(exec "$NGINX" -p "$WORK" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1) &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/" 30 "$NGINX_PID" || {
	cat "$WORK/nginx.log" "$WORK/nginx-error.log" >&2 2>/dev/null
	die "nginx did not start"
}
curl -sS -o "$WORK/nginx-page.html" "${HEADERS[@]}" "http://127.0.0.1:$NGINX_PORT/"
cmp -s "$WORK/www/page.html" "$WORK/nginx-page.html" || die "nginx does not serve the same page"
NGINX_VERSION="$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')"
# `wrk -v` prints its version and exits with 1.
WRK_VERSION="$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')"

# --- measurement ---
# Jiffies the whole machine spent in processes (user, nice, system) and in all
# (/proc/stat). Interrupt and softirq time is left out: most of it is the loopback
# traffic of the benchmark itself, which the kernel charges to no process.
machine_jiffies() {
	awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat
}
# CPU jiffies (user + system) used so far by the given processes.
proc_jiffies() {
	local pid sum=0 j
	for pid in "$@"; do
		j="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || j=0
		sum=$((sum + ${j:-0}))
	done
	echo "$sum"
}
# The server processes of $1 (pages or nginx).
server_pids() {
	if [[ "$1" == pages ]]; then
		echo "$PAGES_PID"
	else
		echo "$NGINX_PID"
		ps -o pid= --ppid "$NGINX_PID"
	fi
}
port_of() { if [[ "$1" == pages ]]; then echo "$PAGES_PORT"; else echo "$NGINX_PORT"; fi; }

# Runs wrk for $2 seconds against server $1, output to file $3; prints the
# percentage of the machine's CPU that other processes used meanwhile.
run_wrk() {
	local server="$1" seconds="$2" out="$3" pids m0 m1 s0 s1 w me
	# shellcheck disable=SC2207 # pids are words
	pids=($(server_pids "$server"))
	read -r -a m0 < <(machine_jiffies)
	s0="$(proc_jiffies "${pids[@]}")"
	# wrk's own CPU time: the children's times of the subshell that waited for it.
	w="$(
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "${HEADERS[@]}" \
			"http://127.0.0.1:$(port_of "$server")/" >"$out" 2>&1 || echo "wrk failed" >>"$out"
		me=$BASHPID # read here: each part of a pipeline has its own BASHPID
		sed 's/^.*) //' "/proc/$me/stat" | awk '{ print $14 + $15 }'
	)"
	s1="$(proc_jiffies "${pids[@]}")"
	read -r -a m1 < <(machine_jiffies)
	awk -v busy=$((m1[0] - m0[0])) -v total=$((m1[1] - m0[1])) -v ours=$((s1 - s0 + w)) \
		'BEGIN { o = total > 0 ? 100 * (busy - ours) / total : 0; printf "%.1f\n", o < 0 ? 0 : o }'
}

# Requests/s, p50 ms, p99 ms, non-2xx count and socket errors of a wrk output.
parse_wrk() {
	awk '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /m$/) return v * 60000
			if (v ~ /s$/) return v * 1000
			return v
		}
		/^Requests\/sec:/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { non2xx = $NF }
		/Socket errors:/ { sub(/.*Socket errors: /, ""); errors = $0 }
		/wrk failed/ { failed = 1 }
		END {
			if (failed || rps == "") exit 1
			printf "%s %.3f %.3f %d %s\n", rps, p50, p99, non2xx, errors == "" ? "none" : errors
		}' "$1"
}

declare -A RPS P50 P99 OTHER
for server in pages nginx; do
	log "warm-up: $server (${WARMUP}s)"
	run_wrk "$server" "$WARMUP" "$WORK/warmup-$server.txt" >/dev/null
	parse_wrk "$WORK/warmup-$server.txt" >/dev/null || {
		cat "$WORK/warmup-$server.txt" >&2
		die "wrk failed against $server"
	}
done
ROUND_NOTES=()
for ((r = 1; r <= ROUNDS; r++)); do
	order=(pages nginx)
	((r % 2)) || order=(nginx pages)
	for server in "${order[@]}"; do
		for ((try = 1; ; try++)); do
			out="$WORK/round-$r-$server.txt"
			other="$(run_wrk "$server" "$DURATION" "$out")"
			read -r rps p50 p99 non2xx errors < <(parse_wrk "$out") || {
				cat "$out" >&2
				die "wrk failed against $server"
			}
			[[ "$errors" == none ]] || die "socket errors against $server: $errors"
			if [[ "$server" == pages ]]; then
				total="$(awk '/requests in/ {print $1; exit}' "$out")"
				[[ "$non2xx" == "$total" ]] || die "liaison pages answered $non2xx of $total requests with the 503 page"
			else
				[[ "$non2xx" == 0 ]] || die "nginx answered $non2xx requests with an error"
			fi
			if awk -v o="$other" -v m="$MAX_OTHER" 'BEGIN { exit !(o <= m) }'; then
				break
			fi
			((try < 3)) || die "other processes used ${other}% of the CPU in 3 tries of round $r ($server): the machine is busy"
			log "round $r ($server): other processes used ${other}% of the CPU; running it again"
		done
		RPS[$server]+="$rps "
		P50[$server]+="$p50 "
		P99[$server]+="$p99 "
		OTHER[$server]+="$other "
		log "round $r $server: $rps req/s, p50 $p50 ms, p99 $p99 ms (others: ${other}% CPU)"
	done
	ROUND_NOTES+=("$r: ${order[0]} first")
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A MED_RPS MED_P50 MED_P99
for server in pages nginx; do
	MED_RPS[$server]="$(median <<<"${RPS[$server]}")"
	MED_P50[$server]="$(median <<<"${P50[$server]}")"
	MED_P99[$server]="$(median <<<"${P99[$server]}")"
done
RATIO="$(awk -v a="${MED_RPS[pages]}" -v b="${MED_RPS[nginx]}" 'BEGIN { printf "%.2f", a / b }')"
P99_RATIO="$(awk -v a="${MED_P99[pages]}" -v b="${MED_P99[nginx]}" 'BEGIN { printf "%.2f", a / b }')"

rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- crates/pages crates/liaison 2>/dev/null || rev="$rev (with uncommitted changes)"
row() {
	local server="$1" label="$2" ratio="$3"
	awk -v l="$label" -v r="${MED_RPS[$server]}" -v p50="${MED_P50[$server]}" -v p99="${MED_P99[$server]}" \
		-v rounds="${RPS[$server]}" -v x="$ratio" \
		'BEGIN { gsub(/ $/, "", rounds); gsub(/ /, ", ", rounds);
			printf "| %s | %.0f | %.2f | %.2f | %s | %s |\n", l, r, p50, p99, x, rounds }'
}
TABLE="| Server | Requests/s | p50 ms | p99 ms | Requests/s vs nginx | Requests/s per round |
|---|--:|--:|--:|--:|--:|
$(row pages "liaison pages ($rev)" "**${RATIO}x**")
$(row nginx "nginx $NGINX_VERSION, static file" "1.00x")"
echo
echo "$TABLE"
echo
echo "liaison pages / nginx: ${RATIO}x the requests per second, ${P99_RATIO}x the p99 latency"

((WRITE_DOC)) || exit 0

cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
mem_gib="$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
other_max="$(tr ' ' '\n' <<<"${OTHER[pages]} ${OTHER[nginx]}" | grep -v '^$' | sort -g | tail -n 1)"
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with:"
	echo
	echo '```'
	echo "$COMMAND_LINE"
	echo '```'
	echo
	echo "$TABLE"
	echo
	echo "- liaison pages / nginx: **${RATIO}x** the requests per second, ${P99_RATIO}x the p99 latency (medians of $ROUNDS rounds each)."
	echo "- Request: \`GET /\` with \`Host: $HOST\`, \`X-Code: 503\`, \`Accept: text/html\`, \`Accept-Language: fr-FR,fr;q=0.9\`; answer: the French 503 page of \`$SNAPSHOT\`, $PAGE_BYTES bytes of HTML with its security headers (nginx answers 200 with the same body and the same \`Content-Type\`, \`Cache-Control\`, \`Content-Security-Policy\`, \`Content-Language\`, \`Referrer-Policy\`, \`X-Content-Type-Options\`, \`X-Robots-Tag\`)."
	echo "- Load: wrk $WRK_VERSION, \`-t$THREADS -c$CONNECTIONS --latency\`, ${WARMUP}s of warm-up per server, then $ROUNDS rounds of ${DURATION}s per server, alternating which goes first; nginx with \`worker_processes $CORES\`, \`access_log off\`, \`sendfile\`, \`open_file_cache\`; \`liaison pages\` as built by \`cargo build --release\`, one single-threaded Tokio runtime per core, each on its own \`SO_REUSEPORT\` socket."
	echo "- Machine: $CORES cores ($cpu), ${mem_gib} GiB RAM, $(uname -sr); wrk and the server share it; load average $LOAD_BEFORE before the run, $LOAD_AFTER after it; other processes used at most ${other_max}% of the CPU during any measured round (\`--max-other $MAX_OTHER\`)."
} >"$WORK/section.md"

write_doc_figures bench-pages "$WORK/section.md"
echo "docs/PERFORMANCE.md updated"
exit
}
