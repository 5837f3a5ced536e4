"""`speechsvc keys create NAME | list | revoke ID_OR_NAME` against the data dir's store."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone

from speechsvc.access.auth import KeyScope, create_key
from speechsvc.config import STORE_FIELDS, Config, add_config_arguments
from speechsvc.store import open_store


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    create.add_argument(
        "--scope",
        choices=[scope.value for scope in KeyScope],
        default=KeyScope.TENANT.value,
        help="tenant (default): sees only its own jobs and uploads; admin: sees every job (operators)",
    )
    listing = actions.add_parser("list", help="names, ids, created, last used (never the key)")
    revoke = actions.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key")
    for action in (create, listing, revoke):
        add_config_arguments(action, nested=True, only=STORE_FIELDS)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _run(config: Config, args: argparse.Namespace) -> int:
    async with open_store(config) as store:
        if args.keys_action == "create":
            key_id, key = await create_key(store, args.name, KeyScope(args.scope))
            print(f"created {args.scope} key {key_id} for {args.name!r}; it is shown only now: {key}")
            return 0
        if args.keys_action == "list":
            print(f"{'id':<18} {'name':<20} {'scope':<7} {'created':<21} {'last used':<21} revoked")
            for row in await store.list_keys():
                print(f"{row['id']:<18} {row['name']:<20} {row['scope']:<7} {_when(row['created_at']):<21} "
                      f"{_when(row['last_used_at']):<21} {_when(row['revoked_at'])}")  # fmt: skip
            return 0
        revoked = await store.revoke_key(args.key)
        if revoked == 0:
            print(f"no active key with id or name {args.key!r}")
            return 1
        print(f"revoked {revoked} key(s)")
        return 0


def run_keys(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(_run(config, args))


async def _count_active(config: Config) -> int:
    async with open_store(config) as store:
        return len(await store.active_keys())


def count_active_keys(config: Config) -> int:
    return asyncio.run(_count_active(config))
