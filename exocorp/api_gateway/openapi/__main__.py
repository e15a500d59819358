"""``python -m exocorp.api_gateway.openapi [--write PATH]``: print or write the OpenAPI document
of every route table. Apart from the package so that generating the document (which the health
routes serve) never imports the app that registers them."""

from __future__ import annotations

import argparse
from pathlib import Path

from exocorp.api_gateway.app import route_tables
from exocorp.api_gateway.openapi import document_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exocorp.api_gateway.openapi",
                                     description="Print (or --write) the OpenAPI document.")
    parser.add_argument("--write", metavar="PATH", help="write it to PATH (docs/openapi.json)")
    args = parser.parse_args(argv)
    text = document_json(route_tables())
    if args.write:
        Path(args.write).write_text(text)
        print(f"wrote {args.write}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
