"""`pairsmith models list` and `pairsmith models pull PROFILE|NAME`: every model the profiles name,
where it comes from, where it is kept here, and fetching it.

Two homes: LAION's heads (`filters/named_weights.py`: watermark, NSFW, aesthetic) are files in the
model folder (`PAIRSMITH_MODELS`), fetched from the URLs LAION publishes them at; open_clip's weights
are in the Hugging Face cache (`HF_HOME`), fetched with `huggingface_hub` (they need the network,
and `--skip-hub` leaves them out). The toy zoo and NudeNet ship in the packages.

A mirror (`--mirror BASE_URL` or `PAIRSMITH_MODELS_MIRROR`) replaces the published hosts: a file
published at `https://HOST/PATH` is fetched from `BASE_URL/PATH` (offline tests, a proxy, a local
copy). Every download goes to a temporary file beside its target and is renamed into place when whole
and checked (a torch file must load into the class that uses it; a Keras NSFW head is converted by
`flows/keras_heads.py` first). `models.lock.json` in the model folder records the size and SHA-256
of each published file on its first download; a later download whose bytes differ is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pairsmith.filters.named_weights import NAMED, is_hub_clip_spec, model_folder, named_path
from pairsmith.schemas.errors import ModelLoadError

LOCK = "models.lock.json"
MIRROR_ENV = "PAIRSMITH_MODELS_MIRROR"
PROGRESS_FROM_BYTES = 1 << 20  # a bar for files from 1 MiB (on a terminal)
TIMEOUT_S = 60
EMBEDDING_DIM = {"laion-nsfw-b32": 512, "laion-nsfw-l14": 768, "laion-aesthetic-l14": 768}
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    ("clip", "toy"): ROOT / "filters" / "toy_zoo",
    ("watermark", "toy"): ROOT / "filters" / "toy_zoo",
    ("synthetic", "toy"): ROOT / "filters" / "toy_zoo" / "toy-synthetic",
    ("recaption", "toy"): ROOT / "captioners" / "toy_captioner",
}


@dataclass(frozen=True)
class Model:
    """A model some profile names (or a named file none does): what it is and who uses it."""

    name: str
    key: str  # the model key (`models.<key>`)
    profiles: tuple[str, ...]

    @property
    def kind(self) -> str:
        if self.name in NAMED:
            return "url"
        if self.key == "clip" and is_hub_clip_spec(self.name):
            return "hub"
        if (self.key, self.name) in SHIPPED or self.name == "nudenet":
            return "ships"
        return "other"


def catalogue() -> list[Model]:
    """Every model of every profile (profile order, then key order), then the named files no profile uses."""
    from pairsmith.filters.profiles import PROFILES

    seen: dict[tuple[str, str], list[str]] = {}
    for profile, keys in PROFILES.items():
        for key, spec in keys.items():
            for name in [m.spec for m in spec] if isinstance(spec, list) else [spec]:
                if name != "none":
                    seen.setdefault((key, name), []).append(profile)
    for name in NAMED:
        seen.setdefault((_named_key(name), name), [])
    return [Model(name, key, tuple(p)) for (key, name), p in seen.items()]


def _named_key(name: str) -> str:
    return next(key for key in ("nsfw", "watermark", "aesthetic") if key in name)


# --- where from, where to, present -----------------------------------------------------------------


def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _hub_present(repo: str, files: list[list[str]]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return all(any(isinstance(try_to_load_from_cache(repo, n), str) for n in names) for names in files)


def _describe(model: Model) -> tuple[str, str, bool | None]:
    """(where it comes from, where it is kept here, whether it is here: None where unknown)."""
    if model.kind == "url":
        weights = NAMED[model.name]
        converted = " (Keras, converted to torch)" if weights.form == "keras-nsfw" else ""
        path = named_path(model.name)
        return weights.url + converted, str(path), path.is_file()
    if model.kind == "hub":
        from pairsmith.filters.clip_models import hub_location

        try:
            repo, files = hub_location(model.name)
        except ModelLoadError as exc:
            return f"unknown to open_clip ({exc})", "-", False
        folder = _hub_cache() / f"models--{repo.replace('/', '--')}"
        return f"Hugging Face hub {repo} ({files[-1][0]})", str(folder), _hub_present(repo, files)
    if model.name == "nudenet":
        import importlib.util

        spec = importlib.util.find_spec("nudenet")
        where = str(Path(spec.origin).parent) if spec and spec.origin else "-"
        return "ships in the nudenet package (PyPI)", where, spec is not None
    if model.kind == "ships":
        folder = SHIPPED[(model.key, model.name)]
        return "ships with pairsmith (the toy zoo)", str(folder), folder.exists()
    return "set by path or repo id in a profile", model.name, Path(model.name).exists() or None


def _home(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


HEADER = ("model", "signal", "profiles", "state", "from -> kept at")


def list_models(profile: str | None = None) -> str:
    """One line per model: name, signal, profiles, here or missing, where from -> where kept."""
    from pairsmith.filters.profiles import PROFILES

    if profile is not None and profile not in PROFILES:
        raise ModelLoadError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    models = [m for m in catalogue() if profile is None or profile in m.profiles]
    rows = []
    for m in models:
        source, local, present = _describe(m)
        state = "here" if present else "unknown" if present is None else "missing"
        rows.append((m.name, m.key, ",".join(m.profiles) or "-", state, f"{source} -> {_home(local)}"))
    widths = [max(len(r[i]) for r in [*rows, HEADER]) for i in range(4)]
    lines = [f"models folder: {_home(str(model_folder()))} (PAIRSMITH_MODELS); lock: {LOCK} there"]
    if mirror := os.environ.get(MIRROR_ENV):
        lines.append(f"mirror: {mirror} ({MIRROR_ENV}) replaces the published hosts")
    lines += [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]]) for r in [HEADER, *rows]
    ]
    wanting = sorted({p for m, r in zip(models, rows, strict=True) if r[3] == "missing" for p in m.profiles})
    if wanting:
        lines.append("get the missing ones: " + "; ".join(f"pairsmith models pull {p}" for p in wanting))
    return "\n".join(lines)


# --- pull ------------------------------------------------------------------------------------------


def _targets(target: str) -> list[Model]:
    from pairsmith.filters.profiles import PROFILES

    if target in PROFILES:
        return [m for m in catalogue() if target in m.profiles]
    if target in NAMED:
        return [Model(target, _named_key(target), ())]
    if is_hub_clip_spec(target):
        return [Model(target, "clip", ())]
    raise ModelLoadError(
        f"unknown profile or model {target!r}; profiles: {', '.join(PROFILES)}; models: {', '.join(NAMED)}, "
        "or a CLIP spec ARCH/TAG or hf-hub:ORG/NAME"
    )


def pull(
    target: str,
    mirror: str | None = None,
    skip_hub: bool = False,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Fetch what `target` (a profile, a named file or a CLIP hub spec) needs; returns the lines said.

    LAION's files first, then the hub weights, so that a machine without hub access still gets
    LAION's; a hub model that cannot be fetched is then a ModelLoadError (or left out: `skip_hub`).
    """
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    models = sorted(_targets(target), key=lambda m: ("url", "hub", "ships", "other").index(m.kind))
    said: list[str] = []

    def tell(model: Model, what: str) -> None:
        said.append(f"{model.name} ({model.key}): {what}")
        say(said[-1])

    for model in models:
        if model.kind == "url":
            tell(model, _pull_url(model.name, mirror, force))
        elif model.kind == "hub":
            tell(model, "skipped (hub weights; --skip-hub)" if skip_hub else _pull_hub(model.name, force))
        elif model.kind == "ships":
            tell(
                model, f"ships with {'nudenet' if model.name == 'nudenet' else 'pairsmith'}, nothing to fetch"
            )
        else:
            tell(model, "a path or repo id, not fetched by pull")
    return said


