"""Is the database on a network file system? SQLite's locking cannot be trusted there.

SMB/CIFS and NFS shares often do not honour the file locks SQLite relies on, and WAL mode
needs shared memory between the processes on one machine; two auditors saving at once could
then corrupt the file. We read ``/proc/mounts`` (Linux) and warn; the README's "Network
drives" section says what to do instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

NETWORK_TYPES = {
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "afs", "ceph", "glusterfs",
    "lustre", "gpfs", "9p", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "davfs", "fuse.davfs2",
}
README_ADVICE = "README.md, section \"Network drives\""


class NetworkFilesystemWarning(UserWarning):
    """The database sits on a network file system (printed once per database file)."""


_warned: set[str] = set()


def warn_if_network(path: str | os.PathLike, mounts: str | os.PathLike = "/proc/mounts"
                    ) -> str | None:
    """Warn (once per file) when ``path`` is on a network file system; return its type."""
    fstype = network_filesystem(path, mounts)
    if fstype and str(path) not in _warned:
        _warned.add(str(path))
        warnings.warn(warning_text(path, fstype), NetworkFilesystemWarning, stacklevel=3)
    return fstype


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash in octal (\040 ...).
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def network_filesystem(path: str | os.PathLike, mounts: str | os.PathLike = "/proc/mounts"
                       ) -> str | None:
    """The network file-system type ``path`` lives on (e.g. 'cifs'), or None if local/unknown."""
    try:
        lines = Path(mounts).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None  # not Linux, or no /proc: nothing to say
    target = Path(os.path.realpath(path))
    best, best_type = None, None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point, fstype = Path(_unescape(parts[1])), parts[2]
        if (target == point or point in target.parents) and (
                best is None or len(point.parts) > len(best.parts)):
            best, best_type = point, fstype
    if best_type and (best_type in NETWORK_TYPES or best_type.split(".")[0] in {"nfs", "cifs"}):
        return best_type
    return None


def warning_text(path: str | os.PathLike, fstype: str) -> str:
    return (f"the database {path} is on a network drive ({fstype}). SQLite cannot rely on file "
            "locking there, so two people saving at once may damage it. Keep the database on "
            f"the server's own disk and share the app instead: see {README_ADVICE}.")
