"""Runtime launcher of a tykky installation.

Every program in <prefix>/bin is a symlink to <prefix>/_tykky/launcher, a stub that carries
the byte code of this module and of the contract (copied to <prefix>/_tykky/tykky_launcher.py,
tykky_contract.py; see layout.LAUNCHER_STUB) and runs them. It reads the installation's manifest
through the contract (the keys, their defaults, the formats; the stub's copy of it while that is
current), builds the runtime's bind list and environment and replaces itself
with the container runtime, which starts the program at the path it was invoked by (through a
user's own link: by the installation's or the venv's entry the link leads to): inside the
container <prefix>/bin is covered by <prefix>/_bin, whose entries point at the real programs, so
argv[0], sys.executable and venvs on top behave as in a native installation.

Stdlib only, Python >= 3.6, no site, one exec: start-up time is paid on every launch.
"""
import os
import stat
import sys

try:
    import tykky_contract as contract  # next to the installed launcher
except ImportError:  # the builder's tykky_shim.launcher, or shim/launcher.py run as a script
    from tykky_shim import contract

LAUNCHER = "_tykky/launcher"
CONTAINER_MARK = "/.singularity.d"
NEVER_BIND = ("dev", "proc", "sys")
PATH_LIKE = ("PATH", "LD_LIBRARY_PATH")
# Filled by the stub (<prefix>/_tykky/launcher): "modules", the byte code of the launcher's
# modules by name, and "manifest", the contract's copy of manifest.json (contract.manifest_copy).
EMBEDDED = {}


class LaunchError(Exception):
    pass


def damaged(prefix, what):
    return LaunchError("the installation at %s is damaged: %s. Rebuild it with the command that made it "
                       "(recorded in %s/share/tykky/history) or restore it from a copy" % (prefix, what, prefix))


def read_manifest(prefix):
    """The manifest as the contract reads it: current format, every default filled in; from the
    stub's copy while manifest.json is the file it was copied from (a stat, which a parallel
    filesystem's client answers from its cache, instead of an open, a metadata request)."""
    try:
        return contract.read_manifest(prefix, EMBEDDED.get("manifest"))
    except contract.Damaged as error:
        raise damaged(prefix, str(error)) from None


def check_images(prefix, container, manifest):
    """The container and every layer must be readable: else the runtime fails with a message
    that does not say which installation is damaged. Only cold launches pay this."""
    for path, size in [(container, 0)] + [(os.path.join(prefix, layer["image"]), layer["size"])
                                          for layer in manifest["layers"]]:
        if not os.access(path, os.R_OK):
            problem = "cannot be read" if os.path.lexists(path) else "is missing"
            raise damaged(prefix, "its image %s %s" % (path, problem))
        if size and os.stat(path).st_size != size:
            raise damaged(prefix, "its image %s has %d bytes, not the %d it was built with (truncated or "
                                  "half-copied)" % (path, os.stat(path).st_size, size))


def resolve_invocation(invoked, prefix):
    """(program name, path to run it by, bin directory of a venv on top or None).

    The name is that of the last link before the launcher: a venv's python -> <prefix>/bin/python
    -> launcher gives python. The program runs by the first path of the chain next to which
    Python finds its installation: an entry of a venv's bin/ (pyvenv.cfg one level up), else the
    installation's own bin/<name>. A user's own link elsewhere (~/bin/mypython) would leave
    Python looking for pyvenv.cfg next to that link, and start without the installation.
    """
    path = os.path.abspath(invoked)
    links = []
    while True:
        try:
            if not stat.S_ISLNK(os.lstat(path).st_mode):
                break
        except OSError:
            # A "../" taken lexically after a symlinked directory (~/pbin -> <prefix>/bin).
            path = None
            break
        links.append(path)
        if len(links) > 40:
            raise LaunchError("too many levels of symbolic links at %s" % invoked)
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    if not links:
        return os.path.basename(os.path.abspath(invoked)), os.path.abspath(invoked), None
    name = os.path.basename(links[-1])
    for link in links[:-1]:
        if os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(link)), "pyvenv.cfg")):
            return name, link, os.path.dirname(link)
    wrapper = links[-1]
    if path != os.path.join(os.path.dirname(os.path.dirname(wrapper)), LAUNCHER):
        # A link straight to the launcher, or one whose path cannot be followed lexically.
        wrapper = os.path.join(prefix, "bin", name)
    return name, wrapper, None