def mirrored(url: str, mirror: str | None) -> str:
    """The URL fetched: the published one, or the mirror's base with the published path."""
    if not mirror:
        return url
    return mirror.rstrip("/") + urlsplit(url).path


def _sizes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"


def _pull_url(name: str, mirror: str | None, force: bool) -> str:
    weights, dest = NAMED[name], named_path(name)
    if dest.is_file() and not force:
        return f"here, {_home(str(dest))}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    url = mirrored(weights.url, mirror)
    downloaded, size, sha256 = download(url, dest.parent, name)
    made: Path | None = None
    try:
        lock = read_lock(dest.parent)
        known = lock.get(name)
        if known and known.get("url") == weights.url and (known["size"], known["sha256"]) != (size, sha256):
            raise ModelLoadError(
                f"{name}: the file from {url} ({size} bytes, sha256 {sha256}) differs from the one "
                f"{dest.parent / LOCK} recorded on the first download ({known['size']} bytes, sha256 "
                f"{known['sha256']}); refused. If the publisher changed it on purpose, delete the "
                f"{name!r} entry of {LOCK} and pull again"
            )
        if weights.form == "keras-nsfw":
            made, how = _convert_nsfw(name, downloaded)
        else:
            made, how = downloaded, _check_torch(name, downloaded)
        os.replace(made, dest)
        lock[name] = {
            "url": weights.url,
            "size": size,
            "sha256": sha256,
            "file": weights.filename,
            "file_sha256": sha256 if made == downloaded else _sha256(dest),
        }
        write_lock(dest.parent, lock)
    finally:
        for path in (downloaded, made):
            if path is not None:
                path.unlink(missing_ok=True)
    pinned = "recorded in" if not known or known.get("url") != weights.url else "matches"
    return f"downloaded {_sizes(size)} from {url}{how} -> {_home(str(dest))} (sha256 {sha256[:12]}..., {pinned} {LOCK})"


