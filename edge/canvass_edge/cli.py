"""`canvass-edge enrol | run | trigger | status`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import httpx

from canvass_edge.agent import Agent, TriggerFailed
from canvass_edge.config import ConfigError, load, read_credential, save_credential


def _enrol(args: argparse.Namespace) -> int:
    if args.config:
        cfg = load(Path(args.config))
        registry, target = cfg.registry_url, cfg.credential_file
    else:
        if not args.registry or not args.credential_file:
            sys.exit("give --config, or both --registry and --credential-file")
        registry, target = args.registry.rstrip("/"), Path(args.credential_file)
    r = httpx.post(f"{registry}/v1/edge-agents/enrol", json={"code": args.code}, timeout=15)
    if r.status_code != 201:
        sys.exit(f"enrolment refused ({r.status_code}): {r.json().get('detail', r.text)}")
    body = r.json()
    save_credential(target, body)
    print(
        f"enrolled: agent {body['agent_id']} of registration {body['registration_id']}; credential in {target}"
    )
    return 0


async def _run(cfg_path: Path) -> None:
    cfg = load(cfg_path)
    agent = Agent(cfg, read_credential(cfg.credential_file))
    try:
        await agent.run()
    finally:
        await agent.aclose()


async def _trigger(cfg_path: Path) -> dict[str, object]:
    cfg = load(cfg_path)
    agent = Agent(cfg, read_credential(cfg.credential_file))
    try:
        return await agent.trigger()
    finally:
        await agent.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="canvass-edge", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enrol", help="exchange the owner's one-time code for this agent's credential")
    e.add_argument("--code", required=True)
    e.add_argument("--config", help="the agent's configuration file (for registry_url and credential_file)")
    e.add_argument("--registry")
    e.add_argument("--credential-file")
    for name, text in (
        ("run", "connect to the relay and stream cameras while their windows are open"),
        ("trigger", "open a live window for the configured agencies and duration (the manual trigger)"),
        ("status", "the running agent's counters (from its local endpoint)"),
    ):
        sub.add_parser(name, help=text).add_argument("--config", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.command == "enrol":
            return _enrol(args)
        if args.command == "run":
            asyncio.run(_run(Path(args.config)))
            return 0
        if args.command == "trigger":
            print(json.dumps(asyncio.run(_trigger(Path(args.config))), indent=2))
            return 0
        cfg = load(Path(args.config))
        print(httpx.get(f"http://127.0.0.1:{cfg.status_port}/status", timeout=5).text)
        return 0
    except (ConfigError, TriggerFailed) as exc:
        sys.exit(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
