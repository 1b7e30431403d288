"""Checks of the Helm chart's rendered manifests, its values documentation and
the Containerfile, run by scripts/chart-check.sh in the venv of
requirements-chart.txt.

  chart_check.py manifests --kube-version 1.30.0 --kube-version 1.37.0 FILE...
      Every document is validated (strict: unknown fields refused) against the
      schemas of each Kubernetes version (kubernetes-validate), or, for custom
      resources, against the CRD schemas in scripts/chart-schemas/; a kind
      with no schema is an error. Then the policy: every container runs as
      non-root, without privilege escalation, with a read-only root
      filesystem, all capabilities dropped, the RuntimeDefault seccomp
      profile, resource requests and a memory limit; no pod uses the host's
      namespaces or paths or mounts a service account token; long-running
      containers have liveness and readiness probes; every Deployment has a
      PodDisruptionBudget; no Secret is rendered and no variable carries a
      secret in clear; the configuration file in the ConfigMap is TOML.
  chart_check.py values-doc VALUES README
      Every key of VALUES (leaves, and lists/maps that default to empty) is
      named in README's table, and the table names no key VALUES lacks.
  chart_check.py containerfile FILE
      Multi-stage; the final stage runs as a numeric non-root user and its
      entry point is the liaison binary.

Prints one line per problem and exits 1 if there is any.
"""

import argparse
import copy
import json
import os
import re
import sys
import tomllib

