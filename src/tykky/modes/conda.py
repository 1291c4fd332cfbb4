"""conda mode: a conda environment at <installation_path>/<env_name> inside the image.

The solver and installer (py-rattler, see conda_backend.py) run on the host and install into
the build tree with every prefix placeholder patched for the in-container path; only what
needs the container runs in it: pre-/post-install commands, post-link scripts, the `pip:`
section and -r (with the environment active), and the one-time activation capture. An update
over image layers has no host tree: the installer runs inside the container, over the layers
with a writable one on top, and the host reads the records through a small exported view.

The image's `.tykky/conda.json` records the channels and specs, so `update` re-solves with
the previous specs plus the new ones.
"""
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tykky import conda_activation, conda_backend, conda_listing, history, hostpip, log, runner
from tykky.builddir import remove_tree
from tykky.conda_env_file import EnvFile, merge_channels, merge_specs, spec_name
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.errors import NeedsRebuild, TykkyError
from tykky.modes import Filled, Mode

STATE_FILE = ".tykky/conda.json"
BASE_NAME = "base"
MAMBA_SPECS = ("conda", "mamba")
# In the build directory: the environment dumps the container writes, read for the activation.
CAPTURE_DIRECTORY = "conda-out"
_ENV_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def env_path(config: Config) -> str:
    return f"{config.installation_path}/{config.env_name}"


def base_path(config: Config) -> str:
    return f"{config.installation_path}/{BASE_NAME}"


def check_env_name(config: Config) -> None:
    if not _ENV_NAME.match(config.env_name) or config.env_name in (BASE_NAME, "bin", "_bin"):
        raise TykkyError(f"env_name '{config.env_name}' cannot name the environment: use letters, digits, "
                         f"'_', '-' and '.', and not '{BASE_NAME}'.")


def wrapper_paths(config: Config) -> List[str]:
    """The env's bin plus -w paths; relative -w paths are relative to the installation path."""
    extra = [p if p.startswith("/") else f"{config.installation_path}/{p}" for p in config.wrapper_paths]
    return [f"{env_path(config)}/bin"] + extra


def resolve_channels(config: Config, channels: Tuple[str, ...]) -> Tuple[str, ...]:
    """`defaults` and an empty list mean the site's default_channels; `nodefaults` is dropped."""
    resolved: List[str] = []
    for channel in channels or ("defaults",):
        names = config.default_channels if channel == "defaults" else () if channel == "nodefaults" else (channel,)
        for name in names:
            if name not in resolved:
                resolved.append(name)
    return tuple(resolved or config.default_channels)


def condarc_settings(config: Config) -> Dict[str, Any]:
    """With CW_ENABLE_CONDARC, the user's channels and channel_alias; ignored otherwise."""
    if not config.enable_condarc:
        return {}
    import yaml

    settings: Dict[str, Any] = {}
    for path in (Path.home() / ".condarc", Path(os.environ.get("CONDARC", "/nonexistent"))):
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise TykkyError(f"Cannot read {path} (CW_ENABLE_CONDARC is set): {exc}.") from None
            if isinstance(data, dict):
                settings.update({k: data[k] for k in ("channels", "channel_alias") if k in data})
    return settings


@dataclass
class CondaState:
    """What the image's environment was made from; kept in the image for updates."""

    env_name: str
    channels: Tuple[str, ...] = ()
    specs: Tuple[str, ...] = ()
    base_specs: Tuple[str, ...] = ()
    variables: Dict[str, str] = field(default_factory=dict)

    @staticmethod
    def load(tree: Path) -> Optional["CondaState"]:
        path = tree / STATE_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return CondaState(env_name=data["env_name"], channels=tuple(data["channels"]), specs=tuple(data["specs"]),
                          base_specs=tuple(data.get("base_specs", ())), variables=dict(data.get("variables", {})))

    def save(self, tree: Path) -> None:
        path = tree / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"env_name": self.env_name, "channels": list(self.channels),
                                    "specs": list(self.specs), "base_specs": list(self.base_specs),
                                    "variables": self.variables}, indent=1) + "\n")


