"""Command line: parse options into one frozen Config and dispatch; nothing else happens here.

Reachable as `tykky <command>` and, through a symlink named after it, as the command itself
(`pip-containerize -> tykky.pyz`), like Tykky's own commands.
"""
import functools
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence

import click

from tykky import __version__, interrupts, log, program
from tykky.errors import TykkyError

if TYPE_CHECKING:  # imported when a command runs: --help and --version stay fast
    from tykky.config import Config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
COMMAND_NAMES = ("pip-containerize", "conda-containerize", "wrap-container", "wrap-install")


def _read_commands(path: Optional[str]) -> List[str]:
    if not path:
        return []
    try:
        return [Path(path).read_text()]
    except OSError as exc:
        raise TykkyError(f"Cannot read {path}: {exc.strerror}. Check the path.") from None


def _split_paths(value: Optional[str]) -> List[str]:
    return [p for p in (value or "").split(",") if p]


def make_config(user: Dict[str, Any], yaml_file: Optional[str] = None,
                defaults: Optional[Dict[str, Any]] = None) -> "Config":
    """defaults: the command's own defaults, above the site's but below the user's choices."""
    from tykky.config import build_config, read_user_config

    values: Dict[str, Any] = dict(defaults or {})
    values.update(read_user_config(yaml_file) if yaml_file else {})
    context = click.get_current_context(silent=True)
    for given in (user, context.meta.get(_MODULEFILE_META, {}) if context else {},
                  context.meta.get(_GPU_META, {}) if context else {}):
        values.update({key: value for key, value in given.items() if value not in (None, [], (), False, "")})
    config = build_config({k: tuple(v) if isinstance(v, list) else v for k, v in values.items()},
                          os.environ, selected_site=program.selected_site())
    log.configure(config.log_level)
    return config


def _absolute(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else path


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="tykky")
def tykky() -> None:
    """Install conda environments, pip venvs, containers and directory trees into an
    Apptainer container plus one squashfs image, used like a normal installation."""


@tykky.group("pip-containerize", context_settings=CONTEXT)
def pip_containerize() -> None:
    """Containerize a pip virtual environment (a requirements file in, a venv-like prefix out)."""


def _install_options(function):  # type: ignore[no-untyped-def]
    for option in reversed([
        click.option("--pre-install", "pre_install", metavar="FILE",
                     help="Commands run in the container before installing (venv active)."),
        click.option("--post-install", "post_install", metavar="FILE",
                     help="Commands run in the container after installing (venv active)."),
        click.option("--environ", "environ_file", metavar="FILE",
                     help="Shell file sourced inside the container before every launch."),
    ]):
        function = option(function)
    return function


_MODULEFILE_META = "tykky.modulefile"


def modulefile_options(function):  # type: ignore[no-untyped-def]
    """--modulefile DIR and --modulefile-tcl for a new/update command; make_config takes them up,
    so a command adds this decorator and nothing else."""
    @functools.wraps(function)
    def command(*args: Any, modulefile: Optional[str] = None, modulefile_tcl: bool = False, **kwargs: Any) -> Any:
        click.get_current_context().meta[_MODULEFILE_META] = {
            "modulefile_dir": _absolute(modulefile), "modulefile_tcl": modulefile_tcl}
        return function(*args, **kwargs)

    command = click.option("--modulefile-tcl", is_flag=True,
                           help="With the Lua module, write a Tcl one (DIR/NAME) as well.")(command)
    return click.option("--modulefile", metavar="DIR",
                        help="Write an Lmod module DIR/NAME.lua (NAME: the prefix's name).")(command)


_GPU_META = "tykky.gpu"
GPU_HELP = ("GPUs for every program of the installation and its builds: nv (NVIDIA, the runtime's --nv), "
            "rocm (AMD, --rocm) or none (config key gpu; an update keeps the installation's choice).")


