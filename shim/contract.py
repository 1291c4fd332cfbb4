"""The contract between the builder and the launcher: the manifest and the policies both apply.

The manifest (<prefix>/_tykky/manifest.json) is the one file the launcher reads: its path, its
format version, every key with its type and, for a key a manifest may lack, its default; the
reader, which converts what an older builder wrote into the current format; and what is wrong
with a manifest that parses but does not fit (asked only after an unexpected error). The builder
(src/tykky/manifest.py) writes through MANIFEST_SCHEMA and reads back through `upgraded`.

Imported by the launcher on every launch (installed as tykky_contract.py, byte-compiled): stdlib
only, Python >= 3.6, and no import at module level.
"""

MANIFEST_PATH = "_tykky/manifest.json"
# The format of what the builder writes. A key added with a default needs no new format: older
# manifests get the default. A change an older manifest cannot be read by (a renamed key, a new
# meaning) takes a new format and a conversion in UPGRADES from the one before.
FORMAT = 1
UPGRADES = {}  # format N -> function turning a manifest of format N into one of format N + 1


class Default:
    """A key a manifest may leave out, and the value it then has."""
    __slots__ = ("schema", "value")

    def __init__(self, schema, value):
        self.schema = schema
        self.value = value


# What a manifest holds: a type, [schema of every item], {key: schema} ("*" is every key), a tuple
# of schemas of which one must fit, or Default(schema, value) for a key that may be missing.
STRINGS = [str]
PATH_VARIABLE = {"prepend": Default(STRINGS, []), "append": Default(STRINGS, []), "container": Default(str, "")}
MANIFEST_SCHEMA = {
    "format": int, "tool_version": str, "build_id": str, "mode": str,
    "runtime": {"path": str, "name": str, "version": Default(str, "")},
    "container": str,
    # mount "overlay": stacked at the container root; "image-src": bound at target.
    "layers": [{"image": str, "target": str, "mount": Default(str, "image-src"), "size": Default(int, 0)}],
    "installation_path": str,
    "binds": {"isolate": bool, "mount_points": Default(STRINGS, []), "excluded_mount_points": Default(STRINGS, [])},
    "targets": {"*": str},
    "path": Default(PATH_VARIABLE, {}), "ld_library_path": Default(PATH_VARIABLE, {}),
    "environment": Default({"*": str}, {}),
    "environ_file": Default(str, ""), "shell": Default(str, "/bin/sh"),
    "direct_targets": Default(STRINGS, []), "prefix_on_path": Default(bool, True),
    "marker": Default((type(None), {"path": str, "value": str}), None),
    "python": Default((type(None), dict), None),
    "warm": Default({"enabled": Default(bool, False), "idle_timeout": Default((int, float), 300)}, {}),
    "activation": Default((type(None), {"environment": Default({"*": str}, {}), "prepend": Default({"*": STRINGS}, {}),
                                        "append": Default({"*": STRINGS}, {}), "scripts": Default(str, "")}), None),
    "share_step_container": Default(bool, False),
    "gpu": Default(str, ""),  # "nv" or "rocm": the runtime's flag at every launch
}
GPU_FLAGS = {"nv": ["--nv"], "rocm": ["--rocm"]}
# Where the runtime puts the host's libraries (--nv, --rocm); always last on LD_LIBRARY_PATH.
RUNTIME_LIBRARY_DIR = "/.singularity.d/libs"


class Damaged(ValueError):
    """The manifest cannot be read as tykky writes it; the message says what is wrong."""


def read_manifest(prefix, copy=None):
    """The manifest of the installation at prefix, in the current format with every default:
    from copy (what manifest_copy made, which the launcher stub carries) while manifest.json is
    the file it was copied from, else from the file."""
    path = prefix + "/" + MANIFEST_PATH
    if copy is not None and file_identity(path) == copy["identity"]:
        return upgraded(copy["manifest"])
    try:
        manifest = read_json(path)
    except OSError as error:
        raise Damaged("its manifest %s cannot be read (%s)" % (path, error.strerror or error)) from None
    except ValueError as error:
        raise Damaged("its manifest %s is not valid JSON (%s)" % (path, error)) from None
    if not isinstance(manifest, dict):
        raise Damaged("its manifest %s holds no JSON object" % path)
    try:
        return upgraded(manifest)
    except Damaged as error:
        raise Damaged("its manifest %s %s" % (path, error)) from None


def manifest_copy(prefix):
    """manifest.json as parsed, with the identity of the file it was read from, for the launcher
    stub to carry (a launch then opens no manifest: a metadata request on a parallel filesystem);
    None when it is not a manifest this version reads."""
    import os

    path = prefix + "/" + MANIFEST_PATH
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            identity = identity_of(os.fstat(handle.fileno()))
        if manifest_problem(upgraded(parse_json(data))):
            return None
        # As parsed, not converted: a launch converts the copy as it converts the file.
        return {"manifest": parse_json(data), "identity": identity}
    except (OSError, ValueError, AttributeError):
        return None


def file_identity(path):
    import os

    try:
        return identity_of(os.stat(path))
    except OSError:
        return None


def identity_of(info):
    """Which file a manifest is: inode and size (a manifest is replaced by a rename, never
    rewritten in place). Not its time stamps: parallel filesystem clients differ in their precision."""
    return [info.st_ino, info.st_size]


