# Finds xeus, the Python used for embedding and pybind11.
#
# Python: pass -DPython_EXECUTABLE=<venv>/bin/python so that the embedded
# interpreter is the one whose packages the kernel uses.
find_package(Threads REQUIRED)
find_package(xeus 2.4 REQUIRED)
set(XRPYC_XEUS_TARGET xeus)

find_package(Python 3.8 REQUIRED COMPONENTS Interpreter Development.Embed)
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
