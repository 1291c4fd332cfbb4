"""Command line: parse options into one frozen Config and dispatch; nothing else happens here.

Reachable as `tykky <command>` and, through a symlink named after it, as the command itself
(`pip-containerize -> tykky.pyz`), like Tykky's own commands. The parsing is argparse, as
Tykky's: the same abbreviations of long options, usage errors and exit codes.
"""
import argparse
import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NoReturn, Optional, Sequence

from tykky import __version__, completion, interrupts, log, program
from tykky.errors import TykkyError

if TYPE_CHECKING:  # imported when a command runs: -h and --version stay fast
    from tykky.config import Config

COMMAND_NAMES = ("pip-containerize", "conda-containerize", "wrap-container", "wrap-install")
PREFIX_HELP = "where to install (default: installation_prefix of the site configuration)"
YAML_HELP = "more configuration keys for this installation (the keys of the site configuration)"
WRAP_HELP = ("comma-separated programs to wrap: a directory wraps every executable in it (every file "
             "with wrap_all), a file wraps that one")
MASK_HELP = ("mount the tree at DIR's own path inside the container, so that absolute paths baked into it "
             "keep working, also after DIR is removed. The cost: DIR's top-level directory (/projappl for "
             "/projappl/p/app) is not bound into the container, so the wrapped programs do not see the "
             "rest of it; nor your home directory, /tmp or the current directory when they contain DIR")


