# Finds xeus, the Python the extension module is built for, and pybind11.
#
# xeus: Debian 12's xeus 2.4 (with its own ZMQ server), or xeus >= 5 with
# xeus-zmq (what conda-forge ships: xeus 6 and xeus-zmq 4). The first found
# wins; -DCMAKE_PREFIX_PATH=<prefix> picks another (cmake/build-against-xeus.sh).
# The code's version switches are in xrpyc/xeus_compat.hpp, and which ZMQ
# server a kernel gets in xrpyc/xkernel.cpp. XRPYC_XEUS_TARGET names an
# interface target with xeus, its ZMQ layer, cppzmq and OpenSSL's libcrypto
# (xrpyc/xwire.hpp signs the messages it sends itself).
#
# Python: -DPython_EXECUTABLE=<python> picks the interpreter (the module is
# built for its minor version).
find_package(Threads REQUIRED)
find_package(xeus REQUIRED)
if(xeus_VERSION VERSION_LESS 2.4 OR (xeus_VERSION VERSION_GREATER_EQUAL 3 AND xeus_VERSION VERSION_LESS 5))
    message(FATAL_ERROR "xrpyc builds against xeus 2.4 to 2.x, or xeus >= 5 with xeus-zmq; found xeus ${xeus_VERSION}")
endif()
find_package(cppzmq REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
add_library(xrpyc_xeus INTERFACE)
if(xeus_VERSION VERSION_LESS 3)
    target_link_libraries(xrpyc_xeus INTERFACE xeus)
    message(STATUS "xrpyc: xeus ${xeus_VERSION} (${xeus_DIR})")
else()
    find_package(xeus-zmq REQUIRED)
    target_link_libraries(xrpyc_xeus INTERFACE xeus-zmq xeus)
    message(STATUS "xrpyc: xeus ${xeus_VERSION} (${xeus_DIR}), xeus-zmq ${xeus-zmq_VERSION} (${xeus-zmq_DIR})")
endif()
target_link_libraries(xrpyc_xeus INTERFACE cppzmq OpenSSL::Crypto)
set(XRPYC_XEUS_TARGET xrpyc_xeus)

find_package(Python 3.8 REQUIRED COMPONENTS Interpreter Development.Module)
# pybind11 from the system (Debian's pybind11-dev) or from the Python
# environment (pip's pybind11 ships its CMake config).
if(NOT pybind11_DIR)
    execute_process(
        COMMAND "${Python_EXECUTABLE}" -c "import pybind11; print(pybind11.get_cmake_dir())"
        OUTPUT_VARIABLE _pybind11_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_pybind11_dir)
        set(pybind11_DIR "${_pybind11_dir}")
    endif()
endif()
find_package(pybind11 2.10 CONFIG REQUIRED)