def top_level_binds(excluded):
    binds = []
    for entry in sorted(os.listdir("/")):
        full = "/" + entry
        if entry in NEVER_BIND or full in excluded:
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            binds.append(full)
    return binds


def bind_list(manifest, prefix):
    policy = manifest["binds"]
    excluded = set(policy["excluded_mount_points"])
    if policy["isolate"]:
        # The runtime mounts /tmp, /var/tmp and $HOME itself; binding them again only warns.
        own = ("/tmp", "/var/tmp", os.environ.get("HOME", "").rstrip("/"))
        binds = [p for p in policy["mount_points"] if os.path.isdir(p) and p.rstrip("/") not in own]
        binds.append(prefix)
        tmpdir = os.environ.get("TMPDIR")
        if tmpdir and os.path.isdir(tmpdir) and not any(overlaps(tmpdir, path) for path in own[:2]):
            binds.append(tmpdir)
    else:
        binds = top_level_binds(excluded)
    # A tree mounted at a host path (wrap-install --mask): a bind over it would hide the image
    # or make the runtime create the path on the host, so its top-level directory stays out.
    targets = [layer["target"] for layer in manifest["layers"]]
    binds = [b for b in binds if not any(overlaps(bind_destination(b), t) for t in targets)]
    if not is_visible_inside(prefix, binds, True):
        binds.append(prefix)
    extra = os.environ.get("CW_EXTRA_BIND_MOUNTS", "")
    binds.extend(b for b in extra.split(",") if b)
    binds.append("%s/_bin:%s/bin" % (prefix, prefix))
    for layer in manifest["layers"]:
        if layer["mount"] == "image-src":
            binds.append("%s/%s:%s:image-src=/,ro" % (prefix, layer["image"], layer["target"]))
    return binds


def overlay_images(manifest, prefix):
    """Layers stacked at the container root, the later ones winning."""
    return ["%s/%s:ro" % (prefix, layer["image"]) for layer in manifest["layers"]
            if layer["mount"] == "overlay"]


def bind_destination(bind):
    return bind.split(":")[1] if ":" in bind else bind


def overlaps(path, target):
    """Whether a bind at path would hide target, or lie inside it; "/" is never bound."""
    path, target = path.rstrip("/"), target.rstrip("/")
    if not path or not target:
        return False
    return path == target or target.startswith(path + "/") or path.startswith(target + "/")