class Parser(argparse.ArgumentParser):
    """argparse's parser; a command that needs arguments shows its help when given none, as in Tykky.

    Options Tykky does not have are added with add_extension: an abbreviation that means one of
    Tykky's options there (`--m`, --mask) keeps meaning it here, however many of ours it matches too.
    """

    def __init__(self, *args: Any, help_when_empty: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_when_empty = help_when_empty

    def add_extension(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = self.add_argument(*args, **kwargs)
        action.extension = True  # type: ignore[attr-defined]
        return action

    def _as_tykky_means(self, argument: str) -> str:
        name, separator, value = argument.partition("=")
        if not name.startswith("--") or name in self._option_string_actions:
            return argument
        matches = [option for option in self._option_string_actions if option.startswith(name)]
        tykky_matches = [option for option in matches
                         if not getattr(self._option_string_actions[option], "extension", False)]
        return tykky_matches[0] + separator + value if len(tykky_matches) == 1 else argument

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace: Any = None) -> Any:
        if args is not None and not list(args) and self.help_when_empty:
            self.print_help()
            self.exit(0)
        if args is not None and self._subparsers is None:  # a command's own options, not its group's
            args = list(args)
            end = args.index("--") if "--" in args else len(args)
            args = [self._as_tykky_means(argument) for argument in args[:end]] + args[end:]
        return super().parse_known_args(args, namespace)


Runner = Callable[[argparse.Namespace], None]


def _read_commands(path: Optional[str]) -> List[str]:
    if not path:
        return []
    try:
        return [Path(path).read_text()]
    except OSError as exc:
        raise TykkyError(f"Cannot read {path}: {exc.strerror}. Check the path.") from None


def _split_paths(value: Optional[str]) -> List[str]:
    return [p for p in (value or "").split(",") if p]


def _absolute(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else path


def make_config(user: Dict[str, Any], yaml_file: Optional[str] = None,
                defaults: Optional[Dict[str, Any]] = None) -> "Config":
    """defaults: the command's own defaults, above the site's but below the user's choices."""
    from tykky.config import build_config, read_user_config

    values: Dict[str, Any] = dict(defaults or {})
    values.update(read_user_config(yaml_file) if yaml_file else {})
    values.update({key: value for key, value in user.items() if value not in (None, [], (), False, "")})
    config = build_config({k: tuple(v) if isinstance(v, list) else v for k, v in values.items()},
                          os.environ, selected_site=program.selected_site())
    log.configure(config.log_level)
    return config


def _option_values(arguments: argparse.Namespace) -> Dict[str, Any]:
    """The options every install command shares, as configuration values (missing ones: None)."""
    given = vars(arguments)
    return {
        "pre_install": _read_commands(given.get("pre_install")),
        "post_install": _read_commands(given.get("post_install")),
        "environ_file": _absolute(given.get("environ")),
        "wrapper_paths": _split_paths(given.get("wrapper_paths")),
        "requirements_file": _absolute(given.get("requirements")),
        "installation_prefix": _absolute(given.get("prefix")),
        "no_cache": given.get("nocache"),
        "modulefile_dir": _absolute(given.get("modulefile")), "modulefile_tcl": given.get("modulefile_tcl"),
        "gpu": given.get("gpu"),
    }


def _add_install_options(parser: argparse.ArgumentParser, pre_help: str, post_help: str, wrap_help: str,
                         pre_post: bool = True) -> None:
    if pre_post:
        parser.add_argument("--post-install", metavar="FILE", help=post_help)
        parser.add_argument("--pre-install", metavar="FILE", help=pre_help)
    parser.add_argument("--environ", metavar="FILE", help="shell file sourced inside the container before "
                        "every launch")
    parser.add_argument("-w", "--wrapper-paths", metavar="PATHS", help=wrap_help)


GPU_HELP = ("GPUs for every program of the installation and its builds: nv (NVIDIA, the runtime's --nv), "
            "rocm (AMD, --rocm) or none (config key gpu; an update keeps the installation's choice)")


def _add_our_options(parser: Parser) -> None:
    """The options of every new/update command that Tykky does not have."""
    parser.add_extension("--modulefile", metavar="DIR",
                         help="write an Lmod module DIR/NAME.lua (NAME: the prefix's name)")
    parser.add_extension("--modulefile-tcl", action="store_true",
                         help="with the Lua module, write a Tcl one (DIR/NAME) as well")
    parser.add_extension("--gpu", choices=("nv", "rocm", "none"), metavar="nv|rocm|none", help=GPU_HELP)


def _command(commands: Any, name: str, run: Runner, description: str, **kwargs: Any) -> argparse.ArgumentParser:
    summary = re.split(r"[.;:] ", description)[0].rstrip(".")
    parser = commands.add_parser(name, help=summary, description=description, **kwargs)
    parser.set_defaults(run=run)
    return parser


def _subcommands(parser: argparse.ArgumentParser, names: str, dest: str = "subcommand") -> Any:
    return parser.add_subparsers(dest=dest, metavar="{" + names + "}")


_VENV_PRE = "commands run in the container before installing (venv active)"
_VENV_POST = "commands run in the container after installing (venv active)"
_PIP_WRAP = "comma-separated absolute in-container paths to wrap as well (files or directories)"


def _run_pip_new(arguments: argparse.Namespace) -> None:
    from tykky.commands import pip_containerize as command

    if arguments.container and arguments.slim:
        raise TykkyError("--container and --slim both choose the container: give one of them.")
    values = _option_values(arguments)
    values.update(requirements_file=_absolute(arguments.requirements_file),
                  enable_site_packages=arguments.system_site_packages, slim=arguments.slim,
                  python_version=arguments.pyver, use_uv=arguments.uv,
                  container_src=command.container_source(arguments.container))
    command.new(make_config(values, defaults={"isolate": True} if arguments.container else None))


def _run_pip_update(arguments: argparse.Namespace) -> None:
    from tykky.commands import pip_containerize as command

    values = _option_values(arguments)
    if not (values["requirements_file"] or values["pre_install"] or values["post_install"]
            or values["environ_file"]):
        raise TykkyError("Nothing to update: give -r REQS, --pre-install, --post-install or --environ.")
    command.update(make_config(values), Path(arguments.dir))


def _pip_containerize(parser: argparse.ArgumentParser) -> None:
    commands = _subcommands(parser, names="new,update")
    new = _command(commands, "new", _run_pip_new, "Create an installation from the requirements file.")
    new.add_argument("--prefix", metavar="DIR", help=PREFIX_HELP)
    new.add_argument("requirements_file", help="the pip requirements file")
    python_kind = new.add_mutually_exclusive_group()
    python_kind.add_argument("--uv", action="store_true", help="install with uv (from the package index) "
                             "instead of pip")
    python_kind.add_argument("--slim", action="store_true", help="use a Python container image, isolated "
                             "from the host")
    new.add_extension("--container", metavar="IMG", help="extend this container (a .sif or a docker:// "
                      "reference): the venv is made with its own Python (with --system-site-packages it sees "
                      "the image's packages), isolated from the host")
    new.add_argument("--pyver", metavar="X.Y", help="Python version: python3.X for the venv, or the slim "
                     "image's")
    new.add_argument("--system-site-packages", action="store_true", help="let the venv see the system "
                     "Python's packages")
    new.add_argument("--nocache", action="store_true", help="do not use or fill the pip/uv cache")
    _add_install_options(new, _VENV_PRE, _VENV_POST, _PIP_WRAP)
    _add_our_options(new)
    update = _command(commands, "update", _run_pip_update, "Update the installation at DIR: install more "
                      "requirements and/or run commands.")
    update.add_argument("dir", help="the installation to update")
    update.add_argument("-r", "--requirements-file", dest="requirements", metavar="REQS",
                        help="more requirements to install")
    update.add_argument("--nocache", action="store_true", help="do not use or fill the pip/uv cache")
    _add_install_options(update, _VENV_PRE, _VENV_POST, _PIP_WRAP)
    _add_our_options(update)


def _run_conda_new(arguments: argparse.Namespace) -> None:
    from tykky.commands import conda_containerize as command

    values = _option_values(arguments)
    values.update(env_file=_absolute(arguments.env_file), use_mamba=arguments.mamba, use_uv=arguments.uv)
    command.new(make_config(values))


def _run_conda_update(arguments: argparse.Namespace) -> None:
    from tykky.commands import conda_containerize as command

    values = _option_values(arguments)
    values["env_file"] = _absolute(arguments.env_file)
    if not any(values[key] for key in ("env_file", "requirements_file", "pre_install", "post_install",
                                       "environ_file")):
        raise TykkyError("Nothing to update: give -e ENV_FILE, -r REQS, --pre-install, --post-install "
                         "or --environ.")
    command.update(make_config(values), Path(arguments.dir))


def _run_conda_advanced(arguments: argparse.Namespace) -> None:
    from tykky.commands import conda_containerize as command

    command.new(make_config(command.advanced_values(arguments.yaml)))


_CONDA_WRAP = "comma-separated paths to wrap as well (absolute, or relative to the installation path)"


def _conda_containerize(parser: argparse.ArgumentParser) -> None:
    commands = _subcommands(parser, names="new,update,advanced")
    new = _command(commands, "new", _run_conda_new, "Create an installation from ENV_FILE: an "
                   "environment.yml, an @EXPLICIT list or a spec list.")
    new.add_argument("--prefix", metavar="DIR", help=PREFIX_HELP)
    new.add_argument("env_file", help="the environment file")
    new.add_argument("--mamba", action="store_true", help="also install conda and mamba (for post-install "
                     "commands that call them)")
    new.add_argument("--uv", action="store_true", help="install the pip: section and -r with uv instead of pip")
    new.add_argument("--nocache", action="store_true", help="do not use or fill the package caches")
    update = _command(commands, "update", _run_conda_update, "Update the installation at DIR: more packages "
                      "and/or commands, then swap the image in.")
    update.add_argument("dir", help="the installation to update")
    update.add_argument("--nocache", action="store_true", help="do not use or fill the package caches")
    update.add_extension("-e", "--env-file", metavar="ENV_FILE", help="more conda packages: solved together "
                         "with the installation's previous specs")
    for command in (new, update):
        _add_install_options(command, _VENV_PRE.replace("venv", "environment"),
                             _VENV_POST.replace("venv", "environment"), _CONDA_WRAP)
        command.add_argument("-r", "--requirements", metavar="REQS", help="pip requirements installed after "
                             "the conda packages")
        _add_our_options(command)
    advanced = _command(commands, "advanced", _run_conda_advanced, "Create an installation from the keys in "
                        "a YAML file (env_file, requirements_file, ...).")
    advanced.add_argument("yaml", help="the YAML file")


def _run_wrap_container(arguments: argparse.Namespace) -> None:
    from tykky.commands import wrap_container as command

    config = make_config(_option_values(arguments), arguments.yaml, defaults={"isolate": True})
    command.new(config, arguments.container)


def _wrap_container(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=_run_wrap_container)
    parser.add_argument("container", help="a .sif file, a sandbox directory (linked, not copied) or a "
                        "docker://, oras:// or library:// reference")
    parser.add_argument("-y", "--yaml", metavar="CONF.yaml", help=YAML_HELP)
    _add_install_options(parser, "", "", WRAP_HELP + ": absolute paths inside the container", pre_post=False)
    parser.add_argument("--prefix", metavar="DIR", help=PREFIX_HELP)
    _add_our_options(parser)


def _run_wrap_install(arguments: argparse.Namespace) -> None:
    from tykky.commands import wrap_install as command

    values = _option_values(arguments)
    values["mask"] = arguments.mask
    command.new(make_config(values, arguments.yaml), arguments.dir)


def _wrap_install(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=_run_wrap_install)
    parser.add_argument("dir", help="the installation to wrap")
    _add_install_options(parser, "commands run by bash in the container before DIR is copied in",
                         "commands run by bash in the container after DIR is copied in "
                         "($TYKKY_INSTALLATION_PATH)", WRAP_HELP + ": paths relative to DIR, or absolute")
    parser.add_argument("--prefix", metavar="DIR", help=PREFIX_HELP)
    parser.add_argument("-y", "--yaml", metavar="CONF.yaml", help=YAML_HELP)
    parser.add_argument("--mask", action="store_true", help=MASK_HELP)
    _add_our_options(parser)


_DESCRIPTIONS = {
    "pip-containerize": "Containerize a pip virtual environment (a requirements file in, a venv-like prefix out).",
    "conda-containerize": "Containerize a conda environment (an environment file in, a conda-env-like prefix "
                          "out).",
    "wrap-container": "Use the programs of a container as a normal installation. The container is isolated "
                      "from the host unless the configuration says isolate: no: only mount_points and the "
                      "prefix are bound, and its own PATH is kept.",
    "wrap-install": "Put an installation directory into a squashfs image and use its programs as before. "
                    "Programs that find their files relative to themselves keep working; use --mask for "
                    "installations that name their own absolute path.",
}
_BUILDERS = {"pip-containerize": _pip_containerize, "conda-containerize": _conda_containerize,
             "wrap-container": _wrap_container, "wrap-install": _wrap_install}


def command_parser(name: str, prog: Optional[str] = None) -> Parser:
    """The parser of one of Tykky's commands, run as a program under its own name."""
    parser = Parser(prog=prog or name, description=_DESCRIPTIONS[name], help_when_empty=True)
    _BUILDERS[name](parser)
    return parser


def _run_setup(arguments: argparse.Namespace) -> None:
    from tykky.commands import setup as command

    command.run(arguments.config, arguments.dir)


def _run_info(_arguments: argparse.Namespace) -> None:
    from tykky.commands import info as command

    command.show()


def _run_shell_function(arguments: argparse.Namespace) -> None:
    from tykky.commands import activate as command

    command.needs_shell_function(arguments.command)


def _complete_installations(incomplete: str) -> List[str]:
    from tykky.commands import activate as command

    return command.installation_names(incomplete)


def _run_compact(arguments: argparse.Namespace) -> None:
    from tykky import installation

    installation.compact(make_config({}), Path(arguments.prefix))


def _run_warm_status(arguments: argparse.Namespace) -> None:
    from tykky.commands import warm

    print(warm.status(Path(arguments.prefix) if arguments.prefix else None))


def _run_warm_stop(arguments: argparse.Namespace) -> None:
    from tykky.commands import warm

    for name in warm.stop(Path(arguments.prefix) if arguments.prefix else None, arguments.force):
        print(f"stopped {name}")


def _tykky_commands(commands: Any) -> None:
    setup = _command(commands, "setup", _run_setup, "Set tykky up for a site: the commands in D/bin, the "
                     "`tykky` shell function and completion in D/etc; later runs use the chosen site "
                     "configuration.")
    setup.add_argument("--config", metavar="NAME|FILE", required=True, help="the site configuration: a "
                       "shipped one (generic, lumi, puhti, mahti, ...) or a YAML file")
    setup.add_argument("--dir", metavar="D", help="where to set up (default: the directory of tykky.pyz)")
    _command(commands, "info", _run_info, "Show the version, the site configuration and where it came "
             "from, the container runtime and the Python in use.")
    activate = _command(commands, "activate", _run_shell_function, "Put an installation first on PATH "
                        "(a shell function). NAME is looked up in TYKKY_PATH.")
    activate.add_argument("name", metavar="NAME|PATH", nargs="?").completer = _complete_installations
    _command(commands, "deactivate", _run_shell_function, "Undo `tykky activate` (shell function).")
    compact = _command(commands, "compact", _run_compact, "Merge the image layers that updates added to an "
                       "installation into one.")
    compact.add_argument("prefix", help="the installation")
    warm_help = "Warm mounts: running instances that launches join instead of mounting anew."
    warm = commands.add_parser("warm", help=warm_help, description=warm_help, help_when_empty=True)
    warm_commands = _subcommands(warm, names="status,stop", dest="warm_command")
    status = _command(warm_commands, "status", _run_warm_status, "Show this user's instances on this node "
                      "(of PREFIX only, if given).")
    status.add_argument("prefix", nargs="?", help="an installation")
    stop = _command(warm_commands, "stop", _run_warm_stop, "Stop this user's instances on this node (of "
                    "PREFIX only, if given).")
    stop.add_argument("prefix", nargs="?", help="an installation")
    stop.add_argument("--force", action="store_true", help="stop instances even while programs still run in them")


def tykky_parser() -> Parser:
    parser = Parser(prog="tykky", help_when_empty=True, description="Install conda environments, pip venvs, "
                    "containers and directory trees into an Apptainer container plus one squashfs image, "
                    "used like a normal installation.")
    parser.add_argument("--version", action="version", version=f"tykky {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_NAMES:
        _BUILDERS[name](commands.add_parser(name, help=re.split(r" \(|\. ", _DESCRIPTIONS[name])[0],
                                            description=_DESCRIPTIONS[name], help_when_empty=True))
    _tykky_commands(commands)
    return parser


def entry_parser(argv0: str) -> Parser:
    """`pip-containerize -> tykky.pyz` runs that command directly, under its own name."""
    name = os.path.basename(argv0)
    for command_name in COMMAND_NAMES:
        if name == command_name or name.startswith(command_name + "."):
            return command_parser(command_name)
    return tykky_parser()


def _dispatch(parser: Parser, args: Sequence[str]) -> None:
    arguments = parser.parse_args(args)
    run: Optional[Runner] = getattr(arguments, "run", None)
    if run is None:  # a command group given options but no command
        parser.print_help()
        return
    run(arguments)


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Entry point: one error handler for the whole tool."""
    argv = list(sys.argv if argv is None else argv)
    log.configure(log.level_from_environment())
    interrupts.install_handlers()
    parser = entry_parser(argv[0] if argv else "")
    try:
        if completion.requested(os.environ):
            completion.answer(parser, os.environ)
        else:
            _dispatch(parser, argv[1:])
    except TykkyError as error:
        log.error(str(error))
        log.debug(traceback.format_exc())
        sys.exit(error.exit_code)
    except KeyboardInterrupt as error:
        interrupted = interrupts.as_interrupted(error)
        log.error(interrupted.message())
        sys.exit(interrupted.exit_code)
    except Exception as error:  # noqa: BLE001 - the one place that reports unexpected failures
        log.error(f"Unexpected error: {error!r}. Run with CW_LOG_LEVEL=3 for the traceback, "
                  "and report it.")
        log.debug(traceback.format_exc())
        sys.exit(1)
    sys.exit(0)
