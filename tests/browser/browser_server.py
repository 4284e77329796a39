"""A throwaway Jupyter server for the browser tests: temp HOME and Jupyter dirs, this interpreter as kernel.

One ``jupyter lab`` process serves both frontends: JupyterLab at ``/lab`` and Notebook 7 at
``/notebooks`` (the ``notebook`` server extension is loaded by any Jupyter server), so the
session pays for one server start. Both apps expose ``window.jupyterapp``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KERNEL = "hpwidgets-browser"
START_TIMEOUT_S = 120.0  # a cold start on a busy 2-core machine can take a while
# Plugins that pop toasts or dialogs over the page (Jupyter news) or cost time and add nothing here.
DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)


@dataclass
class JupyterServer:
    """A running server: its base URL, token, root directory (notebooks go there) and log file."""

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    root: Path
    log_path: Path

    def url(self, path: str) -> str:
        """A browser URL for ``path`` (e.g. ``lab/tree/x.ipynb``) that logs in with the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, method: str, path: str) -> Any:
        """Call the REST API; the decoded JSON reply (None when empty)."""
        request = urllib.request.Request(f"{self.base_url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def shutdown_kernels(self) -> None:
        """Stop every kernel, so a test's background search does not slow the next test."""
        try:
            for kernel in self.api("GET", "kernels"):
                self.api("DELETE", f"kernels/{kernel['id']}")
        except (OSError, urllib.error.URLError):
            pass  # the server is going away anyway

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then kill whatever is left in its group."""
        self.shutdown_kernels()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # our own session: the server and its kernels
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kernelspec(jupyter_path: Path) -> None:
    """A kernelspec for this very interpreter, so the kernel imports this checkout's hpwidgets."""
    spec_dir = jupyter_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hpwidgets browser test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def server_env(base: Path) -> dict[str, str]:
    """Environment with every per-user directory in ``base``; the venv's data dir stays on the path.

    ``sys.prefix/share/jupyter`` (lab extensions: widgets, anywidget) and ``sys.prefix/etc/jupyter``
    (enabled server extensions) are always searched, whatever JUPYTER_PATH says.
    """
    dirs = {name: base / name for name in ("home", "config", "data", "runtime", "path", "ipython",
                                           "xdg-config", "xdg-cache", "xdg-data", "xdg-runtime")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    dirs["xdg-runtime"].chmod(0o700)
    write_kernelspec(dirs["path"])
    labconfig = dirs["config"] / "labconfig"
    labconfig.mkdir(exist_ok=True)
    disabled = dict.fromkeys(DISABLED_PLUGINS, True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTER", "HPWIDGETS_")) and key != "IPYTHONDIR"}
    env.update(HOME=str(dirs["home"]), JUPYTER_CONFIG_DIR=str(dirs["config"]),
               JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTER_PATH=str(dirs["path"]), IPYTHONDIR=str(dirs["ipython"]),
               XDG_CONFIG_HOME=str(dirs["xdg-config"]), XDG_CACHE_HOME=str(dirs["xdg-cache"]),
               XDG_DATA_HOME=str(dirs["xdg-data"]), XDG_RUNTIME_DIR=str(dirs["xdg-runtime"]),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


def server_command(port: int, token: str, root: Path) -> list[str]:
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", f"--MappingKernelManager.default_kernel_name={KERNEL}",
               "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    return command


def start_server(base: Path) -> JupyterServer:
    """Start ``jupyter lab`` in ``base`` and return once its REST API answers."""
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    log_path = base / "jupyter-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(server_command(port, token, root), env=server_env(base), cwd=root,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # its own group: stop() can reap kernels too
    server = JupyterServer(process, f"http://127.0.0.1:{port}", token, root, log_path)
    try:
        wait_until_up(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_up(server: JupyterServer, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("GET", "status")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f}s:\n{server.log_tail()}")
