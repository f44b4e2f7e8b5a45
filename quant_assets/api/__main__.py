"""``python -m quant_assets.api [--host H] [--port P]``: the API and the web app from one process.

Bound to 127.0.0.1 by default; any other address requires ``QUANT_API_TOKEN`` (then every request needs it).
"""

from __future__ import annotations

import argparse
import os
import sys

from quant_assets.api.config import ApiConfig, is_loopback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quant_assets.api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not os.environ.get("QUANT_API_TOKEN"):
        print(f"refusing to listen on {args.host}: set QUANT_API_TOKEN to serve beyond this machine "
              "(every request then requires it)", file=sys.stderr)
        return 2
    import uvicorn

    from quant_assets.api.app import create_app

    uvicorn.run(create_app(ApiConfig.from_env(host=args.host)), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