def gpu_option(function):  # type: ignore[no-untyped-def]
    """--gpu nv|rocm|none for a new/update command; make_config takes it up, like --modulefile."""
    @functools.wraps(function)
    def command(*args: Any, gpu: Optional[str] = None, **kwargs: Any) -> Any:
        click.get_current_context().meta[_GPU_META] = {"gpu": gpu}
        return function(*args, **kwargs)

    return click.option("--gpu", type=click.Choice(["nv", "rocm", "none"]), metavar="nv|rocm|none",
                        help=GPU_HELP)(command)


@pip_containerize.command("new", context_settings=CONTEXT)
@click.argument("requirements", metavar="REQS")
@click.option("--prefix", metavar="DIR", help="Where to install (default: installation_prefix, the current directory).")
@_install_options
@click.option("-w", "--wrapper-paths", metavar="PATHS",
              help="Comma-separated absolute in-container paths to wrap as well (files or directories).")
@click.option("--system-site-packages", is_flag=True, help="Let the venv see the system Python's packages.")
@click.option("--slim", is_flag=True, help="Use a Python container image and isolate it from the host.")
@click.option("--container", "container", metavar="IMG",
              help="Extend this container (a .sif or a docker:// reference): the venv is made with its own "
                   "Python (with --system-site-packages it sees the image's packages), isolated from the host.")
@click.option("--pyver", metavar="X.Y", help="Python version: python3.X for the venv, or the slim image's.")
@click.option("--uv", "use_uv", is_flag=True, help="Install with uv (from the package index) instead of pip.")
@click.option("--nocache", "no_cache", is_flag=True, help="Do not use or fill the pip/uv cache.")
@modulefile_options
@gpu_option
def pip_new(requirements: str, prefix: Optional[str], pre_install: Optional[str],
            post_install: Optional[str], environ_file: Optional[str], wrapper_paths: Optional[str],
            system_site_packages: bool, slim: bool, container: Optional[str], pyver: Optional[str],
            use_uv: bool, no_cache: bool) -> None:
    """Create an installation from the requirements file REQS."""
    from tykky.commands import pip_containerize as command

    if container and slim:
        raise TykkyError("--container and --slim both choose the container: give one of them.")
    config = make_config({
        "requirements_file": _absolute(requirements), "installation_prefix": _absolute(prefix),
        "pre_install": _read_commands(pre_install), "post_install": _read_commands(post_install),
        "environ_file": _absolute(environ_file), "wrapper_paths": _split_paths(wrapper_paths),
        "enable_site_packages": system_site_packages, "slim": slim, "python_version": pyver,
        "use_uv": use_uv, "no_cache": no_cache, "container_src": command.container_source(container),
    }, defaults={"isolate": True} if container else None)
    command.new(config)


@pip_containerize.command("update", context_settings=CONTEXT)
@click.argument("directory", metavar="DIR")
@click.option("-r", "--requirements", metavar="REQS", help="More requirements to install.")
@_install_options
@click.option("--nocache", "no_cache", is_flag=True, help="Do not use or fill the pip/uv cache.")
@modulefile_options
@gpu_option
def pip_update(directory: str, requirements: Optional[str], pre_install: Optional[str],
               post_install: Optional[str], environ_file: Optional[str], no_cache: bool) -> None:
    """Update the installation at DIR: install more requirements and/or run commands."""
    from tykky.commands import pip_containerize as command

    if not (requirements or pre_install or post_install or environ_file):
        raise TykkyError("Nothing to update: give -r REQS, --pre-install, --post-install or --environ.")
    config = make_config({
        "requirements_file": _absolute(requirements), "pre_install": _read_commands(pre_install),
        "post_install": _read_commands(post_install), "environ_file": _absolute(environ_file),
        "no_cache": no_cache,
    })
    command.update(config, Path(directory))


@tykky.group("conda-containerize", context_settings=CONTEXT)
def conda_containerize() -> None:
    """Containerize a conda environment (an environment file in, a conda-env-like prefix out)."""


