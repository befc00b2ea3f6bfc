"""How a program the course starts in the background lives and dies: ports, start, stop.

Why one module: the MLflow server (:mod:`helpers.server`), the model server
(:mod:`helpers.serving`) and the object store (:mod:`helpers.object_store`) are different
programs with one life. Each is started on 127.0.0.1, waited for until it answers, and
stopped with every process it started; each must be stopped when its parent (a notebook's
kernel, a terminal's command) ends, however it ends:

- a normal exit, or Ctrl+C: an exit hook stops it (:func:`_stop_all`);
- ``kill``, a closed terminal, ``kill -9``, a crashed kernel: no hook runs. A small
  *watchdog* process, started beside each server, holds a pipe from the parent. The
  operating system closes that pipe whenever the parent ends, whatever ended it; the
  watchdog then stops the server's whole tree. This works on Linux, macOS and Windows.
- a server left behind by a dead parent anyway (an older version of the course, a killed
  watchdog) is recognised by its environment when a new one wants its port, and stopped
  (:func:`stop_leftover_on`).

Every process of a server carries two environment variables: a marker unique to the server
(so that its workers are found even after their parent died) and its owner, the process
that started it (so that a leftover can be told from a server a live notebook still uses).

Run as a script, this file is the watchdog: ``python background.py --watch MARKER``.
It imports only the standard library and psutil.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Self

import psutil

LOCALHOST = "127.0.0.1"
MARKER = "COURSE_MLFLOW_SERVER"
"""An environment variable set, to a value unique to each server, in every process of it."""
OWNER = "COURSE_SERVER_OWNER"
"""An environment variable in every process of a server: "PID@START" of the process that
started it. The start time tells a live owner from a new process that reuses its PID."""
WATCHDOG_GRACE = 5.0
"""Seconds the watchdog gives a server to end on its own before it kills what is left."""


class ServerError(RuntimeError):
    """The server could not be started; the message says what to do."""


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True if nothing listens on ``host:port``: we can bind it, and nothing answers there.

    Why both: binding alone misses some listeners (on macOS and Windows a program listening
    on all addresses, or with address reuse, lets another bind 127.0.0.1 beside it).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if sys.platform != "win32":  # as servers do: ignore connections closing (TIME_WAIT)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) != 0


def free_port(preferred: int, host: str = LOCALHOST) -> int:
    """``preferred`` if it is free, else a port the operating system picks."""
    if port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _listens_on(process: psutil.Process, port: int) -> bool:
    """True if ``process`` listens on TCP ``port``; False if it does not or we may not look."""
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def listeners(port: int) -> list[psutil.Process]:
    """The processes we may see that listen on TCP ``port``."""
    return [process for process in psutil.process_iter() if _listens_on(process, port)]


def describe(process: psutil.Process) -> str:
    """The process as "process PID (command line)", as far as we may see it."""
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        return f"process {process.pid}"
    return f"process {process.pid} ({command[:200]})"


def port_owner(port: int) -> str:
    """Who listens on ``port``: "process PID (command line)" if we may see it.

    Why: "port in use" alone leaves a learner guessing which program to stop. A server of
    this course that a live process started says which process that is.
    """
    for process in listeners(port):
        owner = _owner_of(process)
        started_by = f", a server of this course started by {describe(owner)}" if owner else ""
        return describe(process) + started_by
    return "another program"


def port_taken(port: int) -> ServerError:
    """The error for a port another program holds, naming that program and the way out."""
    return ServerError(
        f"Port {port} is in use by {port_owner(port)} (on macOS, AirPlay Receiver takes "
        f"5000). Stop it, or choose another port, e.g. --port {port + 1}, or pass port=None "
        "to pick a free one."
    )


def answers_health(url: str) -> bool:
    """True if an MLflow server (tracking or model) at ``url`` answers ``/health`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (http.client.HTTPException, OSError):  # URLError is an OSError
        return False


def _alive(process: psutil.Process) -> bool:
    """True while ``process`` runs (a zombie has ended: only its exit status is left)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _environment(process: psutil.Process) -> dict[str, str]:
    """The environment of ``process``; empty if it ended or is not ours to read."""
    try:
        return process.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def processes_with_environment(name: str, value: str) -> list[psutil.Process]:
    """Every running process but this one whose environment has ``name=value``.

    Why by environment: a child inherits it, so this finds a server's workers even when
    their parent has died and they are nobody's children any more. A process that ended
    meanwhile, or another user's (whose environment we may not read), is not ours.
    """
    found = []
    for process in psutil.process_iter():
        if process.pid != os.getpid() and _environment(process).get(name) == value:
            found.append(process)
    return [p for p in found if _alive(p)]


def _this_owner() -> str:
    """This process as an owner: "PID@START", START its start time (to 10 ms)."""
    return f"{os.getpid()}@{psutil.Process().create_time():.2f}"


def _owner_of(process: psutil.Process) -> psutil.Process | None:
    """The live process that started ``process`` as a course server, if there is one."""
    pid, _, started = _environment(process).get(OWNER, "").partition("@")
    try:
        owner = psutil.Process(int(pid))
        if f"{owner.create_time():.2f}" == started and _alive(owner):
            return owner
    except (ValueError, psutil.Error):  # no owner recorded, or it has ended
        pass
    return None


def choose_port(port: int | None, preferred: int, *, announce: bool = False) -> int:
    """The port to start on: ``port``, or with ``port=None`` ``preferred`` or a free one.

    A leftover course server on the port is stopped first (:func:`stop_leftover_on`), and
    that is said. An explicit port that is still taken is an error that names its holder;
    with ``announce``, taking another port than ``preferred`` is said, naming the holder.
    """
    wanted = preferred if port is None else port
    stopped = stop_leftover_on(wanted)
    if stopped:
        print(stopped)
    if port_is_free(wanted):
        return wanted
    if port is not None:
        raise port_taken(port)
    chosen = free_port(preferred)
    if announce:
        print(f"Port {preferred} is in use by {port_owner(preferred)}; using port {chosen}.")
    return chosen


def stop_leftover_on(port: int) -> str | None:
    """Stop a course server on ``port`` whose owner has ended; say what was stopped.

    Why: such a server (left by an older version of the course, or whose watchdog was
    killed too) still answers; a new server would quietly take another port while the
    learner's browser shows the old one. A server whose owner still runs (another
    notebook's, a terminal's ``python -m helpers.server``) is left alone: the caller names
    it. Another program is never touched.
    """
    for process in listeners(port):
        marker = _environment(process).get(MARKER)
        if not marker or _owner_of(process) is not None:
            continue
        tree = processes_with_environment(MARKER, marker)
        end_processes(tree)
        return (
            f"Stopped a course server on port {port} (process {process.pid}) that a kernel "
            "or command which has ended had left running."
        )
    return None


def end_processes(processes: list[psutil.Process], grace: float = WATCHDOG_GRACE) -> None:
    """Ask ``processes`` to end, wait up to ``grace`` seconds, then kill what is left."""
    for ending in ("terminate", "kill"):
        for process in processes:
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                getattr(process, ending)()
        _, processes = psutil.wait_procs(processes, timeout=grace)
        if not processes:
            return


def launch(command: list[str], folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` in ``folder`` with its output in ``log``.

    It gets a process group of its own (a session on POSIX), so that :meth:`Background.stop`
    can end the whole group, and so that Ctrl+C in a terminal reaches the command that
    started it, which then stops it in order, rather than every process at once.
    """
    try:
        output = open(log, "wb")
    except OSError as error:
        raise ServerError(
            f"Cannot write the server's log {log} ({error.strerror}). Remove or rename what is "
            "there (a folder?), or start the server from a folder you can write to."
        ) from error
    with output:
        return subprocess.Popen(
            command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, **_own_group(),
        )  # fmt: skip


def _own_group() -> dict:
    """Popen's arguments that put a child in a process group of its own."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


