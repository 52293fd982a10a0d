"""The `jetscribe` command line: run the service or its parts, manage models, export the schemas; and, as a client of
any jetscribe gateway, transcribe files (`jetscribe transcribe`) and manage jobs (`jetscribe jobs`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cli import jobs, transcribe
from jetscribe.config import Settings
from jetscribe.errors import JetscribeError

BROKEN_PIPE_EXIT = 128 + 13
"""What a shell reports for a command that SIGPIPE ended (`jetscribe schema | head`)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jetscribe` console script."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. stdout points at /dev/null so that Python's flush at exit
        # does not fail on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if hasattr(args, "run_client"):
        # The client commands talk HTTP to a gateway: they need none of the service's settings.
        try:
            return int(args.run_client(args))
        except KeyboardInterrupt:
            return 130
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return int(args.run(args, settings) or 0)
    except JetscribeError as exc:
        print(f"jetscribe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jetscribe", description=__doc__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run everything: embedded NATS (unless configured), gateway, worker, diarizer"
    )
    serve.set_defaults(run=_serve)
    gateway = commands.add_parser("gateway", help="run the HTTP gateway")
    gateway.set_defaults(run=_gateway)
    worker = commands.add_parser("worker", help="run a transcription worker")
    worker.set_defaults(run=_worker)
    diarizer = commands.add_parser("diarizer", help="run a diarization worker (the speaker stage of `diarize` jobs)")
    diarizer.set_defaults(run=_diarizer)

    models = commands.add_parser("models", help="import, download and list Whisper models")
    model_commands = models.add_subparsers(title="model commands", metavar="COMMAND", required=True)
    imp = model_commands.add_parser("import", help="convert a CTranslate2 Whisper model into a GGML file")
    imp.add_argument("src", help="model directory, model.bin[.partN] file, or installed package name")
    imp.add_argument("--name", help="model name to store it under (default: derived from SRC)")
    imp.add_argument("--output", type=Path, help="write the GGML file here instead of the models directory")
    imp.add_argument("--sha256", help="SHA-256 of the weights, required for a source that is not a packaged model")
    imp.add_argument(
        "--quantize",
        action="append",
        default=[],
        metavar="TYPE",
        help="also write a quantized copy (q8_0 or q5_0) beside the GGML file; repeat for more than one",
    )
    imp.set_defaults(run=_models_import)
    pull = model_commands.add_parser("pull", help="download ggml-NAME.bin from the whisper.cpp model repository")
    pull.add_argument("name", help="model name, e.g. base.en, small, large-v3")
    pull.add_argument("--sha256", help="SHA-256 the file must have (required for a model without a pinned digest)")
    pull.set_defaults(run=_models_pull)
    quantize = model_commands.add_parser(
        "quantize", help="write a q8_0 or q5_0 copy of a model: smaller, and faster on CPUs (ggml-NAME-TYPE.bin)"
    )
    quantize.add_argument("name", help="the f16 model to quantize, e.g. base (ggml-base.bin in the models directory)")
    quantize.add_argument("--type", required=True, dest="qtype", metavar="TYPE", help="q8_0 or q5_0")
    quantize.add_argument("--name", dest="output_name", help="model name to store it under (default: NAME-TYPE)")
    quantize.set_defaults(run=_models_quantize)
    listing = model_commands.add_parser("list", help="list the models in the models directory")
    listing.set_defaults(run=_models_list)

    config = commands.add_parser("config", help="print every setting's variable, default and meaning (Markdown)")
    config.set_defaults(run=_config)

    schema = commands.add_parser("schema", help="print the JSON Schema of every wire message")
    schema.set_defaults(run=_schema)

    transcribe.add_parser(commands)
    jobs.add_parser(commands)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from cli.serve import serve

    asyncio.run(serve(settings))
    return 0


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.main import run_gateway

    asyncio.run(run_gateway(settings))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from worker.main import run_worker

    asyncio.run(run_worker(settings))
    return 0


def _diarizer(args: argparse.Namespace, settings: Settings) -> int:
    from diarization.main import run_diarizer

    asyncio.run(run_diarizer(settings))
    return 0


def _models_import(args: argparse.Namespace, settings: Settings) -> int:
    from jetscribe.models.files import model_file
    from jetscribe.models.quantize import quant_type, quantize_model, quantized_path
    from jetscribe.models.store import import_model, name_for_source

    for qtype in args.quantize:
        quant_type(qtype)  # an unknown type is refused before the import's work
    dest = args.output or model_file(settings.model_dir, args.name or name_for_source(args.src))
    import_model(args.src, dest, sha256=args.sha256)
    print(dest)
    for qtype in args.quantize:
        print(quantize_model(dest, quantized_path(dest, qtype), qtype))
    return 0


def _models_quantize(args: argparse.Namespace, settings: Settings) -> int:
    from jetscribe.models.store import quantize_stored_model

    print(quantize_stored_model(args.name, settings.model_dir, args.qtype, output_name=args.output_name))
    return 0


def _models_pull(args: argparse.Namespace, settings: Settings) -> int:
    from jetscribe.models.pull import pull_model

    print(pull_model(args.name, settings.model_dir, settings.model_base_url, sha256=args.sha256))
    return 0


def _models_list(args: argparse.Namespace, settings: Settings) -> int:
    from jetscribe.models.store import list_models

    found = list_models(settings.model_dir)
    if not found:
        print(f"no models in {settings.model_dir}")
    for name, path, size in found:
        print(f"{name:<16} {size / 1e6:8.1f} MB  {path}")
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    from jetscribe.config_reference import settings_table

    print(settings_table(), end="")
    return 0


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.export import bundle

    print(json.dumps(bundle(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
