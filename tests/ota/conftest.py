"""OTA fixtures: signing keys, bundles, a signed repository and a real HTTP server with Range support."""

from __future__ import annotations

import http.server
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models.manifest import Golden, write_manifest
from ota.agent import Agent, AgentConfig
from ota.bundle import pack
from ota.publish import Repository, keygen, load_keydir

KINDS = ("vad",)


@dataclass
class ServerControl:
    """Faults the test can switch on: cut a body short once, or answer 503 to everything."""

    truncate_at: int | None = None
    down: bool = False
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(root: Path, control: ServerControl) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 — keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            try:
                self._get()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the power-cut test kills clients mid-request

        def _get(self) -> None:
            rng = self.headers.get("Range")
            control.requests.append((self.path, rng))
            if control.down:
                self.send_error(503)
                return
            path = (root / self.path.lstrip("/")).resolve()
            if root.resolve() not in path.parents or not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and not control.ignore_range:
                start = int(match.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if control.truncate_at is not None and len(body) > control.truncate_at:
                self.wfile.write(body[: control.truncate_at])
                control.truncate_at = None
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@dataclass
class Served:
    url: str
    control: ServerControl


Serve = Callable[[Path], Served]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(root: Path) -> Served:
        control = ServerControl()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, control))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Served(f"http://127.0.0.1:{server.server_address[1]}", control)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_bundle(base: Path, version: str, *, kind: str = "vad", size: int = 4096, files: int = 3,
                extra: dict[str, bytes] | None = None, golden: tuple[Golden, ...] | None = None) -> Path:
    """A small bundle whose every byte depends on the version (so old/new mixes are detectable)."""
    directory = base / f"{kind}-{version}"
    directory.mkdir(parents=True)
    seed = version.encode()
    for i in range(files):
        block = (seed + b"|" + str(i).encode() + b"|") * (size // (len(seed) + 4) + 1)
        (directory / f"model-{i}.bin").write_bytes(block[:size])
    (directory / "golden.wav").write_bytes(b"RIFF" + seed * 16)
    for name, data in (extra or {}).items():
        (directory / name).write_bytes(data)
    write_manifest(directory, name=f"test-{kind}", kind=kind, version=version,
                   golden=golden if golden is not None else (Golden("golden.wav", "hey test"),))
    return directory


@dataclass
class Vendor:
    """The vendor's side: keys, a repository directory and the archives it publishes."""

    base: Path
    keydir: Path
    repo: Repository

    def publish(self, version: str, *, kind: str = "vad", allow_downgrade: bool = False, **bundle: object) -> Path:
        directory = make_bundle(self.base / "bundles", version, kind=kind, **bundle)  # type: ignore[arg-type]
        archive = self.base / "bundles" / f"{kind}-{version}.tar"
        pack(directory, archive)
        self.repo.add_bundles([archive], load_keydir(self.keydir), allow_downgrade=allow_downgrade)
        return directory

    @property
    def root(self) -> bytes:
        return self.repo.trusted_root_bytes()


@pytest.fixture(scope="session")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys")
    for name in ("root", "targets", "snapshot", "timestamp"):
        keygen(path, name)
    return path


@pytest.fixture
def vendor(tmp_path: Path, keydir: Path) -> Vendor:
    repo = Repository(tmp_path / "repo")
    repo.init(load_keydir(keydir))
    return Vendor(tmp_path, keydir, repo)


def new_agent(state: Path, url: str, root: bytes, *, kinds: tuple[str, ...] = KINDS, **kwargs: object) -> Agent:
    config = AgentConfig(state_dir=state, repository_url=url, trusted_root=root, kinds=kinds,
                         metadata_dir=state.parent / (state.name + "-tuf"), disk_margin_bytes=0)
    return Agent(config, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def device(tmp_path: Path, vendor: Vendor, serve: Serve) -> tuple[Agent, Served, Vendor]:
    """A device provisioned with a vad bundle 1.0.0, pointed at the vendor's served repository."""
    first = make_bundle(tmp_path / "factory", "1.0.0")
    served = serve(vendor.repo.path)
    statuses: list[dict[str, object]] = []
    agent = new_agent(tmp_path / "state", served.url, vendor.root, sink=statuses.append)
    agent.store.provision("vad", first)
    agent.statuses = statuses  # type: ignore[attr-defined]
    return agent, served, vendor


def durable_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env
