"""The fast subset's promise, checked: a test not marked `slow` starts no Ray, Milvus, PostgreSQL, browser or `lfr`.

`pytest -m "not slow"` must run in a couple of minutes on two cores with none of these services,
so instead of trusting every marker, each unmarked test runs with process launches watched
(`subprocess`, and asyncio's subprocesses, which go through it): launching one of these programs
raises `UnmarkedSlowTestError` in the test, saying to mark it. Ray's own start (`ray.init` or
`ray start`) shows as its gcs_server and raylet, Playwright's browser as its node driver.
"""

import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import PurePath

import pytest

SERVICE_PROGRAMS = frozenset(
    {
        "ray",
        "gcs_server",
        "raylet",
        "milvus",
        "initdb",
        "pg_ctl",
        "postgres",
        "node",
        "npm",
        "chromium",
        "chrome",
        "headless_shell",
        "lfr",
        "gst_rtsp_serve.py",
    }
)
"""Executables (and scripts) that start a service or a heavy process, by file name."""
SERVICE_MODULES = (
    "milvus_lite",
    "cluster.gallery.lite_server",
    "loadtest.milvus_server",
    "cluster.replay.rtsp_server",
    "cluster.cli",
    "tests.object_store_probe",
)
"""Modules that start one when run with `python -m`."""


class UnmarkedSlowTestError(RuntimeError):
    """A test outside the `slow` mark started a service the fast subset promises not to start."""


def service_started_by(args: str | bytes | os.PathLike | Sequence) -> str | None:
    """The service program or module in a command line, if it names one."""
    if isinstance(args, str | bytes | os.PathLike):
        argv = shlex.split(os.fsdecode(args))
    else:
        argv = [os.fsdecode(arg) for arg in args]
    for index, arg in enumerate(argv):
        if PurePath(arg).name in SERVICE_PROGRAMS:
            return arg
        if arg == "-m" and index + 1 < len(argv):
            module = argv[index + 1]
            if any(module == name or module.startswith(f"{name}.") for name in SERVICE_MODULES):
                return f"python -m {module}"
    return None


@contextmanager
def services_forbidden(test: str) -> Iterator[None]:
    """While inside, launching a service program raises `UnmarkedSlowTestError` naming `test`."""
    launch = subprocess.Popen._execute_child

    def guarded_launch(process: subprocess.Popen, args, *rest, **options):
        service = service_started_by(args)
        if service is not None:
            raise UnmarkedSlowTestError(
                f"{test} started {service!r} but is not marked slow: add @pytest.mark.slow (or a module"
                " `pytestmark`), or keep the test off Ray, Milvus, PostgreSQL, browsers and subprocess `lfr`"
            )
        return launch(process, args, *rest, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", guarded_launch)
        yield
