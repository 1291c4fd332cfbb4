"""pip mode: a venv created inside the container at the installation path."""
import os
from typing import Dict, List

from tykky import hostpip, log
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.modes import Filled, Mode

VENV_NAME = "venv"


def venv_path(config: Config) -> str:
    return f"{config.installation_path}/{VENV_NAME}"


def wrapper_paths(config: Config) -> List[str]:
    return [f"{venv_path(config)}/bin"] + list(config.wrapper_paths)


def install_uv(container: BuildContainer) -> str:
    """uv from the package index into the build directory, never into the installation."""
    target = container.build / "uv"
    log.info("Installing uv for the build")
    container.run(["python3", "-m", "pip", "install", "--disable-pip-version-check", "--target",
                   str(target), "uv"], what="installing uv")
    return str(target / "bin" / "uv")


def build_variables(config: Config, container: BuildContainer) -> Dict[str, str]:
    inputs = container.build / "inputs"
    python = f"python{config.python_version}" if config.python_version else "python3"
    variables = {"TYKKY_VENV": venv_path(config), "TYKKY_PYTHON": python,
                 "TYKKY_WORKDIR": os.getcwd(),
                 "TYKKY_SYSTEM_SITE_PACKAGES": "yes" if config.enable_site_packages else "no",
                 "TYKKY_NO_CACHE": "yes" if config.no_cache else "no"}
    for variable, name in (("TYKKY_REQUIREMENTS", "requirements.txt"), ("TYKKY_PRE_INSTALL", "pre-install.sh"),
                           ("TYKKY_POST_INSTALL", "post-install.sh")):
        if (inputs / name).is_file():
            variables[variable] = str(inputs / name)
    if config.use_uv:
        variables["TYKKY_UV"] = install_uv(container)
        variables.update(hostpip.uv_environment(os.environ))
    return variables


def install(config: Config, container: BuildContainer) -> None:
    """Create or extend the venv in container.tree with the staged inputs."""
    log.info("Installing into the virtual environment inside the container")
    container.run(["/bin/bash", "-c", template("pip_install.sh"), "pip_install"],
                  what="installing the Python packages", variables=build_variables(config, container))


class PipMode(Mode):
    """A venv at <installation_path>/venv, made and extended by pip inside the container."""

    name = "pip"
    layered_update = True

    def fill_tree(self, config: Config, container: BuildContainer) -> Filled:
        install(config, container)
        return Filled(python=f"{venv_path(config)}/bin/python")

    def wrapper_paths(self, config: Config) -> List[str]:
        return wrapper_paths(config)
