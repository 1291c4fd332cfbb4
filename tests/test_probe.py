"""Reading what probe.sh reports from inside the container, and how the probe is started."""
import json

import pytest

from tests.fake_runner import fake_runner
from tykky import container_exec, log, probe
from tykky.config import Config
from tykky.container_exec import BuildContainer, template
from tykky.errors import TykkyError
from tykky.runtime import Runtime

PYTHON = {"executable": "/TYKKY/venv/bin/python", "version": "3.11", "site_packages": "/TYKKY/venv/lib"}


def lines(*entries: str) -> str:
    return "".join(entry.replace(" ", "\t", 2 if entry.startswith("ENV") else 1) + "\n" for entry in entries)


@pytest.fixture
def warnings(monkeypatch):  # type: ignore[no-untyped-def]
    said: list = []
    monkeypatch.setattr(log, "warning", said.append)
    return said


def test_everything_the_probe_reports_is_read():
    output = lines("ENV PATH /usr/local/bin:/usr/bin", "ENV LD_LIBRARY_PATH ", "SHELL /bin/bash",
                   "TARGET /TYKKY/bin/tool", "TARGET /usr/bin/env", "LIBDIR /TYKKY/lib", "LIBDIR /TYKKY/lib64",
                   "PYTHON " + json.dumps(PYTHON))
    found = probe.parse_probe(output, ["/TYKKY/bin", "/usr/bin/env"])
    assert found == probe.ProbeResult(
        environment={"PATH": "/usr/local/bin:/usr/bin", "LD_LIBRARY_PATH": ""}, shell="/bin/bash",
        targets={"tool": "/TYKKY/bin/tool", "env": "/usr/bin/env"},
        library_dirs=["/TYKKY/lib", "/TYKKY/lib64"], python=PYTHON)


def test_without_shell_or_python_lines_the_defaults_hold():
    found = probe.parse_probe(lines("ENV PATH /bin"), [])
    assert (found.shell, found.python, found.targets, found.library_dirs) == ("/bin/sh", None, {}, [])


def test_a_value_keeps_its_tabs_and_unknown_lines_are_ignored():
    output = "ENV\tNAME\ta\tb\nWARNING: something the runtime printed\n\nLIBDIR\t/x\nLIBDIR\t/x\n"
    found = probe.parse_probe(output, [])
    assert found.environment == {"NAME": "a\tb"} and found.library_dirs == ["/x"]


def test_the_first_of_two_programs_of_one_name_wins(warnings):
    output = lines("TARGET /TYKKY/bin/tool", "TARGET /TYKKY/sbin/tool", "TARGET /TYKKY/bin/tool")
    assert probe.parse_probe(output, ["/TYKKY/bin", "/TYKKY/sbin"]).targets == {"tool": "/TYKKY/bin/tool"}
    assert warnings == ["Two programs named tool: using /TYKKY/bin/tool, not /TYKKY/sbin/tool"]


@pytest.mark.parametrize("name", ["lib", "include", "_debug_exec", "_debug_shell"])
def test_reserved_names_are_not_wrapped(warnings, name):
    found = probe.parse_probe(lines(f"TARGET /TYKKY/bin/{name}", "TARGET /TYKKY/bin/tool"), ["/TYKKY/bin"])
    assert found.targets == {"tool": "/TYKKY/bin/tool"}
    assert warnings == [f"Not wrapping /TYKKY/bin/{name}: the name {name} is reserved by tykky"]


def test_missing_paths_are_named_together():
    output = lines("MISSING /opt/a", "TARGET /TYKKY/bin/tool", "MISSING /opt/b")
    with pytest.raises(TykkyError, match=r"do not exist in the container: /opt/a, /opt/b\. Give absolute"):
        probe.parse_probe(output, ["/opt/a", "/TYKKY/bin", "/opt/b"])


def test_paths_without_programs_are_an_error_naming_them_and_the_way_out():
    with pytest.raises(TykkyError, match=r"found in /TYKKY/share, /TYKKY/etc: no executable.*wrap_all: yes"):
        probe.parse_probe(lines("ENV PATH /bin", "SHELL /bin/sh"), ["/TYKKY/share", "/TYKKY/etc"])


def test_only_reserved_programs_is_nothing_to_wrap(warnings):
    with pytest.raises(TykkyError, match="Nothing to wrap"):
        probe.parse_probe(lines("TARGET /TYKKY/bin/lib"), ["/TYKKY/bin"])


def container(tmp_path, **values) -> BuildContainer:  # type: ignore[no-untyped-def]
    return BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif",
                          Config(**values), tmp_path / "tree", tmp_path)


@pytest.mark.parametrize(("wrap_all", "word"), [(False, "no"), (True, "yes")])
def test_the_probe_runs_the_script_over_the_paths_in_the_container(monkeypatch, tmp_path, wrap_all, word):
    fake = fake_runner(monkeypatch, output=lines("TARGET /TYKKY/bin/tool"))
    found = probe.probe(container(tmp_path, wrap_all=wrap_all), ["/TYKKY/bin", "/opt/x"])
    assert found.targets == {"tool": "/TYKKY/bin/tool"}
    (call,) = fake.calls
    assert call["argv"][-7:] == ["/bin/sh", "-c", template("probe.sh"), "probe", word, "/TYKKY/bin", "/opt/x"]
    assert "TYKKY_INFO_PYTHON" not in call["env"]


