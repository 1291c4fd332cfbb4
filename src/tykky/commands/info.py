"""tykky info: what this tykky is and what it found, to paste into a support request."""
import os
import platform
import shutil
import stat
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from tykky import __version__, program, runner
from tykky.config import DEFAULT_SITE_CONFIG, Config, build_config, shipped_site_configs
from tykky.errors import TykkyError
from tykky.runtime import Runtime, find_runtime


def program_line() -> str:
    archive = program.archive_path()
    if archive is not None:
        return str(archive)
    return f"source checkout ({Path(__file__).resolve().parents[1]})"


def site_lines(environ: Mapping[str, str]) -> Tuple[List[Tuple[str, str]], Optional[Config]]:
    """The setup, the site configuration and where it came from; the Config when it is usable."""
    setup = program.find_setup()
    selected = setup.site_config if setup else None
    if environ.get("CW_GLOBAL_YAML"):
        origin = "CW_GLOBAL_YAML"
    elif selected:
        origin = f"the setup in {setup.directory} ({setup.record})"
    else:
        origin = "the default (no setup found, CW_GLOBAL_YAML unset)"
    config: Optional[Config] = None
    choice = environ.get("CW_GLOBAL_YAML") or selected or DEFAULT_SITE_CONFIG
    try:
        config = build_config({}, environ, selected_site=selected)
        path = config.site_config_path
    except TykkyError as error:
        path = f"unusable: {error}"
    if choice in shipped_site_configs():
        path = f"{choice} (shipped with tykky)"
    lines = [("setup", str(setup.directory) if setup else "none (run `tykky setup --config NAME`)"),
             ("site config", path), ("site config from", origin)]
    return lines, config


def python_lines() -> List[Tuple[str, str]]:
    version = platform.python_version()
    return [("python", f"{sys.executable} ({version})"), ("python chosen by", program.PYTHON_ORIGIN)]


def build_configuration(runtime: Runtime) -> Dict[str, str]:
    completed = runner.run([runtime.path, "buildcfg"], what=f"asking {runtime.name} for its build settings",
                           check=False)
    values = {}
    for line in completed.output.splitlines():
        key, separator, value = line.partition("=")
        if separator:
            values[key.strip()] = value.strip()
    return values


def setuid_allowed(config_file: Path) -> bool:
    """The runtime's `allow setuid` setting; yes unless the configuration says no."""
    try:
        lines = config_file.read_text().splitlines()
    except OSError:
        return True
    for line in lines:
        key, separator, value = line.partition("=")
        if separator and key.strip() == "allow setuid":
            return value.strip().lower() == "yes"
    return True


def runtime_mode(runtime: Runtime, settings: Mapping[str, str]) -> str:
    libexec = Path(settings.get("LIBEXECDIR", "/usr/libexec")) / runtime.name / "bin"
    config_file = Path(settings.get(f"{runtime.name.upper()}_CONF_FILE",
                                    f"{settings.get('SYSCONFDIR', '/etc')}/{runtime.name}/{runtime.name}.conf"))
    starter = libexec / "starter-suid"
    try:
        info = starter.stat()
    except OSError:
        info = None
    if info and info.st_mode & stat.S_ISUID and info.st_uid == 0 and setuid_allowed(config_file):
        return f"setuid ({starter})"
    if os.geteuid() == 0:
        return "unprivileged starter, running as root"
    return f"unprivileged (user namespaces; no usable {starter.name})"


def squashfuse_line(runtime: Runtime, settings: Mapping[str, str]) -> str:
    bundled = Path(settings.get("LIBEXECDIR", "/usr/libexec")) / runtime.name / "bin" / "squashfuse_ll"
    if os.access(bundled, os.X_OK):
        return f"{bundled} (bundled with {runtime.name})"
    for name in ("squashfuse_ll", "squashfuse"):
        found = shutil.which(name)
        if found:
            return found
    return "not found: unprivileged runs cannot mount the squashfs image (install squashfuse)"


def runtime_lines(config: Optional[Config]) -> List[Tuple[str, str]]:
    try:
        runtime = find_runtime(config.singularity_executable_path if config else "")
    except TykkyError as error:
        return [("runtime", f"not usable: {error}")]
    settings = build_configuration(runtime)
    return [("runtime", f"{runtime.name} {runtime.version_text} ({runtime.path})"),
            ("runtime mode", runtime_mode(runtime, settings)),
            ("squashfuse", squashfuse_line(runtime, settings))]


def facts(environ: Optional[Mapping[str, str]] = None) -> List[Tuple[str, str]]:
    environ = os.environ if environ is None else environ
    site, config = site_lines(environ)
    return [("tykky", __version__), ("program", program_line())] + site + python_lines() + runtime_lines(config)


def show() -> None:
    rows = facts()
    width = max(len(key) for key, _value in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
