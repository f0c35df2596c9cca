"""Rich output made on the device: images, _repr_*_ methods, display(), matplotlib."""

from __future__ import annotations

import base64

from kernel_client import RunningKernel


def data_of(result, msg_type: str = "execute_result") -> dict:
    (content,) = result.of_type(msg_type)
    return content["data"]


def test_small_pil_image_is_png_large_photo_is_jpeg(shared_kernel: RunningKernel) -> None:
    shared_kernel.run("from PIL import Image")
    small = data_of(shared_kernel.run("Image.new('RGB', (64, 48), (255, 0, 0))"))
    assert set(small) == {"image/png", "text/plain"}
    assert base64.b64decode(small["image/png"]).startswith(b"\x89PNG")
    large = data_of(shared_kernel.run("Image.new('RGB', (640, 480), (0, 99, 0))"))
    assert set(large) == {"image/jpeg", "text/plain"}
    assert base64.b64decode(large["image/jpeg"]).startswith(b"\xff\xd8\xff")
    transparent = data_of(shared_kernel.run("Image.new('RGBA', (640, 480))"))
    assert "image/png" in transparent


def test_image_bytes_and_files_on_the_device(shared_kernel: RunningKernel) -> None:
    shared_kernel.run(
        "import io, tempfile, os\nbuffer = io.BytesIO()\nImage.new('RGB', (8, 8)).save(buffer, 'PNG')\n"
        "png = buffer.getvalue()\npath = os.path.join(tempfile.mkdtemp(), 'dot.png')\nopen(path, 'wb').write(png)"
    )
    assert "image/png" in data_of(shared_kernel.run("png"))
    assert "image/png" in data_of(shared_kernel.run("path"))
    assert set(data_of(shared_kernel.run("'no-such-file.png'"))) == {"text/plain"}


def test_repr_methods_as_in_ipython(shared_kernel: RunningKernel) -> None:
    code = (
        "class Rich:\n"
        "    def _repr_html_(self): return '<b>bold</b>'\n"
        "    def _repr_markdown_(self): return '**bold**'\n"
        "    def _repr_svg_(self): return '<svg xmlns=\"http://www.w3.org/2000/svg\"/>'\n"
        "    def _repr_json_(self): return {'a': [1, 2]}\n"
        "Rich()"
    )
    data = data_of(shared_kernel.run(code))
    assert data["text/html"] == "<b>bold</b>" and data["text/markdown"] == "**bold**"
    assert data["image/svg+xml"].startswith("<svg") and data["application/json"] == {"a": [1, 2]}
    bundle = (
        "class B:\n    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/html': '<i>b</i>'}\nB()"
    )
    assert data_of(shared_kernel.run(bundle))["text/html"] == "<i>b</i>"
    broken = (
        "class Broken:\n    def _repr_html_(self): raise RuntimeError\n    def __repr__(self): return 'ok'\nBroken()"
    )
    assert data_of(shared_kernel.run(broken)) == {"text/plain": "ok"}


def test_display_in_order_with_prints_and_updates(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run(
        "print('before')\ndisplay(Image.new('RGB', (4, 4)))\nprint('after')\n"
        "handle = display('first', display_id=True)\nhandle.update('second')\nclear_output(wait=True)"
    )
    kinds = [(m["msg_type"], m["content"].get("text") or m["content"].get("data", {}).get("text/plain"))
             for m in result.messages]
    assert kinds[0] == ("stream", "before\n") and kinds[1][0] == "display_data" and kinds[2] == ("stream", "after\n")
    assert kinds[3] == ("display_data", "'first'") and kinds[4] == ("update_display_data", "'second'")
    first, second = result.messages[3]["content"], result.messages[4]["content"]
    assert first["transient"]["display_id"] == second["transient"]["display_id"]
    assert result.messages[5]["msg_type"] == "clear_output" and result.messages[5]["content"]["wait"] is True


def test_matplotlib_show_and_figures_left_open(shared_kernel: RunningKernel) -> None:
    shown = shared_kernel.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nprint('after')")
    assert shown.status == "ok" and shown.stream("stderr") == ""
    assert shown.messages[0]["msg_type"] == "display_data" and shown.stream() == "after\n"
    assert base64.b64decode(shown.messages[0]["content"]["data"]["image/png"]).startswith(b"\x89PNG")
    left_open = shared_kernel.run("plt.plot([3, 2, 1]);")
    assert [m["msg_type"] for m in left_open.messages] == ["display_data"]
    assert shared_kernel.run("plt.get_fignums()").result == "[]"
