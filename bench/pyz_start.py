#!/usr/bin/env python3
"""Warm start-up of tykky.pyz: `--version` and `--help` through its sh preamble, against a bare
`python3 -c pass`. Builds the archive, warms its extraction cache, then measures in one hyperfine
run and prints the means with user+system CPU time (the figure that a loaded machine distorts
least). The target: both well under 200 ms.

    python3 bench/pyz_start.py [--runs 30]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tykky-bench-", dir="/tmp") as directory:
        work = Path(directory)
        pyz = work / "tykky.pyz"
        subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                       stdout=subprocess.DEVNULL)
        env = {**os.environ, "TYKKY_CACHE_DIR": str(work / "cache")}
        subprocess.run([str(pyz), "--version"], check=True, env=env, stdout=subprocess.DEVNULL)
        commands = {"version": f"{pyz} --version", "help": f"{pyz} --help", "python": "/usr/bin/python3 -c pass"}
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(arguments.runs), "--export-json",
                str(work / "result.json")]
        for name, command in commands.items():
            argv += ["--command-name", name, command]
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        results = json.loads((work / "result.json").read_text())["results"]
    print("| command | mean ms | user+system ms |\n|---|---|---|")
    for result in results:
        cpu = (result["user"] + result["system"]) * 1000
        print(f"| {result['command']} | {result['mean'] * 1000:.1f} ± {result['stddev'] * 1000:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
