#!/usr/bin/env python3
"""Start time of a many-task Slurm step that imports numpy and pandas: tykky against a native venv.

Builds, as --user, a native venv (`python3 -m venv` + pip) and a tykky pip installation of the
same requirements, then times, side by side in one run,
  `srun -n TASKS --overcommit <python> -c PROGRAM`
on the one-node partition of scripts/setup-slurm.sh for `pass` and `import numpy, pandas`,
RUNS times each, the installations alternating (one untimed step of each first: the page cache
is warm for both). Also counts the squashfuse processes that mount the installation's image
during a step (one per node when the step's tasks share a container). Run as root; the steps run
as --user (default: the unprivileged test user).

    .venv/bin/python bench/slurm_import.py [--user tykkytest] [--tasks 64] [--runs 3]
"""
import argparse
import os
import platform
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_step import REPO, run, timed_step  # noqa: E402

REQUIREMENTS = "numpy\npandas\n"
PROGRAMS = {"-c pass": "pass", "import numpy, pandas": "import numpy, pandas"}
PASSED = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "PIP_DEFAULT_TIMEOUT",
          "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_DISABLE_PIP_VERSION_CHECK")


def build(user: str, work: Path) -> Dict[str, Path]:
    """The native venv and the tykky installation of REQUIREMENTS; their Pythons by name."""
    entry = pwd.getpwnam(user)
    os.chown(work, entry.pw_uid, entry.pw_gid)
    requirements = work / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    pyz = work / "tykky.pyz"
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                   stdout=subprocess.DEVNULL)
    env = {k: os.environ[k] for k in PASSED if k in os.environ}
    env.update({"HOME": entry.pw_dir, "PATH": "/usr/local/bin:/usr/bin:/bin", "CW_LOG_LEVEL": "1",
                "CW_GLOBAL_YAML": os.environ.get("CW_GLOBAL_YAML", "debian-test")})
    run(user, ["/usr/bin/python3", "-m", "venv", work / "native"], env=env, cwd=work)
    run(user, [work / "native" / "bin" / "pip", "install", "-q", "-r", requirements], env=env, cwd=work)
    run(user, ["/usr/bin/python3", pyz, "pip-containerize", "new", "--prefix", work / "tykky", requirements],
        env=env, cwd=work, stdout=subprocess.DEVNULL)
    return {"native venv": work / "native" / "bin" / "python", "tykky": work / "tykky" / "bin" / "python"}


def step(python: Path, tasks: int, program: str) -> List[str]:
    return ["srun", "-n", str(tasks), "--overcommit", str(python), "-c", program]


def measure(user: str, pythons: Dict[str, Path], tasks: int, runs: int) -> Dict[Tuple[str, str], dict]:
    """Mean and fastest step time and most squashfuse processes, per (installation, program)."""
    results: Dict[Tuple[str, str], List[Tuple[float, int]]] = {}
    for label, program in PROGRAMS.items():
        for python in pythons.values():
            run(user, step(python, tasks, program), stdout=subprocess.DEVNULL, cwd="/tmp")
        for index in range(runs):
            order = list(pythons.items())
            for name, python in order if index % 2 == 0 else reversed(order):
                prefix = python.parents[1]
                results.setdefault((name, label), []).append(timed_step(user, prefix, step(python, tasks, program)))
    return {key: {"mean": sum(r[0] for r in rows) / len(rows), "fastest": min(r[0] for r in rows),
                  "squashfuse": max(r[1] for r in rows)} for key, rows in results.items()}


def report(rows: Dict[Tuple[str, str], dict], user: str, tasks: int, runs: int) -> str:
    lines = [f"`srun -n {tasks} --overcommit` on one node of {os.cpu_count()} cores, as {user}, "
             f"{runs} steps each, {platform.node()}, {time.strftime('%Y-%m-%d')}", "",
             "| program | installation | mean | fastest | ratio to native (mean) | squashfuse per step |",
             "|---|---|---|---|---|---|"]
    for label in PROGRAMS:
        native = rows[("native venv", label)]["mean"]
        for name in ("native venv", "tykky"):
            row = rows[(name, label)]
            lines.append(f"| `{label}` | {name} | {row['mean']:.2f} s | {row['fastest']:.2f} s "
                         f"| {row['mean'] / native:.2f} | {row['squashfuse']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default=os.environ.get("TYKKY_TEST_USER", "tykkytest"))
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tykky-bench-slurm-import-", dir="/tmp") as directory:
        work = Path(directory)
        work.chmod(0o755)
        pythons = build(arguments.user, work)
        rows = measure(arguments.user, pythons, arguments.tasks, arguments.runs)
    print("\n" + report(rows, arguments.user, arguments.tasks, arguments.runs))
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
