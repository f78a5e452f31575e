"""`python -m sandbox --port 8700`: serve the sandbox store with werkzeug's threaded server (one process)."""

from __future__ import annotations

import argparse
import logging
import os

from sandbox import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Run the sandbox store.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Links the sandbox prints point at itself unless SANDBOX_PUBLIC_URL says otherwise (e.g. behind a proxy).
    overrides = {} if os.environ.get("SANDBOX_PUBLIC_URL") else {"public_url": f"http://{args.host}:{args.port}"}
    app = create_app(overrides)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