def env_python(config: Config, tree: Path) -> str:
    """The env's Python, when it has one: the prefix then reads as a venv of it."""
    if os.path.lexists(tree / config.env_name / "bin" / "python"):
        return f"{env_path(config)}/bin/python"
    return ""


class CondaMode(Mode):
    """The steps of a conda build. What one build finds (the tree it reads, the activation
    captured in the container) is passed along and returned, never kept on the mode."""

    name = "conda"
    layered_update = True

    def __init__(self, env_file: Optional[EnvFile]) -> None:
        self.env_file = env_file

    # -- inputs -----------------------------------------------------------------------------

    def stage_inputs(self, config: Config, build: Path) -> Dict[str, Optional[str]]:
        staged = history.stage_inputs(config, build)
        if self.env_file:
            name = "conda-" + os.path.basename(self.env_file.path)
            shutil.copyfile(self.env_file.path, build / "inputs" / name)
            staged[name] = str(build / "inputs" / name)
        return staged

    def wrapper_paths(self, config: Config) -> List[str]:
        return wrapper_paths(config)

    # -- the build ----------------------------------------------------------------------------

    def fill_tree(self, config: Config, container: BuildContainer) -> Filled:
        check_env_name(config)
        out = container.build / CAPTURE_DIRECTORY
        out.mkdir(exist_ok=True)
        tree = container.tree if container.tree is not None else export_view(config, container)
        previous = CondaState.load(tree)
        if previous and previous.env_name != config.env_name:
            raise TykkyError(f"The installation's environment is {previous.env_name}, not {config.env_name}: "
                             "do not change env_name in an update.")
        inputs = container.build / "inputs"
        if (inputs / "pre-install.sh").is_file():
            self._run_script(config, container, tree, "pre", {"TYKKY_PRE_INSTALL": str(inputs / "pre-install.sh")})
        state, new_packages = self._install_packages(config, container, tree, previous)
        self._run_script(config, container, tree, "post",
                         self._post_variables(config, container, state, new_packages))
        written = container.tree
        if written is None:
            # Over image layers: read the records as installed now, write into the writable layer.
            written, tree = container.writable_tree(), export_view(config, container)
        conda_listing.write_list_packages(written / config.env_name, env_path(config), tree / config.env_name)
        state.save(written)
        return Filled(python=env_python(config, tree),
                      activation=conda_activation.activation_block(out, env_path(config),
                                                                   config.activate_scripts_at_launch))

    def _install_packages(self, config: Config, container: BuildContainer, tree: Path,
                          previous: Optional[CondaState]) -> Tuple[CondaState, List[str]]:
        state, explicit = self._wanted_state(config, previous, tree)
        unchanged = previous is not None and not explicit and state.specs == previous.specs \
            and state.channels == previous.channels and state.base_specs == previous.base_specs
        if unchanged:
            log.info("No new conda packages: the environment is kept as it is")
            return state, []
        backend = conda_backend.find_backend(config)
        request = self._request(config, container, state, explicit)
        log.info(f"Solving and installing the conda environment {env_path(config)} "
                 f"(channels: {', '.join(state.channels) or 'from the explicit list'})")
        response = self._run_worker(backend, request, container, "env")
        if state.base_specs:
            log.info(f"Installing {' and '.join(state.base_specs)} into {base_path(config)} (--mamba)")
            base_request = dict(request, specs=list(state.base_specs), explicit=[],
                                channels=list(state.channels or resolve_channels(config, ())),
                                target_prefix=target_prefix(container, BASE_NAME, base_path(config)),
                                alternative_target_prefix=base_path(config))
            self._run_worker(backend, base_request, container, "base")
        if explicit:
            state.specs = tuple(p["name"] for p in response["packages"])
        return state, list(response["new"])

    def _run_worker(self, backend: conda_backend.Backend, request: Dict[str, Any], container: BuildContainer,
                    label: str) -> Dict[str, Any]:
        try:
            response = conda_backend.run_worker(backend, request, container.build / f"solver-{label}",
                                                container=None if container.tree is not None else container)
        except conda_backend.SolverFailure as failure:
            if failure.kind == "needs-removals":
                raise NeedsRebuild(f"{failure.details.strip()} and this overlay cannot remove the image's "
                                   "directories.") from None
            raise TykkyError(self._explain(failure.kind, request), details=failure.details) from None
        log.info(f"Solved in {response.get('solve_seconds', 0.0):.2f} s, installed {len(response['new'])} "
                 f"packages in {response.get('install_seconds', 0.0):.2f} s")
        return response

    def _explain(self, kind: str, request: Mapping[str, Any]) -> str:
        source = self.env_file.path if self.env_file else "the installation's environment"
        channels = ", ".join(request["channels"]) or "those of the explicit list"
        return {
            "spec": f"A package spec in {source} is not valid. Fix it.",
            "solve": f"The conda packages of {source} cannot be installed from the channels {channels}: "
                     "a package does not exist there, or the versions asked for conflict. Check the names "
                     "and versions.",
            "channel": f"A channel cannot be read (channels: {channels}). Check its URL and the network, "
                       f"or remove it from {source}.",
            "explicit": f"The explicit list {source} cannot be installed. Check its URLs.",
            "install": "Installing the conda packages failed.",
            "backend": "The conda solver (py-rattler) cannot run. Remove its directory to have it "
                       "installed again, or set rattler_path.",
        }.get(kind, "The conda solver failed unexpectedly; run with CW_LOG_LEVEL=3 for details and report it.")

    def _wanted_state(self, config: Config, previous: Optional[CondaState],
                      tree: Optional[Path] = None) -> Tuple[CondaState, List[str]]:
        env_file = self.env_file
        state = previous or CondaState(env_name=config.env_name)
        state = CondaState(env_name=state.env_name, channels=state.channels, specs=state.specs,
                           base_specs=state.base_specs, variables=dict(state.variables))
        explicit: List[str] = []
        if env_file and env_file.kind == "explicit":
            if previous:
                raise TykkyError(f"{env_file.path} is an explicit list, which describes a whole environment: "
                                 "build a new installation from it with `conda-containerize new`.")
            explicit = list(env_file.explicit)
        elif env_file:
            condarc = condarc_settings(config)
            channels = env_file.channels or tuple(condarc.get("channels") or ())
            state.channels = merge_channels(state.channels, resolve_channels(config, channels))
            state.specs = merge_specs(state.specs, env_file.specs)
            state.variables.update(env_file.variables)
        if self._needs_pip(config, container_tree=tree) and "pip" not in {spec_name(s) for s in state.specs} \
                and not explicit:
            log.info("Adding pip to the environment: the pip: section and -r need it")
            state.specs = state.specs + ("pip",)
            state.channels = state.channels or resolve_channels(config, ())
        if config.use_mamba and not state.base_specs:
            state.base_specs = MAMBA_SPECS
        return state, explicit

    def _needs_pip(self, config: Config, container_tree: Optional[Path]) -> bool:
        if not ((self.env_file and self.env_file.pip) or config.requirements_file) or config.use_uv:
            return False
        return not (container_tree and os.path.lexists(container_tree / config.env_name / "bin" / "pip"))

    def _request(self, config: Config, container: BuildContainer, state: CondaState,
                 explicit: List[str]) -> Dict[str, Any]:
        alias = config.channel_alias or str(condarc_settings(config).get("channel_alias") or "")
        return {"channels": list(state.channels), "channel_alias": alias, "specs": list(state.specs),
                "explicit": explicit, "target_prefix": target_prefix(container, config.env_name, env_path(config)),
                "alternative_target_prefix": env_path(config),
                "cache_dir": str(container.build / "pkgs") if config.no_cache else None,
                # Over layers whose directories cannot be removed: add packages, never change one.
                "keep_installed": not container.lower_removals}

    # -- inside the container -------------------------------------------------------------------

    def _base_variables(self, config: Config, container: BuildContainer, tree: Path) -> Dict[str, str]:
        script = container.build / "conda_build.sh"
        if not script.is_file():
            script.write_text(template("conda_build.sh"))
        variables = {"TYKKY_ENV": env_path(config), "TYKKY_ENV_NAME": config.env_name,
                     "TYKKY_WORKDIR": os.getcwd(), "TYKKY_SCRIPT": str(script),
                     "TYKKY_OUT": str(container.build / CAPTURE_DIRECTORY),
                     "TYKKY_NO_CACHE": "yes" if config.no_cache else "no"}
        if (tree / BASE_NAME / "conda-meta").is_dir():
            variables["TYKKY_CONDA_BASE"] = base_path(config)
        return variables

    def _run_script(self, config: Config, container: BuildContainer, tree: Path, phase: str,
                    variables: Mapping[str, str]) -> None:
        all_variables = dict(self._base_variables(config, container, tree), **variables)
        what = {"pre": "running the pre-install commands",
                "post": "installing the pip packages and running the post-install commands"}[phase]
        container.run(["/bin/bash", all_variables["TYKKY_SCRIPT"], phase], what=what, variables=all_variables)

    def _post_variables(self, config: Config, container: BuildContainer, state: CondaState,
                        new_packages: List[str]) -> Dict[str, str]:
        inputs = container.build / "inputs"
        variables = {"TYKKY_NEW_PACKAGES": " ".join(new_packages)}
        if state.variables:
            (inputs / "variables.sh").write_text(conda_activation.variables_script(state.variables))
            variables["TYKKY_ENV_VARIABLES"] = str(inputs / "variables.sh")
        if self.env_file and self.env_file.pip:
            (inputs / "pip-section.txt").write_text("\n".join(self.env_file.pip) + "\n")
            variables["TYKKY_PIP_SECTION"] = str(inputs / "pip-section.txt")
            variables["TYKKY_ENV_FILE_DIR"] = os.path.dirname(os.path.abspath(self.env_file.path))
        for variable, name in (("TYKKY_REQUIREMENTS", "requirements.txt"), ("TYKKY_POST_INSTALL", "post-install.sh")):
            if (inputs / name).is_file():
                variables[variable] = str(inputs / name)
        if config.use_uv and any(name in variables for name in ("TYKKY_PIP_SECTION", "TYKKY_REQUIREMENTS",
                                                                "TYKKY_POST_INSTALL")):
            variables["TYKKY_UV"] = install_uv(config, container)
            variables.update(hostpip.uv_environment(os.environ))
        return variables


