#!/usr/bin/env python3
"""Metadata-server load of launches, counted with a FUSE stand-in for a parallel filesystem client.

A passthrough FUSE mount over a directory counts what a Lustre client would send to its metadata
server (MDS):
  once per mount and path   a lookup or getattr (a missing name too), a readlink, a readdir,
                            a statfs: later ones are answered from the client's lock-protected
                            cache (the kernel's own caching, long timeouts, only cuts what
                            reaches the mount: it follows the same rule)
  every time                an open (of a file or a directory) and every change (create, mkdir,
                            unlink, rename, symlink, link, setattr); a change drops the cached
                            state of the path and of its directory
  never                     reads and writes (object servers), closes, xattrs (not served)
and can sleep N ms in each counted operation (a loaded metadata server). A fresh mount is a node
with a cold cache. On it the bench builds a native venv and a tykky installation of numpy and
pandas, a conda installation (the tests' local channel) and a wrap-container installation of the
base image, and prints, side by side, the operations per launch on a cold node (the first launch
after a fresh mount) and on a warm node (a later launch), and the launch time at --delay-ms per
operation, for `-c pass` and `import numpy, pandas`.

As root, once: `bash bench/setup-metadata.sh` (fuse3, user_allow_other, the bench extra). Then

    .venv/bin/python bench/metadata.py [--user tykkytest] [--runs 5] [--list] [--output FILE]

`serve SOURCE MOUNT LOG [--delay-ms N]` runs the stand-in alone (in the foreground; one counted
operation per line of LOG: kind, path, the caller's command name).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
IMPORT = "import numpy, pandas"
CACHE_SYMLINKS = 1 << 23  # FUSE_CAP_CACHE_SYMLINKS: the kernel keeps link targets, as a client does
FOREVER = 86400.0 * 365
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def load_fuse():  # type: ignore[no-untyped-def]
    """mfusepy against libfuse 3 (fusermount3 mounts for unprivileged users on Debian 12)."""
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
    try:
        import mfusepy
    except (ImportError, OSError) as error:
        raise SystemExit(f"the FUSE binding is missing ({error}): run bench/setup-metadata.sh as root") from None
    return mfusepy


def caller_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


class CountingPassthrough:
    """The passthrough, counting as a Lustre client's metadata requests (see the module's
    docstring); mfusepy calls the methods it finds (none: the kernel is told "not served")."""
    use_ns = True
    flag_nullpath_ok = True
    flag_nopath = True

    def __init__(self, fuse, source: str, log_path: str, delay: float) -> None:  # type: ignore[no-untyped-def]
        self.fuse, self.source, self.delay = fuse, source, delay
        self.seen: set = set()
        self.directories: Dict[int, str] = {}
        self.next_handle = 0
        self.guard = threading.Lock()
        self.log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def init_with_config(self, conn, config) -> None:  # type: ignore[no-untyped-def]
        if conn is not None:
            conn.want |= conn.capable & CACHE_SYMLINKS
        if config is not None:
            config.entry_timeout = config.attr_timeout = config.negative_timeout = FOREVER
            config.kernel_cache, config.use_ino, config.hard_remove = 1, 1, 1

    def count(self, kind: str, path: str, once: bool) -> None:
        if once:
            with self.guard:
                if (kind, path) in self.seen:
                    return
                self.seen.add((kind, path))
        line = f"{kind}\t{path}\t{caller_name(self.fuse.fuse_get_context()[2])}\n"
        os.write(self.log, line.encode("utf-8", "surrogateescape"))
        if self.delay:
            time.sleep(self.delay)

    def change(self, kind: str, *paths: str) -> None:
        """Counts a change; what it touched is no longer cached, except the attributes of
        what it made (the reply carries them: the runtime's lookup after a create is local)."""
        with self.guard:
            for path in paths:
                for parent in (path, os.path.dirname(path)):
                    for cached in ("lookup", "readlink", "readdir"):
                        self.seen.discard((cached, parent))
            if kind in ("create", "mkdir", "symlink", "link", "mknod", "rename"):
                self.seen.add(("lookup", paths[-1]))
        self.count(kind, paths[0], once=False)

    def real(self, path: str) -> str:
        return self.source + path

    def getattr(self, path, fh=None):  # type: ignore[no-untyped-def]
        if path is None:
            info = os.fstat(fh)
        else:
            self.count("lookup", path, once=True)
            info = os.lstat(self.real(path))
        attributes = {key: getattr(info, key) for key in ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid",
                                                          "st_gid", "st_size", "st_blocks", "st_rdev")}
        attributes.update(st_atime=info.st_atime_ns, st_mtime=info.st_mtime_ns, st_ctime=info.st_ctime_ns)
        return attributes

    def readlink(self, path):  # type: ignore[no-untyped-def]
        self.count("readlink", path, once=True)
        return os.readlink(self.real(path))

    def opendir(self, path):  # type: ignore[no-untyped-def]
        self.count("opendir", path, once=False)
        with self.guard:
            self.next_handle += 1
            self.directories[self.next_handle] = path
            return self.next_handle

    def readdir(self, path, fh):  # type: ignore[no-untyped-def]
        path = self.directories[fh]
        self.count("readdir", path, once=True)
        # Inode numbers from the source (use_ino): entries without one read as empty.
        with os.scandir(self.real(path)) as entries:
            listed = [(entry.name, {"st_ino": entry.inode(), "st_mode": entry.stat(follow_symlinks=False).st_mode},
                       0) for entry in entries]
        own = os.lstat(self.real(path))
        return [(".", {"st_ino": own.st_ino, "st_mode": own.st_mode}, 0)] + listed

    def releasedir(self, path, fh):  # type: ignore[no-untyped-def]
        self.directories.pop(fh, None)
        return 0

    def statfs(self, path):  # type: ignore[no-untyped-def]
        self.count("statfs", "/", once=True)
        info = os.statvfs(self.real(path))
        return {key: getattr(info, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                    "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):  # type: ignore[no-untyped-def]
        self.count("open", path, once=False)
        return os.open(self.real(path), flags)

    def create(self, path, mode, flags):  # type: ignore[no-untyped-def]
        self.change("create", path)
        return os.open(self.real(path), flags | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):  # type: ignore[no-untyped-def]
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):  # type: ignore[no-untyped-def]
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):  # type: ignore[no-untyped-def]
        self.change("setattr", path or "?")
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self.real(path), length)

    def flush(self, path, fh):  # type: ignore[no-untyped-def]
        return 0

    def release(self, path, fh):  # type: ignore[no-untyped-def]
        os.close(fh)
        return 0

    def fsync(self, path, datasync, fh):  # type: ignore[no-untyped-def]
        os.fsync(fh)
        return 0

    def chmod(self, path, mode):  # type: ignore[no-untyped-def]
        self.change("setattr", path)
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):  # type: ignore[no-untyped-def]
        self.change("setattr", path)
        os.lchown(self.real(path), uid, gid)

    def utimens(self, path, times=None):  # type: ignore[no-untyped-def]
        self.change("setattr", path)
        if times is not None:
            # libfuse passes the kernel's "now" and "leave as is" as UTIME_NOW and UTIME_OMIT.
            current = os.lstat(self.real(path))
            times = tuple(time.time_ns() if value == UTIME_NOW else old if value == UTIME_OMIT else value
                          for value, old in zip(times, (current.st_atime_ns, current.st_mtime_ns)))
        os.utime(self.real(path), ns=times, follow_symlinks=False)

    def mkdir(self, path, mode):  # type: ignore[no-untyped-def]
        self.change("mkdir", path)
        os.mkdir(self.real(path), mode)

    def rmdir(self, path):  # type: ignore[no-untyped-def]
        self.change("rmdir", path)
        os.rmdir(self.real(path))

    def unlink(self, path):  # type: ignore[no-untyped-def]
        self.change("unlink", path)
        os.unlink(self.real(path))

    def symlink(self, target, source_path):  # type: ignore[no-untyped-def]
        self.change("symlink", target)
        os.symlink(source_path, self.real(target))

    def link(self, target, source_path):  # type: ignore[no-untyped-def]
        self.change("link", target)
        os.link(self.real(source_path), self.real(target))

    def rename(self, old, new):  # type: ignore[no-untyped-def]
        self.change("rename", old, new)
        os.rename(self.real(old), self.real(new))

    def mknod(self, path, mode, dev):  # type: ignore[no-untyped-def]
        self.change("mknod", path)
        os.mknod(self.real(path), mode, dev)


