"""Hostile situations, one row each: what is done, and what must hold afterwards.

Every row runs as root and as the test user. A row that fails must fail cleanly (`failed`):
a non-zero exit, no traceback, a message naming what was wrong, no prefix left by a failed
`new`, nothing in the build directory base or the working directory, no process still at
work, and the session's installation (and the one the row acted on) still working. The rows
are listed in docs/reliability.md; most fail early, so they cost little: builds are few.
"""
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Tuple

import pytest

from tests.helpers import REPO, make_owned_dir, user_named
from tests.integration import hostile as h
from tests.integration import hostile_acts as acts
from tests.integration.hostile import (
    Act,
    Check,
    binary,
    directory,
    empty,
    error,
    failed,
    missing,
    pip_new,
    text,
    unreadable,
    usage_error,
    works,
)

pytestmark = pytest.mark.apptainer

PROBE_YAML = ["-c", h.PROBE, "yaml"]


@dataclass(frozen=True)
class Row:
    id: str
    act: Act
    holds: Tuple[Check, ...]
    fixed_on: str = ""  # the branch that fixes it, while it is not merged (or why it is not fixed)


def probe_output(scene, outcome) -> None:  # type: ignore[no-untyped-def]
    assert outcome.stdout == h.probe_lines(outcome.installation), outcome.stderr


def one_line_error(*words: str) -> Check:
    def check(scene, outcome) -> None:  # type: ignore[no-untyped-def]
        error(*words)(scene, outcome)
        assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    return check


ARG_MAX = os.sysconf("SC_ARG_MAX")
INTERRUPT_NEW = dict(first=pip_new())

