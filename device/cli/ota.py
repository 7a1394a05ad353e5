"""`voxhome ota …`: the device side (check, apply, status, rollback, confirm, run, provision) and the
vendor side (keygen, publish). Every command prints JSON lines; failures are VoxErrors (exit 2)."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from device.cli.common import add_mqtt_option, print_json, settings_from_args
from device.errors import ConfigError, OtaError
from device.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("ota", help="over-the-air model updates (device and vendor side)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = verbs.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    for name, help_text, func in (
        ("check", "ask the repository what it offers (nothing is installed)", _check),
        ("apply", "download, verify, health-check and switch to every available update", _apply),
        ("status", "installed versions, slots, trials and the last update status", _status),
        ("run", "service mode: periodic checks, MQTT notifications, trial confirmation", _run),
    ):
        p = verb(name, help_text, func)
        _device_options(p)
    p = verb("rollback", "leave a model that is on trial and go back to the previous one", _rollback)
    _device_options(p)
    p.add_argument("kind")
    p = verb("confirm", "mark a model on trial good now (normally after ota.stable_s of running)", _confirm)
    _device_options(p)
    p.add_argument("kind")
    p = verb("provision", "factory install of a bundle directory into slot a", _provision)
    _device_options(p)
    p.add_argument("bundle", type=Path)

    p = verb("keygen", "create ed25519 signing keys (<name>.pem, mode 0600)", _keygen)
    p.add_argument("--keys", type=Path, required=True, help="key directory")
    p.add_argument("names", nargs="*", default=["root", "targets", "snapshot", "timestamp"],
                   help="key names: a role, or role-N for more keys of one role (default: one per role)")
    p = verb("publish", "add bundles to a TUF repository directory and sign the metadata", _publish)
    p.add_argument("--repo", type=Path, required=True, help="repository directory (serve it with any static HTTP server)")
    p.add_argument("--keys", type=Path, required=True, help="key directory (root keys needed only with --init/--rotate)")
    p.add_argument("--init", action="store_true", help="create the repository (needs every role's keys)")
    p.add_argument("--threshold", action="append", default=[], metavar="ROLE=N", help="signatures a role needs (with --init/--rotate)")
    p.add_argument("--expires", action="append", default=[], metavar="ROLE=DAYS", help="metadata lifetime per role")
    p.add_argument("--rotate", metavar="ROLE", help="replace ROLE's keys by --new-key files (signed by the root keys)")
    p.add_argument("--new-key", action="append", default=[], type=Path, metavar="PEM")
    p.add_argument("--refresh-timestamp", action="store_true", help="only re-sign timestamp (run from cron)")
    p.add_argument("--allow-downgrade", action="store_true", help="publish a lower version (devices still refuse it)")
    p.add_argument("bundles", nargs="*", type=Path, help="bundle archives (.tar) or bundle directories")


def _device_options(parser: argparse.ArgumentParser) -> None:
    add_mqtt_option(parser)
    parser.add_argument("--repository", metavar="URL", help="TUF repository URL instead of ota.repository_url")
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help="OTA state directory (default <device.state_dir>/ota)")


def _agent(args: argparse.Namespace, settings: Settings, sink: Any = None) -> Any:
    from ota.agent import Agent, AgentConfig
    from ota.fetcher import FetchConfig

    ota = settings.ota
    url = args.repository or ota.repository_url
    state_dir = args.state_dir or Path(settings.device.state_dir) / "ota"
    if url is None:
        raise ConfigError("config-value", "no update repository: set ota.repository_url or pass --repository")
    try:
        root = Path(ota.trusted_root).read_bytes()
    except OSError as err:
        raise OtaError("ota-no-root", f"trusted root {ota.trusted_root} is unreadable: {err.strerror}") from None
    config = AgentConfig(
        state_dir=state_dir, repository_url=url, trusted_root=root, kinds=ota.kinds,
        trial_attempts=ota.trial_attempts, health_timeout_s=ota.health_timeout_s,
        disk_margin_bytes=ota.disk_margin_mb << 20, fetch=FetchConfig(timeout_s=ota.download_timeout_s),
    )
    return Agent(config, sink=sink)


def _store(args: argparse.Namespace) -> Any:
    from ota.slots import SlotStore

    settings = settings_from_args(args)
    return SlotStore(args.state_dir or Path(settings.device.state_dir) / "ota")


def _check(args: argparse.Namespace) -> int:
    agent = _agent(args, settings_from_args(args))
    for decision in agent.check():
        print_json({"kind": decision.kind, "action": decision.action, "current": decision.current,
                    "offered": decision.offered, "reason": decision.reason})
    return 0


def _mqtt(settings: Settings) -> Any:
    if not settings.mqtt.enabled:
        return None
    from ota.notify import OtaMqtt

    mqtt = OtaMqtt(settings.mqtt, settings.device.id)
    mqtt.start()
    mqtt.wait_connected(2.0)
    return mqtt


def _apply(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    mqtt = _mqtt(settings)

    def sink(status: dict[str, Any]) -> None:
        print_json(status)
        if mqtt is not None:
            mqtt.publish_status(status)

    try:
        results = _agent(args, settings, sink).apply()
    finally:
        if mqtt is not None:
            mqtt.stop()
    return 1 if any(r["state"] == "failure" for r in results) else 0


def _status(args: argparse.Namespace) -> int:
    from ota.agent import STATUS_NAME

    store = _store(args)
    for kind, state in sorted(store.load().kinds.items()):
        print_json({"kind": kind, "slot": state.active, **state.to_json()})
    path = store.root / STATUS_NAME
    if path.exists():
        import json

        print_json({"last": json.loads(path.read_text(encoding="utf-8"))})
    return 0


def _rollback(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    print_json(_agent_or_store_action(args, settings, "rollback"))
    return 0


def _confirm(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    print_json(_agent_or_store_action(args, settings, "confirm"))
    return 0


def _agent_or_store_action(args: argparse.Namespace, settings: Settings, action: str) -> dict[str, Any]:
    from ota.agent import Agent, AgentConfig

    state_dir = args.state_dir or Path(settings.device.state_dir) / "ota"
    # Rolling back or confirming needs no repository: build the agent with what is local only.
    agent = Agent(AgentConfig(state_dir=state_dir, repository_url="", trusted_root=b"", kinds=settings.ota.kinds,
                              health_timeout_s=settings.ota.health_timeout_s))
    result: dict[str, Any] = getattr(agent, action)(args.kind)
    return result


def _provision(args: argparse.Namespace) -> int:
    from models.manifest import read_manifest

    kind = read_manifest(args.bundle).kind
    manifest = _store(args).provision(kind, args.bundle)
    print_json({"kind": kind, "version": manifest.version, "slot": "a"})
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    mqtt = _mqtt(settings)
    wake = mqtt.wake if mqtt is not None else threading.Event()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = _agent(args, settings, mqtt.publish_status if mqtt is not None else None)
    try:
        agent.run(stop, wake, interval_s=settings.ota.check_interval_s, stable_s=settings.ota.stable_s)
    finally:
        if mqtt is not None:
            mqtt.stop()
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from ota.publish import keygen

    for name in args.names:
        print_json({"key": str(args.keys / f"{name}.pem"), "keyid": keygen(args.keys, name)})
    return 0


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or role not in ("root", "targets", "snapshot", "timestamp"):
            raise ConfigError("config-value", f"{what} must look like ROLE=VALUE with a TUF role, not {item!r}")
        out[role] = value
    return out


def _publish(args: argparse.Namespace) -> int:
    from ota.bundle import pack
    from ota.publish import Repository, load_keydir, load_signer

    try:
        thresholds = {k: int(v) for k, v in _pairs(args.threshold, "--threshold").items()}
        expiry = {k: timedelta(days=float(v)) for k, v in _pairs(args.expires, "--expires").items()}
    except ValueError:
        raise ConfigError("config-value", "--threshold takes an integer and --expires a number of days") from None
    repo = Repository(args.repo, expiry=expiry)
    keys = load_keydir(args.keys)
    if args.init:
        repo.init(keys, thresholds)
        print_json({"init": str(args.repo), "trusted_root": str(args.repo / "metadata" / "1.root.json")})
    if args.rotate:
        if not args.new_key:
            raise ConfigError("config-value", "--rotate needs at least one --new-key")
        version = repo.rotate(args.rotate, [load_signer(p) for p in args.new_key], keys,
                              threshold=thresholds.get(args.rotate))
        print_json({"rotated": args.rotate, "root_version": version})
    if args.refresh_timestamp:
        print_json({"timestamp_version": repo.refresh_timestamp(keys)})
    if args.bundles:
        with tempfile.TemporaryDirectory() as tmp:
            archives = []
            for path in args.bundles:
                if path.is_dir():
                    archive = Path(tmp) / f"{path.name}.tar"
                    pack(path, archive)
                    archives.append(archive)
                else:
                    archives.append(path)
            for item in repo.add_bundles(archives, keys, allow_downgrade=args.allow_downgrade):
                print_json({"published": item.name, "kind": item.kind, "version": item.version,
                            "bytes": item.length, "targets_version": item.targets_version})
    return 0
