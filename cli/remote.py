"""What the client commands share: the server's address and API key, and turning client errors into messages.

`--server` and `--api-key` win over `JETSCRIBE_SERVER` and `JETSCRIBE_API_KEY`; the default server is
`http://localhost:8080`, where `jetscribe serve` listens. These commands talk HTTP through `client`
only: they work against any jetscribe, near or far.
"""

from __future__ import annotations

import argparse
import os
from typing import Final

from client import ApiError, ClientError, JetscribeClient, ServerUnreachableError

SERVER_VARIABLE: Final = "JETSCRIBE_SERVER"
API_KEY_VARIABLE: Final = "JETSCRIBE_API_KEY"
DEFAULT_SERVER: Final = "http://localhost:8080"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"the jetscribe gateway (default: ${SERVER_VARIABLE}, else {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"API key, when the gateway needs one (default: ${API_KEY_VARIABLE})"
    )


def server_of(args: argparse.Namespace) -> str:
    return str(args.server or os.environ.get(SERVER_VARIABLE) or DEFAULT_SERVER)


def client_for(args: argparse.Namespace) -> JetscribeClient:
    return JetscribeClient(server_of(args), api_key=args.api_key or os.environ.get(API_KEY_VARIABLE) or None)


def explain(exc: ClientError, server: str) -> str:
    """A message that says what to do about a client error, for the command line."""
    if isinstance(exc, ServerUnreachableError):
        return f"{exc}: is jetscribe running there? Set --server or ${SERVER_VARIABLE}"
    if isinstance(exc, ApiError) and exc.status == 401:
        return f"{server} needs a valid API key ({exc.message}): pass --api-key or set ${API_KEY_VARIABLE}"
    return str(exc)