def test_the_probe_asks_the_python_about_itself_when_named(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch, output=lines("PYTHON " + json.dumps(PYTHON)))
    found = probe.probe(container(tmp_path), [], python="/TYKKY/venv/bin/python:/usr/bin/python3")
    assert found.python == PYTHON
    env = fake.calls[0]["env"]
    assert env["TYKKY_INFO_PYTHON"] == "/TYKKY/venv/bin/python:/usr/bin/python3"
    assert env["TYKKY_INFO_SCRIPT"] == template("python_info.py")


def test_a_check_of_the_missing_paths_may_explain_them_first():
    def check(missing):  # type: ignore[no-untyped-def]
        raise TykkyError(f"hidden: {missing}")

    with pytest.raises(TykkyError, match=r"hidden: \['/opt/a'\]"):
        probe.parse_probe(lines("MISSING /opt/a", "TARGET /TYKKY/bin/tool"), ["/opt/a", "/TYKKY/bin"], check)


@pytest.mark.parametrize(("path", "binds", "covering"), [
    ("/opt/x/bin", ["/opt", "/opt/x", "/usr"], "/opt/x"),
    ("/opt/x/bin", ["/opt/"], "/opt"),
    ("/opt", ["/opt"], "/opt"),
    ("/optx/bin", ["/opt"], ""),
    ("/dst/bin", ["/src:/dst", "/dst2"], "/dst"),
    ("/usr/bin/tool", [], ""),
])
def test_the_bind_covering_a_path_is_the_innermost_one_at_or_above_it(path, binds, covering):
    assert probe.covering_bind(path, binds) == covering


def hiding_site(tmp_path, monkeypatch, image_has: str, **values):  # type: ignore[no-untyped-def]
    """A probe finding tmp_path/site/vendor/bin and tmp_path/site/typo missing under the mount
    point tmp_path/site, and a look at the image itself that finds image_has."""
    site, home = tmp_path / "site", tmp_path / "home"
    site.mkdir()
    home.mkdir()
    wanted = [f"{site}/vendor/bin", f"{site}/typo"]

    def answer(argv):  # type: ignore[no-untyped-def]
        fake.output = image_has if "exists" in argv else lines(*(f"MISSING {path}" for path in wanted))

    fake = fake_runner(monkeypatch, effect=answer)
    config = {"isolate": True, "mount_points": (str(home), str(site)), **values}
    with pytest.raises(TykkyError) as raised:
        probe.probe(container(tmp_path, **config), wanted)
    return str(raised.value), fake, site, home


def test_paths_the_image_has_under_a_mount_point_are_an_error_naming_it(tmp_path, monkeypatch):
    message, fake, site, home = hiding_site(tmp_path, monkeypatch, f"{tmp_path}/site/vendor/bin\n")
    assert message.startswith(f"These paths to wrap are in the image, but the configuration's mount point {site} "
                              f"binds the host's {site} over them, in builds and at every launch: {site}/vendor/bin. ")
    assert f"leave {site} out of mount_points (for example mount_points: [{home}] in a -y CONF.yaml" in message
    assert message.endswith(f"These do not exist in the image: {site}/typo.")
    # The second look runs without the site's binds, over the paths they cover.
    look = fake.argvs[1]
    assert look[-3:] == ["exists", f"{site}/vendor/bin", f"{site}/typo"]
    assert str(site) not in look[look.index("--bind") + 1].split(",")


def test_without_isolation_the_hidden_paths_name_excluded_mount_points(tmp_path, monkeypatch):
    site = str(tmp_path / "site")
    monkeypatch.setattr(container_exec, "host_top_level_dirs", lambda excluded: ["/usr", site])
    message = hiding_site(tmp_path, monkeypatch, f"{site}/vendor/bin\n", isolate=False)[0]
    assert f"but isolate: no binds the host's {site} over them" in message
    assert f"To wrap them, add {site} to excluded_mount_points (in a -y CONF.yaml" in message


def test_paths_the_image_lacks_too_do_not_exist(tmp_path, monkeypatch):
    message, fake, site, _ = hiding_site(tmp_path, monkeypatch, "WARNING: a runtime line\n")
    assert message.startswith(f"These paths to wrap do not exist in the container: {site}/vendor/bin, {site}/typo.")
    assert len(fake.calls) == 2


def test_missing_paths_under_no_site_bind_need_no_second_look(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch, output=lines("MISSING /nowhere/bin"))
    with pytest.raises(TykkyError, match="do not exist in the container: /nowhere/bin"):
        probe.probe(container(tmp_path, isolate=True, mount_points=(str(tmp_path),)), ["/nowhere/bin"])
    assert len(fake.calls) == 1