@conda_containerize.command("new", context_settings=CONTEXT)
@click.argument("env_file", metavar="ENV_FILE")
@click.option("--prefix", metavar="DIR", help="Where to install (default: installation_prefix, the current directory).")
@click.option("-r", "--requirements", metavar="REQS", help="pip requirements installed after the conda packages.")
@_install_options
@click.option("-w", "--wrapper-paths", metavar="PATHS",
              help="Comma-separated paths to wrap as well (absolute, or relative to the installation path).")
@click.option("--mamba", "use_mamba", is_flag=True,
              help="Also install conda and mamba (for post-install commands that call them).")
@click.option("--uv", "use_uv", is_flag=True, help="Install the pip: section and -r with uv instead of pip.")
@click.option("--nocache", "no_cache", is_flag=True, help="Do not use or fill the package caches.")
@modulefile_options
@gpu_option
def conda_new(env_file: str, prefix: Optional[str], requirements: Optional[str], pre_install: Optional[str],
              post_install: Optional[str], environ_file: Optional[str], wrapper_paths: Optional[str],
              use_mamba: bool, use_uv: bool, no_cache: bool) -> None:
    """Create an installation from ENV_FILE: an environment.yml, an @EXPLICIT list or a spec list."""
    from tykky.commands import conda_containerize as command

    config = make_config({
        "env_file": _absolute(env_file), "installation_prefix": _absolute(prefix),
        "requirements_file": _absolute(requirements), "pre_install": _read_commands(pre_install),
        "post_install": _read_commands(post_install), "environ_file": _absolute(environ_file),
        "wrapper_paths": _split_paths(wrapper_paths), "use_mamba": use_mamba, "use_uv": use_uv,
        "no_cache": no_cache,
    })
    command.new(config)


@conda_containerize.command("update", context_settings=CONTEXT)
@click.argument("directory", metavar="DIR")
@click.option("-e", "--env-file", "env_file", metavar="ENV_FILE",
              help="More conda packages: solved together with the installation's previous specs.")
@click.option("-r", "--requirements", metavar="REQS", help="More pip requirements to install.")
@_install_options
@click.option("--nocache", "no_cache", is_flag=True, help="Do not use or fill the package caches.")
@modulefile_options
@gpu_option
def conda_update(directory: str, env_file: Optional[str], requirements: Optional[str], pre_install: Optional[str],
                 post_install: Optional[str], environ_file: Optional[str], no_cache: bool) -> None:
    """Update the installation at DIR: more packages and/or commands, then swap the image in."""
    from tykky.commands import conda_containerize as command

    if not (env_file or requirements or pre_install or post_install or environ_file):
        raise TykkyError("Nothing to update: give -e ENV_FILE, -r REQS, --pre-install, --post-install "
                         "or --environ.")
    config = make_config({
        "env_file": _absolute(env_file), "requirements_file": _absolute(requirements),
        "pre_install": _read_commands(pre_install), "post_install": _read_commands(post_install),
        "environ_file": _absolute(environ_file), "no_cache": no_cache,
    })
    command.update(config, Path(directory))


@conda_containerize.command("advanced", context_settings=CONTEXT)
@click.argument("yaml_file", metavar="CONF.yaml")
def conda_advanced(yaml_file: str) -> None:
    """Create an installation from the keys in CONF.yaml (env_file, requirements_file, ...)."""
    from tykky.commands import conda_containerize as command

    command.new(make_config(command.advanced_values(yaml_file)))


_YAML_HELP = "More configuration keys for this installation (the keys of the site configuration)."
_WRAP_HELP = ("Comma-separated programs to wrap: a directory wraps every executable in it (every file "
              "with wrap_all), a file wraps that one.")
