"""What older Pythons lack, for the oldest supported (3.6).

importlib.resources arrived in 3.7, its files() in 3.9: our data packages are plain directories
(in a source checkout and in tykky.pyz's extraction alike), so there a package's directory
serves the same calls (joinpath, read_text, read_bytes, iterdir). shutil.copytree merges into an
existing directory from 3.8 on (dirs_exist_ok).
"""
import importlib
import os
import shutil
import sys
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, List, Tuple, Union

if TYPE_CHECKING:
    from pathlib import Path


def package_directory(package: Union[str, ModuleType]) -> "Path":
    from pathlib import Path

    module = importlib.import_module(package) if isinstance(package, str) else package
    return Path(str(module.__file__)).parent


def files(package: Union[str, ModuleType]) -> Any:
    if sys.version_info < (3, 9):
        return package_directory(package)
    from importlib import resources as standard  # ~20 ms: imported when first needed

    return standard.files(package)


# Stands in for importlib.resources where the modules call `resources.files(package)`.
resources = SimpleNamespace(files=files)


def copy_tree_into(source: "Path", target: "Path") -> None:
    """shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True), also before 3.8."""
    if sys.version_info >= (3, 8):
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        return
    errors: List[Tuple[str, str, str]] = []
    _merge(str(source), str(target), errors)
    if errors:
        raise shutil.Error(errors)


def _merge(source: str, target: str, errors: List[Tuple[str, str, str]]) -> None:
    if not os.path.isdir(target) or os.path.islink(target):
        try:
            shutil.copytree(source, target, symlinks=True)
        except shutil.Error as exc:
            errors.extend(exc.args[0])
        return
    with os.scandir(source) as entries:
        for entry in entries:
            destination = os.path.join(target, entry.name)
            try:
                if entry.is_dir(follow_symlinks=False):
                    _merge(entry.path, destination, errors)
                elif entry.is_symlink():
                    os.symlink(os.readlink(entry.path), destination)
                else:
                    shutil.copy2(entry.path, destination)
            except OSError as why:
                errors.append((entry.path, destination, str(why)))
    try:
        shutil.copystat(source, target)
    except OSError as why:
        errors.append((source, target, str(why)))
