"""The conda solver and installer, run as its own process with a Python that has py-rattler.

The builder never imports this module: it copies it into the build directory and runs it as
`PYTHON -I conda_worker.py REQUEST.json RESPONSE.json`, so the builder itself keeps running on
any Python >= 3.8 without native dependencies. The process ends with os._exit: py-rattler's
runtime threads can crash the interpreter's own shutdown after a successful install.

Request keys: rattler_path (put first on sys.path, may be empty), channels, channel_alias,
specs, explicit (package URLs, instead of specs), target_prefix, alternative_target_prefix,
cache_dir, platform (empty: this host's), keep_installed (refuse to change or remove an
installed package). The response is {"ok": true, "packages": [...], "new": [...],
"solve_seconds": s, "install_seconds": s} or {"ok": false, "kind": k, "message": m} with kind
one of spec, solve, channel, explicit, install, backend, needs-removals, internal.
"""
import asyncio
import json
import os
import sys
import time
import traceback
from typing import Any, Dict, List, Tuple


class WorkerError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def channel_objects(request: Dict[str, Any]) -> List[Any]:
    import rattler

    alias = request.get("channel_alias") or None
    config = rattler.ChannelConfig(alias.rstrip("/") + "/") if alias else rattler.ChannelConfig()
    channels = []
    for name in request["channels"]:
        try:
            channels.append(rattler.Channel(name, config))
        except Exception as error:
            raise WorkerError("channel", f"'{name}' is not a valid channel name or URL: {error}") from None
    return channels


def match_specs(specs: List[str]) -> List[Any]:
    import rattler

    parsed = []
    for spec in specs:
        try:
            parsed.append(rattler.MatchSpec(spec))
        except Exception as error:
            raise WorkerError("spec", f"'{spec}' is not a valid package spec: {first_line(error)}") from None
    return parsed


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def installed_records(prefix: str) -> List[Any]:
    import rattler

    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return []
    return [rattler.PrefixRecord.from_path(os.path.join(meta, name))
            for name in sorted(os.listdir(meta)) if name.endswith(".json")]


def platforms(request: Dict[str, Any]) -> List[str]:
    import rattler

    subdir = request.get("platform") or str(rattler.Platform.current())
    return [subdir, "noarch"]


def channel_error(error: BaseException, request: Dict[str, Any]) -> WorkerError:
    """Name the channel a repodata failure is about; the library's message names its URL."""
    text = str(error)
    named = [c for c in request["channels"] if c.rstrip("/") in text]
    which = ", ".join(named) if named else ", ".join(request["channels"])
    return WorkerError("channel", f"Cannot read the channel {which}: {text.strip()}")


async def solve(request: Dict[str, Any], channels: List[Any], installed: List[Any]) -> List[Any]:
    import rattler
    from rattler.exceptions import FetchRepoDataError, GatewayError, SolverError

    specs = match_specs(request["specs"])
    try:
        return await rattler.solve(channels, specs, platforms=platforms(request), locked_packages=installed,
                                   virtual_packages=rattler.VirtualPackage.detect())
    except SolverError as error:
        raise WorkerError("solve", str(error).strip()) from None
    except (GatewayError, FetchRepoDataError) as error:
        raise channel_error(error, request) from None


def url_key(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/")


async def explicit_records(request: Dict[str, Any]) -> List[Any]:
    """The repodata records of an explicit list's URLs, read from their channels' indexes."""
    import rattler
    from rattler.exceptions import FetchRepoDataError, GatewayError

    wanted = {}
    for url in request["explicit"]:
        base, subdir, filename = url_key(url).rsplit("/", 2)
        wanted.setdefault((base, subdir), []).append(filename)
    found = {}
    gateway = rattler.Gateway()
    for (base, subdir), filenames in sorted(wanted.items()):
        names = sorted({package_name(f) for f in filenames})
        try:
            result = await gateway.query([rattler.Channel(base)], [subdir], names, recursive=False)
        except (GatewayError, FetchRepoDataError) as error:
            raise WorkerError("channel", f"Cannot read the channel {base}/{subdir}: {error}") from None
        for records in result:
            for record in records:
                found[url_key(str(record.url))] = record
    missing = [url for url in request["explicit"] if url_key(url) not in found]
    if missing:
        raise WorkerError("explicit", "These packages of the explicit list are not in their channel's "
                          f"index: {', '.join(missing)}")
    return [found[url_key(url)] for url in request["explicit"]]


def package_name(filename: str) -> str:
    for suffix in (".tar.bz2", ".conda"):
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
    return filename.rsplit("-", 2)[0]


async def install(request: Dict[str, Any], records: List[Any],
                  installed: List[Any]) -> Tuple[List[Dict[str, Any]], List[str]]:
    import rattler

    before = {record.name.normalized: str(record.version) for record in installed}
    try:
        await rattler.install(records, target_prefix=request["target_prefix"], cache_dir=request.get("cache_dir"),
                              installed_packages=installed,
                              alternative_target_prefix=request.get("alternative_target_prefix"),
                              execute_link_scripts=False, show_progress=False)
    except Exception as error:
        raise WorkerError("install", f"Installing the packages failed: {str(error).strip()}") from None
    packages = [describe(record) for record in installed_records(request["target_prefix"])]
    new = [p["name"] for p in packages if before.get(p["name"]) != p["version"]]
    return packages, new


def check_keeps_installed(installed: List[Any], records: List[Any]) -> None:
    """Refuse a transaction that would change or remove an installed package."""
    wanted = {(r.name.normalized, str(r.version), str(r.build)) for r in records}
    changed = sorted(r.name.normalized for r in installed
                     if (r.name.normalized, str(r.version), str(r.build)) not in wanted)
    if changed:
        raise WorkerError("needs-removals", f"The update changes or removes installed packages ({', '.join(changed)})")


def describe(record: Any) -> Dict[str, Any]:
    return {"name": record.name.normalized, "version": str(record.version), "build": str(record.build),
            "build_number": record.build_number, "channel": str(record.channel or ""), "url": str(record.url),
            "subdir": str(record.subdir)}


async def run(request: Dict[str, Any]) -> Dict[str, Any]:
    started = time.monotonic()
    installed = installed_records(request["target_prefix"])
    if request.get("explicit"):
        records = await explicit_records(request)
    else:
        records = await solve(request, channel_objects(request), installed)
    solved = time.monotonic()
    if request.get("keep_installed"):
        check_keeps_installed(installed, records)
    packages, new = await install(request, records, installed)
    return {"ok": True, "packages": packages, "new": new, "solve_seconds": solved - started,
            "install_seconds": time.monotonic() - solved}


def handle(request: Dict[str, Any]) -> Dict[str, Any]:
    if request.get("rattler_path"):
        sys.path.insert(0, request["rattler_path"])
    try:
        import rattler  # noqa: F401
    except ImportError as error:
        return {"ok": False, "kind": "backend", "message": f"py-rattler cannot be imported: {error}"}
    try:
        return asyncio.run(run(request))
    except WorkerError as error:
        return {"ok": False, "kind": error.kind, "message": str(error)}
    except Exception as error:  # noqa: BLE001 - reported to the builder, which explains it
        return {"ok": False, "kind": "internal", "message": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()}


def main(argv: List[str]) -> None:
    with open(argv[1]) as handle_in:
        request = json.load(handle_in)
    response = handle(request)
    with open(argv[2], "w") as handle_out:
        json.dump(response, handle_out, indent=1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
