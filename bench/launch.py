#!/usr/bin/env python3
"""Launch cost of a pip installation's wrapper against the bare runtime and a native venv.

Builds a small installation (and a native venv with the same packages), then measures in ONE
hyperfine run:
  wrapper   <prefix>/bin/python -c pass, a cold launch (warm mounts off)
  bare      apptainer exec of the same container with the same binds and image mount
  warm      the same wrapper joining its running instance (the default)
  native    a venv on local disk
and prints the launcher's added time and the ratios. Run as root; --user runs everything as
that unprivileged user (what cluster users are).

    python3 bench/launch.py [--user tykkytest] [--runs 30]
"""
import argparse
import ast
import json
import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = "six==1.16.0\nPyYAML==6.0.2\n"


def as_user(user: str, argv: list) -> list:
    if user == "root":
        return argv
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
            "env", f"HOME={entry.pw_dir}", f"USER={user}"] + argv


def run(user: str, argv: list, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(as_user(user, [str(a) for a in argv]), check=True, **kwargs)


def prepare(user: str, work: Path) -> Path:
    entry = pwd.getpwnam(user)
    os.chown(work, entry.pw_uid, entry.pw_gid)
    (work / "requirements.txt").write_text(REQUIREMENTS)
    pyz = work / "tykky.pyz"
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                   stdout=subprocess.DEVNULL)
    env = {**os.environ, "CW_GLOBAL_YAML": os.environ.get("CW_GLOBAL_YAML", "debian-test"),
           "PATH": "/usr/local/bin:/usr/bin:/bin", "CW_LOG_LEVEL": "1"}
    run(user, ["/usr/bin/python3", pyz, "pip-containerize", "new", "--prefix", work / "inst",
               work / "requirements.txt"], env=env, cwd=work)
    run(user, ["/usr/bin/python3", "-m", "venv", work / "native"], env=env)
    run(user, [work / "native" / "bin" / "pip", "install", "-q", "-r", work / "requirements.txt"], env=env)
    return work / "inst"


def bare_command(user: str, prefix: Path) -> str:
    """The exact runtime command the launcher would exec, as a shell line."""
    dry = run(user, [prefix / "bin" / "python", "-c", "pass"], env={**os.environ, "TYKKY_LAUNCHER_DRY_RUN": "1"},
              stdout=subprocess.PIPE).stdout.decode()
    plan = ast.literal_eval(dry.strip())
    variables = " ".join(f"{k}={subprocess.list2cmdline([v])!s}" for k, v in plan["environment"].items()
                         if k.endswith("_BIND") or k.startswith(("APPTAINERENV_", "SINGULARITYENV_")))
    quoted = " ".join(subprocess.list2cmdline([a]) for a in plan["argv"])
    return f"env {variables} {quoted}"


def hyperfine(user: str, commands: dict, runs: int, output: Path) -> dict:
    argv = ["hyperfine", "--warmup", "3", "--runs", str(runs), "--export-json", str(output), "-N"]
    for name, command in commands.items():
        argv += ["--command-name", name, command]
    run(user, argv)
    results = json.loads(output.read_text())["results"]
    return {result["command"]: result for result in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="root")
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tykky-bench-", dir="/tmp") as directory:
        work = Path(directory)
        work.chmod(0o755)
        prefix = prepare(arguments.user, work)
        commands = {"wrapper": f"env TYKKY_WARM_MOUNTS=0 {prefix}/bin/python -c pass",
                    "bare": bare_command(arguments.user, prefix),
                    "warm": f"{prefix}/bin/python -c pass",
                    "native": f"{work}/native/bin/python -c pass"}
        results = hyperfine(arguments.user, commands, arguments.runs, work / "hyperfine.json")
    wrapper, bare, native, warm = (results[name]["mean"] * 1000 for name in ("wrapper", "bare", "native", "warm"))
    print(f"\n| measure ({arguments.user}) | mean ms |\n|---|---|")
    for name in ("wrapper", "bare", "warm", "native"):
        print(f"| {name} | {results[name]['mean'] * 1000:.1f} ± {results[name]['stddev'] * 1000:.1f} |")
    print(f"\nlauncher adds {wrapper - bare:.1f} ms over the bare runtime "
          f"(wrapper/bare = {wrapper / bare:.3f}, wrapper/native = {wrapper / native:.2f}); "
          f"warm wrapper/bare = {warm / bare:.2f}")


if __name__ == "__main__":
    main()
