"""The demo site: its pairs are what they claim to be, and its server answers like a small web site."""

import io
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pairsmith.flows import demo_site
from pairsmith.flows.demo_site import DemoPair, LocalImageServer, Route

BROKEN = {
    "http_404": "failed_to_download",
    "http_500": "failed_to_download",
    "timeout": "failed_to_download",
    "redirect_loop": "failed_to_download",
    "not_an_image": "failed_to_decode",
    "truncated_jpeg": "failed_to_decode",
    "empty_body": "failed_to_decode",
    "robots_noai": "blocked",
    "robots_noimageai": "blocked",
}
GOOD = ("photo", "synthetic", "wrong_caption", "near_duplicate", "redirect_ok")
JPEG = (("Content-Type", "image/jpeg"),)


@pytest.fixture(scope="module")
def site():
    return demo_site.build_demo_site(timeout_delay_s=2.0)


def _get(url: str, timeout: float = 5.0) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read(), dict(response.headers)


def _pair(pairs: list[DemoPair], kind: str) -> DemoPair:
    return next(p for p in pairs if p.kind == kind)


def test_same_seed_gives_the_same_bytes_and_another_seed_other_scenes(site):
    assert demo_site.build_demo_site(timeout_delay_s=2.0) == site
    other_routes, other_pairs = demo_site.build_demo_site(n_pairs=90, seed=1, timeout_delay_s=2.0)
    synthetic = [p.path for p in other_pairs if p.kind == "synthetic"]
    assert synthetic and any(site[0][path] != other_routes[path] for path in synthetic)


def test_default_site_has_every_kind_with_its_expected_status(site):
    routes, pairs = site
    kinds = Counter(p.kind for p in pairs)
    assert len(pairs) == 200 and len({p.path for p in pairs}) == 200
    assert set(kinds) == set(BROKEN) | set(GOOD)
    assert kinds["photo"] >= 8 and kinds["synthetic"] >= 50
    assert kinds["near_duplicate"] >= 2 * kinds["photo"] and kinds["wrong_caption"] >= 5
    for pair in pairs:
        assert pair.expected_status == BROKEN.get(pair.kind, "success"), pair
        assert isinstance(pair.caption, str) and pair.caption
        assert (pair.path in routes) == (pair.kind != "http_404"), pair


def test_every_success_image_decodes_and_has_its_content_type(site):
    routes, pairs = site
    formats, sizes = set(), set()
    for pair in (p for p in pairs if p.expected_status in ("success", "blocked")):
        route = routes[pair.path]
        if pair.kind == "redirect_ok":
            route = routes[dict(route.headers)["Location"]]
        image = Image.open(io.BytesIO(route.body))
        image.load()
        assert dict(route.headers)["Content-Type"] == Image.MIME[image.format]
        formats.add(image.format)
        sizes.add(image.size)
    assert formats == {"JPEG", "PNG", "WEBP"}
    assert (16, 16) in sizes and any(w >= 4 * h for w, h in sizes)


def test_wrong_captions_belong_to_other_images(site):
    _, pairs = site
    caption_of = {p.path.rsplit("/", 1)[1]: p.caption for p in pairs if p.kind == "photo"}
    for pair in (p for p in pairs if p.kind == "wrong_caption"):
        name = pair.path.rsplit("/", 1)[1].removesuffix(".jpg")
        assert pair.caption in caption_of.values() and pair.caption != caption_of[name]


def test_truncated_jpeg_decodes_with_neither_opencv_nor_pil(site):
    routes, pairs = site
    body = routes[_pair(pairs, "truncated_jpeg").path].body
    assert body.startswith(b"\xff\xd8")
    assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is None
    with pytest.raises(OSError):
        Image.open(io.BytesIO(body)).load()


def test_server_serves_the_site_as_built(site):
    routes, pairs = site
    with LocalImageServer(routes) as server:
        photo = _pair(pairs, "photo").path
        assert _get(server.url(photo))[0] == routes[photo].body
        assert _get(server.url(_pair(pairs, "redirect_ok").path))[0] == routes[photo].body
        for kind in ("robots_noai", "robots_noimageai"):
            headers = _get(server.url(_pair(pairs, kind).path))[1]
            assert headers["X-Robots-Tag"] == kind.removeprefix("robots_")
        with pytest.raises(urllib.error.HTTPError, match="infinite loop"):
            _get(server.url(_pair(pairs, "redirect_loop").path))
        for kind, code in (("http_404", 404), ("http_500", 500)):
            with pytest.raises(urllib.error.HTTPError) as error:
                _get(server.url(_pair(pairs, kind).path))
            assert error.value.code == code
        body, headers = _get(server.url(_pair(pairs, "not_an_image").path))
        assert headers["Content-Type"] == "text/html" and body.startswith(b"<html")


def test_server_records_hits_in_order_and_takes_routes_after_start(capfd):
    with LocalImageServer({"/a.jpg": Route(body=b"abc", headers=JPEG)}) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.url("/a.jpg") == server.base_url + "/a.jpg"
        body, headers = _get(server.url("/a.jpg"))
        assert body == b"abc" and headers["Content-Type"] == "image/jpeg"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            _get(server.url("/nothing"))
        server.add_route("/b", Route(status=302, headers=(("Location", server.url("/a.jpg")),)))
        assert _get(server.url("/b"))[0] == b"abc"
        assert server.hits == ["/a.jpg", "/nothing", "/b", "/a.jpg"]
    assert capfd.readouterr().err == ""


def test_server_answers_many_concurrent_requests():
    routes = {f"/{i}": Route(body=bytes([i]) * 1000, headers=JPEG) for i in range(64)}
    with LocalImageServer(routes) as server, ThreadPoolExecutor(32) as pool:
        bodies = list(pool.map(lambda path: _get(server.url(path))[0], routes))
        assert bodies == [route.body for route in routes.values()]
        assert sorted(server.hits) == sorted(routes)


def test_delayed_route_times_out_a_client_quickly():
    with LocalImageServer({"/slow.jpg": Route(body=b"x", headers=JPEG, delay_s=2.0)}) as server:
        start = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            _get(server.url("/slow.jpg"), timeout=0.5)
        assert time.monotonic() - start < 1.5


def test_shutdown_is_fast_with_a_request_still_waiting():
    errors = []

    def fetch(url):
        try:
            _get(url, timeout=20)
        except Exception as error:  # the server hangs up without an answer
            errors.append(error)

    with LocalImageServer({"/slow.jpg": Route(body=b"x", headers=JPEG, delay_s=30.0)}) as server:
        client = threading.Thread(target=fetch, args=(server.url("/slow.jpg"),))
        client.start()
        while not server.hits:
            time.sleep(0.01)
        start = time.monotonic()
    assert time.monotonic() - start < 3.0
    client.join(timeout=5)
    assert not client.is_alive() and errors


def test_write_pairs_parquet(tmp_path):
    pairs = [
        DemoPair("/a.jpg", "a cat", "photo", "success"),
        DemoPair("/b", "x", "http_404", "failed_to_download"),
    ]
    demo_site.write_pairs_parquet(pairs, "http://127.0.0.1:9", tmp_path / "pairs.parquet")
    assert pq.read_table(tmp_path / "pairs.parquet").to_pylist() == [
        {
            "url": "http://127.0.0.1:9/a.jpg",
            "caption": "a cat",
            "kind": "photo",
            "expected_status": "success",
        },
        {
            "url": "http://127.0.0.1:9/b",
            "caption": "x",
            "kind": "http_404",
            "expected_status": "failed_to_download",
        },
    ]