_WATCH_PIPES: set[IO[bytes]] = set()
"""The parent's ends of the watchdogs' pipes; a forked child closes its copies."""


def _close_watch_pipes_in_child() -> None:
    """In a child made by ``fork`` (multiprocessing on Linux): close the watchdogs' pipes.

    Why: a forked child holds copies of every open file. Its copy would keep a pipe open
    after the parent died, and the watchdog would wait for the child to end too.
    """
    for pipe in _WATCH_PIPES:
        with contextlib.suppress(OSError):
            os.close(pipe.fileno())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_watch_pipes_in_child)


def start_watchdog(marker: str, leftovers: tuple[Path, ...] = ()) -> subprocess.Popen:
    """Start the watchdog of the server marked ``marker``; its stdin is a pipe from us.

    ``leftovers`` are folders the server's :meth:`Background.stop` would remove (a model
    server's copy of its model): the watchdog removes them when it has to stop the server.

    It runs in a group of its own (Ctrl+C and a closed terminal do not reach it) and with
    only the standard library and psutil, so it starts in a fraction of a second.
    """
    flags = {}
    if sys.platform == "win32":
        flags = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    else:
        flags = {"start_new_session": True}
    watchdog = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--watch", marker,
         *(str(path.resolve()) for path in leftovers)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **flags,
    )  # fmt: skip
    _WATCH_PIPES.add(watchdog.stdin)
    return watchdog


