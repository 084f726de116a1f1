"""The private-address guard, tested only against a server on 127.0.0.1 that records every hit."""

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairsmith.flows.demo_site import LocalImageServer, Route
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "JPEG")
    return buf.getvalue()


def _run(tmp_path, urls, overrides=()):
    pq.write_table(pa.table({"url": urls, "caption": ["a red square"] * len(urls)}), tmp_path / "in.parquet")
    overrides = [
        f"input.path={tmp_path / 'in.parquet'}",
        "download.timeout_s=2",
        "download.retries=0",
        "models.profile=none",
        *overrides,
    ]
    cfg = load_config(None, overrides)
    run_all(cfg, str(tmp_path / "out"))
    return pl.read_parquet(tmp_path / "out" / "data" / "*.parquet")


def test_guard_on_by_default_sends_no_request(tmp_path):
    with LocalImageServer(
        {"/a.jpg": Route(body=_jpeg(), headers=(("Content-Type", "image/jpeg"),))}
    ) as server:
        host_port = server.base_url.removeprefix("http://")
        port = host_port.split(":")[1]
        urls = [server.url("/a.jpg"), f"http://localhost:{port}/a.jpg", f"http://127.1:{port}/a.jpg"]
        df = _run(tmp_path, urls)
        assert server.hits == []
    assert df["status"].to_list() == ["blocked"] * 3
    assert df["error_kind"].to_list() == ["private_address"] * 3
    assert all("download.allow_private_addresses" in m for m in df["error_message"].to_list())


def test_guard_checks_every_redirect_hop(tmp_path):
    routes = {"/a.jpg": Route(body=_jpeg(), headers=(("Content-Type", "image/jpeg"),))}
    with LocalImageServer(routes) as server:
        port = server.base_url.rsplit(":", 1)[1]
        # The first hop's host is allow-listed; the redirect goes to another name for the same server.
        server.add_route("/hop", Route(status=302, headers=(("Location", f"http://localhost:{port}/a.jpg"),)))
        df = _run(tmp_path, [server.url("/hop")], ["download.private_allowlist=[127.0.0.1]"])
        # robots.txt of the first host is read (it has none); the second host's is refused by the guard too
        assert server.hits == ["/robots.txt", "/hop"]
    assert df["status"].to_list() == ["blocked"]
    assert "'localhost'" in df["error_message"][0]


def test_switch_allows_private_addresses(tmp_path):
    with LocalImageServer(
        {"/a.jpg": Route(body=_jpeg(), headers=(("Content-Type", "image/jpeg"),))}
    ) as server:
        df = _run(tmp_path, [server.url("/a.jpg")], ["download.allow_private_addresses=true"])
        assert server.hits == ["/robots.txt", "/a.jpg"]
    assert df["status"].to_list() == ["success"]
