#!/usr/bin/env python3
"""Synthetic month of a Kubernetes cluster for the footprint tests and benchmark.

Writes into OUT:
  metrics.om      OpenMetrics samples (cAdvisor, kube-state-metrics, kubelet,
                  MinIO and Kepler series, one sample per STEP seconds) for
                  `promtool tsdb create-blocks-from openmetrics`;
  usage.csv       what those series amount to over the month, in Liaison's usage
                  CSV form (the ground truth the Prometheus path must reproduce);
  inventory.toml  the servers (NODES Kubernetes nodes, one S3 server) and a site;
  mapping.toml    the namespaces' organisations as a static table (the series
                  also carry them as a namespace label).

Deterministic: the same arguments give the same files. Usage:
  footprint-synth.py --out DIR [--month 2026-11] [--namespaces 8] [--nodes 3]
                     [--orgs 4] [--step 3600] [--metrics FILE]
"""

import argparse
import calendar
import datetime
import math
import os
import random

SHARED = ["kube-system", "monitoring", "ingress-nginx"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--month", default="2026-11")
    ap.add_argument("--namespaces", type=int, default=8)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--orgs", type=int, default=4)
    ap.add_argument("--step", type=int, default=3600)
    ap.add_argument("--metrics", help="where to write metrics.om (default OUT/metrics.om)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(20261101)
    year, month = map(int, a.month.split("-"))
    start = int(datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc).timestamp())
    days = calendar.monthrange(year, month)[1]
    end = start + days * 86400
    steps = (end - start) // a.step
    # Samples at start, start+step, ..., end (the counters' last value at the end).
    times = [start + i * a.step for i in range(steps + 1)]
    dt_h = a.step / 3600.0
    nodes = [f"node-{i + 1}" for i in range(a.nodes)]
    orgs = [f"org-{i + 1}" for i in range(a.orgs)]
    own = [f"ns-{i + 1}" for i in range(max(0, a.namespaces - len(SHARED)))]
    namespaces = SHARED[: min(len(SHARED), a.namespaces)] + own
    org_of = {ns: orgs[i % len(orgs)] for i, ns in enumerate(own)}
    # Each namespace runs on one or two nodes.
    placement = {}
    for i, ns in enumerate(namespaces):
        k = 1 + (i % 2)
        placement[ns] = [nodes[(i + j) % len(nodes)] for j in range(k)]
    buckets = {f"{org}-files": org for org in orgs}

    def daily(h, phase):
        return 1.0 + 0.5 * math.sin(2 * math.pi * (h / 24.0) + phase)

    usage = {}  # (ns, node) -> [cpu_s, req_core_h, mem_gbh, sto_gbh, net_gb]

    def row(ns, node):
        return usage.setdefault((ns, node), [0.0, 0.0, 0.0, 0.0, 0.0])

    f = open(a.metrics or os.path.join(a.out, "metrics.om"), "w", buffering=1 << 20)
    w = f.write

    # CPU counters per pod (namespace, node), and the nodes' root cgroup.
    node_cpu = {n: [0.0] * len(times) for n in nodes}
    w("# TYPE container_cpu_usage_seconds counter\n")
    for ns in namespaces:
        for node in placement[ns]:
            base = rng.uniform(0.05, 1.5)
            phase = rng.uniform(0, 6.28)
            total = 0.0
            labels = f'namespace="{ns}",node="{node}",pod="{ns}-0",container="app",image="registry/app:1"'
            for i, t in enumerate(times):
                if i > 0:
                    inc = round(base * daily(i * dt_h, phase) * a.step, 3)
                    total += inc
                node_cpu[node][i] += total
                w(f"container_cpu_usage_seconds_total{{{labels}}} {total:.3f} {t}\n")
            row(ns, node)[0] += total
    for n in nodes:
        overhead = 0.2 * a.step
        for i, t in enumerate(times):
            v = node_cpu[n][i] + overhead * i
            w(f'container_cpu_usage_seconds_total{{id="/",node="{n}"}} {v:.3f} {t}\n')
        usage[("", n)] = [node_cpu[n][-1] + overhead * (len(times) - 1), 0, 0, 0, 0]

    # Requests (kube-state-metrics) and working set (cAdvisor), per pod.
    w("# TYPE kube_pod_container_resource_requests gauge\n")
    mem = {}
    for ns in namespaces:
        for node in placement[ns]:
            cpu_req = rng.choice([0.1, 0.25, 0.5, 1.0, 2.0])
            mem_req = rng.choice([256, 512, 1024, 2048, 4096]) * 1e6
            mem[(ns, node)] = mem_req
            base = f'namespace="{ns}",node="{node}",pod="{ns}-0",container="app"'
            for i, t in enumerate(times):
                w(f'kube_pod_container_resource_requests{{{base},resource="cpu",unit="core"}} {cpu_req} {t}\n')
            for i, t in enumerate(times):
                w(f'kube_pod_container_resource_requests{{{base},resource="memory",unit="byte"}} {mem_req:.0f} {t}\n')
            # Gauges count once per step over [start, end): the sample at the end
            # belongs to the next month.
            row(ns, node)[1] += cpu_req * dt_h * steps
    w("# TYPE container_memory_working_set_bytes gauge\n")
    for ns in namespaces:
        for node in placement[ns]:
            mem_req = mem[(ns, node)]
            phase = rng.uniform(0, 6.28)
            labels = f'namespace="{ns}",node="{node}",pod="{ns}-0",container="app",image="registry/app:1"'
            for i, t in enumerate(times):
                ws = round(mem_req * 0.8 * daily(i * dt_h, phase))
                w(f"container_memory_working_set_bytes{{{labels}}} {ws} {t}\n")
                if i < steps:
                    row(ns, node)[2] += max(mem_req, ws) / 1e9 * dt_h

    # Persistent volumes (requests, and kubelet's used bytes), per namespace.
    pvc = {ns: rng.choice([1, 5, 10, 50]) * 1e9 for ns in namespaces}
    w("# TYPE kube_persistentvolumeclaim_resource_requests_storage_bytes gauge\n")
    for ns in namespaces:
        for i, t in enumerate(times):
            w(f'kube_persistentvolumeclaim_resource_requests_storage_bytes{{namespace="{ns}",persistentvolumeclaim="data"}} {pvc[ns]:.0f} {t}\n')
    w("# TYPE kubelet_volume_stats_used_bytes gauge\n")
    for ns in namespaces:
        for i, t in enumerate(times):
            used = pvc[ns] * (0.5 + 0.6 * i / max(1, steps))  # grows past the request
            used = round(used)
            w(f'kubelet_volume_stats_used_bytes{{namespace="{ns}",persistentvolumeclaim="data",node="{placement[ns][0]}"}} {used} {t}\n')
            if i < steps:
                row(ns, "")[3] += max(pvc[ns], used) / 1e9 * dt_h

    # Network counters, per namespace.
    for direction in ("receive", "transmit"):
        w(f"# TYPE container_network_{direction}_bytes counter\n")
        for ns in namespaces:
            per_step = rng.randint(1, 50) * 1e6
            for i, t in enumerate(times):
                w(f'container_network_{direction}_bytes_total{{namespace="{ns}",pod="{ns}-0",node="{placement[ns][0]}"}} {per_step * i:.0f} {t}\n')
            row(ns, "")[4] += per_step * steps / 1e9

    # Buckets (MinIO).
    w("# TYPE minio_bucket_usage_total_bytes gauge\n")
    bucket_usage = {}
    for b in buckets:
        size = rng.choice([10, 100, 500]) * 1e9
        total = 0.0
        for i, t in enumerate(times):
            v = round(size * (1 + i / max(1, steps)))
            w(f'minio_bucket_usage_total_bytes{{bucket="{b}",server="s3-1"}} {v} {t}\n')
            if i < steps:
                total += v / 1e9 * dt_h
        bucket_usage[b] = total

    # Kepler on the first node: package and DRAM zones, and an overlapping
    # core zone the query must leave out.
    w("# TYPE kepler_node_cpu_joules counter\n")
    watts = {"package": 120.0, "dram": 15.0, "core": 90.0}
    kepler_kwh = 0.0
    for zone, p in watts.items():
        for i, t in enumerate(times):
            w(f'kepler_node_cpu_joules_total{{node_name="{nodes[0]}",zone="{zone}"}} {p * a.step * i:.1f} {t}\n')
        if zone != "core":
            kepler_kwh += p * a.step * steps / 3.6e6

    # Namespaces' organisation label (kube-state-metrics).
    w("# TYPE kube_namespace_labels gauge\n")
    for ns in own:
        for t in times:
            w(f'kube_namespace_labels{{namespace="{ns}",label_liaison_coop_org="{org_of[ns]}"}} 1 {t}\n')
    w("# EOF\n")
    f.close()

    with open(os.path.join(a.out, "usage.csv"), "w") as out:
        out.write("namespace,node,cpu_seconds,cpu_request_core_hours,memory_gb_hours,storage_gb_hours,network_gb\n")
        for (ns, node), v in sorted(usage.items()):
            out.write(",".join([ns, node] + [repr(round(x, 6)) for x in v]) + "\n")
        for b, gbh in sorted(bucket_usage.items()):
            out.write(f"bucket:{b},,0,0,0,{gbh!r},0\n")

    with open(os.path.join(a.out, "inventory.toml"), "w") as out:
        out.write("""[storage]
volume_replication = 3
bucket_replication = 1.5

[[site]]
name = "lyon"
pue = { low = 1.3, central = 1.5, high = 1.8, source = "synthetic test site", year = 2024 }
carbon_intensity = { low = 31, central = 56, high = 98, source = "Electricity Maps 2025, codecarbon 2023, boaviztapi 2019 (France)", year = 2025 }
""")
        for i, n in enumerate(nodes):
            measured = i % 2 == 0
            out.write(f"""
[[server]]
name = "{n}"
cpu_model = "AMD EPYC 7302P 16-Core Processor"
sockets = 1
vcpus = 32
ram_gb = 128
disks = [{{ kind = "ssd", capacity_gb = 1920, count = 2 }}]
""")
            if measured:
                out.write('idle_w = 95\nmax_w = 310\npower_source = "measured"\n')
        out.write("""
[[server]]
name = "s3-1"
role = "storage"
cpu_model = "Intel Xeon Silver 4214"
sockets = 1
vcpus = 24
ram_gb = 64
disks = [{ kind = "hdd", capacity_gb = 16000, count = 8 }, { kind = "ssd", capacity_gb = 960, count = 2 }]
lifetime_years = 6
""")

    with open(os.path.join(a.out, "mapping.toml"), "w") as out:
        out.write("shared_namespaces = [%s]\n" % ", ".join(f'"{s}"' for s in SHARED))
        out.write("[namespaces]\n")
        for ns in own:
            out.write(f'"{ns}" = "{org_of[ns]}"\n')
        out.write("[buckets]\n")
        for b, org in buckets.items():
            out.write(f'"{b}" = "{org}"\n')
    with open(os.path.join(a.out, "expected.env"), "w") as out:
        out.write(f"KEPLER_NODE={nodes[0]}\nKEPLER_KWH={kepler_kwh!r}\nMONTH={a.month}\n")


if __name__ == "__main__":
    main()