ROWS = [
    # requirements, environment and script files
    Row("requirements-missing", pip_new(missing), failed("requirements.txt does not exist")),
    Row("requirements-unreadable", pip_new(unreadable, drop_dac=True), failed("Cannot read", "Permission denied")),
    Row("requirements-directory", pip_new(directory), failed("requirements.txt is a directory")),
    Row("requirements-binary", pip_new(binary), failed("requirements.txt is not a text file")),
    Row("requirements-empty", pip_new(empty), failed("requirements.txt lists no packages")),
    Row("pre-install-missing", pip_new(pre_install=missing), failed("Cannot read .*pre_install")),
    Row("post-install-directory", pip_new(post_install=directory), failed("post_install: Is a directory")),
    Row("post-install-fails", pip_new(post_install=text("false\n")), failed("post-install commands failed")),
    Row("environ-missing", pip_new(environ=missing), failed("environ does not exist")),
    Row("environ-syntax-error", pip_new(environ=text('export A="unterminated\n')),
        failed("environ", "syntax error")),
    Row("environ-binary", pip_new(environ=binary), failed("environ is not a text file")),
    Row("conda-env-missing", h.conda_new(missing), failed("environment.yml does not exist")),
    Row("conda-env-directory", h.conda_new(directory), failed("environment.yml", "Is a directory")),
    Row("conda-env-bad-yaml", h.conda_new(text("dependencies:\n  - numpy\n - [\n")),
        failed("environment.yml", "line")),
    Row("conda-env-binary", h.conda_new(binary), failed("environment.yml")),
    Row("conda-env-empty", h.conda_new(empty), failed("environment.yml", "no packages|empty")),
    # options and their values
    Row("option-unknown", h.command("pip-containerize", "new", "--no-such-option", "r.txt"),
        (usage_error("no-such-option"), h.no_new_prefix, h.nothing_left, h.existing_works)),
    Row("option-argument-missing", h.command("pip-containerize", "new", "--prefix", "{prefix}"),
        (usage_error("REQS|required"), h.no_new_prefix, h.nothing_left, h.existing_works)),
    Row("option-bad-python-version", pip_new(h.text("six\n"), "--pyver", "three"), failed("three", "X.Y")),
    Row("option-relative-wrapper-path", pip_new(h.text("six\n"), "-w", "usr/bin"), failed("usr/bin", "absolute")),
    Row("option-prefix-with-comma", h.command("pip-containerize", "new", "--prefix", "{home}/a,b", "/etc/hostname"),
        failed("contains ','")),
    Row("option-prefix-is-a-file", h.command("pip-containerize", "new", "--prefix", "/etc/hostname", "/etc/hostname"),
        failed("already exists")),
    Row("update-not-an-installation", h.command("pip-containerize", "update", "{home}", "-r", "/etc/hostname"),
        failed("not a tykky installation")),
    Row("update-missing-directory", h.command("pip-containerize", "update", "{home}/nothing", "-r", "/etc/hostname"),
        failed("nothing does not exist")),
    Row("update-nothing-to-do", h.command("pip-containerize", "update", "{existing}"), failed("Nothing to update")),
    Row("update-wrong-mode", h.command("conda-containerize", "update", "{existing}", "-r", "/etc/hostname"),
        failed("pip installation", "pip-containerize update")),
    # site configurations
    Row("site-config-missing", h.site_config(make=missing), failed("site.yaml' does not exist")),
    Row("site-config-directory", h.site_config(make=directory), failed("site.yaml' is a directory")),
    Row("site-config-bad-yaml", h.site_config("defaults:\n  isolate: no\n   bad: [\n"),
        failed("not valid YAML at line")),
    Row("site-config-wrong-type", h.site_config(num_cpus="many"), failed("num_cpus", "whole number")),
    Row("site-config-unknown-key", h.site_config(no_such_key=1), failed("Unknown configuration key 'no_such_key'")),
    Row("site-config-unknown-section", h.site_config("defaults: {}\nsometimes: {}\n"),
        failed("Unknown section 'sometimes'")),
    Row("site-config-not-a-mapping", h.site_config("- defaults\n- force\n"), failed("must be a mapping")),
    # containers
    Row("container-missing", h.site_config(container_src="/no/such/image.sif"),
        failed("/no/such/image.sif does not exist")),
    Row("container-not-an-image", h.site_config(container_src=lambda scene: str(scene.write("c.sif", "text\n"))),
        failed("c.sif is not a container image")),
    Row("container-truncated", h.site_config(container_src=lambda scene: str(h.truncated_copy(scene))),
        failed("base.sif is truncated")),
    Row("container-directory-not-sandbox", h.site_config(container_src=lambda scene: str(scene.directory("c"))),
        failed("is a directory", ".sif")),
    Row("container-unpullable", h.site_config(container_src="docker://tykky-test.invalid/none:1"),
        failed("Could not pull the container docker://tykky-test.invalid/none:1")),
    # full disks
    Row("full-build-directory-new", acts.new_in_small_filesystem("build", "12m"),
        failed("No space left", "CW_BUILD_TMPDIR")),
    Row("full-prefix-new", acts.new_in_small_filesystem("prefix", "64m"), failed("No space left")),
    Row("full-build-directory-update", acts.update_on_full_filesystem("build"),
        failed("No space left", "CW_BUILD_TMPDIR") + (h.no_leftovers_in("copy"),)),
    Row("full-prefix-update", acts.update_on_full_filesystem("prefix"),
        failed("No space left") + (h.no_leftovers_in("copy"),)),
    # interruptions, at the stages the log names
    Row("ctrl-c-new-installing", h.interrupted(pip_new(), "Installing into the virtual", signal.SIGINT, True),
        failed("Interrupted")),
    Row("ctrl-c-new-pip", h.interrupted(pip_new(), "Installing the requirements", signal.SIGINT, True),
        failed("Interrupted", "nothing was changed")),
    Row("kill-new-pip", h.interrupted(pip_new(), "Installing the requirements", signal.SIGTERM, False),
        failed("Interrupted", "nothing was changed")),
    Row("kill-new-post-install", acts.interrupted_post_install("sleep 60\n"),
        failed("Interrupted", "nothing was changed")),
    Row("kill-new-squashing", h.interrupted(pip_new(), "running: .*mksquashfs", signal.SIGTERM, False),
        failed("Interrupted")),
    Row("kill-new-deploying", h.interrupted(pip_new(), "byte-compiling|running: .*-IS -c", signal.SIGTERM, False),
        failed("Interrupted")),
    Row("ctrl-c-update-installing", h.interrupted(h.update_copy("-r", "{requirements}"), "Installing into the",
                                                  signal.SIGINT, True),
        failed("Interrupted") + (h.no_leftovers_in("copy"),)),
    Row("kill-update-squashing", h.interrupted(h.update_copy("-r", "{requirements}"), "running: .*mksquashfs",
                                               signal.SIGTERM, False),
        failed("Interrupted") + (h.no_leftovers_in("copy"),)),
    Row("kill-update-committing", h.interrupted(h.update_copy("-r", "{requirements}"), "running: .*-IS -c",
                                                signal.SIGTERM, False),
        (error("Interrupted", "complete and usable"), h.nothing_left, h.existing_works, h.complete_update)),
    # another user's files where ours go
    Row("warm-directory-of-another-user", acts.planted_warm_directory("theirs"), works(acts.untouched)),
    Row("warm-directory-world-writable", acts.planted_warm_directory("world-writable"), works(acts.untouched)),
    Row("warm-directory-symlink", acts.planted_warm_directory("symlink"), works(acts.untouched)),
    Row("staging-name-planted", acts.planted_staging,
        (h.succeeded, h.new_prefix_works, acts.untouched, h.nothing_left)),
    Row("shared-build-base", acts.shared_build_base, failed("is truncated")),
    Row("build-base-not-writable", acts.read_only_build_base, failed("their-builds-ro", "not a writable directory")),
    # damaged, truncated, moved, copied and read-only installations
    Row("copied-installation", h.launch(PROBE_YAML, prepare=lambda scene, prefix: prefix),
        works(probe_output)),
    Row("moved-installation", h.launch(PROBE_YAML, prepare=acts.moved), works(probe_output)),
    Row("read-only-installation", h.launch(PROBE_YAML, prepare=acts.read_only), works(probe_output)),
    Row("read-only-installation-update", acts.update_read_only, failed("not writable")),
    Row("truncated-image-update", h.update_copy("-r", "{requirements}", damage=h.truncate("img.sqfs")),
        failed("img.sqfs is truncated", "damaged")),
    Row("missing-image-update", h.update_copy("-r", "{requirements}", damage=h.remove("img.sqfs")),
        failed("img.sqfs is missing", "damaged")),
    Row("damaged-manifest-update", h.update_copy("-r", "{requirements}",
                                                 damage=h.overwrite("_tykky/manifest.json", b"\x00garbage")),
        failed("manifest.json", "damaged")),
    Row("incomplete-manifest-update", h.update_copy("-r", "{requirements}",
                                                    damage=h.overwrite("_tykky/manifest.json", b'{"format": 1}')),
        failed("manifest.json", "damaged")),
    Row("truncated-container-update", h.update_copy("-r", "{requirements}", damage=h.truncate("container.sif")),
        failed("container.sif is truncated", "damaged")),
    Row("truncated-image-launch", h.launch(PROBE_YAML, prepare=h.damaged(h.truncate("img.sqfs"))),
        (one_line_error("img.sqfs", "damaged"),)),
    Row("damaged-manifest-launch",
        h.launch(PROBE_YAML, prepare=h.damaged(h.overwrite("_tykky/manifest.json", b"\x00garbage"))),
        (one_line_error("damaged"),)),
    Row("user-symlink-to-wrapper", acts.through_user_symlink, works(probe_output)),
    Row("broken-warm-mount", acts.broken_warm_mount, works(probe_output)),
    Row("unmount-after-warm-launch", acts.unmount_after_warm_launch, (h.succeeded,)),
    Row("step-sharing-bare-runtime-name", acts.step_sharing_with_bare_runtime_name, (acts.both_tasks_share,)),
    # huge argument lists
    Row("large-text-argv-cold", acts.huge_argv(256 * 1024, warm=False, piece=h.TEXT_PIECE), works()),
    Row("binary-argv-cold", acts.huge_argv(1024, warm=False), works(),
        fixed_on="not fixed yet: the runtime's JSON engine configuration replaces bytes that are not UTF-8"),
    Row("huge-argv-warm", acts.huge_argv(ARG_MAX - 64 * 1024, warm=True), works()),
    Row("argv-at-the-limit-warm", acts.huge_argv(0, warm=True), works()),
    Row("argv-at-the-limit-cold", acts.huge_argv(0, warm=False),
        (error("argument size limit|Argument list too long"),)),
    # rows for what other branches fix
    Row("two-updates-at-once", acts.two_updates_at_once, (acts.every_update_kept, h.existing_works)),
    Row("new-over-an-installation", acts.new_over_installation, (h.succeeded, h.new_prefix_works)),
    Row("build-directory-missing", acts.build_directory("{home}/not/yet"), (h.succeeded, h.new_prefix_works)),
    Row("build-directory-relative", acts.build_directory("relative/builds"), failed("absolute")),
]