MASK_HELP = ("Mount the tree at DIR's own path inside the container, so that absolute paths baked into it "
             "keep working, also after DIR is removed. The cost: DIR's top-level directory (/projappl for "
             "/projappl/p/app) is not bound into the container, so the wrapped programs do not see the "
             "rest of it; nor your home directory, /tmp or the current directory when they contain DIR.")


@tykky.command("wrap-container", context_settings=CONTEXT)
@click.argument("container", metavar="CONTAINER")
@click.option("-w", "--wrapper-paths", metavar="PATHS",
              help=_WRAP_HELP + " Absolute paths inside the container (or wrapper_paths in -y).")
@click.option("--prefix", metavar="DIR", help="Where to install (default: installation_prefix, the current directory).")
@click.option("--environ", "environ_file", metavar="FILE",
              help="Shell file sourced inside the container before every launch.")
@click.option("-y", "--yaml", "yaml_file", metavar="CONF.yaml", help=_YAML_HELP)
@modulefile_options
@gpu_option
def wrap_container(container: str, wrapper_paths: Optional[str], prefix: Optional[str], environ_file: Optional[str],
                   yaml_file: Optional[str]) -> None:
    """Use the programs of CONTAINER as a normal installation.

    CONTAINER is a .sif file, a sandbox directory (linked, not copied) or a docker://, oras:// or
    library:// reference. The container is isolated from the host unless the configuration says
    isolate: no: only mount_points and the prefix are bound, and its own PATH is kept.
    """
    from tykky.commands import wrap_container as command

    config = make_config({"installation_prefix": _absolute(prefix), "environ_file": _absolute(environ_file),
                          "wrapper_paths": _split_paths(wrapper_paths)}, yaml_file, defaults={"isolate": True})
    command.new(config, container)


@tykky.command("wrap-install", context_settings=CONTEXT)
@click.argument("directory", metavar="DIR")
@click.option("-w", "--wrapper-paths", metavar="PATHS",
              help=_WRAP_HELP + " Paths relative to DIR (bin), or absolute (or wrapper_paths in -y).")
@click.option("--prefix", metavar="DIR", help="Where to install (default: installation_prefix, the current directory).")
@click.option("--mask", is_flag=True, help=MASK_HELP)
@click.option("--pre-install", "pre_install", metavar="FILE",
              help="Commands run by bash in the container before DIR is copied in.")
@click.option("--post-install", "post_install", metavar="FILE",
              help="Commands run by bash in the container after DIR is copied in ($TYKKY_INSTALLATION_PATH).")
@click.option("--environ", "environ_file", metavar="FILE",
              help="Shell file sourced inside the container before every launch.")
@click.option("-y", "--yaml", "yaml_file", metavar="CONF.yaml", help=_YAML_HELP)
@modulefile_options
@gpu_option
def wrap_install(directory: str, wrapper_paths: Optional[str], prefix: Optional[str], mask: bool,
                 pre_install: Optional[str], post_install: Optional[str], environ_file: Optional[str],
                 yaml_file: Optional[str]) -> None:
    """Put the installation in DIR into a squashfs image and use its programs as before.

    Programs that find their files relative to themselves keep working; use --mask for
    installations that name their own absolute path.
    """
    from tykky.commands import wrap_install as command

    config = make_config({
        "installation_prefix": _absolute(prefix), "wrapper_paths": _split_paths(wrapper_paths), "mask": mask,
        "pre_install": _read_commands(pre_install), "post_install": _read_commands(post_install),
        "environ_file": _absolute(environ_file),
    }, yaml_file)
    command.new(config, directory)


@tykky.command("setup", context_settings=CONTEXT)
@click.option("--config", "site", metavar="NAME|FILE", required=True,
              help="The site configuration: a shipped one (generic, lumi, puhti, mahti, ...) or a YAML file.")
