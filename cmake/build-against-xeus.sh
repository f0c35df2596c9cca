#!/usr/bin/env bash
# Build xrpyc against xeus >= 5 and xeus-zmq from source trees, and run the
# protocol tests against that kernel.
#
#   cmake/build-against-xeus.sh XEUS_SRC XEUS_ZMQ_SRC [PREFIX]
#
# XEUS_SRC, XEUS_ZMQ_SRC: source trees of xeus and xeus-zmq (e.g. release
# tarballs or `git archive` of tags 6.0.5 and 4.0.0, the versions conda-forge
# ships). xeus-zmq is built from a copy patched with
# cmake/xeus-zmq-request-checks.patch (for 4.0: its reader lets a malformed
# message kill the kernel; a version it does not apply to is built as it is,
# with a warning). They are built and installed into PREFIX (default:
# BUILD_DIR/prefix), xrpyc is built against them in BUILD_DIR (default:
# build/xeus-<xeus version>, beside `make`'s build/) and installed into a
# small venv there that sees .venv's packages. Its kernelspec, named xrpyc,
# goes into BUILD_DIR/jupyter; with that first on JUPYTER_PATH it shadows
# .venv's, so the tests (tests/test_conformance.py, test_execute.py,
# test_input.py and test_history.py by default) run against this kernel
# unchanged.
#
# Environment:
#   NLOHMANN_JSON_SRC  nlohmann/json source tree, built into PREFIX first;
#                      needed when the system's is older than xeus-zmq wants
#                      (xeus-zmq 3.1 and 4.0 want >= 3.11.3; Debian 12 has 3.11.2)
#   BUILD_DIR          where xrpyc is built (relative to the repository)
#   PYTHON             the Python with xrpyc's test dependencies (default .venv/bin/python; `make` first)
#   JOBS               parallel build jobs (default: number of cores)
#   PYTEST_ARGS        extra pytest arguments (e.g. -x, -k ...)
#   TESTS              test files to run (default: the four above)
#
# System packages (Debian 12): cmake g++ pkg-config libzmq3-dev cppzmq-dev
# libssl-dev uuid-dev nlohmann-json3-dev python3-dev pybind11-dev patch.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 2
}
[[ $# -ge 2 && $# -le 3 ]] || usage

repo=$(cd "$(dirname "$0")/.." && pwd)
abspath() { (cd "$1" && pwd); }
xeus_src=$(abspath "$1")
zmq_src=$(abspath "$2")
jobs=${JOBS:-$(nproc)}
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || { echo "no $python: run 'make' first (or set PYTHON)" >&2; exit 2; }
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")

version_of() {  # version_of HEADER PREFIX -> MAJOR.MINOR.PATCH from its #defines
    local header=$1 prefix=$2 major minor patch
    major=$(sed -n "s/^#define ${prefix}_VERSION_MAJOR \([0-9]*\).*/\1/p" "$header")
    minor=$(sed -n "s/^#define ${prefix}_VERSION_MINOR \([0-9]*\).*/\1/p" "$header")
    patch=$(sed -n "s/^#define ${prefix}_VERSION_PATCH \([0-9]*\).*/\1/p" "$header")
    echo "$major.$minor.$patch"
}
xeus_version=$(version_of "$xeus_src/include/xeus/xeus.hpp" XEUS)
zmq_version=$(version_of "$zmq_src/include/xeus-zmq/xeus-zmq.hpp" XEUS_ZMQ)
xeus_major=${xeus_version%%.*}
if (( xeus_major < 5 )); then
    echo "xeus $xeus_version: this script is for xeus >= 5 (xeus 2.x is the default 'make' build)" >&2
    exit 2
fi

build=${BUILD_DIR:-build/xeus-$xeus_version}
[[ $build = /* ]] || build=$repo/$build
prefix=${3:-$build/prefix}
mkdir -p "$build" "$prefix"
build=$(abspath "$build")
prefix=$(abspath "$prefix")
log=$build/logs
mkdir -p "$log"

step() { printf '\n== %s\n' "$*"; }

# cmake_install NAME SRC ARGS...: configure, build and install one dependency
# into the prefix, unless the same source tree was installed there already.
cmake_install() {
    local name=$1 src=$2 stamp=$prefix/.xrpyc-built-$1
    shift 2
    if [[ -f $stamp && $(cat "$stamp") == "$src" ]]; then
        echo "$name: already in $prefix (from $src)"
        return
    fi
    echo "$name: building from $src (log: $log/$name.log)"
    if ! {
        cmake -S "$src" -B "$build/deps/$name" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_INSTALL_LIBDIR=lib "$@" &&
        cmake --build "$build/deps/$name" -j "$jobs" &&
        cmake --install "$build/deps/$name"
    } >"$log/$name.log" 2>&1; then
        tail -n 30 "$log/$name.log" >&2
        echo "$name: build failed (full log: $log/$name.log)" >&2
        exit 1
    fi
    echo "$src" >"$stamp"
}

# xeus-zmq's reader pops frames without counting them (a short multipart on
# the shell, control or stdin port aborts the kernel), and parses JSON before
# it checks the signature: xrpyc's server does it right with xeus 2.x
# (xrpyc/xreader.cpp), but xeus-zmq keeps its sockets private, so the fix is
# a patch to a copy of its tree (named for the patch: a new patch, a new copy).
zmq_patch=$repo/cmake/xeus-zmq-request-checks.patch
patched=$build/src/xeus-zmq-$(sha256sum "$zmq_patch" | cut -c1-12)
if [[ ! -f $patched/.xrpyc-patch ]]; then
    rm -rf "$build/src"
    mkdir -p "$patched"
    cp -a "$zmq_src/." "$patched/"
    if patch -d "$patched" -p1 -s --dry-run <"$zmq_patch" >/dev/null 2>&1; then
        patch -d "$patched" -p1 -s <"$zmq_patch"
        echo applied >"$patched/.xrpyc-patch"
    else
        echo "not applied" >"$patched/.xrpyc-patch"
    fi
fi
if [[ $(cat "$patched/.xrpyc-patch") == applied ]]; then
    echo "xeus-zmq $zmq_version: patched with $(basename "$zmq_patch")"
else
    echo "WARNING: $(basename "$zmq_patch") does not apply to xeus-zmq $zmq_version (it is for 4.0):" \
        "built as it is, and a malformed message on the kernel's ports can kill it" >&2
fi

step "xeus $xeus_version and xeus-zmq $zmq_version into $prefix"
if [[ -n ${NLOHMANN_JSON_SRC:-} ]]; then
    cmake_install nlohmann_json "$(abspath "$NLOHMANN_JSON_SRC")" -DJSON_BuildTests=OFF -DJSON_Install=ON
fi
cmake_install xeus "$xeus_src" -DXEUS_BUILD_TESTS=OFF -DXEUS_BUILD_STATIC_LIBS=OFF
cmake_install xeus-zmq "$patched" -DXEUS_ZMQ_BUILD_TESTS=OFF -DXEUS_ZMQ_BUILD_STATIC_LIBS=OFF

step "xrpyc against them in $build/xrpyc"
cmake -S "$repo" -B "$build/xrpyc" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DPython_EXECUTABLE="$python" -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON >"$log/xrpyc-configure.log" 2>&1 ||
    { cat "$log/xrpyc-configure.log" >&2; exit 1; }
grep -E "xrpyc: (xeus|building)" "$log/xrpyc-configure.log" || true
cmake --build "$build/xrpyc" -j "$jobs"

step "kernel installed into $build/venv, its kernelspec into $build/jupyter"
# A venv of the same interpreter whose site-packages holds a copy of the
# Python package with this build's xrpyc._kernel in it, and reads .venv's
# site-packages (rpyc, ...) after its own through a plain path in a .pth file
# (not addsitedir: .venv's editable finder would bring .venv's module back).
if [[ ! -x $build/venv/bin/python3 ]]; then
    "$python" -m venv --without-pip "$build/venv"
fi
site_packages() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
venv_site=$(site_packages "$build/venv/bin/python3")
site_packages "$python" >"$venv_site/xrpyc-dev.pth"
rm -rf "$venv_site/xrpyc"
cp -a "$repo/python/xrpyc" "$venv_site/xrpyc"
cmake --install "$build/xrpyc" --prefix "$venv_site" >/dev/null
rm -rf "$build/jupyter"
"$build/venv/bin/python3" -m xrpyc.install --prefix "$build/jupyter"
export JUPYTER_PATH=$build/jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}
kernel=$("$build/venv/bin/python3" -c 'import xrpyc._kernel; print(xrpyc._kernel.__file__)')
found=$("$python" -c 'from jupyter_client.kernelspec import KernelSpecManager as M
print(M().get_kernel_spec("xrpyc").argv[0])')
[[ $found == "$build/venv/bin/python3" ]] || { echo "Jupyter runs the kernel xrpyc with $found" >&2; exit 1; }
linked=$(ldd "$kernel" | grep -E 'libxeus' | sed 's/^[[:space:]]*//')
echo "$linked"
grep -q "$prefix/lib/libxeus.so" <<<"$linked" || { echo "the kernel does not use $prefix's xeus" >&2; exit 1; }

step "tests against $kernel"
read -r -a tests <<<"${TESTS:-tests/test_conformance.py tests/test_execute.py tests/test_input.py tests/test_history.py}"
cd "$repo"
status=0
"$python" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} "${tests[@]}" 2>&1 | tee "$log/tests.log" || status=$?
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log/tests.log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/xrpyc/CMakeCache.txt")
compiler=$("$cxx" --version | head -n 1)
step "xrpyc against xeus $xeus_version + xeus-zmq $zmq_version ($compiler): ${summary:-no test summary}"
exit "$status"