def serve(source: str, mount: str, log_path: str, delay_ms: float) -> None:
    fuse = load_fuse()
    operations = CountingPassthrough(fuse, os.path.abspath(source), log_path, delay_ms / 1000.0)
    # allow_other: root (a setuid runtime) and the container's processes use the mount too;
    # default_permissions: the kernel checks modes itself, no access requests.
    fuse.FUSE(operations, mount, foreground=True, allow_other=True, default_permissions=True,
              fsname="metadata-counter", subtype="counter")


class Mount:
    """The stand-in mounted by the bench user; remount() is a node with a cold cache."""

    def __init__(self, bench, source: Path, mountpoint: Path, log: Path) -> None:  # type: ignore[no-untyped-def]
        self.bench, self.source, self.mountpoint, self.log = bench, source, mountpoint, log
        self.process: Optional[subprocess.Popen] = None
        self.delay_ms = 0.0

    def mount(self, delay_ms: float = 0.0) -> None:
        self.delay_ms = delay_ms
        # The system's Python as the bench user, with the binding (pure Python) from where this
        # Python has it: the bench's own interpreter may live where that user cannot read.
        binding = os.path.dirname(load_fuse().__file__)
        argv = self.bench.argv(["env", f"PYTHONPATH={binding}", "/usr/bin/python3", Path(__file__).resolve(), "serve",
                                self.source, self.mountpoint, self.log, "--delay-ms", str(delay_ms)])
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.ismount(self.mountpoint):
                return
            if self.process.poll() is not None:
                raise SystemExit(f"the FUSE stand-in failed to mount {self.mountpoint}")
            time.sleep(0.05)
        raise SystemExit(f"the FUSE stand-in did not mount {self.mountpoint}")

    def unmount(self) -> None:
        if self.process is None:
            return
        for _ in range(50):
            if subprocess.run(["umount", str(self.mountpoint)], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.2)
        else:
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=True)
        # The mount is gone; libfuse's workers do not always notice at once.
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remount(self, delay_ms: Optional[float] = None) -> None:
        self.unmount()
        self.mount(self.delay_ms if delay_ms is None else delay_ms)

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def operations_since(self, offset: int) -> List[Tuple[str, str, str]]:
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", "surrogateescape").splitlines()
        return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]


