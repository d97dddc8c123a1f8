"""`fareway`: serve, chat, route, models, budget, health. See `fareway <command> --help`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from decimal import Decimal

import grpc

from fareway.client import (
    DEFAULT_TARGET,
    Budget,
    BudgetLimit,
    Client,
    Decision,
    Done,
    Escalation,
    Fallback,
    FarewayError,
    OnExceed,
    RequestOptions,
    TextDelta,
    Window,
)

DEMO_KEY = "fareway-demo-key"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fareway` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except FarewayError as error:
        print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:  # `health` calls grpc directly
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

    budget = commands.add_parser("budget", help="show or set a tenant's cost caps")
    budget_commands = budget.add_subparsers(required=True, metavar="action")
    get = budget_commands.add_parser("get", help="caps, spend and holds of a tenant")
    _add_connection_options(get)
    get.add_argument("--tenant", default="", help="tenant (default: the key's own)")
    get.set_defaults(run=_budget_get)
    put = budget_commands.add_parser("set", help="replace a tenant's caps (admin key)")
    _add_connection_options(put)
    put.add_argument("--tenant", required=True)
    for window in Window:
        put.add_argument(
            f"--{window.value}", type=Decimal, metavar="USD", help=f"hard cap per {window.value}"
        )
    put.add_argument("--soft", type=float, default=0.0, help="downgrade above this fraction")
    put.add_argument(
        "--on-exceed", choices=[o.value for o in OnExceed], default=OnExceed.REJECT.value
    )
    put.add_argument("--latency-target-ms", type=int, help="time-to-first-token target")
    put.set_defaults(run=_budget_set)

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
    return Client(args.target, args.api_key, timeout_s=args.timeout)


def _options(args: argparse.Namespace) -> RequestOptions:
    return RequestOptions(
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
        for event in client.generate(args.prompt, **_options(args)):
            match event:
                case Decision() as d:
                    print(f"[{d.model} · {d.tier} · {d.strategy}] {d.reason}", file=sys.stderr)
                case TextDelta(text=text):
                    print(text, end="", flush=True)
                case Fallback() as f:
                    print(f"\n[fallback {f.from_model} → {f.to_model}: {f.error}]", file=sys.stderr)
                case Escalation() as e:
                    dropped = " (the text above is dropped)" if e.discard_previous else ""
                    print(
                        f"\n[escalation {e.from_model} → {e.to_model}: {e.reason}{dropped}]",
                        file=sys.stderr,
                    )
                case Done(total=total) as done:
                    print()
                    print(
                        f"[{done.stop_reason} · {total.input_tokens} in / "
                        f"{total.output_tokens} out · ${total.cost_micros / 1e6:.6f} · "
                        f"first token {done.ttft_ms} ms]",
                        file=sys.stderr,
                    )
    return 0


def _route(args: argparse.Namespace) -> int:
    with _client(args) as client:
        d = client.route(args.prompt, **_options(args))
    print(f"model:     {d.model} ({d.provider}, {d.tier} tier)")
    print(f"strategy:  {d.strategy}")
    print(f"why:       {d.reason}")
    print(f"estimate:  ${d.estimated_cost_micros / 1e6:.6f} at most")
    if d.budget_remaining_micros is not None:
        print(f"budget:    ${d.budget_remaining_micros / 1e6:.2f} left")
    print("candidates:")
    for c in d.candidates:
        verdict = f"excluded: {c.excluded_reason}" if c.excluded_reason else f"score {c.score:.2f}"
        print(f"  {c.model:<24} {c.tier:<10} {verdict}")
    return 0


def _models(args: argparse.Namespace) -> int:
    with _client(args) as client:
        models = client.list_models()
    print(
        f"{'model':<24} {'tier':<10} {'provider':<12} {'$/Mtok in':>10} {'$/Mtok out':>11}  notes"
    )
    for m in models:
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


def _budget_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_budget(client.get_budget(args.tenant))
    return 0


def _budget_set(args: argparse.Namespace) -> int:
    limits = [
        BudgetLimit(
            window,
            int(getattr(args, window.value) * 1_000_000),
            args.soft,
            OnExceed(args.on_exceed),
        )
        for window in Window
        if getattr(args, window.value) is not None
    ]
    with _client(args) as client:
        _print_budget(client.set_budget(args.tenant, limits, args.latency_target_ms))
    return 0


def _print_budget(budget: Budget) -> None:
    print(f"tenant {budget.tenant}")
    if not budget.limits:
        print("  no caps")
    for limit in budget.limits:
        resets = f", resets {limit.resets_at:%Y-%m-%d %H:%M} UTC" if limit.resets_at else ""
        print(
            f"  {limit.window.value:<6} cap ${limit.cap_micros / 1e6:.2f}: "
            f"spent ${limit.spent_micros / 1e6:.6f}, held ${limit.reserved_micros / 1e6:.6f}, "
            f"left ${limit.remaining_micros / 1e6:.6f}; soft {limit.soft_fraction:.0%}, "
            f"on exceed {limit.on_exceed.value}{resets}"
        )
    target = f"{budget.latency_target_ms} ms" if budget.latency_target_ms else "none"
    print(f"  latency target {target}, met by {budget.latency_attainment:.0%} of requests")


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