def param(row: Row):  # type: ignore[no-untyped-def]
    reason = row.fixed_on if " " in row.fixed_on else f"fixed on branch {row.fixed_on}"
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if row.fixed_on else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.fixture
def scene(request, who, pyz, user_dirs, pip_installation, test_user):  # type: ignore[no-untyped-def]
    row = request.node.callspec.params["row"]
    home = make_owned_dir(user_dirs[who.name] / "hostile" / row.id, who)
    made = h.Scene(who=who, other=user_named("root") if not who.is_root else test_user, pyz=pyz, home=home,
                   builds=make_owned_dir(home / "builds", who), cwd=make_owned_dir(home / "cwd", who),
                   existing=pip_installation, filesystems={})
    yield made
    for cleanup in reversed(made.cleanups):
        cleanup()
    subprocess.run(["rm", "-rf", str(home)], check=False)


def test_ids_are_unique_and_documented():
    assert len({row.id for row in ROWS}) == len(ROWS) >= 40
    lines = (REPO / "docs" / "reliability.md").read_text().splitlines()
    documented = [line.split("|")[1].split("*")[0].strip() for line in lines if line.startswith("| ")]
    assert [row.id for row in ROWS] == documented[1:]


@pytest.mark.parametrize("row", [param(row) for row in ROWS])
def test_hostile(row: Row, scene) -> None:  # type: ignore[no-untyped-def]
    outcome = row.act(scene)
    for check in row.holds:
        check(scene, outcome)
