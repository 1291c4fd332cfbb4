"""tykky info: the facts it reports, with the runtime behind the runner seam."""
import os
from pathlib import Path

import pytest

from tykky import program, runner
from tykky.commands import info
from tykky.errors import TykkyError
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/opt/apptainer/bin/apptainer", (1, 3, 2))


def fake_runtime(monkeypatch, libexec: Path, conf: Path) -> list:  # type: ignore[no-untyped-def]
    calls = []

    def run(argv, **_kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(argv))
        return runner.Completed(argv, 0, f"LIBEXECDIR={libexec}\nSYSCONFDIR=/etc\nAPPTAINER_CONF_FILE={conf}\n")

    monkeypatch.setattr(info, "find_runtime", lambda configured="": RUNTIME)
    monkeypatch.setattr(info.runner, "run", run)
    return calls


def starter(libexec: Path, mode: int) -> Path:
    path = libexec / "apptainer" / "bin" / "starter-suid"
    path.parent.mkdir(parents=True)
    path.write_text("")
    path.chmod(mode)
    return path


def test_facts_name_version_site_python_and_runtime(monkeypatch, tmp_path):
    calls = fake_runtime(monkeypatch, tmp_path / "libexec", tmp_path / "apptainer.conf")
    monkeypatch.setattr(program, "ARCHIVE", "")
    monkeypatch.setattr(program, "PYTHON_ORIGIN", "TYKKY_PYTHON")
    facts = dict(info.facts({"CW_GLOBAL_YAML": "lumi"}))
    assert facts["tykky"] == "0.1.0"
    assert facts["site config"] == "lumi (shipped with tykky)" and facts["site config from"] == "CW_GLOBAL_YAML"
    assert facts["python chosen by"] == "TYKKY_PYTHON"
    assert facts["runtime"] == "apptainer 1.3.2 (/opt/apptainer/bin/apptainer)"
    assert calls == [["/opt/apptainer/bin/apptainer", "buildcfg"]]


def test_site_file_and_a_broken_one(monkeypatch, tmp_path):
    fake_runtime(monkeypatch, tmp_path, tmp_path / "conf")
    good = tmp_path / "site.yaml"
    good.write_text("defaults:\n  num_cpus: 2\n")
    assert dict(info.facts({"CW_GLOBAL_YAML": str(good)}))["site config"] == str(good)
    broken = dict(info.facts({"CW_GLOBAL_YAML": str(tmp_path / "missing.yaml")}))["site config"]
    assert broken.startswith("unusable: The site configuration") and "missing.yaml" in broken


@pytest.mark.skipif(os.geteuid() != 0, reason="a setuid-root starter needs root to make")
def test_setuid_starter_is_recognised_unless_the_configuration_forbids_it(tmp_path):
    libexec = tmp_path / "libexec"
    starter(libexec, 0o4755)
    conf = tmp_path / "apptainer.conf"
    settings = {"LIBEXECDIR": str(libexec), "APPTAINER_CONF_FILE": str(conf)}
    conf.write_text("allow setuid = yes\n")
    assert info.runtime_mode(RUNTIME, settings).startswith("setuid (")
    conf.write_text("# allow setuid = yes\nallow setuid = no\n")
    assert info.runtime_mode(RUNTIME, settings) == "unprivileged starter, running as root"


def test_without_setuid_starter_the_runtime_is_unprivileged(tmp_path):
    libexec = tmp_path / "libexec"
    starter(libexec, 0o755)
    mode = info.runtime_mode(RUNTIME, {"LIBEXECDIR": str(libexec)})
    assert mode.startswith("unprivileged")


def test_bundled_squashfuse_is_preferred(tmp_path):
    bundled = tmp_path / "apptainer" / "bin" / "squashfuse_ll"
    bundled.parent.mkdir(parents=True)
    bundled.write_text("")
    bundled.chmod(0o755)
    assert info.squashfuse_line(RUNTIME, {"LIBEXECDIR": str(tmp_path)}) == f"{bundled} (bundled with apptainer)"


def test_missing_runtime_is_a_line_not_a_failure(monkeypatch):
    def missing(configured=""):  # type: ignore[no-untyped-def]
        raise TykkyError("No container runtime found")

    monkeypatch.setattr(info, "find_runtime", missing)
    assert info.runtime_lines(None) == [("runtime", "not usable: No container runtime found")]