def watch(marker: str, lines: IO[str], leftovers: tuple[Path, ...] = ()) -> None:
    """The watchdog: wait until ``lines`` (the pipe from the parent) closes, then stop the
    server marked ``marker``: its process group (its id came down the pipe) and every
    process with its marker, asked first, then killed after :data:`WATCHDOG_GRACE`.

    Then it removes the folders in ``leftovers``. A normal stop ends the server and removes
    them first, then closes the pipe: there is nothing left to do.
    """
    group = None
    for line in lines:  # until end of file: the parent closed the pipe, or has ended
        with contextlib.suppress(ValueError):
            group = int(line)
    if group is not None and sys.platform != "win32":
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGTERM)
    tree = processes_with_environment(MARKER, marker)
    if group is not None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(group)
            if _environment(root).get(MARKER) == marker:  # not a new process with its id
                tree += [root, *root.children(recursive=True)]
    end_processes(list({p.pid: p for p in tree}.values()))
    if group is not None and sys.platform != "win32":
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)


_RUNNING: set[Background] = set()
"""The servers started and not stopped yet: :func:`_stop_all` stops them when Python exits."""


@atexit.register
def _stop_all() -> None:
    """Stop every server still running when Python exits (a normal exit, Ctrl+C)."""
    for server in list(_RUNNING):
        server.stop()