def default_mount_flags(manifest):
    """The runtime's own home, tmp and cwd mounts, left out where they would hide a layer."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    skipped = []
    for name, paths in (("home", [os.environ.get("HOME", "")]), ("tmp", ["/tmp", "/var/tmp"]), ("cwd", [cwd])):
        for layer in manifest["layers"]:
            if any(path and overlaps(path, layer["target"]) for path in paths) and name not in skipped:
                skipped.append(name)
    return ["--no-mount", ",".join(skipped)] if skipped else []


def runtime_own_mounts(manifest):
    """What the runtime itself mounts from the host: home, /tmp, /var/tmp, unless left out."""
    skipped = default_mount_flags(manifest)[1:]
    skipped = skipped[0].split(",") if skipped else []
    mounts = []
    if "home" not in skipped and os.environ.get("HOME"):
        mounts.append(os.environ["HOME"])
    if "tmp" not in skipped:
        mounts += ["/tmp", "/var/tmp"]
    return mounts


def restore_signals():
    """Python ignores SIGPIPE and SIGXFSZ; exec keeps ignored signals ignored, so put back
    what the program would get from a shell (the `signal` module costs more to import)."""
    import _signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(_signal, name, None)
        if number is not None:
            _signal.signal(number, _signal.SIG_DFL)


def is_visible_inside(path, binds, isolate):
    """Whether path is under one of the binds (isolate is kept for callers; the binds say it all)."""
    for bind in binds:
        destination = bind_destination(bind)
        if path == destination or path.startswith(destination.rstrip("/") + "/"):
            return True
    return False


def join_path(parts):
    seen = set()
    result = []
    for part in parts:
        for entry in part.split(":") if part else []:
            if entry and entry not in seen:
                seen.add(entry)
                result.append(entry)
    return ":".join(result)


def conda_activation(manifest, venv_bin):
    """A conda installation's activation (computed at build time), applied as Tykky does: not
    through a venv made on top unless CW_FORCE_CONDA_ACTIVATE, never with CW_NO_CONDA_ACTIVATE."""
    activation = manifest["activation"]
    if not activation or os.environ.get("CW_NO_CONDA_ACTIVATE"):
        return None
    if venv_bin and not os.environ.get("CW_FORCE_CONDA_ACTIVATE"):
        return None
    return activation


def with_activate_scripts(manifest, venv_bin, command):
    """activate_scripts_at_launch: the env's activate.d scripts run inside, before the program."""
    activation = conda_activation(manifest, venv_bin)
    if not activation or not activation["scripts"]:
        return command
    script = 'for f in "$0"/*.sh; do [ -f "$f" ] && . "$f"; done; exec "$@"'
    return [manifest["shell"], "-c", script, activation["scripts"]] + command


def container_environment(manifest, prefix, venv_bin):
    """Variables the program must see, keyed by name, values as they are inside."""
    env = dict(manifest["environment"])
    activation = conda_activation(manifest, venv_bin) or {}
    env.update(activation.get("environment", {}))
    isolate = manifest["binds"]["isolate"]
    for name in PATH_LIKE:
        spec = manifest[name.lower()]
        outer = os.environ.get(name, "") if not isolate else spec["container"]
        prepend = list(activation.get("prepend", {}).get(name, [])) + list(spec["prepend"])
        if name == "PATH":
            if manifest["prefix_on_path"]:
                prepend.insert(0, prefix + "/bin")
            if venv_bin:
                prepend.insert(0, venv_bin)
        append = list(spec["append"]) + list(activation.get("append", {}).get(name, []))
        env[name] = join_path(prepend + [outer] + append)
    # Given APPTAINERENV_LD_LIBRARY_PATH, the runtime uses it in place of what the image's
    # %environment computes and appends its library directory (where --nv and --rocm put the host's
    # GPU libraries) to a non-empty value, but leaves an empty one empty. So that directory is left
    # out here, and with nothing of ours to add the variable is not passed at all: the program then
    # gets exactly what a plain `apptainer exec` gives (the image's entries, then the runtime's).
    library_path = ":".join(entry for entry in env.pop("LD_LIBRARY_PATH").split(":")
                            if entry and entry != contract.RUNTIME_LIBRARY_DIR)
    if library_path:
        env["LD_LIBRARY_PATH"] = library_path
    if venv_bin:
        env["VIRTUAL_ENV"] = os.path.dirname(venv_bin)
    return env


