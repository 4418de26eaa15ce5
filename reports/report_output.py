"""report_output - write several report files all or nothing, never replacing what is not a file.

Contract
--------
``write_outputs([(path, text), ...])`` writes every output or, when one
cannot be written, raises ``OutputError`` (one line naming the path and
why) having left no regular file written or changed and no temporary file
behind.  ``-`` is standard output.

What sits at a path decides how it is written (docs/cli.md, "Where the
reports go"):

* nothing, or a regular file: the text goes to a new temporary file in the
  same directory, which is renamed over the path once every output has been
  staged, so a reader never sees half a report and a failure leaves the old
  file as it was.  A replaced file keeps its permission bits;
* a symbolic link: written through, as a shell redirection does - the link
  stays and what it points to (a regular file, or nothing yet) is written as
  above; a link to a device or FIFO is written through like one;
* a character device or a FIFO (``/dev/stdout``, ``/dev/null``, a named
  pipe a CI step reads): opened and written in place, every write and the
  close checked (``/dev/full`` gives "No space left on device").  It is
  never unlinked or renamed over;
* anything else (a directory, a socket, a block device): refused.

Order: the regular files are staged first (nothing visible yet), then the
streams (standard output, devices, FIFOs) are written, then the staged
files are renamed into place.  A stream is written only when every file
could be staged, and the files appear only when every stream was written;
bytes a stream took before a later stream failed cannot be taken back.

Only the Python standard library is used.
"""

import os
import stat
import sys
import tempfile


class OutputError(Exception):
    """An output that cannot be written; str() is the one-line message."""


def _reason(exc):
    return exc.strerror or str(exc)


def _classify(path):
    """("file", real path) for a regular file or nothing there yet,
    ("stream", path) for a character device or FIFO; OutputError otherwise.
    A symbolic link is followed to what it names."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return "file", real
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    if stat.S_ISREG(st.st_mode):
        return "file", real
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return "stream", path
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file, device or FIFO"
    raise OutputError(f"cannot write {path}: {kind}")


def _stage(path, real, data):
    """A temporary file next to real holding data, with the mode real has (or
    a new file would get); its path.  OutputError (and no file) on failure."""
    folder = os.path.dirname(real) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp",
                                   dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
    except OSError as exc:
        _unlink(tmp)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    return tmp


def _write_stream(path, data):
    """Write data to standard output (path "-") or to the device/FIFO at path."""
    name = "standard output" if path == "-" else path
    try:
        if path == "-":
            sys.stdout.flush()
            fd, close = sys.stdout.fileno(), False
        else:
            # O_NOFOLLOW is not wanted: a link to /dev/stdout is written through.
            fd, close = os.open(path, os.O_WRONLY), True
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            if close:
                os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {_reason(exc)}") from None


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_outputs(outputs):
    """Write each (path, text) of outputs, all or nothing (see the contract)."""
    plan = []
    for path, text in outputs:
        data = text.encode("utf-8")
        if path == "-":
            plan.append(("stream", path, path, data))
        else:
            kind, target = _classify(path)
            plan.append((kind, path, target, data))
    staged = []         # (tmp, target)
    try:
        for kind, path, target, data in plan:
            if kind == "file":
                staged.append((_stage(path, target, data), target))
        for kind, path, _target, data in plan:
            if kind == "stream":
                _write_stream(path, data)
        while staged:
            tmp, target = staged[0]
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {_reason(exc)}") from None
            staged.pop(0)
    finally:
        for tmp, _target in staged:
            _unlink(tmp)
