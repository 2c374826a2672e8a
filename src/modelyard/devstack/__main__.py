"""`python -m modelyard.devstack {up,down,status,clean} [--root DIR]`: the native local stack.

`make up` / `make down` / `make status` / `make clean` call this when no Docker engine is available.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelyard.devstack.process import StartupError
from modelyard.devstack.services import REPO_ROOT
from modelyard.devstack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelyard.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "clean"])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="where .stack/ and .data/ live")
    args = parser.parse_args(argv)
    stack = Stack(args.root)

    if args.command == "up":
        print("starting the local stack (native processes):")
        try:
            stack.up()
        except StartupError as exc:
            print(f"\nmake up failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "down":
        stack.down()
        return 0
    if args.command == "clean":
        stack.clean()
        print(f"removed {stack.state_dir} and {stack.data_dir} (PostgreSQL's data and the S3 snapshot)")
        return 0

    components = list(stack.status())
    if not components:
        print("the local stack is not running (make up)")
        return 0
    for c in components:
        state = "healthy" if c.healthy else ("running, not healthy" if c.running else "not running")
        print(f"  {c.name:<10} {state:<22} pid {c.pid or '-':<8} {c.url}")
    return 0 if all(c.healthy for c in components) else 1


if __name__ == "__main__":
    sys.exit(main())