def executable_on_path(name):
    """Where exec would find a program: a bare name (`apptainer`, as site configurations may
    give it) on PATH, a path as it is; None if it is not there."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    for directory in os.environ.get("PATH", "").split(":"):
        candidate = os.path.join(directory, name)
        if directory and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def runtime_executable(manifest):
    runtime = manifest["runtime"]
    recorded = executable_on_path(runtime["path"])
    if recorded:
        return recorded
    for name in (runtime["name"], "apptainer", "singularity"):
        candidate = executable_on_path(name)
        if candidate:
            return candidate
    raise LaunchError(
        "the container runtime %s was not found (looked for %s and on PATH); load the module "
        "that provides apptainer or singularity" % (runtime["name"], runtime["path"])
    )


def same_program(path, recorded):
    """Whether path is the program the recorded name or path leads to."""
    if path == recorded:
        return True
    found = executable_on_path(recorded)
    return found is not None and (found == path or os.path.realpath(found) == os.path.realpath(path))


def in_own_container(manifest, prefix):
    """The image's marker file, or without an image (wrap-container) the runtime's record of
    which container runs: the same file as the installation's container."""
    marker = manifest["marker"]
    if marker:
        if not os.path.isfile(marker["path"]):
            return False
        with open(marker["path"]) as handle:
            return handle.read().strip() == marker["value"]
    running = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if not running:
        return False
    ours = os.path.join(prefix, manifest["container"])
    return os.path.normpath(running) == os.path.normpath(ours) or os.path.realpath(running) == os.path.realpath(ours)


def inside_container_command(manifest, prefix, name, args):
    """Called from inside a container: our own one runs the target, any other is an error."""
    if in_own_container(manifest, prefix):
        target = manifest["targets"].get(name)
        if target is None:
            raise LaunchError("%s is not a program of the installation at %s" % (name, prefix))
        return [target] + args
    raise LaunchError(
        "%s/bin/%s was called from inside another container (%s); a tykky installation runs "
        "in its own container: call it from the host, or bind and use that installation's "
        "files differently" % (prefix, name, os.environ.get("APPTAINER_CONTAINER")
                               or os.environ.get("SINGULARITY_CONTAINER", "unknown"))
    )


def program_command(manifest, prefix, name, exec_path, args):
    if name == "_debug_exec":
        if not args:
            raise LaunchError("usage: %s/bin/_debug_exec COMMAND [ARGS...]" % prefix)
        command = list(args)
    elif name == "_debug_shell":
        command = [manifest["shell"]] + list(args)
    elif name in manifest["direct_targets"]:
        command = [manifest["targets"][name]] + list(args)
    elif name in manifest["targets"]:
        command = [exec_path] + list(args)
    else:
        raise LaunchError("%s is not a program of the installation at %s" % (name, prefix))
    environ_file = manifest["environ_file"]
    if environ_file:
        script = '. "$1" && shift && exec "$@"'
        command = ["/bin/sh", "-c", script, "sh", os.path.join(prefix, environ_file)] + command
    return command


# Runs first inside the shared container, in every task of the step on this node ($0 is the
# script itself). Apptainer's first task holds the container, and a task still joining when it
# ends fails: so the first one runs a watcher that removes the arrival directory once every
# local task has joined (or after ~30 s), and when its program is done, waits for the watcher.
# Its runtime forwards signals only to a process group led by the command, else leaves it
# running when the task is cancelled: hence setsid. A signal skips the wait; the program's
# exit code is kept either way.
STEP_SCRIPT = (
    'r=$1 d=$2 n=$3; shift 3\n'
    'if [ "$r" = start ]; then\n'
    '    : > "$d/${SLURM_LOCALID:-$$}"\n'
    '    [ "${APPTAINER_SHARENS_MASTER:-}" = 1 ] || exec "$@"\n'
    '    command -v setsid >/dev/null 2>&1 && exec setsid /bin/sh -c "$0" "$0" leader "$d" "$n" "$@"\n'
    'fi\n'
    '(\n'
    '    i=0\n'
    '    while set -- "$d"/*; [ $# -lt "$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n'
    '    rm -rf "$d"\n'
    ') &\n'
    'w=$!\n'
    'trap "t=1" HUP INT TERM\n'
    '"$@"; s=$?\n'
    '[ -n "${t:-}" ] || wait $w\n'
    'kill $w 2>/dev/null; rm -rf "$d"; exit $s\n'
)


