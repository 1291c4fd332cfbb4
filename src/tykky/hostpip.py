"""The host's pip configuration and CA certificates, carried into build containers.

Sites reach package indexes through proxies, mirrors and TLS interception whose CA exists
only in the host's bundle. A build honours what the host's pip would use: its config files,
the files they point at (certificates, constraints, local indexes) and the CA variables.
"""
import configparser
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE", "PIP_CLIENT_CERT")
PATH_OPTIONS = ("cert", "client-cert", "constraint", "requirement", "find-links",
                "index-url", "extra-index-url")
# pip option -> uv variable, for builds that install with uv (it does not read pip.conf).
UV_EQUIVALENTS = {"index-url": "UV_INDEX_URL", "extra-index-url": "UV_EXTRA_INDEX_URL",
                  "find-links": "UV_FIND_LINKS", "constraint": "UV_CONSTRAINT"}


def pip_config_files(environ: Mapping[str, str]) -> List[Path]:
    """pip's own search order: site-wide, then user, then PIP_CONFIG_FILE."""
    config_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    home = Path(environ.get("HOME", "~")).expanduser()
    xdg_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    candidates = [Path(d) / "pip" / "pip.conf" for d in config_dirs if d]
    candidates += [Path("/etc/pip.conf"), home / ".pip" / "pip.conf", xdg_home / "pip" / "pip.conf"]
    if environ.get("PIP_CONFIG_FILE") and environ["PIP_CONFIG_FILE"] != os.devnull:
        candidates.append(Path(environ["PIP_CONFIG_FILE"]))
    return [path for path in candidates if path.is_file()]


def _local_paths(value: str) -> Iterable[str]:
    for word in value.split():
        if word.startswith("file://"):
            word = word[len("file://"):]
        if word.startswith("/"):
            yield word


def pip_options(files: Iterable[Path]) -> Dict[str, str]:
    """The [global] and [install] values of the config files, later files winning."""
    options: Dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                options.update(parser.items(section))
    return options


def host_pip_binds(environ: Mapping[str, str]) -> List[str]:
    """Existing files and directories a build container must see at their host paths."""
    files = pip_config_files(environ)
    paths = [str(path) for path in files]
    for name, value in pip_options(files).items():
        if name in PATH_OPTIONS:
            paths.extend(_local_paths(value))
    for variable in CA_VARIABLES:
        if environ.get(variable):
            paths.append(environ[variable])
    for key, value in environ.items():
        if key.startswith("PIP_") and key[4:].lower().replace("_", "-") in PATH_OPTIONS:
            paths.extend(_local_paths(value))
    unique: List[str] = []
    for path in paths:
        if os.path.exists(path) and path not in unique:
            unique.append(path)
    return unique


def uv_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    """uv variables equivalent to the host's pip settings (uv ignores pip.conf)."""
    env: Dict[str, str] = {}
    options = pip_options(pip_config_files(environ))
    for name, value in options.items():
        if name in UV_EQUIVALENTS:
            env[UV_EQUIVALENTS[name]] = " ".join(value.split())
    for name, variable in UV_EQUIVALENTS.items():
        pip_variable = "PIP_" + name.upper().replace("-", "_")
        if environ.get(pip_variable):
            env[variable] = environ[pip_variable]
    if "UV_EXTRA_INDEX_URL" in env:
        # pip takes the best match from all indexes; uv by default only looks at the first index
        # that has the package, which fails where a local index holds some releases of it.
        env.setdefault("UV_INDEX_STRATEGY", environ.get("UV_INDEX_STRATEGY") or "unsafe-best-match")
    # uv trusts its own CA list, not the system's: without this it fails where pip works.
    bundle = environ.get("PIP_CERT") or options.get("cert") or environ.get("SSL_CERT_FILE")
    if bundle:
        env["SSL_CERT_FILE"] = bundle
    return env
