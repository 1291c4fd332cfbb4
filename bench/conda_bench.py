#!/usr/bin/env python3
"""Build time of a small conda environment, and launch time of its wrappers against bare Apptainer.

Builds the tests' local conda channel (tests/conda_channel.py; the python package needs
scripts/build-test-python.sh) and a small environment from it with tykky.pyz, then reports:

  build     wall time of `conda-containerize new`, with its solve and install times (from the
            build's own log) and mksquashfs (timed again on the image's content, same options)
  launch    ONE hyperfine run of, for a native program (tykky-hello) and for `python -c pass`:
              wrapper   <prefix>/bin/<program>
              bare      the very runtime command the launcher execs (its binds and environment)
            with the ratios wrapper/bare.

Run as root; --user runs the builds and launches as that unprivileged user.

    python3 bench/conda_bench.py [--user tykkytest] [--runs 30] [--no-python]
"""
import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conda_channel import build_channel, channel_url  # noqa: E402


def launch_bench():  # type: ignore[no-untyped-def]
    """bench/launch.py's helpers (running as a user, the bare command, hyperfine)."""
    spec = importlib.util.spec_from_file_location("launch_bench", REPO / "bench" / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def environment_yml(channel: Path, with_python: bool) -> str:
    packages = ["tykky-hello", "tykky-where", "tykky-data", "tykky-activate"]
    packages += ["python=3.11", "pip", "tykky-pylib"] if with_python else []
    return (f"channels:\n  - {channel_url(channel)}\ndependencies:\n"
            + "".join(f"  - {name}\n" for name in packages))


def build(bench, user: str, work: Path, with_python: bool) -> Dict[str, float]:  # type: ignore[no-untyped-def]
    pyz = work / "tykky.pyz"
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                   stdout=subprocess.DEVNULL)
    channel = build_channel(work / "channel", with_python=with_python)
    (work / "environment.yml").write_text(environment_yml(channel, with_python))
    env = {**os.environ, "CW_GLOBAL_YAML": os.environ.get("CW_GLOBAL_YAML", "debian-test"),
           "PATH": "/usr/local/bin:/usr/bin:/bin", "CW_LOG_LEVEL": "2", "TYKKY_WARM_MOUNTS": "0"}
    # Once to fill the solver and package caches, as a user's second build finds them.
    for name in ("warmup", "inst"):
        started = time.monotonic()
        completed = bench.run(user, ["/usr/bin/python3", pyz, "conda-containerize", "new", "--prefix", work / name,
                                     work / "environment.yml"], env=env, cwd=work, stderr=subprocess.PIPE)
        total = time.monotonic() - started
    log = completed.stderr.decode()
    match = re.search(r"Solved in ([\d.]+) s, installed \d+ packages in ([\d.]+) s", log)
    return {"total": total, "solve": float(match.group(1)), "install": float(match.group(2)),
            "mksquashfs": time_mksquashfs(work / "inst" / "img.sqfs", work / "resquash")}


def time_mksquashfs(image: Path, work: Path) -> float:
    """mksquashfs of the image's own content with the debian-test options, as the build runs it."""
    tree, output = work / "tree", work / "again.sqfs"
    work.mkdir()
    subprocess.run(["unsquashfs", "-q", "-no-progress", "-d", str(tree), str(image)], check=True,
                   stdout=subprocess.DEVNULL)
    started = time.monotonic()
    subprocess.run(["mksquashfs", str(tree), str(output), "-noappend", "-no-progress", "-quiet", "-processors", "2",
                    "-comp", "lz4"], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def launch_commands(bench, user: str, prefix: Path, programs: List[List[str]]) -> Dict[str, str]:  # type: ignore[no-untyped-def]
    commands = {}
    for argv in programs:
        name = argv[0]
        wrapper = " ".join(shlex.quote(a) for a in [str(prefix / "bin" / name)] + argv[1:])
        commands[f"{name} wrapper"] = f"env TYKKY_WARM_MOUNTS=0 {wrapper}"
        commands[f"{name} bare"] = bare_command(bench, user, prefix, argv)
    return commands


def bare_command(bench, user: str, prefix: Path, argv: List[str]) -> str:  # type: ignore[no-untyped-def]
    import ast

    dry = bench.run(user, [prefix / "bin" / argv[0], *argv[1:]], stdout=subprocess.PIPE,
                    env={**os.environ, "TYKKY_LAUNCHER_DRY_RUN": "1"}).stdout.decode()
    plan = ast.literal_eval(dry.strip())
    variables = [f"{k}={v}" for k, v in plan["environment"].items()
                 if k.endswith("_BIND") or k.startswith(("APPTAINERENV_", "SINGULARITYENV_"))]
    return " ".join(shlex.quote(a) for a in ["env", *variables, *plan["argv"]])


def report(user: str, timings: Dict[str, float], results: Dict[str, dict]) -> None:
    print(f"\n| build of a small conda env ({user}) | seconds |\n|---|---|")
    for name in ("total", "solve", "install", "mksquashfs"):
        print(f"| {name} | {timings[name]:.2f} |")
    print(f"\n| launch ({user}) | mean ms |\n|---|---|")
    for name, result in results.items():
        print(f"| {name} | {result['mean'] * 1000:.1f} ± {result['stddev'] * 1000:.1f} |")
    for program in sorted({name.rsplit(" ", 1)[0] for name in results}):
        wrapper, bare = results[f"{program} wrapper"]["mean"], results[f"{program} bare"]["mean"]
        print(f"{program}: wrapper/bare = {wrapper / bare:.3f} (launcher adds {(wrapper - bare) * 1000:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="root")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-python", dest="with_python", action="store_false",
                        help="leave python out of the environment (no CPython build needed)")
    arguments = parser.parse_args()
    if not shutil.which("hyperfine"):
        raise SystemExit("hyperfine is missing: run scripts/setup-host.sh")
    bench = launch_bench()
    with tempfile.TemporaryDirectory(prefix="tykky-conda-bench-", dir="/tmp") as directory:
        work = Path(directory)
        work.chmod(0o755)
        if arguments.user != "root":
            import pwd

            entry = pwd.getpwnam(arguments.user)
            os.chown(work, entry.pw_uid, entry.pw_gid)
        timings = build(bench, arguments.user, work, arguments.with_python)
        programs = [["tykky-hello"]] + ([["python", "-c", "pass"]] if arguments.with_python else [])
        commands = launch_commands(bench, arguments.user, work / "inst", programs)
        results = bench.hyperfine(arguments.user, commands, arguments.runs, work / "hyperfine.json")
    report(arguments.user, timings, results)


if __name__ == "__main__":
    main()