def local_task_count(environ):
    """Tasks of this step on this node: SLURM_STEP_TASKS_PER_NODE is like "2(x3),1"."""
    try:
        node = int(environ.get("SLURM_NODEID", "0"))
        for item in environ["SLURM_STEP_TASKS_PER_NODE"].split(","):
            count, _, repeat = item.partition("(x")
            repeat = int(repeat.rstrip(")")) if repeat else 1
            if node < repeat:
                return int(count)
            node -= repeat
    except (KeyError, ValueError):
        pass
    return 0


def started_as_step_task():
    """True when slurmstepd started this process: then it is launched once per task."""
    try:
        with open("/proc/%d/comm" % os.getppid()) as handle:
            return handle.read().strip() == "slurmstepd"
    except OSError:
        return False


def arrival_directory(environ):
    path = "/dev/shm/tykky-step-%d-%s.%s" % (os.getuid(), environ.get("SLURM_JOB_ID", ""),
                                              environ["SLURM_STEP_ID"])
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(path)
    return path if info.st_uid == os.getuid() and not os.path.islink(path) else None


def step_sharing(manifest, runtime, environ, command):
    """(flags, command) running the local tasks of a Slurm step in one container.

    With --sharens, Apptainer (>= 1.3) runs the tasks that slurmstepd starts in one container:
    one user namespace and one image mount instead of one per task, and MPI ranks can use
    single-copy (CMA) transfers. PMIx's default shared-memory store needs locks that fail in a
    shared user namespace, so its hash store is chosen unless the user chose.
    """
    if not manifest["share_step_container"] or "SLURM_STEP_ID" not in environ:
        return [], command
    recorded = manifest["runtime"]
    if recorded["name"] != "apptainer" or not same_program(runtime, recorded["path"]):
        return [], command
    if contract.version_tuple(recorded["version"]) < (1, 3):
        return [], command
    tasks = local_task_count(environ)
    if tasks < 2 or not started_as_step_task():
        return [], command
    directory = arrival_directory(environ)
    if directory is None:
        return [], command
    if "PMIX_MCA_gds" not in environ:
        environ["PMIX_MCA_gds"] = environ["APPTAINERENV_PMIX_MCA_gds"] = "hash"
    return ["--sharens"], ["/bin/sh", "-c", STEP_SCRIPT, STEP_SCRIPT, "start", directory, str(tasks)] + command


def runtime_environment(manifest, prefix, venv_bin, binds):
    """The caller's environment without runtime variables, plus what the container must see."""
    environ = contract.without_runtime_variables(os.environ)
    for key, value in container_environment(manifest, prefix, venv_bin).items():
        environ["APPTAINERENV_" + key] = value
        environ["SINGULARITYENV_" + key] = value
    environ["APPTAINER_BIND"] = environ["SINGULARITY_BIND"] = ",".join(binds)
    return environ


def runtime_flags(manifest, overlays):
    flags = default_mount_flags(manifest)
    flags += contract.GPU_FLAGS.get(manifest["gpu"], [])
    for overlay in overlays:
        flags += ["--overlay", overlay]
    return flags


def launch(argv):
    invoked = argv[0]
    launcher = os.path.realpath(__file__)
    prefix = os.path.dirname(os.path.dirname(launcher))
    manifest = read_manifest(prefix)
    name, exec_path, venv_bin = resolve_invocation(invoked, prefix)
    args = argv[1:]
    restore_signals()
    if os.path.exists(CONTAINER_MARK):
        command = inside_container_command(manifest, prefix, name, args)
        os.execv(command[0], command)
    binds = bind_list(manifest, prefix)
    isolate = manifest["binds"]["isolate"]
    if not is_visible_inside(exec_path, binds + runtime_own_mounts(manifest), isolate):
        exec_path = os.path.join(prefix, "bin", name)
    command = with_activate_scripts(manifest, venv_bin, program_command(manifest, prefix, name, exec_path, args))
    environ = runtime_environment(manifest, prefix, venv_bin, binds)
    runtime = runtime_executable(manifest)
    container = os.path.join(prefix, manifest["container"])
    overlays = overlay_images(manifest, prefix)
    flags = runtime_flags(manifest, overlays)
    if warm_mounts_wanted(manifest):
        try:
            load_module("warm").warm_exec(runtime, container, flags, environ, manifest, prefix, binds, overlays,
                                          command, read_json=contract.read_json)
        except Exception as error:  # noqa: BLE001 - any failure means: launch cold
            log_debug("warm launch unavailable (%s), launching cold" % error)
    check_images(prefix, container, manifest)
    sharing, command = step_sharing(manifest, runtime, environ, command)
    runtime_argv = [runtime, "-q", "exec"] + flags + sharing + [container] + command
    if os.environ.get("TYKKY_LAUNCHER_DRY_RUN"):
        # Prints what would be exec'd, for benchmarks and debugging; runs nothing.
        changed = dict((k, v) for k, v in environ.items() if os.environ.get(k) != v)
        sys.stdout.write(repr({"argv": runtime_argv, "environment": changed}) + "\n")
        return
    log_debug("exec %r" % (runtime_argv,))
    os.execve(runtime, runtime_argv, environ)