def target_prefix(container: BuildContainer, name: str, in_container: str) -> str:
    """Where the installer writes: the build tree, or (over image layers) the path inside."""
    return str(container.tree / name) if container.tree is not None else in_container


def export_view(config: Config, container: BuildContainer) -> Path:
    """What the host-side steps read of an installation seen through image layers.

    The records and markers only (conda-meta, the state file, the names of dist-info
    directories and of bin/python and bin/pip): their size grows with the package count,
    not with the installation.
    """
    view = container.build / "view"
    remove_tree(view)
    view.mkdir()
    container.run(["/bin/bash", "-c", EXPORT_VIEW, "export_view", config.installation_path, str(view),
                   config.env_name, BASE_NAME], what="reading the installed conda records")
    return view


EXPORT_VIEW = r"""set -e
source=$1 view=$2
[ -d "$source/.tykky" ] && cp -a "$source/.tykky" "$view/"
for env in "$3" "$4"; do
    [ -d "$source/$env/conda-meta" ] || continue
    mkdir -p "$view/$env/bin"
    cp -a "$source/$env/conda-meta" "$view/$env/"
    for program in python pip; do
        if [ -e "$source/$env/bin/$program" ] || [ -L "$source/$env/bin/$program" ]; then
            touch "$view/$env/bin/$program"
        fi
    done
    for info in "$source/$env"/lib/python*/site-packages/*.dist-info; do
        [ -d "$info" ] && mkdir -p "$view/$env/${info#"$source/$env/"}"
    done
done
true
"""


def install_uv(config: Config, container: BuildContainer) -> str:
    """uv from the package index into the build directory (never into the installation)."""
    target = container.build / "uv"
    python = conda_backend.solver_python(config)
    log.info("Installing uv for the build")
    runner.run([python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
                "--target", str(target), "uv"], what="installing uv")
    return str(target / "bin" / "uv")