import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("traefik.io/v1alpha1", "Middleware"): "traefik.io_v1alpha1_middleware.json",
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|KEK|_KEY|CREDENTIAL|DATABASE_URL)", re.I)

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def name_of(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


# --- schemas -------------------------------------------------------------------


def strict(schema):
    """The schema with unknown properties refused wherever properties are listed
    and the CRD does not keep unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def load_crd_schema(api_version, kind):
    import jsonschema

    path = os.path.join(HERE, "chart-schemas", CRD_SCHEMAS[(api_version, kind)])
    with open(path) as f:
        return jsonschema.Draft7Validator(strict(json.load(f)))


def validate_schema(doc, versions, where):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        validator = load_crd_schema(*key)
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in err.path)
            problem(where, f"{name_of(doc)}: {path}: {err.message}")
        return
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problem(where, f"{name_of(doc)} (Kubernetes {version}): {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problem(where, f"{name_of(doc)}: no schema: {e.message}")


# --- policy --------------------------------------------------------------------


def pod_spec(doc):
    """The pod template's spec of a workload, or None."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    if kind == "Pod":
        return spec
    return None


def check_pod(doc, pod, where):
    who = name_of(doc)
    long_running = doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
    psc = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problem(where, f"{who}: {flag} is set")
    if pod.get("automountServiceAccountToken") is not False:
        problem(where, f"{who}: automountServiceAccountToken is not false")
    for vol in pod.get("volumes") or []:
        if "hostPath" in vol:
            problem(where, f"{who}: volume {vol.get('name')} is a hostPath")
    if psc.get("runAsUser") == 0:
        problem(where, f"{who}: the pod runs as uid 0")
    containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    if not containers:
        problem(where, f"{who}: no container")
    for c in containers:
        cwho = f"{who} container {c.get('name')}"
        sc = c.get("securityContext") or {}

        def eff(key):
            return sc[key] if key in sc else psc.get(key)

        if eff("runAsNonRoot") is not True:
            problem(where, f"{cwho}: runAsNonRoot is not true")
        if eff("runAsUser") == 0:
            problem(where, f"{cwho}: runs as uid 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(where, f"{cwho}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(where, f"{cwho}: readOnlyRootFilesystem is not true")
        if sc.get("privileged"):
            problem(where, f"{cwho}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problem(where, f"{cwho}: capabilities do not drop ALL")
        if caps.get("add"):
            problem(where, f"{cwho}: capabilities added: {caps['add']}")
        if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problem(where, f"{cwho}: seccompProfile is not RuntimeDefault")
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        if "cpu" not in req or "memory" not in req:
            problem(where, f"{cwho}: no cpu and memory requests")
        if "memory" not in (res.get("limits") or {}):
            problem(where, f"{cwho}: no memory limit")
        if long_running and c in (pod.get("containers") or []):
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problem(where, f"{cwho}: no {probe}")
        for env in c.get("env") or []:
            if "value" in env and SECRET_NAME.search(env.get("name", "")):
                value = str(env["value"])
                if not (value.startswith("/") or value.startswith("file:")):
                    problem(where, f"{cwho}: variable {env['name']} holds a value in clear")


def selects(selector, labels):
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_manifests(files, versions):
    docs = []
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((path, doc))
    if not docs:
        problem(",".join(files), "no manifest rendered")
    pdbs = [d for _, d in docs if d.get("kind") == "PodDisruptionBudget"]
    for where, doc in docs:
        validate_schema(doc, versions, where)
        if doc.get("kind") == "Secret":
            problem(where, f"{name_of(doc)}: the chart renders a Secret")
        if doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    try:
                        tomllib.loads(text)
                    except tomllib.TOMLDecodeError as e:
                        problem(where, f"{name_of(doc)}: {key} is not TOML: {e}")
        pod = pod_spec(doc)
        if pod is not None:
            check_pod(doc, pod, where)
        if doc.get("kind") == "Deployment":
            labels = ((doc["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not any(selects(p["spec"].get("selector"), labels) for p in pdbs):
                problem(where, f"{name_of(doc)}: no PodDisruptionBudget selects its pods")
    kinds = sorted({d.get("kind") for _, d in docs})
    print(f"{len(docs)} manifests ({', '.join(kinds)}) checked against Kubernetes {', '.join(versions)}")


# --- values documentation ------------------------------------------------------


# Values documented as a whole, not key by key.
OPAQUE = {"config", "resources", "podSecurityContext", "securityContext"}


def value_keys(node, prefix=""):
    """Dotted paths of the leaves: scalars, lists, empty maps and OPAQUE maps."""
    last = prefix.rsplit(".", 1)[-1]
    if isinstance(node, dict) and node and last not in OPAQUE:
        for k, v in node.items():
            yield from value_keys(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def check_values_doc(values_path, readme_path):
    with open(values_path) as f:
        values = yaml.safe_load(f)
    keys = set(value_keys(values))
    with open(readme_path) as f:
        readme = f.read()
    table = set(re.findall(r"^\| `([A-Za-z0-9_.\[\]]+)` \|", readme, re.M))
    for k in sorted(keys - table):
        problem(readme_path, f"value {k} is not in the table")
    for k in sorted(table - keys):
        problem(readme_path, f"the table names {k}, which values.yaml does not have")
    print(f"{len(keys)} values documented")


# --- Containerfile -------------------------------------------------------------


def check_containerfile(path):
    with open(path) as f:
        text = f.read()
    # Instructions, with continuation lines joined.
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    froms = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    if len(froms) < 2:
        problem(path, "not a multi-stage build")
        return
    final = instructions[froms[-1]:]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    if not users:
        problem(path, "the final stage sets no USER")
    else:
        user = users[-1].split(":")[0]
        if not user.isdigit() or int(user) == 0:
            problem(path, f"the final stage's USER {users[-1]} is not a numeric non-root uid")
    entry = [line for line in final if line.upper().startswith("ENTRYPOINT ")]
    if not entry or "liaison" not in entry[-1]:
        problem(path, "the final stage's ENTRYPOINT is not the liaison binary")
    for line in final:
        if line.upper().startswith(("RUN ", "ADD ")):
            problem(path, f"the runtime stage runs or adds something: {line}")
    print(f"{path}: {len(froms)} stages, runtime as user {users[-1] if users else '?'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("manifests")
    m.add_argument("--kube-version", action="append", required=True)
    m.add_argument("files", nargs="+")
    v = sub.add_parser("values-doc")
    v.add_argument("values")
    v.add_argument("readme")
    c = sub.add_parser("containerfile")
    c.add_argument("file")
    args = parser.parse_args()
    if args.command == "manifests":
        check_manifests(args.files, args.kube_version)
    elif args.command == "values-doc":
        check_values_doc(args.values, args.readme)
    else:
        check_containerfile(args.file)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
