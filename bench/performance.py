#!/usr/bin/env python3
"""Launch, build and update costs of tykky against their references, in one run.

As an unprivileged user (the default: tykkytest) it builds a numpy+pandas installation and a
native venv with the same packages, then measures in ONE hyperfine run:
  native venv, bare `apptainer exec` (cold mount, same binds), the wrapper cold and warm,
each for `python -c pass` and `python -c 'import numpy, pandas'` (twice, in opposite orders,
averaged); then build time against a
native `pip install` (same pip cache state), an update adding one small package against the
new build, the image bytes before and after that update, and mksquashfs time, image size and
cold import time per compression. Prints one markdown table with ratios.

    python3 bench/performance.py [--user tykkytest] [--runs 10] [--output docs/performance.md]
"""
import argparse
import ast
import json
import os
import platform
import pwd
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = "numpy\npandas\n"
SMALL_PACKAGE = "tomli==2.0.1\n"
IMPORT = "import numpy, pandas"
COMPRESSIONS = {"gzip": "-comp gzip", "lz4": "-comp lz4", "zstd-3": "-comp zstd -Xcompression-level 3",
                "none": "-noI -noD -noF -noX"}
PASSED = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "PIP_DEFAULT_TIMEOUT",
          "PIP_FIND_LINKS", "PIP_DISABLE_PIP_VERSION_CHECK")


