#!/usr/bin/env python3
"""Many tasks of one Slurm step on a node: one shared container against one container per task.

Builds a pip installation (with --system-site-packages, so the host's mpi4py is seen) and a
copy of it whose manifest turns share_step_container off, then for each:
  step   `srun -n TASKS --overcommit <prefix>/bin/python -c 'import yaml'`, RUNS times:
         mean wall time, and the squashfuse processes mounting the installation's container
         or image that the step started (sampled from /proc; most in any one step)
  mpi    `srun --mpi=pmix -n 2 <prefix>/bin/python -c <allreduce>`: whether Open MPI warns that
         single-copy (CMA) transfers are unavailable because ranks sit in different namespaces
Needs the one-node cluster of scripts/setup-slurm.sh. Run as root; the steps run as --user
(default: the unprivileged test user; user namespaces are what cluster users get).

    .venv/bin/python bench/slurm_step.py [--user tykkytest] [--tasks 32] [--runs 3]
"""
import argparse
import json
import os
import pwd
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
ALLREDUCE = "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.rank, c.allreduce(c.rank + 1))"


def as_user(user: str, argv: list) -> list:
    entry = pwd.getpwnam(user)
    if entry.pw_uid == 0:
        return [str(a) for a in argv]
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
            "env", f"HOME={entry.pw_dir}", f"USER={user}"] + [str(a) for a in argv]


def run(user: str, argv: list, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(as_user(user, argv), check=True, **kwargs)


def prepare(user: str, work: Path) -> Tuple[Path, Path]:
    entry = pwd.getpwnam(user)
    os.chown(work, entry.pw_uid, entry.pw_gid)
    (work / "requirements.txt").write_text("PyYAML==6.0.2\n")
    pyz = work / "tykky.pyz"
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                   stdout=subprocess.DEVNULL)
    env = {**os.environ, "CW_GLOBAL_YAML": os.environ.get("CW_GLOBAL_YAML", "debian-test"),
           "PATH": "/usr/local/bin:/usr/bin:/bin", "CW_LOG_LEVEL": "1"}
    shared = work / "shared"
    run(user, ["/usr/bin/python3", pyz, "pip-containerize", "new", "--system-site-packages", "--prefix", shared,
               work / "requirements.txt"], env=env, cwd=work)
    unshared = work / "unshared"
    run(user, ["cp", "-a", shared, unshared])
    manifest_path = unshared / "_tykky" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["share_step_container"] = False
    manifest_path.write_text(json.dumps(manifest))
    return shared, unshared


def squashfuse_processes(prefix: Path) -> Set[Tuple[int, str]]:
    """(pid, start time) of the squashfuse processes mounting a file of the installation."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
            if "(squashfuse" in stat and os.readlink(f"/proc/{entry.name}/fd/3").startswith(f"{prefix}/"):
                found.add((int(entry.name), stat.rsplit(")", 1)[1].split()[19]))
        except OSError:
            continue
    return found


def timed_step(user: str, prefix: Path, argv: list) -> Tuple[float, int]:
    """Wall time of one step and how many squashfuse processes appeared while it ran."""
    before = squashfuse_processes(prefix)
    seen: Set[Tuple[int, str]] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.update(squashfuse_processes(prefix))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    try:
        run(user, argv, stdout=subprocess.DEVNULL, cwd="/tmp")
    finally:
        elapsed = time.monotonic() - start
        done.set()
        sampler.join()
    return elapsed, len(seen - before)


def measure(user: str, prefix: Path, tasks: int, runs: int) -> Dict[str, object]:
    step = ["srun", "-n", str(tasks), "--overcommit", prefix / "bin" / "python", "-c", "import yaml"]
    results = [timed_step(user, prefix, step) for _ in range(runs)]
    mpi = subprocess.run(as_user(user, ["srun", "--mpi=pmix", "-n", "2", prefix / "bin" / "python", "-c",
                                        ALLREDUCE]), capture_output=True, cwd="/tmp")
    return {"seconds": sum(r[0] for r in results) / runs, "squashfuse": max(r[1] for r in results),
            "mpi_ok": mpi.returncode == 0 and b"1 3" in mpi.stdout, "cma_warning": b"CMA" in mpi.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default=os.environ.get("TYKKY_TEST_USER", "tykkytest"))
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tykky-bench-slurm-", dir="/tmp") as directory:
        work = Path(directory)
        work.chmod(0o755)
        shared, unshared = prepare(arguments.user, work)
        rows = {name: measure(arguments.user, prefix, arguments.tasks, arguments.runs)
                for name, prefix in (("shared container", shared), ("container per task", unshared))}
    print(f"\n{arguments.tasks} tasks on {os.cpu_count()} cores as {arguments.user}, mean of {arguments.runs} steps\n")
    print("| step | seconds | squashfuse started | MPI allreduce | CMA warning |\n|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.2f} | {row['squashfuse']} | {'ok' if row['mpi_ok'] else 'FAILED'} "
              f"| {'yes' if row['cma_warning'] else 'no'} |")


if __name__ == "__main__":
    main()
