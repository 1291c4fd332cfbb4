"""Running build steps inside the container, with the same binds policy as the installation."""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from tykky_shim import launcher

from tykky import deploy, hostpip, log, runner
from tykky._compat import resources
from tykky.config import Config
from tykky.runtime import Runtime, clean_environment, exec_argv, gpu_flags

# The caller's settings for the host's Python: in a build they would redirect (or break) the
# container's Python and change what gets installed.
CALLER_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONPLATLIBDIR")


def template(name: str) -> str:
    return resources.files("tykky_templates").joinpath(name).read_text()


_REPORTED_PATH_ENTRIES: Set[str] = set()


def build_path(path: str) -> str:
    """PATH for a build, without the bin directories of installations: their programs would start a
    container inside the build container (or fail there) instead of doing what the build asked."""
    kept, left_out = [], []
    for entry in path.split(":"):
        installation_bin = entry and deploy.holds_installation(Path(entry).absolute().parent)
        (left_out if installation_bin else kept).append(entry)
    news = [entry for entry in left_out if entry not in _REPORTED_PATH_ENTRIES]
    if news:
        _REPORTED_PATH_ENTRIES.update(news)
        log.info(f"Removed {', '.join(news)} from the build's PATH: the programs of an installation "
                 "would run inside the build container.")
    return ":".join(kept)


def host_top_level_dirs(excluded: Sequence[str]) -> List[str]:
    """isolate: no binds every real top-level directory of the host: the launcher's own policy."""
    return launcher.top_level_binds(set(excluded))


@dataclass(frozen=True)
class BuildContainer:
    """A container with the build's writable tree mounted at the installation path.

    wrap-container builds no image: its tree is None and nothing is mounted there.
    """

    runtime: Runtime
    image: Path
    config: Config
    tree: Optional[Path]  # host directory seen at config.installation_path
    build: Path
    # Image layers stacked at the container root (":ro") and, last, a writable upper directory.
    overlays: Tuple[str, ...] = ()
    # Whether the writable layer can remove directories of the layers below it.
    lower_removals: bool = True
    # False: none of the host directories the site's bind policy adds, to look at the image itself.
    site_binds: bool = True

    def writable_tree(self) -> Optional[Path]:
        """Host directory of the installation path in the writable layer of a stacked container."""
        if not self.overlays or self.overlays[-1].endswith(":ro"):
            return None
        return Path(self.overlays[-1]) / "upper" / self.config.installation_path.strip("/")

    def layer_targets(self) -> List[str]:
        """Where the container shows the installation: nowhere for wrap-container, which has no image."""
        return [self.config.installation_path] if self.tree is not None or self.overlays else []

    def policy_binds(self) -> List[str]:
        """The host directories the site's bind policy puts into the container, as launches do."""
        config = self.config
        if config.isolate:
            return self.outside_installation([p for p in config.mount_points if os.path.isdir(p)])
        return self.outside_installation(host_top_level_dirs(config.excluded_mount_points))

    def outside_installation(self, binds: Sequence[str]) -> List[str]:
        # As at launch (the launcher's bind_list), no policy bind covers the installation path or
        # lies inside it: over the layers of a stacked container a host directory there (one made
        # after the installation was built) would hide them and take the update's files.
        targets = self.layer_targets()
        return [b for b in binds if not any(launcher.overlaps(launcher.bind_destination(b), t) for t in targets)]

    def binds(self, extra: Sequence[str] = ()) -> List[str]:
        config = self.config
        binds = self.policy_binds() if self.site_binds else []
        if config.isolate:
            binds += self.outside_installation(hostpip.host_pip_binds(os.environ))
        binds.append(str(self.build))
        binds += list(config.extra_bind_mounts) + list(extra)
        if self.tree is not None:
            binds.append(f"{self.tree}:{config.installation_path}")
        return binds

    def default_mount_flags(self) -> List[str]:
        """The runtime's home, tmp and cwd mounts left out where they would hide the installation.

        The launcher's own decision, so that a build sees the tree launches will see: an overlay
        layer's tree under /tmp or $HOME would otherwise be hidden from an update by the runtime's
        mount there. (Making such trees image-src instead would leave launches and builds seeing
        different /tmp trees, and cost a full rebuild per update.) The launcher reads this
        process's cwd; the container's cwd is the build directory, which is bound anyway, so what
        it decides for cwd changes nothing.
        """
        layers = [{"target": target} for target in self.layer_targets()]
        return launcher.default_mount_flags({"layers": layers})

    def scratch_directory(self) -> Path:
        """TMPDIR when the runtime's /tmp is left out: the image's /tmp is read-only, and over
        the layers of a stacked container what is written there would become part of the layer."""
        scratch = self.build / "tmp"
        scratch.mkdir(exist_ok=True)
        return scratch

    def environment(self, variables: Mapping[str, str], no_mount: Sequence[str] = ()) -> Dict[str, str]:
        environment = clean_environment(os.environ)
        for name in CALLER_PYTHON_VARIABLES:
            environment.pop(name, None)
        path = build_path(os.environ.get("PATH", ""))
        if "PATH" in environment:
            environment["PATH"] = path
        if not self.config.isolate:
            environment["APPTAINERENV_PATH"] = environment["SINGULARITYENV_PATH"] = path
        if "tmp" in no_mount:
            environment["TMPDIR"] = str(self.scratch_directory())
        environment.update(variables)
        return environment

    def run(self, command: Sequence[str], *, what: str, variables: Optional[Mapping[str, str]] = None,
            echo: Optional[bool] = None, extra_binds: Sequence[str] = (), check: bool = True) -> runner.Completed:
        mount_flags = self.default_mount_flags()
        no_mount = mount_flags[1].split(",") if mount_flags else []
        # The build sees the GPUs its programs will see: installers that probe for them (and
        # libraries linked against the driver) behave as at run time.
        argv = exec_argv(self.runtime, str(self.image), command, binds=self.binds(extra_binds),
                         overlays=self.overlays, extra_flags=mount_flags + gpu_flags(self.config.gpu))
        return runner.run(argv, what=what, env=self.environment(variables or {}, no_mount), echo=echo,
                          cwd=str(self.build), check=check)