def upgraded(manifest):
    """A manifest (a dict as parsed) of any format this version reads, in the current format."""
    version = manifest.get("format")
    if type(version) is not int or not 1 <= version <= FORMAT:
        raise Damaged("is of format %r, which this tykky does not read (written by another version)" % (version,))
    while version < FORMAT:
        manifest = UPGRADES[version](manifest)
        version += 1
        manifest["format"] = version
    return with_defaults(manifest, MANIFEST_SCHEMA)


def with_defaults(value, schema=MANIFEST_SCHEMA):
    """value with the default of every key it leaves out, at every level (changed in place)."""
    if isinstance(schema, Default):
        schema = schema.schema
    if isinstance(schema, tuple):
        schema = next((option for option in schema if isinstance(option, dict)), None)
    if isinstance(schema, list) and isinstance(value, list) and isinstance(schema[0], dict):
        for item in value:
            with_defaults(item, schema[0])
    elif isinstance(schema, dict) and isinstance(value, dict):
        for key, inner in schema.items():
            if key in value:
                if not isinstance(inner, type):
                    with_defaults(value[key], inner)
            elif isinstance(inner, Default):
                default = inner.value
                value[key] = with_defaults(type(default)(default), inner) if isinstance(default, (dict, list)) \
                    else default
    return value


def read_json(path):
    """The value of a JSON file; ValueError saying what is wrong with its text, OSError as raised."""
    with open(path, "rb") as handle:
        return parse_json(handle.read())


def parse_json(data):
    """The value of JSON text (bytes); ValueError saying what is wrong with it."""
    try:
        # The C scanner avoids importing json (and with it re), which costs more than everything
        # else the launcher does. On bad input it raises whatever it meets (StopIteration,
        # SystemError, ...): then json itself reads the text again, to say what is wrong.
        text = data.decode("utf-8")
        value, end = json_scanner()(text, 0)
        if not text[end:].strip():
            return value
    except Exception:  # noqa: BLE001 - see above
        pass
    if not data.strip():
        raise ValueError("the file is empty")
    import json

    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - nesting too deep and the like: damaged all the same
        raise ValueError(str(error)) from None


_scanner = []


def json_scanner():
    if not _scanner:
        import _json

        class Context:
            strict = True
            object_hook = None
            object_pairs_hook = None
            parse_float = float
            parse_int = int
            parse_constant = None
            memo = {}

        _scanner.append(_json.make_scanner(Context()))
    return _scanner[0]


def manifest_problem(manifest):
    """How the manifest departs from the contract ("layers[0] has no image"), or None."""
    return schema_problem(manifest, MANIFEST_SCHEMA)


def schema_problem(value, schema, where=""):
    """How value departs from schema ("layers[0] has no image"), or None."""
    if isinstance(schema, Default):
        schema = schema.schema
    if isinstance(schema, tuple):
        problems = [schema_problem(value, alternative, where) for alternative in schema]
        return None if None in problems else problems[-1]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return "%s is not a list" % (where or "it")
        problems = (schema_problem(item, schema[0], "%s[%d]" % (where, i)) for i, item in enumerate(value))
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            return "%s is not an object" % (where or "it")
        missing = [key for key in schema if key != "*" and not isinstance(schema[key], Default) and key not in value]
        if missing:
            return "%s has no %s" % (where or "it", missing[0])
        problems = (schema_problem(value[key], schema[pattern], where + "." + key if where else key)
                    for pattern in schema for key in (value if pattern == "*" else [pattern]) if key in value)
    elif schema is int and isinstance(value, bool):
        return "%s is not a number" % where
    else:
        return None if isinstance(value, schema) else "%s is not %s" % (where, TYPE_NAMES.get(schema, "a number"))
    return next((problem for problem in problems if problem), None)


TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", type(None): "null", int: "a number"}


def version_tuple(text):
    """'1.4.5' (or '1.4.5-rc.1', '4.1.0+5') -> (1, 4, 5): the runtime's version, as both compare it."""
    numbers = []
    for part in text.split("-", 1)[0].split("."):
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers)


# The runtime's variables (APPTAINER_*, SINGULARITY_*) kept from the caller's environment; the
# others are ours to set, or leak from a parent container (a job submitted from inside one) and
# would redirect or break a launch or a build. NV, ROCM and NVCCLI are the user asking for GPUs.
GPU_REQUESTS = ("NV", "ROCM", "NVCCLI")
KEPT_AT_LAUNCH = ("CACHEDIR", "TMPDIR", "CONFIGDIR", "MESSAGELEVEL", "DISABLE_CACHE") + GPU_REQUESTS
# A build reads the runtime's output (stderr with stdout): the caller's message level would mix
# the runtime's messages into what it parses. It keeps what the build is run with, as before.
KEPT_IN_BUILDS = ("CACHEDIR", "TMPDIR") + GPU_REQUESTS
RUNTIME_FAMILIES = ("APPTAINER", "SINGULARITY")


def without_runtime_variables(environ, kept=KEPT_AT_LAUNCH):
    """environ without the runtime's variables except kept (names after APPTAINER_), and
    without every APPTAINERENV_/SINGULARITYENV_ variable: those are the launch's own to set."""
    cleaned = {}
    for key, value in environ.items():
        for family in RUNTIME_FAMILIES:
            if key.startswith(family + "_") and key[len(family) + 1:] not in kept:
                break
            if key.startswith(family + "ENV_"):
                break
        else:
            cleaned[key] = value
    return cleaned
