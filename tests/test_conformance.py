"""The Jupyter protocol conformance suite (jupyter_kernel_test) against the built kernel."""

from __future__ import annotations

# jupyter_kernel_test reads its samples from class attributes.
# ruff: noqa: RUF012
import os
import unittest

import jupyter_kernel_test
from servers import stock_rpyc_classic


class XrpycKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "xrpyc"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'x' * 3", "result": "'xxx'"},
        {"code": "[1, 2]", "result": "[1, 2]"},
    ]
    completion_samples = [
        {"text": "zip_longes", "matches": set()},
        {"text": "ziz", "matches": set()},
        {"text": "isinst", "matches": {"isinstance"}},
        {"text": "x = str.startsw", "matches": {"startswith"}},
        {"text": "'abc'.uppe", "matches": {"upper"}},
        {"text": "print(sep", "matches": {"sep="}},
        {"text": "x = 1  # isinst", "matches": set()},
    ]
    # As IPython: a block ends with its newline (the console's one blank line), not before.
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n    return x\n", "$device()", "%time 1",
                             "x = (1,\n     2)", "@decorator\ndef f(): pass"]
    incomplete_code_samples = ["def f(x):", "x = (1,", "if True:\n    pass\n    for i in range(3):",
                               "if True:\n    x = 1", "@decorator", "s = '''text"]
    invalid_code_samples = ["1 = 2 = ", "$connect("]
    code_inspect_sample = "zip"
    code_page_something = "zip?"
    code_display_data = [
        {"code": "display('text')", "mime": "text/plain"},
        {"code": "class H:\n    def _repr_html_(self): return '<b>x</b>'\ndisplay(H())", "mime": "text/html"},
        {"code": "from PIL import Image\ndisplay(Image.new('RGB', (8, 8)))", "mime": "image/png"},
    ]
    code_clear_output = "clear_output()"
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6 ?*"

    @classmethod
    def setUpClass(cls) -> None:
        cls._device = stock_rpyc_classic()
        port = cls._device.__enter__()
        cls._saved = os.environ.get("XRPYC_DEVICE")
        os.environ["XRPYC_DEVICE"] = f"127.0.0.1:{port}"
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            cls._device.__exit__(None, None, None)
            if cls._saved is None:
                os.environ.pop("XRPYC_DEVICE", None)
            else:
                os.environ["XRPYC_DEVICE"] = cls._saved


if __name__ == "__main__":
    unittest.main()