def download(url: str, folder: Path, name: str) -> tuple[Path, int, str]:
    """`url` into a temporary file in `folder`: (its path, size, sha256). A bar on a terminal for large files."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "pairsmith-models-pull"})
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    path, digest, size = Path(tmp), hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            big = total is None or total >= PROGRESS_FROM_BYTES
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                disable=None if big else True, leave=False,
            ) as bar:  # fmt: skip
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if total is not None and size != total:
            raise ModelLoadError(f"{name}: {url} sent {size} of {total} bytes")
    except urllib.error.HTTPError as exc:
        path.unlink(missing_ok=True)
        raise ModelLoadError(f"{name}: cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        path.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise ModelLoadError(f"{name}: cannot download {url}: {reason}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_lock(folder: Path) -> dict:
    path = folder / LOCK
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path} is not a pairsmith models lock file ({exc}); fix or delete it") from exc


def write_lock(folder: Path, files: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{LOCK}.", suffix=".part")
    with os.fdopen(fd, "w") as f:
        json.dump({"version": 1, "files": dict(sorted(files.items()))}, f, indent=1)
        f.write("\n")
    os.replace(tmp, folder / LOCK)


def _check_head(name: str, state: dict) -> str:
    """The state_dict builds the head `filters/clip_heads.py` builds, on the right embedding size."""
    from pairsmith.filters.clip_heads import mlp_from_state_dict

    try:
        head = mlp_from_state_dict(state, sigmoid=False)
    except Exception as exc:  # noqa: BLE001  (any failure: not the head it should be)
        raise ModelLoadError(f"{name}: not an MLP head state_dict ({type(exc).__name__}: {exc})") from exc
    shapes = [tuple(layer.weight.shape[::-1]) for layer in head if hasattr(layer, "weight")]
    if shapes[0][0] != EMBEDDING_DIM[name] or shapes[-1][1] != 1:
        raise ModelLoadError(
            f"{name}: a head of layers {shapes}, expected {EMBEDDING_DIM[name]} inputs, 1 output"
        )
    return "-".join(str(s[0]) for s in shapes) + "-1"


def _check_torch(name: str, path: Path) -> str:
    """A published torch file loads into what uses it; returns what it is, for the output line."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(
            f"{name}: the download is not a torch state_dict ({type(exc).__name__})"
        ) from exc
    if name == "laion-watermark":
        from pairsmith.filters.watermark_model import WatermarkConfig, load_watermark_model

        try:
            with warnings.catch_warnings():  # timm: "Mapping deprecated model name efficientnet_b3a"
                warnings.simplefilter("ignore", UserWarning)
                load_watermark_model(path, WatermarkConfig())
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"{name}: the download does not load into efficientnet_b3a with LAION's head ({exc})"
            ) from exc
        return ", efficientnet_b3a state_dict"
    return f", linear head {_check_head(name, state)}"


def _convert_nsfw(name: str, downloaded: Path) -> tuple[Path, str]:
    """LAION's Keras head -> a torch state_dict file beside it; (its path, what was converted)."""
    import torch

    from pairsmith.flows.keras_heads import head_state_dict, read_keras_head

    head = read_keras_head(downloaded)
    state = {k: torch.from_numpy(v) for k, v in head_state_dict(head).items()}
    shapes = _check_head(name, state)
    fd, tmp = tempfile.mkstemp(dir=downloaded.parent, prefix=f".{name}.", suffix=".pt.part")
    os.close(fd)
    torch.save(state, tmp)
    return Path(tmp), f", converted from {head.form} (MLP {shapes}, sigmoid)"


def _unreachable_hub() -> str | None:
    """Why the hub cannot be reached, found quickly (a name that does not resolve, without a proxy),
    instead of huggingface_hub's retries; None where it may be reachable."""
    import socket

    from huggingface_hub import constants

    host = urlsplit(constants.ENDPOINT).hostname
    if not host or urllib.request.getproxies():
        return None
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    return None


def _pull_hub(spec: str, force: bool) -> str:
    from huggingface_hub import hf_hub_download

    from pairsmith.filters.clip_models import hub_location

    repo, files = hub_location(spec)
    if _hub_present(repo, files) and not force:
        return f"here, in the Hugging Face cache ({repo})"
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    why = f"HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']} is set" if offline else _unreachable_hub()
    got = []
    for names in [] if why else files:
        errors: list[Exception] = []
        for filename in names:
            try:
                got.append(hf_hub_download(repo, filename, force_download=force))
                break
            except Exception as exc:  # noqa: BLE001  (not there under this name, or no network)
                errors.append(exc)
        else:
            why = f"{type(errors[-1]).__name__}: {str(errors[-1]).splitlines()[0] if str(errors[-1]) else ''}"
            break
    if why:
        raise ModelLoadError(
            f"{spec}: open_clip's weights come from the Hugging Face Hub ({repo}) and need the network "
            f"({why}): pull with network access, point HF_HOME at a cache that has them, or add --skip-hub "
            "to fetch only LAION's files"
        )
    return f"downloaded from the Hugging Face Hub ({repo}) -> {_home(str(Path(got[-1]).parent))}"