def log_debug(message):
    level = os.environ.get("CW_LOG_LEVEL", "1")
    if level.isdigit() and int(level) > 2:
        sys.stderr.write("tykky launcher: %s\n" % message)


def warm_mounts_wanted(manifest):
    setting = os.environ.get("TYKKY_WARM_MOUNTS", "").lower()
    if setting in ("0", "no", "false", "off") or os.environ.get("TYKKY_LAUNCHER_DRY_RUN"):
        return False
    if os.environ.get("SLURMD_NODENAME") and setting not in ("1", "yes", "true", "on"):
        # In a Slurm job an instance would outlive the job (scancel and time limits must leave
        # nothing running); the tasks of a step share one container through step_sharing.
        return False
    return manifest["warm"]["enabled"] or setting in ("1", "yes", "true", "on")


def load_module(name):
    """A module of the launcher loaded only when needed, by the one name it has in a process
    (tykky_<name>): from the stub's byte code of it, else tykky_<name>.py next to the installed
    launcher, else (in the builder) tykky_shim.<name>."""
    code = EMBEDDED.get("modules", {}).pop(name, None)
    if code is not None:
        module = sys.modules["tykky_" + name] = type(sys)("tykky_" + name)
        module.__file__ = __file__
        exec(code, module.__dict__)
        return module
    try:
        return __import__("tykky_" + name)
    except ImportError:
        return getattr(__import__("tykky_shim." + name), name)


def main():
    try:
        launch(sys.argv)
    except LaunchError as error:
        sys.stderr.write("tykky: %s\n" % error)
        sys.exit(127)
    except OSError as error:
        sys.stderr.write("tykky: cannot start %s: %s\n" % (sys.argv[0], error))
        sys.exit(126)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - one line, never a traceback, unless asked for
        damage = damage_behind()
        sys.stderr.write("tykky: %s\n" % (damage or "cannot start %s: unexpected %s: %s (CW_LOG_LEVEL=3 shows "
                                          "where; please report it)" % (sys.argv[0], type(error).__name__, error)))
        sys.exit(127 if damage else 126)


def damage_behind():
    """The likely cause of an error the launcher did not expect: a manifest that parses but is
    not as the builder wrote it; else None, and with CW_LOG_LEVEL > 2 the traceback."""
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    try:
        manifest = read_manifest(prefix)
    except LaunchError as damage:
        return damage
    try:
        problem = contract.manifest_problem(manifest)
    except Exception:  # noqa: BLE001 - a diagnosis that fails tells nothing
        problem = None
    if problem:
        return damaged(prefix, "its manifest %s is not as tykky writes it: %s"
                       % (os.path.join(prefix, contract.MANIFEST_PATH), problem))
    level = os.environ.get("CW_LOG_LEVEL", "1")
    if level.isdigit() and int(level) > 2:
        import traceback

        traceback.print_exc()
    return None


if __name__ == "__main__":
    main()
