"""The real nginx for tests: run a complete ``nginx.conf`` unprivileged, from a temp dir, until the test ends.

Only what a non-root nginx needs is added to the configuration under test (its access log and temp files in the
temp dir: Debian's compiled-in paths are under /var); the pid file and error log go on the command line.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .waiting import answers, wait_until

__all__ = ["NGINX", "replace_once", "run_nginx"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the nginx.conf under test"
    return text.replace(old, new)


def _unprivileged(conf: str, tmp: Path) -> str:
    private = "".join(
        f"    {name}_temp_path {tmp / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return replace_once(conf, "http {\n", f"http {{\n    access_log {tmp / 'access.log'};\n{private}")


@contextlib.contextmanager
def run_nginx(conf: str, tmp: Path, *, probe: str) -> Iterator[subprocess.Popen[bytes]]:
    """nginx running ``conf`` (checked with ``nginx -t`` first) until the block ends; ``probe`` is a URL that
    answers once it listens."""
    path = tmp / "nginx.conf"
    path.write_text(_unprivileged(conf, tmp))
    command = [NGINX, "-p", str(tmp), "-c", str(path), "-e", str(tmp / "error.log"),
               "-g", f"daemon off; pid {tmp / 'nginx.pid'};"]  # fmt: skip
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t refused the config:\n{checked.stderr}"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or answers(probe), what="nginx to listen")
        assert proc.poll() is None, (tmp / "error.log").read_text()
        yield proc
    finally:
        proc.terminate()  # SIGTERM to the master we started: it stops its workers and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=15)
