"""Reading the conda environment a user asks for.

Three forms, as conda accepts them: an environment.yml (channels, dependencies as match specs,
a `pip:` section, `variables:`), an explicit list (`@EXPLICIT` and package URLs, as
`conda list --explicit` writes) and a plain list of match specs (`conda create --file`).
Every mistake is reported with the file and the line it is on.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

from tykky import log
from tykky.errors import TykkyError

KINDS = ("yaml", "explicit", "specs")
PACKAGE_SUFFIXES = (".conda", ".tar.bz2")
URL_SCHEMES = ("http://", "https://", "file://")
# A match spec starts with a package name, maybe behind `channel::` or `channel/subdir::`.
_SPEC_START = re.compile(r"^([A-Za-z0-9_.\-/:]+::)?[A-Za-z0-9_][A-Za-z0-9_.\-]*(\s|[<>=!~\[]|$)")
KNOWN_YAML_KEYS = ("name", "channels", "dependencies", "prefix", "variables")


@dataclass(frozen=True)
class EnvFile:
    """What an environment file asks for; `lines` maps each spec to its line for messages."""

    path: str
    kind: str
    channels: Tuple[str, ...] = ()
    specs: Tuple[str, ...] = ()
    pip: Tuple[str, ...] = ()
    explicit: Tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    platform: str = ""
    lines: Mapping[str, int] = field(default_factory=dict)


def _error(path: str, line: Optional[int], problem: str) -> TykkyError:
    where = f"{path}, line {line}" if line else path
    return TykkyError(f"The environment file {where}: {problem}. Fix the file.")


def detect_kind(path: str, text: str) -> str:
    """@EXPLICIT anywhere makes an explicit list; .yml/.yaml a YAML file; anything else a spec list."""
    if any(line.strip() == "@EXPLICIT" for line in text.splitlines()):
        return "explicit"
    if path.endswith((".yml", ".yaml")):
        return "yaml"
    return "specs"


def read_env_file(path: str) -> EnvFile:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise TykkyError(f"The environment file {path} does not exist. Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TykkyError(f"Cannot read the environment file {path}: {exc}. Check the file.") from None
    return parse_env_text(path, text)


def parse_env_text(path: str, text: str) -> EnvFile:
    kind = detect_kind(path, text)
    if kind == "explicit":
        return parse_explicit(path, text)
    if kind == "yaml":
        return parse_yaml(path, text)
    return parse_spec_list(path, text)


def check_spec(path: str, line: Optional[int], spec: str) -> str:
    spec = spec.strip()
    if not _SPEC_START.match(spec):
        raise _error(path, line, f"'{spec}' is not a package spec (expected a name like numpy, "
                                 "optionally with a version such as numpy>=1.26 or python=3.11)")
    return spec


def parse_spec_list(path: str, text: str) -> EnvFile:
    specs: List[str] = []
    lines: Dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if content:
            spec = check_spec(path, number, content)
            specs.append(spec)
            lines[spec] = number
    if not specs:
        raise _error(path, None, "it lists no packages")
    return EnvFile(path=path, kind="specs", specs=tuple(specs), lines=lines)


def parse_explicit(path: str, text: str) -> EnvFile:
    urls: List[str] = []
    platform = ""
    seen_marker = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("# platform:"):
            platform = line.split(":", 1)[1].strip()
        if not line or line.startswith("#"):
            continue
        if line == "@EXPLICIT":
            seen_marker = True
            continue
        if not seen_marker:
            raise _error(path, number, "an explicit list has nothing but comments before its @EXPLICIT line")
        url = line.split("#", 1)[0]
        if not url.startswith(URL_SCHEMES) or not url.endswith(PACKAGE_SUFFIXES):
            raise _error(path, number, f"'{line}' is not a package URL (an explicit list has one "
                                       "http(s):// or file:// URL of a .conda or .tar.bz2 file per line)")
        urls.append(line)
    if not urls:
        raise _error(path, None, "the explicit list names no packages")
    return EnvFile(path=path, kind="explicit", explicit=tuple(urls), platform=platform)


def _load_yaml(path: str, text: str) -> yaml.Node:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _error(path, line, f"it is not valid YAML ({problem})") from None
    if not isinstance(node, yaml.MappingNode):
        raise _error(path, node.start_mark.line + 1 if node else None,
                     "an environment.yml is a mapping with the keys channels and dependencies")
    return node


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _strings(path: str, key: str, node: yaml.Node) -> List[Tuple[str, int]]:
    if not isinstance(node, yaml.SequenceNode):
        raise _error(path, _line(node), f"'{key}' must be a list")
    values = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.value == "":
            raise _error(path, _line(item), f"every entry of '{key}' must be a single value")
        values.append((str(item.value), _line(item)))
    return values


def _pip_section(path: str, node: yaml.MappingNode) -> List[str]:
    pip: List[str] = []
    for key, value in node.value:
        if key.value != "pip":
            raise _error(path, _line(key), f"'{key.value}:' in dependencies is not known; "
                                           "only a 'pip:' section may appear there")
        pip += [requirement for requirement, _ in _strings(path, "pip", value)]
    return pip


def _dependencies(path: str, node: yaml.Node) -> "tuple[List[str], Dict[str, int], List[str]]":
    if not isinstance(node, yaml.SequenceNode):
        raise _error(path, _line(node), "'dependencies' must be a list")
    specs: List[str] = []
    lines: Dict[str, int] = {}
    pip: List[str] = []
    for item in node.value:
        if isinstance(item, yaml.MappingNode):
            pip += _pip_section(path, item)
        elif isinstance(item, yaml.ScalarNode) and str(item.value).strip():
            spec = check_spec(path, _line(item), str(item.value))
            specs.append(spec)
            lines[spec] = _line(item)
        else:
            raise _error(path, _line(item), "a dependency must be a package spec or a 'pip:' section")
    return specs, lines, pip


def _variables(path: str, node: yaml.Node) -> Dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise _error(path, _line(node), "'variables' must map names to values")
    values: Dict[str, str] = {}
    for key, value in node.value:
        if not isinstance(value, yaml.ScalarNode) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.value):
            raise _error(path, _line(key), f"variable '{key.value}' needs a name and a single value")
        values[key.value] = str(value.value)
    return values


def parse_yaml(path: str, text: str) -> EnvFile:
    root = _load_yaml(path, text)
    fields: Dict[str, yaml.Node] = {}
    for key, value in root.value:
        if key.value not in KNOWN_YAML_KEYS:
            log.warning(f"{path}, line {_line(key)}: ignoring the unknown key '{key.value}'")
        fields[key.value] = value
    if "dependencies" not in fields:
        raise _error(path, None, "it has no 'dependencies' list")
    specs, lines, pip = _dependencies(path, fields["dependencies"])
    channels = [c for c, _ in _strings(path, "channels", fields["channels"])] if "channels" in fields else []
    if not specs:
        raise _error(path, _line(fields["dependencies"]), "'dependencies' names no conda package")
    name = str(fields["name"].value) if isinstance(fields.get("name"), yaml.ScalarNode) else ""
    variables = _variables(path, fields["variables"]) if "variables" in fields else {}
    return EnvFile(path=path, kind="yaml", channels=tuple(channels), specs=tuple(specs), pip=tuple(pip),
                   variables=variables, name=name, lines=lines)


def spec_name(spec: str) -> str:
    """The package name of a match spec: `conda-forge::numpy >=1` -> numpy."""
    spec = spec.split("::", 1)[-1].strip()
    return re.split(r"[\s<>=!~\[]", spec, maxsplit=1)[0].lower()


def merge_specs(previous: Tuple[str, ...], new: Tuple[str, ...]) -> Tuple[str, ...]:
    """Previous specs plus new ones; a new spec for a package replaces its previous spec."""
    replaced = {spec_name(spec) for spec in new}
    return tuple(s for s in previous if spec_name(s) not in replaced) + tuple(new)


def merge_channels(previous: Tuple[str, ...], new: Tuple[str, ...]) -> Tuple[str, ...]:
    """The installation's channels keep their priority; channels an update adds come after them."""
    merged: List[str] = []
    for channel in tuple(previous) + tuple(new):
        if channel not in merged:
            merged.append(channel)
    return tuple(merged)
