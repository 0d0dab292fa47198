"""Build the tidemark Python package: compile libtidemark from the tidemark
source tree this directory sits in (watcher/python/../..) with CMake and put
libtidemark.so inside the package, so `import tidemark` needs nothing else.

    python3 -m venv --system-site-packages v
    v/bin/pip install --no-build-isolation --no-index ./watcher/python
    python3 -m build --no-isolation --wheel watcher/python   # a wheel

An sdist cannot carry the tree (the C sources live outside this
directory): build wheels from a checkout. CMAKE_BUILD_PARALLEL_LEVEL sets
the build's jobs (default 2); TIDEMARK_CMAKE_ARGS adds CMake options;
TIDEMARK_CMAKE_BUILD_DIR is where CMake builds (default build/libtidemark
here).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOP = os.path.join(ROOT, "CMakeLists.txt")


def version():
    try:
        with open(TOP) as f:
            m = re.search(r"project\(tidemark\s+VERSION\s+([0-9.]+)", f.read())
    except OSError:
        m = None
    if m:
        return m.group(1)
    pkg_info = os.path.join(HERE, "PKG-INFO")  # an sdist: what it said
    if os.path.exists(pkg_info):
        with open(pkg_info) as f:
            m = re.search(r"^Version:\s*(\S+)", f.read(), re.M)
        if m:
            return m.group(1)
    return "0"


class BuildWithLibrary(build_py):
    """build_py, then libtidemark.so with CMake into the package."""

    def run(self):
        super().run()
        if not os.path.exists(TOP) or not os.path.isdir(
                os.path.join(ROOT, "watcher", "include")):
            sys.exit("tidemark: the Python package is built from the tidemark "
                     "source tree (it compiles libtidemark with CMake from %s), "
                     "which is not there: install from a checkout with "
                     "`pip install --no-build-isolation ./watcher/python` "
                     "(an sdist cannot carry the tree)" % ROOT)
        if shutil.which("cmake") is None:
            sys.exit("tidemark: cmake not found: it builds libtidemark "
                     "(Debian: apt-get install cmake, and the libraries "
                     "README.md lists)")
        build = os.environ.get("TIDEMARK_CMAKE_BUILD_DIR") or os.path.join(
            HERE, "build", "libtidemark")
        cache = os.path.join(build, "CMakeCache.txt")
        if os.path.exists(cache):   # a build of another copy of the tree
            with open(cache) as f:
                m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$",
                              f.read(), re.M)
            if m and os.path.realpath(m.group(1)) != os.path.realpath(ROOT):
                shutil.rmtree(build)
        args = ["-DCMAKE_BUILD_TYPE=Release", "-DTDM_TESTS=OFF"]
        args += shlex.split(os.environ.get("TIDEMARK_CMAKE_ARGS", ""))
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        for cmd in (["cmake", "-S", ROOT, "-B", build] + args,
                    ["cmake", "--build", build, "--target", "tidemark_shared",
                     "-j", jobs]):
            self.announce(" ".join(cmd), level=2)
            subprocess.run(cmd, check=True)
        lib = os.path.realpath(os.path.join(build, "watcher", "libtidemark.so"))
        dest = os.path.join(self.build_lib, "tidemark", "libtidemark.so")
        self.mkpath(os.path.dirname(dest))
        shutil.copyfile(lib, dest)


class WithLibrary(Distribution):
    """Not pure: the package holds a compiled library (platlib)."""

    def has_ext_modules(self):
        return True


cmdclass = {"build_py": BuildWithLibrary}
try:  # a wheel with the library is for this platform, any Python 3
    from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def get_tag(self):
            return ("py3", "none") + super().get_tag()[2:]

    cmdclass["bdist_wheel"] = PlatformWheel
except ImportError:
    pass

setup(version=version(), cmdclass=cmdclass, distclass=WithLibrary)
