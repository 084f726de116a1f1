"""Resizing on several threads at once leaves the process's stdout and stderr where they were."""

import io
import os
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from pairsmith.pipelines.download import make_resizer
from pairsmith.schemas.config import DownloadConfig


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _open_on_devnull() -> set[int]:
    """The descriptors of this process open on /dev/null: what a leaking suppressor leaves behind.
    (The process's total descriptor count is no measure: other tests' background threads, e.g. a
    Prefect server stopping, close theirs meanwhile.)"""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == os.devnull:
                found.add(int(name))
        except OSError:  # closed between listing and reading
            pass
    return found


def test_resizing_on_many_threads_keeps_stdout_and_stderr_and_leaks_no_descriptor():
    buf = io.BytesIO()
    Image.new("RGB", (900, 600), "teal").save(buf, "JPEG")
    data = buf.getvalue()
    resizer = make_resizer(DownloadConfig())
    before = (_identity(1), _identity(2))
    devnull_before = _open_on_devnull()

    def resize(_):
        return resizer(io.BytesIO(data))[1:3]

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(resize, range(400)))
    assert set(sizes) == {(768, 512)}  # keep_ratio: the shorter side to 512
    assert (_identity(1), _identity(2)) == before
    assert _open_on_devnull() - devnull_before == set()
