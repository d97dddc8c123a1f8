"""`fareway`: serve, chat, route, models, health. See `fareway <command> --help`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import grpc

from fareway.client import DEFAULT_TARGET, Client, build_request
from fareway.v1 import router_pb2

DEMO_KEY = "fareway-demo-key"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fareway` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fareway", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", help="YAML configuration (default: the embedded one)")
    serve.add_argument("--host", help="address to bind (default: from the configuration)")
    serve.add_argument("--port", type=int, help="port to bind (default: from the configuration)")
    serve.set_defaults(run=_serve)

    chat = commands.add_parser("chat", help="send a prompt and stream the answer")
    _add_request_options(chat)
    chat.set_defaults(run=_chat)

    route = commands.add_parser("route", help="explain which model would answer, and why")
    _add_request_options(route)
    route.set_defaults(run=_route)

    models = commands.add_parser("models", help="list the models this key may use")
    _add_connection_options(models)
    models.set_defaults(run=_models)

    health = commands.add_parser("health", help="exit 0 when the server reports SERVING")
    _add_connection_options(health)
    health.set_defaults(run=_health)
    return parser


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=os.environ.get("FAREWAY_TARGET", DEFAULT_TARGET),
        help="server address (env FAREWAY_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAREWAY_API_KEY", DEMO_KEY),
        help="API key (env FAREWAY_API_KEY; default: the demo key)",
    )
    parser.add_argument("--timeout", type=float, help="deadline in seconds")


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    _add_connection_options(parser)
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--system", default="", help="system prompt")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--strategy", default="", help="routing strategy (default: the tenant's)")
    parser.add_argument("--model", default="", help="pin a model by catalog id")
    parser.add_argument("--tier", default="", help="pin a tier")
    parser.add_argument("--step-type", default="", help="agent step type")
    parser.add_argument("--capability", action="append", default=[], help="required capability")


def _client(args: argparse.Namespace) -> Client:
    return Client(args.target, args.api_key, args.timeout)


def _request(args: argparse.Namespace) -> router_pb2.GenerateRequest:
    return build_request(
        args.prompt,
        max_tokens=args.max_tokens,
        system=args.system,
        strategy=args.strategy,
        model=args.model,
        tier=args.tier,
        step_type=args.step_type,
        required_capabilities=args.capability,
    )


def _serve(args: argparse.Namespace) -> int:
    from fareway.config.loader import ConfigError, load_config
    from fareway.server.app import serve

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"invalid configuration:\n{error}", file=sys.stderr)
        return 2
    asyncio.run(serve(config, os.environ, args.host, args.port))
    return 0


def _chat(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for event in client.generate(_request(args)):
            kind = event.WhichOneof("event")
            if kind == "decision":
                d = event.decision
                print(f"[{d.model} · {d.tier} · {d.strategy}] {d.reason}", file=sys.stderr)
            elif kind == "delta":
                print(event.delta.text, end="", flush=True)
            elif kind == "fallback":
                f = event.fallback
                print(f"\n[fallback {f.from_model} → {f.to_model}: {f.error}]", file=sys.stderr)
            elif kind == "done":
                total = event.done.total
                print()
                print(
                    f"[{event.done.stop_reason} · {total.input_tokens} in / "
                    f"{total.output_tokens} out · ${total.cost_micros / 1e6:.6f} · "
                    f"first token {event.done.ttft_ms} ms]",
                    file=sys.stderr,
                )
    return 0


def _route(args: argparse.Namespace) -> int:
    with _client(args) as client:
        d = client.route(_request(args))
    print(f"model:     {d.model} ({d.provider}, {d.tier} tier)")
    print(f"strategy:  {d.strategy}")
    print(f"why:       {d.reason}")
    print(f"estimate:  ${d.estimated_cost_micros / 1e6:.6f} at most")
    if d.HasField("budget_remaining_micros"):
        print(f"budget:    ${d.budget_remaining_micros / 1e6:.2f} left")
    print("candidates:")
    for c in d.candidates:
        verdict = f"excluded: {c.excluded_reason}" if c.excluded_reason else f"score {c.score:.2f}"
        print(f"  {c.model:<24} {c.tier:<10} {verdict}")
    return 0


def _models(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.list_models()
    print(
        f"{'model':<24} {'tier':<10} {'provider':<12} {'$/Mtok in':>10} {'$/Mtok out':>11}  notes"
    )
    for m in reply.models:
        notes = [*m.capabilities, *(["simulated"] if m.simulated else [])]
        if not m.healthy:
            notes.append("unhealthy")
        price_in = m.input_price_micros_per_mtok / 1e6
        price_out = m.output_price_micros_per_mtok / 1e6
        print(
            f"{m.id:<24} {m.tier:<10} {m.provider:<12} {price_in:>10.2f} {price_out:>11.2f}"
            f"  {', '.join(notes)}"
        )
    return 0


def _health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(args.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=args.timeout or 5
        )
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
