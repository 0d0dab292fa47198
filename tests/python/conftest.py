"""Shared helpers of the Python tests: real files, real LMDB, real children."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    return d


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


def child_env():
    """The environment a child Python needs to import tidemark as we do."""
    env = dict(os.environ)
    import tidemark
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(tidemark.__file__)))
    env["PYTHONPATH"] = pkg + os.pathsep + env.get("PYTHONPATH", "")
    return env


def spawn(*args, env_extra=None, **kw):
    env = child_env()
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, *map(str, args)], env=env, **kw)


def tidemark_bin():
    b = os.environ.get("TIDEMARK_BIN")
    if not b:
        pytest.fail("TIDEMARK_BIN is not set (ctest sets it to the built "
                    "tidemark command)")
    return b