class Installation:
    """One installation on the mount and how to launch a program of it."""

    def __init__(self, label: str, python: str, tykky: bool, environ: Optional[Dict[str, str]] = None) -> None:
        self.label, self.python, self.tykky = label, python, tykky
        self.environ = environ or {}

    def command(self, program: str) -> List[str]:
        env = ["env"] + [f"{k}={v}" for k, v in self.environ.items()]
        return env + [self.python, "-c", program]


def build_installations(bench, pyz: Path, mnt: Path, work: Path, wanted: List[str]) -> None:  # type: ignore[no-untyped-def]
    """Builds through the mount: native venv, pip, conda and wrap-container installations."""
    requirements = bench.write("requirements.txt", "numpy\npandas\n")
    if "native" in wanted:
        bench.run(["/usr/bin/python3", "-m", "venv", mnt / "native"])
        bench.run([mnt / "native" / "bin" / "pip", "install", "-q", "-r", requirements])
    if "pip" in wanted:
        bench.run(["/usr/bin/python3", pyz, "pip-containerize", "new", "--prefix", mnt / "pip", requirements])
    if "conda" in wanted:
        from tests.conda_channel import build_channel, channel_url

        channel = build_channel(work / "channel", with_python=True)
        bench.write("environment.yml", f"channels:\n  - {channel_url(channel)}\ndependencies:\n  - python=3.11\n")
        bench.run(["/usr/bin/python3", pyz, "conda-containerize", "new", "--prefix", mnt / "conda",
                   work / "environment.yml"])
    if "wrap" in wanted:
        container = os.environ.get("TYKKY_BENCH_CONTAINER", "/opt/tykky-ci/images/base.sif")
        bench.run(["/usr/bin/python3", pyz, "wrap-container", "-w", "/usr/bin/python3", "--prefix", mnt / "wrap",
                   container])