@click.option("--dir", "directory", metavar="D", help="Where to set up (default: the directory of tykky.pyz).")
def setup(site: str, directory: Optional[str]) -> None:
    """Set tykky up for a site: the commands in D/bin, the `tykky` shell function and completion
    in D/etc; later runs use the chosen site configuration."""
    from tykky.commands import setup as command

    command.run(site, directory)


@tykky.command("info", context_settings=CONTEXT)
def info() -> None:
    """Show the version, the site configuration and where it came from, the container runtime
    and the Python in use."""
    from tykky.commands import info as command

    command.show()


def _complete_installations(_context: click.Context, _parameter: click.Parameter, incomplete: str) -> List[str]:
    from tykky.commands import activate as command

    return command.installation_names(incomplete)


@tykky.command("activate", context_settings=CONTEXT)
@click.argument("name", metavar="NAME|PATH", required=False, shell_complete=_complete_installations)
def activate(name: Optional[str]) -> None:
    """Put an installation first on PATH (shell function; NAME is looked up in TYKKY_PATH)."""
    from tykky.commands import activate as command

    command.needs_shell_function("activate")


@tykky.command("deactivate", context_settings=CONTEXT)
def deactivate() -> None:
    """Undo `tykky activate` (shell function)."""
    from tykky.commands import activate as command

    command.needs_shell_function("deactivate")


@tykky.command("compact", context_settings=CONTEXT)
@click.argument("prefix", metavar="PREFIX")
def compact_command(prefix: str) -> None:
    """Merge the image layers that updates added to the installation at PREFIX into one."""
    from tykky import installation

    installation.compact(make_config({}), Path(prefix))


@tykky.group("warm", context_settings=CONTEXT)
def warm_group() -> None:
    """Warm mounts: running instances that launches join instead of mounting anew."""


@warm_group.command("status", context_settings=CONTEXT)
@click.argument("prefix", metavar="[PREFIX]", required=False)
def warm_status(prefix: Optional[str]) -> None:
    """Show this user's instances on this node (of PREFIX only, if given)."""
    from tykky.commands import warm

    click.echo(warm.status(Path(prefix) if prefix else None))


@warm_group.command("stop", context_settings=CONTEXT)
@click.argument("prefix", metavar="[PREFIX]", required=False)
@click.option("--force", is_flag=True, help="Stop instances even while programs still run in them.")
def warm_stop(prefix: Optional[str], force: bool) -> None:
    """Stop this user's instances on this node (of PREFIX only, if given)."""
    from tykky.commands import warm

    for name in warm.stop(Path(prefix) if prefix else None, force):
        click.echo(f"stopped {name}")


def _entry_for_program_name(argv: Sequence[str]) -> "tuple[click.Command, str]":
    """`pip-containerize -> tykky.pyz` runs that command directly, under its own name."""
    name = os.path.basename(argv[0]) if argv else ""
    for command_name, command in tykky.commands.items():
        if command_name in COMMAND_NAMES and (name == command_name or name.startswith(command_name + ".")):
            return command, command_name
    return tykky, "tykky"


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Entry point: one error handler for the whole tool."""
    argv = list(sys.argv if argv is None else argv)
    log.configure(log.level_from_environment())
    interrupts.install_handlers()
    entry, prog_name = _entry_for_program_name(argv)
    try:
        entry.main(args=argv[1:], prog_name=prog_name, standalone_mode=False, complete_var="_TYKKY_COMPLETE")
    except TykkyError as error:
        log.error(str(error))
        log.debug(traceback.format_exc())
        sys.exit(error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as error:  # click turns an interruption into Abort
        interrupted = interrupts.as_interrupted(error)
        log.error(interrupted.message())
        sys.exit(interrupted.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except Exception as error:  # noqa: BLE001 - the one place that reports unexpected failures
        log.error(f"Unexpected error: {error!r}. Run with CW_LOG_LEVEL=3 for the traceback, "
                  "and report it.")
        log.debug(traceback.format_exc())
        sys.exit(1)
    sys.exit(0)