class Bench:
    def __init__(self, user: str, work: Path) -> None:
        entry = pwd.getpwnam(user)
        self.user, self.uid, self.gid, self.home = user, entry.pw_uid, entry.pw_gid, entry.pw_dir
        self.work = work
        self.env = {k: os.environ[k] for k in PASSED if k in os.environ}
        self.env.update({"HOME": self.home, "USER": user, "PATH": "/usr/local/bin:/usr/bin:/bin",
                         "CW_GLOBAL_YAML": os.environ.get("CW_GLOBAL_YAML", "debian-test"), "CW_LOG_LEVEL": "1"})

    def argv(self, command: list) -> list:
        prefix = [] if self.uid == 0 else ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]
        return prefix + ["env", "-i"] + [f"{k}={v}" for k, v in self.env.items()] + [str(c) for c in command]

    def run(self, command: list, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        return subprocess.run(self.argv(command), check=True, cwd=self.work, **kwargs)

    def timed(self, command: list) -> float:
        start = time.monotonic()
        self.run(command, stdout=subprocess.DEVNULL)
        return time.monotonic() - start

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        os.chown(path, self.uid, self.gid)
        return path


def build_times(bench: Bench, pyz: Path) -> dict:
    requirements = bench.write("requirements.txt", PACKAGES)
    bench.run([sys.executable if bench.uid == 0 else "/usr/bin/python3", "-m", "venv", bench.work / "warmup"])
    bench.run([bench.work / "warmup" / "bin" / "pip", "install", "-q", "-r", requirements])  # fills the pip cache
    # Twice each, alternating, the faster of the two: noise on this kind of machine only ever
    # adds time, and one build is at the mercy of it.
    natives, news = [], []
    for attempt in ("1", ""):
        natives.append(bench.timed(["sh", "-c", f"/usr/bin/python3 -m venv {bench.work}/native{attempt} && "
                                                f"{bench.work}/native{attempt}/bin/pip install -q -r {requirements}"]))
        news.append(bench.timed(["/usr/bin/python3", pyz, "pip-containerize", "new", "--prefix",
                                 bench.work / f"inst{attempt}", requirements]))
    native, new = min(natives), min(news)
    before = image_bytes(bench.work / "inst")
    small = bench.write("small.txt", SMALL_PACKAGE)
    update = bench.timed(["/usr/bin/python3", pyz, "pip-containerize", "update", bench.work / "inst", "-r", small])
    return {"native": native, "new": new, "update": update, "bytes_before": before,
            "bytes_after": image_bytes(bench.work / "inst")}


def image_bytes(prefix: Path) -> int:
    manifest = json.loads((prefix / "_tykky" / "manifest.json").read_text())
    return sum((prefix / layer["image"]).stat().st_size for layer in manifest["layers"])


def bare_runtime(bench: Bench, python: Path, program: str) -> str:
    """The runtime command the launcher would exec cold, as one shell line."""
    environment = {**bench.env, "TYKKY_LAUNCHER_DRY_RUN": "1", "TYKKY_WARM_MOUNTS": "0"}
    saved, bench.env = bench.env, environment
    try:
        plan = ast.literal_eval(bench.run([python, "-c", program], stdout=subprocess.PIPE).stdout.decode())
    finally:
        bench.env = saved
    variables = {k: v for k, v in plan["environment"].items() if "BIND" in k or "ENV_" in k}
    return "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items()) + " " + shlex.join(plan["argv"])


def start_warm_instance(bench: Bench, pyz: Path, python: Path) -> None:
    """The first launch runs cold and starts the instance in the background: wait for it."""
    bench.run([python, "-c", "pass"])
    prefix = str(python.parents[1])
    for _ in range(120):
        status = bench.run(["/usr/bin/python3", pyz, "warm", "status", prefix], stdout=subprocess.PIPE).stdout
        if prefix.encode() in status:
            return
        time.sleep(0.5)
    raise SystemExit(f"no warm instance of {prefix} started")


def launch_times(bench: Bench, pyz: Path, runs: int) -> dict:
    inst, native = bench.work / "inst" / "bin" / "python", bench.work / "native" / "bin" / "python"
    commands = {}
    for label, program in (("pass", "pass"), ("import", IMPORT)):
        quoted = shlex.quote(program)
        commands[f"native {label}"] = f"{native} -c {quoted}"
        commands[f"bare cold {label}"] = bare_runtime(bench, inst, program)
        commands[f"wrapper cold {label}"] = f"env TYKKY_WARM_MOUNTS=0 {inst} -c {quoted}"
        commands[f"wrapper warm {label}"] = f"{inst} -c {quoted}"
    # Each command's runs come in one block, so a block pays for what the one before it left
    # behind (the teardown of cold mounts) and for the machine's drift: measure every block
    # twice, in opposite orders, and average.
    means: dict = {}
    for order, names in enumerate((list(commands), list(reversed(commands)))):
        start_warm_instance(bench, pyz, inst)
        output = bench.work / f"launch-{order}.json"
        argv = ["hyperfine", "--warmup", "2", "--runs", str(max(3, runs // 2)), "--export-json", output]
        for name in names:
            argv += ["--command-name", name, commands[name]]
        bench.run(argv, stdout=subprocess.DEVNULL)
        for result in json.loads(output.read_text())["results"]:
            means.setdefault(result["command"], []).append(result["mean"])
    return {name: sum(values) / len(values) for name, values in means.items()}


def compression_times(bench: Bench, runs: int) -> dict:
    """mksquashfs seconds, image bytes and cold import time of the same tree per compression."""
    manifest = json.loads((bench.work / "inst" / "_tykky" / "manifest.json").read_text())
    tree = bench.work / "tree"
    bench.run(["unsquashfs", "-q", "-d", tree, bench.work / "inst" / manifest["layers"][0]["image"]],
              stdout=subprocess.DEVNULL)
    results, commands = {}, {}
    container = bench.work / "inst" / manifest["container"]
    for name, options in COMPRESSIONS.items():
        image = bench.work / f"{name}.sqfs"
        seconds = bench.timed(["mksquashfs", tree, image, "-noappend", "-no-progress", "-processors",
                               str(os.cpu_count()), *options.split()])
        results[name] = {"seconds": seconds, "bytes": image.stat().st_size}
        commands[name] = (f"apptainer -q exec --overlay {image}:ro {container} "
                          f"/TYKKY/venv/bin/python -c {shlex.quote(IMPORT)}")
    output = bench.work / "compression.json"
    argv = ["hyperfine", "--warmup", "1", "--runs", str(runs), "--export-json", output]
    for name, command in commands.items():
        argv += ["--command-name", name, command]
    bench.run(argv, stdout=subprocess.DEVNULL)
    for result in json.loads(output.read_text())["results"]:
        results[result["command"]]["import"] = result["mean"]
    return results


def report(user: str, builds: dict, launches: dict, compressions: dict) -> str:
    ms = {name: value * 1000 for name, value in launches.items()}
    lines = [f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, "
             f"{subprocess.run(['apptainer', '--version'], capture_output=True, text=True).stdout.strip()}, "
             f"as user {user}, {time.strftime('%Y-%m-%d')}.", "",
             "| measure | time | ratio |", "|---|---|---|"]
    for label in ("pass", "import"):
        for name in ("native", "bare cold", "wrapper cold", "wrapper warm"):
            lines.append(f"| `python -c {label}`: {name} | {ms[f'{name} {label}']:.0f} ms | |")
    lines += [
        f"| warm `-c pass` / bare cold | | {ms['wrapper warm pass'] / ms['bare cold pass']:.2f} (target <= 0.5) |",
        f"| warm import / native import | | {ms['wrapper warm import'] / ms['native import']:.2f} (target <= 1.25) |",
        f"| cold import / bare cold import | | {ms['wrapper cold import'] / ms['bare cold import']:.2f} (target <= 1.1) |",
        f"| launcher added cold (`-c pass`) | {ms['wrapper cold pass'] - ms['bare cold pass']:.1f} ms | |",
        f"| build: native venv + pip | {builds['native']:.1f} s | |",
        f"| build: pip-containerize new | {builds['new']:.1f} s | {builds['new'] / builds['native']:.2f} (target <= 1.3) |",
        f"| update adding one package | {builds['update']:.1f} s | {builds['update'] / builds['new']:.2f} of new (target <= 0.2) |",
        f"| image bytes before / after update | {builds['bytes_before'] / 1e6:.1f} / {builds['bytes_after'] / 1e6:.1f} MB | "
        f"+{(builds['bytes_after'] - builds['bytes_before']) / 1e6:.2f} MB |",
        "", "| compression | mksquashfs | image | cold `import numpy, pandas` |", "|---|---|---|---|"]
    for name, result in compressions.items():
        lines.append(f"| {name} | {result['seconds']:.1f} s | {result['bytes'] / 1e6:.0f} MB | "
                     f"{result['import'] * 1000:.0f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="tykkytest")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tykky-perf-", dir="/tmp") as directory:
        work = Path(directory)
        bench = Bench(arguments.user, work)
        os.chown(work, bench.uid, bench.gid)
        pyz = work / "tykky.pyz"
        subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                       stdout=subprocess.DEVNULL)
        builds = build_times(bench, pyz)
        launches = launch_times(bench, pyz, arguments.runs)
        compressions = compression_times(bench, max(3, arguments.runs // 2))
        bench.run(["/usr/bin/python3", pyz, "warm", "stop", work / "inst", "--force"], stdout=subprocess.DEVNULL)
    table = report(arguments.user, builds, launches, compressions)
    print(table)
    if arguments.output:
        arguments.output.write_text("# Performance\n\nMade by `python3 bench/performance.py`.\n\n" + table)


if __name__ == "__main__":
    main()
