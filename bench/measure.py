"""What every benchmark needs: the machine, load averages, process CPU and memory, percentiles,
a bench Elasticsearch node, a local Ray cluster, and Markdown tables."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The benchmark node (docs/benchmarks.md): its own port, heap and data, never the shared 9200.
BENCH_ES_URL = "http://127.0.0.1:9260"
BENCH_ES_ENV = {"EARSHOT_ES_NODE": "bench", "EARSHOT_ES_PORT": "9260", "EARSHOT_ES_HEAP": "4g"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A node of the local Ray cluster: one CPU, so each recognition worker has a raylet of its own
# (as on a cluster of machines), and a small object store (recordings and transcripts only).
RAY_NODE: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> str:
    """CPU model, cores, memory, OS and Python, in one line."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return (
        f"{model}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def es_json(url: str, path: str, timeout: float = 30.0) -> Any:
    with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as answer:
        return json.loads(answer.read())


def es_reachable(url: str) -> bool:
    try:
        es_json(url, "/_cluster/health", timeout=3)
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return True


def ensure_bench_es(url: str) -> None:
    """Start the benchmark node with scripts/es-local when the default bench URL is down."""
    if es_reachable(url):
        return
    if url != BENCH_ES_URL:
        raise SystemExit(f"no Elasticsearch at {url}")
    env = {key: value for key, value in os.environ.items() if key != "ES_URL"}
    env.update(BENCH_ES_ENV)
    print("starting the benchmark Elasticsearch node (scripts/es-local, port 9260, heap 4g)")
    subprocess.run([str(ROOT / "scripts" / "es-local"), "start"], env=env, check=True)


def es_description(url: str) -> str:
    nodes = es_json(url, "/_nodes/_local/jvm,process")["nodes"]
    node = next(iter(nodes.values()))
    heap_gb = node["jvm"]["mem"]["heap_max_in_bytes"] / 1024**3
    return f"Elasticsearch {node['version']} (heap {heap_gb:.0f} GiB)"


def es_pid(url: str) -> int:
    nodes = es_json(url, "/_nodes/_local/process")["nodes"]
    return int(next(iter(nodes.values()))["process"]["id"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included); NaN when this
    machine cannot see it (an Elasticsearch elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` and theirs (e.g. the API's search workers)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            direct = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in direct:
            found += [child, *children(child)]
    return found


def family_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of the process and of its live children: a process that hands its
    work to worker processes (the API's searches) is measured with them."""
    return cpu_seconds(pid) + sum(
        seconds for child in children(pid) if not math.isnan(seconds := cpu_seconds(child))
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Stopwatch:
    """Wall time and the CPU time of this process and of other processes (e.g. Elasticsearch)
    over one measured stretch."""

    pids: dict[str, int]
    wall_s: float = 0.0
    cpu_s: dict[str, float] | None = None

    def __enter__(self) -> Stopwatch:
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._self0 = time.process_time()
        self._children0 = _children_cpu_s()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = {name: cpu_seconds(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        self.cpu_s["bench"] = time.process_time() - self._self0
        # Child processes that ended inside the stretch (the loader's worker pool).
        self.cpu_s["children"] = _children_cpu_s() - self._children0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies_s)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p95_ms": percentile(ordered, 95) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] if ordered else math.nan) * 1000,
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@contextmanager
def local_ray_cluster(nodes: int) -> Iterator[Any]:
    """A real Ray cluster on this machine, connected to: a head and ``nodes - 1`` worker
    nodes, each a raylet process with one CPU (``RAY_NODE``). Yields the
    ``ray.cluster_utils.Cluster``; shut down, and disconnected from, on the way out."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**RAY_NODE, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**RAY_NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]  # ray's cluster utils are unannotated
