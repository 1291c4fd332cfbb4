#!/usr/bin/env python3
"""Warm `import numpy, pandas` against a native venv as updates stack image layers.

As an unprivileged user (default tykkytest) it builds a numpy+pandas installation and a native
venv, then for 1, 2, ... --layers image layers (each update adds a small package to
site-packages, as an update adding a package does) measures side by side the native import and
the warm wrapper's (twice, in opposite orders, averaged), and the CPU time the instance's
squashfuse processes spend per warm import (every layer is one more squashfuse mount under
overlayfs). CPU times (the import's own user + system, hyperfine's) move less with the
machine's load than wall times do.

    python3 bench/layers.py [--user tykkytest] [--layers 8] [--runs 10]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from performance import IMPORT, PACKAGES, Bench, start_warm_instance  # noqa: E402

POST_INSTALL = """python - <<'EOF'
import os, site
package = os.path.join(site.getsitepackages()[0], "layer{number}")
os.makedirs(package)
open(os.path.join(package, "__init__.py"), "w").write("VALUE = {number}\\n")
EOF
"""


def squashfuse_seconds(bench: Bench) -> Dict[int, float]:
    """CPU seconds so far of this user's squashfuse processes, by pid."""
    seconds = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == bench.uid and \
                    (entry / "comm").read_text().strip().startswith("squashfuse"):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                seconds[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return seconds


def measure(bench: Bench, pyz: Path, runs: int) -> dict:
    """Native and warm import, twice in opposite orders (a block of runs otherwise pays for the
    machine's drift alone), averaged; and the instance's squashfuse CPU time per import."""
    inst, native = bench.work / "inst" / "bin" / "python", bench.work / "native" / "bin" / "python"
    start_warm_instance(bench, pyz, inst)
    quoted = shlex.quote(IMPORT)
    commands = {"native": f"{native} -c {quoted}", "warm": f"{inst} -c {quoted}"}
    before = squashfuse_seconds(bench)
    sums: Dict[str, Dict[str, float]] = {name: {"mean": 0.0, "user": 0.0, "system": 0.0} for name in commands}
    for order in (["native", "warm"], ["warm", "native"]):
        output = bench.work / "layers.json"
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", output]
        for name in order:
            argv += ["--command-name", name, commands[name]]
        bench.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for result in json.loads(output.read_text())["results"]:
            for key in ("mean", "user", "system"):
                sums[result["command"]][key] += result[key] / 2
    after = squashfuse_seconds(bench)
    spent = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    bench.run(["/usr/bin/python3", pyz, "warm", "stop", "--force", bench.work / "inst"], stdout=subprocess.DEVNULL)
    return {"native": sums["native"]["mean"], "warm": sums["warm"]["mean"], "squashfuse": spent / (2 * (runs + 3)),
            "native cpu": sums["native"]["user"] + sums["native"]["system"],
            "warm cpu": sums["warm"]["user"] + sums["warm"]["system"], "warm system": sums["warm"]["system"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="tykkytest")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10)
    arguments = parser.parse_args()
    rows: List[str] = []
    with tempfile.TemporaryDirectory(prefix="tykky-layers-", dir="/tmp") as directory:
        work = Path(directory)
        bench = Bench(arguments.user, work)
        os.chown(work, bench.uid, bench.gid)
        pyz = work / "tykky.pyz"
        subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                       stdout=subprocess.DEVNULL)
        requirements = bench.write("requirements.txt", PACKAGES)
        bench.run(["/usr/bin/python3", "-m", "venv", work / "native"])
        bench.run([work / "native" / "bin" / "pip", "install", "-q", "-r", requirements])
        bench.run(["/usr/bin/python3", pyz, "pip-containerize", "new", "--prefix", work / "inst", requirements])
        for layers in range(1, arguments.layers + 1):
            if layers > 1:
                post = bench.write(f"post{layers}.sh", POST_INSTALL.format(number=layers))
                bench.run(["/usr/bin/python3", pyz, "pip-containerize", "update", work / "inst", "--post-install",
                           post], stdout=subprocess.DEVNULL)
            count = len(json.loads((work / "inst" / "_tykky" / "manifest.json").read_text())["layers"])
            result = measure(bench, pyz, arguments.runs)
            rows.append(f"| {count} | {result['native'] * 1000:.0f} ms | {result['warm'] * 1000:.0f} ms | "
                        f"{result['warm'] / result['native']:.2f} | {result['warm cpu'] / result['native cpu']:.2f} | "
                        f"{result['warm system'] * 1000:.0f} ms | {result['squashfuse'] * 1000:.0f} ms |")
            print(rows[-1], flush=True)
    print(f"\nAs user {arguments.user}, load average {os.getloadavg()[0]:.2f} at the end.\n")
    print("| image layers | native import | warm import | warm / native | CPU time warm / native "
          "| warm system time | squashfuse CPU per warm import |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