def installations(mnt: Path) -> List[Installation]:
    cold = {"TYKKY_WARM_MOUNTS": "0"}
    return [Installation("native venv", f"{mnt}/native/bin/python", False),
            Installation("tykky pip", f"{mnt}/pip/bin/python", True),
            Installation("tykky pip, in a job (no warm mounts)", f"{mnt}/pip/bin/python", False, cold),
            Installation("tykky conda", f"{mnt}/conda/bin/python", True),
            Installation("tykky wrap-container", f"{mnt}/wrap/bin/python3", True)]


def warm_state_ready(bench, started: float) -> bool:  # type: ignore[no-untyped-def]
    directory = Path(bench.env["TYKKY_WARM_DIR"])
    return any(p.stat().st_mtime >= started for p in directory.glob("*.json")) if directory.is_dir() else False


def stop_instances(bench, pyz: Path, mnt: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("pip", "conda", "wrap"):
        bench.run(["/usr/bin/python3", pyz, "warm", "stop", "--force", mnt / name], stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)


def launch(bench, argv: List[str]) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    bench.run(argv, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def first_launch(bench, mount: Mount, pyz: Path, installation: Installation, program: str) -> dict:  # type: ignore[no-untyped-def]
    """A fresh mount, one launch, and (tykky) the instance it starts: the node's first launch."""
    stop_instances(bench, pyz, mount.mountpoint)
    mount.remount()
    offset, started = mount.offset(), time.time()
    seconds = launch(bench, installation.command(program))
    operations = mount.operations_since(offset)
    result = {"seconds": seconds, "operations": operations, "instance": []}
    if installation.tykky:
        for _ in range(600):
            if warm_state_ready(bench, started):
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"no warm instance of {installation.label} started")
        result["instance"] = mount.operations_since(offset)[len(operations):]
    return result


def later_launch(bench, mount: Mount, installation: Installation, program: str) -> dict:  # type: ignore[no-untyped-def]
    offset = mount.offset()
    seconds = launch(bench, installation.command(program))
    return {"seconds": seconds, "operations": mount.operations_since(offset)}


def programs_of(installation: Installation) -> List[str]:
    return ["pass", IMPORT] if "pip" in installation.label or "native" in installation.label else ["pass"]


def count_round(bench, mount: Mount, pyz: Path, chosen: List[Installation]) -> dict:  # type: ignore[no-untyped-def]
    """Operations of the first launch on a fresh mount and of the third (a warm node)."""
    counts = {}
    for installation in chosen:
        for program in programs_of(installation):
            first = first_launch(bench, mount, pyz, installation, program)
            later_launch(bench, mount, installation, program)
            counts[(installation.label, program)] = {"cold": first, "warm": later_launch(bench, mount, installation,
                                                                                         program)}
    return counts


def time_round(bench, mount: Mount, pyz: Path, chosen: List[Installation], runs: int) -> dict:  # type: ignore[no-untyped-def]
    """Cold and warm launch times, the installations interleaved run by run."""
    times: Dict[Tuple[str, str], Dict[str, List[float]]] = {}
    for _ in range(runs):
        for installation in chosen:
            for program in programs_of(installation):
                entry = times.setdefault((installation.label, program), {"cold": [], "warm": []})
                entry["cold"].append(first_launch(bench, mount, pyz, installation, program)["seconds"])
                later_launch(bench, mount, installation, program)
                entry["warm"].append(later_launch(bench, mount, installation, program)["seconds"])
    return times


def median(values: List[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(counts: dict, times: dict, delay_ms: float, load: str, user: str) -> str:
    lines = [f"As user {user}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average before / after "
             f"the timed runs: {load}.", "",
             f"| installation | program | cold node: operations | warm node: operations | cold node at {delay_ms:g} ms "
             f"| warm node at {delay_ms:g} ms | cold / native | warm / native |", "|---|---|---|---|---|---|---|---|"]
    for (label, program), count in counts.items():
        cold, warm = count["cold"], count["warm"]
        cold_ops = f"{len(cold['operations'])}" + (f" + {len(cold['instance'])} instance start" if cold["instance"]
                                                   else "")
        timing = times[(label, program)]
        native = times.get(("native venv", IMPORT if program == IMPORT else "pass"))
        cold_ms, warm_ms = median(timing["cold"]) * 1000, median(timing["warm"]) * 1000
        ratios = (f"{cold_ms / (median(native['cold']) * 1000):.2f} | {warm_ms / (median(native['warm']) * 1000):.2f}"
                  if native else "- | -")
        lines.append(f"| {label} | `{program}` | {cold_ops} | {len(warm['operations'])} | {cold_ms:.0f} ms | "
                     f"{warm_ms:.0f} ms | {ratios} |")
    return "\n".join(lines) + "\n"


def listing(counts: dict) -> str:
    """Every counted operation of the tykky launches, for finding where they come from."""
    lines = []
    for (label, program), count in counts.items():
        if label.startswith("native"):
            continue
        for phase, operations in (("cold node", count["cold"]["operations"]),
                                  ("instance start", count["cold"]["instance"]),
                                  ("warm node", count["warm"]["operations"])):
            lines.append(f"\n{label}, `{program}`, {phase}: {len(operations)}")
            lines += [f"    {kind:9} {path}  ({caller})" for kind, path, caller in operations]
    return "\n".join(lines) + "\n"


def run_bench(arguments: argparse.Namespace) -> None:
    from performance import Bench

    with tempfile.TemporaryDirectory(prefix="tykky-metadata-", dir="/tmp") as directory:
        work = Path(directory)
        bench = Bench(arguments.user, work)
        # The bench's own warm state: the test user's other instances are not its to wait for.
        bench.env["TYKKY_WARM_DIR"] = str(work / "warm")
        source, mnt = work / "store", work / "mnt"
        for path in (work, source, mnt):
            path.mkdir(exist_ok=True)
            os.chown(path, bench.uid, bench.gid)
        pyz = work / "tykky.pyz"
        subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(pyz)], check=True,
                       stdout=subprocess.DEVNULL)
        mount = Mount(bench, source, mnt, work / "operations.log")
        mount.mount()
        try:
            chosen = [i for i in installations(mnt) if not arguments.only or any(o in i.label for o in arguments.only)]
            build_installations(bench, pyz, mnt, work, [Path(i.python).parents[1].name for i in chosen])
            counts = count_round(bench, mount, pyz, chosen)
            before = os.getloadavg()[0]
            mount.remount(arguments.delay_ms)
            times = time_round(bench, mount, pyz, chosen, arguments.runs)
            load = f"{before:.2f} / {os.getloadavg()[0]:.2f}"
            stop_instances(bench, pyz, mnt)
        finally:
            mount.unmount()
    table = report(counts, times, arguments.delay_ms, load, arguments.user)
    print(table)
    if arguments.list:
        print(listing(counts))
    if arguments.output:
        arguments.output.write_text(table + ("\n```\n" + listing(counts) + "```\n" if arguments.list else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    served = commands.add_parser("serve", help="run the counting FUSE stand-in in the foreground")
    served.add_argument("source")
    served.add_argument("mount")
    served.add_argument("log")
    served.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--user", default="tykkytest")
    parser.add_argument("--runs", type=int, default=5, help="timed launches of each kind")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="sleep in each counted operation when timing")
    parser.add_argument("--only", action="append", help="only installations whose label contains this")
    parser.add_argument("--list", action="store_true", help="print every counted operation of the tykky launches")
    parser.add_argument("--output", type=Path, help="also write the table (and the listing) to this file")
    arguments = parser.parse_args()
    if arguments.command == "serve":
        serve(arguments.source, arguments.mount, arguments.log, arguments.delay_ms)
    else:
        run_bench(arguments)


if __name__ == "__main__":
    main()
