"""results_schema - check a parsed result document against docs/results.md.

Contract
--------
``check_document(document)`` returns None when ``document`` (the value
``json.loads`` made of a file written by ``mtasim run --json``) has the shape
docs/results.md documents, else a one-line message starting with the JSON
path of the first bad value, e.g.
``$.runs[2].messages[0].fate: should be a string, got 5``.

Checked, so that the report generators never meet a value they cannot
handle:

* every documented field has its documented type when present (``null``
  only where the document says "or null"); ``file``, ``verdict`` and
  ``exit_code`` are required in a run, ``passed`` in an expectation;
  ``verdict`` and ``fate``/``outcome`` take their documented words;
* integers fit in 64 bits (times are microseconds; nothing larger is
  ever written), numbers are finite;
* every string, key included, is valid Unicode (JSON escapes can spell a
  lone UTF-16 surrogate, which no UTF-8 output can hold);
* nesting is at most MAX_DEPTH deep anywhere, unknown keys included.

Unknown keys are allowed (newer writers may add some) but are checked
for depth and Unicode like the rest.  Only the Python standard library.
"""

import json
import math

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(1 << 63), (1 << 64) - 1

VERDICTS = ("pass", "fail", "error", "invariant", "plugin")
FATES = ("delivered", "bounced", "deferred", "partial")
OUTCOMES = ("refused", "unreachable", "timeout", "quit", "reset", "remote-closed", "closed",
            "open")

# Type words: "int", "num", "str", "bool", "obj", "list"; a "?" suffix admits null.
EXPECTATION = {"line": "int", "text": "str", "passed": "bool", "diff": "str?"}
MESSAGE = {"id": "int", "fate": "str", "done_at_us": "int?", "attempts": "int",
           "recipients": "int", "delivered": "int", "failed": "int", "pending": "int",
           "last_error": "str?"}
CONNECTION = {"fd": "int", "src": "str?", "remote": "str?", "domain": "str?", "binding": "str?",
              "opened_us": "int?", "established_us": "int?", "closed_us": "int?",
              "commands": "list", "replies": "list", "data_bytes": "int", "rx_bytes": "int",
              "error": "str?", "outcome": "str"}
RUN = {"file": "str", "scenario": "str?", "seed": "int?", "verdict": "str", "exit_code": "int",
       "digest": "str?", "expectations": "list", "messages": "list", "violations": "list",
       "error": "str?", "events": "int", "end_us": "int", "connections": "int",
       "trace_records": "int", "connection_log": "list", "conn_err": "obj", "trace": "list",
       "wall_ms": "num"}
RUN_REQUIRED = ("file", "verdict", "exit_code")

TYPE_WORDS = {"int": "an integer", "num": "a number", "str": "a string", "bool": "true or false",
              "obj": "an object", "list": "an array"}


class Bad(Exception):
    """The first problem found: (path, message)."""


def _key_path(path, key):
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _shown(value):
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _is(value, word):
    if word == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if word == "num":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if word == "str":
        return isinstance(value, str)
    if word == "bool":
        return isinstance(value, bool)
    if word == "obj":
        return isinstance(value, dict)
    return isinstance(value, list)


def _want(value, word, path):
    nullable = word.endswith("?")
    word = word.rstrip("?")
    if value is None and nullable:
        return
    if not _is(value, word):
        raise Bad(f"{path}: should be {TYPE_WORDS[word]}{' or null' if nullable else ''}, "
                  f"got {_shown(value)}")


def _fields(obj, spec, path, required=()):
    if not isinstance(obj, dict):
        raise Bad(f"{path}: should be an object, got {_shown(obj)}")
    for key in required:
        if key not in obj:
            raise Bad(f"{path}: missing \"{key}\"")
    for key, word in spec.items():
        if key in obj:
            _want(obj[key], word, _key_path(path, key))


def _one_of(obj, key, words, path):
    if key in obj and obj[key] not in words:
        raise Bad(f"{_key_path(path, key)}: should be one of {', '.join(words)}, "
                  f"got {_shown(obj[key])}")


def _each(items, path, check):
    for i, item in enumerate(items):
        check(item, f"{path}[{i}]")


def _check_run(run, path):
    _fields(run, RUN, path, RUN_REQUIRED)
    _one_of(run, "verdict", VERDICTS, path)
    _each(run.get("expectations") or [], f"{path}.expectations",
          lambda e, p: _fields(e, EXPECTATION, p, ("passed",)))
    _each(run.get("messages") or [], f"{path}.messages", _check_message)
    _each(run.get("violations") or [], f"{path}.violations", lambda v, p: _want(v, "str", p))
    _each(run.get("connection_log") or [], f"{path}.connection_log", _check_connection)
    if "conn_err" in run:
        _check_conn_err(run["conn_err"], f"{path}.conn_err")
    _each(run.get("trace") or [], f"{path}.trace", _check_record)


def _check_message(msg, path):
    _fields(msg, MESSAGE, path)
    _one_of(msg, "fate", FATES, path)


def _check_connection(conn, path):
    _fields(conn, CONNECTION, path)
    _one_of(conn, "outcome", OUTCOMES, path)
    _each(conn.get("commands") or [], f"{path}.commands", lambda v, p: _want(v, "str", p))
    _each(conn.get("replies") or [], f"{path}.replies", lambda v, p: _want(v, "int?", p))


def _check_conn_err(conn_err, path):
    _fields(conn_err, {"initiate": "obj", "initiate_fd": "int", "failures": "obj"}, path)
    for key in ("initiate", "failures"):
        for name, count in (conn_err.get(key) or {}).items():
            _want(count, "int", _key_path(_key_path(path, key), name))


def _check_record(rec, path):
    """[t_us, kind, name, {key: number or string}]."""
    if not (isinstance(rec, list) and len(rec) == 4):
        raise Bad(f"{path}: should be [t_us, kind, name, {{fields}}], got {_shown(rec)}")
    _want(rec[0], "int", f"{path}[0]")
    _want(rec[1], "str", f"{path}[1]")
    _want(rec[2], "str", f"{path}[2]")
    _want(rec[3], "obj", f"{path}[3]")
    for key, value in rec[3].items():
        if not (_is(value, "num") or _is(value, "str")):
            raise Bad(f"{_key_path(f'{path}[3]', key)}: should be a number or a string, "
                      f"got {_shown(value)}")


def _check_values(document):
    """Depth, Unicode and number range everywhere, without recursion."""
    stack = [(document, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Bad(f"{path}: nested more than {MAX_DEPTH} deep")
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                raise Bad(f"{path}: {_shown(value)} does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Bad(f"{path}: not a finite number")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{path} (a key)")
                stack.append((item, _key_path(path, key), depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, f"{path}[{i}]", depth + 1))


def _check_text(text, path):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise Bad(f"{path}: not valid Unicode (a lone surrogate U+{ord(bad):04X})") from None


def check_document(document):
    """None when document has the documented shape, else a one-line message."""
    try:
        _check_values(document)
        if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
            raise Bad("$: not an mtasim result file (no \"runs\" list; see docs/results.md)")
        _each(document["runs"], "$.runs", _check_run)
    except Bad as bad:
        return str(bad)
    return None
