"""Reading environment.yml files, explicit lists and spec lists, and their error messages."""
import pytest

from tykky.conda_env_file import detect_kind, merge_channels, merge_specs, parse_env_text, read_env_file, spec_name
from tykky.errors import TykkyError

ENVIRONMENT = """\
name: analysis
channels:
  - conda-forge
  - file:///opt/channel
dependencies:
  - python=3.11
  - numpy >=1.26,<2
  - conda-forge::scipy
  - pip
  - pip:
    - six==1.16.0
    - -e ./local
variables:
  OMP_NUM_THREADS: "4"
"""


def test_environment_yml_is_read_in_full():
    env = parse_env_text("environment.yml", ENVIRONMENT)
    assert env.kind == "yaml"
    assert env.name == "analysis"
    assert env.channels == ("conda-forge", "file:///opt/channel")
    assert env.specs == ("python=3.11", "numpy >=1.26,<2", "conda-forge::scipy", "pip")
    assert env.pip == ("six==1.16.0", "-e ./local")
    assert env.variables == {"OMP_NUM_THREADS": "4"}
    assert env.lines["numpy >=1.26,<2"] == 7


def test_invalid_yaml_names_the_line():
    text = "channels:\n  - conda-forge\ndependencies:\n  - numpy\n   - scipy: [\n"
    with pytest.raises(TykkyError) as caught:
        parse_env_text("env.yml", text)
    assert "env.yml, line 5" in str(caught.value)
    assert "not valid YAML" in str(caught.value)


@pytest.mark.parametrize("text, line, words", [
    ("dependencies:\n  - numpy\n  - [a, b]\n", 3, "package spec or a 'pip:' section"),
    ("dependencies:\n  - numpy\n  - conda:\n    - x\n", 3, "'conda:' in dependencies"),
    ("dependencies:\n  - '>=1.0'\n", 2, "is not a package spec"),
    ("dependencies: numpy\n", 1, "'dependencies' must be a list"),
    ("channels: conda-forge\ndependencies:\n  - numpy\n", 1, "'channels' must be a list"),
    ("dependencies:\n  - pip:\n    - six\n", 2, "names no conda package"),
])
def test_malformed_environment_says_where(text, line, words):
    with pytest.raises(TykkyError) as caught:
        parse_env_text("env.yml", text)
    message = str(caught.value)
    assert f"env.yml, line {line}" in message and words in message, message


def test_missing_dependencies_is_an_error():
    with pytest.raises(TykkyError, match="no 'dependencies' list"):
        parse_env_text("env.yml", "channels:\n  - conda-forge\n")


def test_unknown_keys_are_ignored():
    env = parse_env_text("env.yml", "dependencies:\n  - numpy\nplatforms:\n  - linux-64\n")
    assert env.specs == ("numpy",)


EXPLICIT = """\
# This file may be used to create an environment using:
# $ conda create --name <env> --file <this file>
# platform: linux-64
@EXPLICIT
https://example.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda
file:///opt/channel/noarch/tykky-data-2.0-0.tar.bz2#d41d8cd98f00b204e9800998ecf8427e
"""


def test_explicit_list_keeps_urls_and_platform():
    env = parse_env_text("spec.txt", EXPLICIT)
    assert env.kind == "explicit"
    assert env.platform == "linux-64"
    assert env.explicit == ("https://example.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
                            "file:///opt/channel/noarch/tykky-data-2.0-0.tar.bz2#d41d8cd98f00b204e9800998ecf8427e")


def test_explicit_list_rejects_a_line_that_is_no_package_url():
    text = EXPLICIT + "numpy=1.26\n"
    with pytest.raises(TykkyError) as caught:
        parse_env_text("spec.txt", text)
    assert "spec.txt, line 7" in str(caught.value) and "not a package URL" in str(caught.value)


def test_explicit_marker_must_come_first():
    with pytest.raises(TykkyError, match="before its @EXPLICIT"):
        parse_env_text("spec.txt", "https://x/linux-64/a-1-0.conda\n@EXPLICIT\n")


def test_spec_list_with_comments():
    env = parse_env_text("specs.txt", "# analysis\nnumpy>=1.26  # fast\n\nscipy\n")
    assert env.kind == "specs"
    assert env.specs == ("numpy>=1.26", "scipy")
    with pytest.raises(TykkyError, match="specs.txt, line 2"):
        parse_env_text("specs.txt", "numpy\n==1.0\n")


def test_kind_detection():
    assert detect_kind("a.yaml", "dependencies: []") == "yaml"
    assert detect_kind("a.yml", "@EXPLICIT\n") == "explicit"
    assert detect_kind("a.txt", "numpy\n") == "specs"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TykkyError, match="does not exist"):
        read_env_file(str(tmp_path / "nope.yml"))


def test_spec_names_and_merging():
    assert spec_name("conda-forge::NumPy >=1") == "numpy"
    assert spec_name("python=3.11") == "python"
    assert spec_name("foo[version='>=1']") == "foo"
    assert merge_specs(("python=3.11", "numpy"), ("numpy>=2", "scipy")) == ("python=3.11", "numpy>=2", "scipy")
    assert merge_channels(("a", "b"), ("c", "a")) == ("a", "b", "c")