class Background:
    """A program this course started in the background (a server); stop it with :meth:`stop`.

    Subclasses say what the program is: its ``name`` (for messages) and how to tell that
    it answers (:meth:`_answers`).
    """

    name = "The program"
    """How errors name it: "The MLflow server stopped at start. ..."."""

    def __init__(
        self, command: list[str], folder: Path, env: dict[str, str], log: Path,
        leftovers: tuple[Path, ...] = (),
    ):  # fmt: skip
        """Start ``command`` in ``folder``, with ``env``, its output in ``log``.

        The watchdog starts first: should this process die before the command has
        started, the watchdog still finds it by its marker. ``leftovers``: folders the
        watchdog removes if it has to stop the server (see :func:`start_watchdog`).
        """
        self.command, self.log = command, log
        self.marker = uuid.uuid4().hex
        self.watchdog = start_watchdog(self.marker, leftovers)
        env = {**env, MARKER: self.marker, OWNER: _this_owner()}
        try:
            self.process = launch(command, folder, env, log)
        except BaseException:
            self._release_watchdog()
            raise
        _RUNNING.add(self)
        with contextlib.suppress(OSError):  # the watchdog died: stop() still works
            self.watchdog.stdin.write(f"{self.process.pid}\n".encode())
            self.watchdog.stdin.flush()

    def _wait_until_ready(self, port: int, timeout: float) -> None:
        """Return once this server answers; raise if it stops, fails, or another answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if not port_is_free(port):  # it died because another program has the port
                    raise port_taken(port)
                raise ServerError(f"{self.name} stopped at start. {self._log_end()}")
            failure = self._failure()
            if failure:
                raise ServerError(failure)
            if self._answers():
                if not any(_listens_on(p, port) for p in self.processes()):
                    raise port_taken(port)  # the answer came from another program
                return
            time.sleep(0.25)
        raise ServerError(f"{self.name} did not answer within {timeout:.0f} s. {self._log_end()}")

    def _answers(self) -> bool:
        """True if something answers at this program's address (each kind says how)."""
        raise NotImplementedError

    def _failure(self) -> str | None:
        """A reason the program will never answer, seen while it still runs (else None).

        Why: some programs retry a hopeless start for minutes (a database that refuses
        connections); each kind may recognise that in its log and fail at once.
        """
        return None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote, to explain a failure."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _log_end(self) -> str:
        """The last line of the log (usually the error), on one line, and where the rest is."""
        written = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        return f"The end of its log {self.log}: {written[-1] if written else '(empty)'}"

    def processes(self) -> list[psutil.Process]:
        """The server and every process it started, while they run.

        Its children, and every process that carries its marker: a worker whose parent
        died is nobody's child any more, but it still carries the marker.
        """
        tree = []
        if self.process.poll() is None:  # once it has ended, its process id can be reused
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(self.process.pid)
                tree = [parent, *parent.children(recursive=True)]
        marked = processes_with_environment(MARKER, self.marker)
        return list({p.pid: p for p in [*tree, *marked] if _alive(p)}.values())

    def stop(self, timeout: float = 15) -> None:
        """Stop the server and all its workers; wait until none is left.

        Asks them to end first, then kills what is left after ``timeout`` seconds.
        """
        _RUNNING.discard(self)
        # Look again after each round: a server may start a worker while the others end (a
        # loaded machine showed a uvicorn still running after the second round).
        for ending in ("terminate", "kill", "kill", "kill"):
            processes = self.processes()
            if not processes:
                break
            self._signal_group(ending)
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    getattr(process, ending)()
            self._wait_ended(processes, timeout)
        self.process.wait(timeout=timeout)
        self._release_watchdog()

    def _release_watchdog(self) -> None:
        """Close the watchdog's pipe: with nothing left to stop, it ends at once."""
        _WATCH_PIPES.discard(self.watchdog.stdin)
        with contextlib.suppress(OSError):
            self.watchdog.stdin.close()
        try:
            self.watchdog.wait(timeout=WATCHDOG_GRACE * 2)
        except subprocess.TimeoutExpired:
            self.watchdog.kill()
            self.watchdog.wait()

    def _signal_group(self, ending: str) -> None:
        """On POSIX, end the server's process group too: it reaches workers we cannot see."""
        if sys.platform == "win32":
            return
        sig = signal.SIGTERM if ending == "terminate" else signal.SIGKILL
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)  # its own session: group id = its process id

    def _wait_ended(self, processes: list[psutil.Process], timeout: float) -> None:
        """Wait up to ``timeout`` seconds for ``processes`` to end."""
        deadline = time.monotonic() + timeout
        while True:
            self.process.poll()  # collect our own child, so that it does not stay a zombie
            if not any(_alive(p) for p in processes) or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _watchdog_main(argv: list[str]) -> int:
    """``--watch MARKER [FOLDER...]``: be the watchdog of that server (see :func:`watch`)."""
    if len(argv) < 2 or argv[0] != "--watch":
        print("usage: background.py --watch MARKER [FOLDER...] (started by the course's helpers)")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the parent to handle
    watch(argv[1], sys.stdin, tuple(Path(folder) for folder in argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(_watchdog_main(sys.argv[1:]))
