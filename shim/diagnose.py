"""What is wrong with a manifest that parses: loaded by the launcher only after an unexpected
error, to tell a damaged installation from a bug. Stdlib only, Python >= 3.6."""

# What the launcher reads of a manifest: a type, [schema of every item], {key: schema} ("?key"
# may be missing, "*" is every key), or a tuple of schemas of which one must fit.
STRINGS = [str]
PATH_VARIABLE = {"?prepend": STRINGS, "?append": STRINGS, "?container": str}
MANIFEST_SCHEMA = {
    "build_id": str, "container": str, "targets": {"*": str},
    "runtime": {"path": str, "name": str, "?version": str},
    "layers": [{"image": str, "target": str, "?mount": str}],
    "binds": {"isolate": bool, "?mount_points": STRINGS, "?excluded_mount_points": STRINGS},
    "?path": PATH_VARIABLE, "?ld_library_path": PATH_VARIABLE, "?environment": {"*": str},
    "?environ_file": str, "?shell": str, "?direct_targets": STRINGS, "?prefix_on_path": bool,
    "?marker": (type(None), {"path": str, "value": str}), "?warm": dict, "?share_step_container": bool,
    "?cleanenv": bool, "?gpu": str,
    "?activation": (type(None), {"?environment": {"*": str}, "?prepend": {"*": STRINGS},
                                 "?append": {"*": STRINGS}, "?scripts": str}),
}


def schema_problem(value, schema, where=""):
    """How value departs from schema ("layers[0] has no image"), or None."""
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
        missing = [key for key in schema if key[0] not in "?*" and key not in value]
        if missing:
            return "%s has no %s" % (where or "it", missing[0])
        problems = (schema_problem(value[key], schema[pattern], where + "." + key if where else key)
                    for pattern in schema for key in (value if pattern == "*" else [pattern.lstrip("?")])
                    if key in value)
    else:
        return None if isinstance(value, schema) else "%s is not %s" % (where, TYPE_NAMES[schema])
    return next((problem for problem in problems if problem), None)


TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", type(None): "null"}


def manifest_problem(manifest):
    """How the manifest departs from what the launcher reads ("layers[0] has no image"), or None."""
    return schema_problem(manifest, MANIFEST_SCHEMA)
