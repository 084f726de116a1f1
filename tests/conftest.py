import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # a busy CI machine

import pytest  # noqa: E402
import torch  # noqa: E402

from pairsmith.flows.demo_site import LocalImageServer, build_demo_site, write_pairs_parquet  # noqa: E402


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """A test that changes torch's thread count (a run with `models.threads`, a one-thread check) must not
    leave it changed: in-process runs of later tests would differ from subprocess runs in float bits."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """One torch thread for a test (the toy trainers' and calibrations' setting: their figures repeat);
    `torch_threads_restored` puts the count back afterwards."""
    torch.set_num_threads(1)


# Settings every pipeline test needs: the server is on 127.0.0.1 and timeouts should be short.
LOCAL = [
    "download.allow_private_addresses=true",
    "download.timeout_s=2",  # 1 s let photos time out on a loaded CI machine
    "download.retries=0",
    "models.profile=toy",
]


@pytest.fixture(scope="session")
def demo_routes_and_pairs():
    return build_demo_site(n_pairs=60, seed=1, timeout_delay_s=5.0)


@pytest.fixture
def demo_server(demo_routes_and_pairs):
    routes, _ = demo_routes_and_pairs
    with LocalImageServer(dict(routes)) as server:
        yield server


@pytest.fixture
def demo_input(tmp_path, demo_server, demo_routes_and_pairs):
    """A parquet file of the small demo site's pairs, served by `demo_server`."""
    _, pairs = demo_routes_and_pairs
    path = tmp_path / "pairs.parquet"
    write_pairs_parquet(pairs, demo_server.base_url, path)
    return path
