"""`fareway`: serve, chat, route, models, budget, health. See `fareway <command> --help`.

Every failure ends in one line on stderr and a non-zero exit: a bad flag is a usage error
(exit 2, from argparse), a refused call prints its gRPC code and message (exit 1), and a
server that cannot start prints the file, field, path, variable or address at fault (exit 2
for the configuration file, 1 otherwise). Tracebacks appear only with --debug or
FAREWAY_DEBUG=1. Output cut short by a closed pipe (`fareway models | head -1`) ends quietly
with exit status 141, as a process killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Callable, Sequence
from contextlib import closing
from importlib import metadata

import grpc

from fareway.cli import arguments, budget, evaluate, serve, train
from fareway.cli.arguments import CommandError, credentials
from fareway.client import (
    CascadeMode,
    Decision,
    Done,
    Escalation,
    Fallback,
    FarewayError,
    Hedge,
    RequestOptions,
    TextDelta,
    Tool,
    ToolCall,
)
from fareway.client.convert import TOOL_CHOICE_MODES
from fareway.core.errors import StartupError

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE
EXIT_INTERRUPTED = 128 + 2  # SIGINT
CONFIDENCE_SIGNAL = "cascade.confidence"  # the accepted answer's, on Done.signals


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fareway` command; returns the exit status."""
    args = _parser().parse_args(argv)
    validate = getattr(args, "validate", None)
    if validate is not None:
        validate(args)  # exits with a usage error when the flags contradict each other
    try:
        status: int = args.run(args)
        # Inside the try: short output is only written here, and may meet a closed pipe.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the outermost boundary: one line, no traceback
        if args.debug:
            traceback.print_exc()
        status, message = _explain(error)
        for line in message.splitlines() or [""]:
            print(f"fareway: error: {line}", file=sys.stderr)
        return status


def _explain(error: Exception) -> tuple[int, str]:
    """The exit status and message for an error that ends the command."""
    if isinstance(error, StartupError):
        from fareway.config.loader import ConfigError  # only `serve` raises these; it has it

        return EXIT_USAGE if isinstance(error, ConfigError) else 1, str(error)
    if isinstance(error, FarewayError):
        return 1, f"{error.code.name}: {_one_line(error.message)}"
    if isinstance(error, grpc.RpcError):  # `health` calls grpc directly
        return 1, f"{error.code().name}: {_one_line(error.details() or '')}"
    if isinstance(error, budget.NothingToApply | CommandError):
        return EXIT_USAGE, str(error)
    name = type(error).__name__
    return 1, f"{name}: {_one_line(str(error))} (run with --debug for the traceback)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit does not fail
    again on the closed pipe and print 'Exception ignored ... BrokenPipeError'."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _version() -> str:
    try:
        return metadata.version("fareway")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and wraps flag help without breaking at hyphens, so
    that names like fareway-demo-key or --latency-target-ms stay whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fareway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fareway {_version()}")
    _add_debug(parser, _debug_from_env())
    commands = parser.add_subparsers(required=True, metavar="command")

    serve.add_command(commands)

    chat = commands.add_parser("chat", help="send a prompt and stream the answer")
    _add_request_options(chat)
    chat.set_defaults(run=_chat, validate=_tool_choice_validator(chat))

    route = commands.add_parser("route", help="explain which model would answer, and why")
    _add_request_options(route)
    route.set_defaults(run=_route, validate=_tool_choice_validator(route))

    models = commands.add_parser("models", help="list the models this key may use")
    arguments.add_connection_options(models)
    models.set_defaults(run=_models)

    budget.add_commands(commands)
    evaluate.add_command(commands)
    train.add_command(commands)

    health = commands.add_parser("health", help="exit 0 when the server reports SERVING")
    arguments.add_connection_options(health, default_timeout_s=5.0)
    health.set_defaults(run=_health)

    for each in _parsers(parser):
        each.formatter_class = _HelpFormatter
        if not _subcommands(each):  # `fareway serve --debug` as well as `fareway --debug serve`
            _add_debug(each, argparse.SUPPRESS)
    return parser


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="print the traceback of an error, not only its message (or FAREWAY_DEBUG=1)",
    )


def _debug_from_env() -> bool:
    return os.environ.get("FAREWAY_DEBUG", "").strip().lower() in ("1", "true", "yes")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every subcommand parser below it."""
    found = [parser]
    for commands in _subcommands(parser):
        for command in commands.choices.values():
            found.extend(_parsers(command))
    return found


def _subcommands(
    parser: argparse.ArgumentParser,
) -> list[argparse._SubParsersAction[argparse.ArgumentParser]]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    arguments.add_connection_options(parser)
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--system", default="", help="system prompt (default: none)")
    parser.add_argument(
        "--max-tokens",
        type=arguments.positive_int,
        default=1024,
        metavar="N",
        help="most tokens the answer may have, 1 or more (default: %(default)s)",
    )
    parser.add_argument(
        "--strategy",
        default="",
        metavar="NAME",
        help="routing strategy, one the server configures, e.g. rules (default: the tenant's)",
    )
    parser.add_argument(
        "--model",
        default="",
        metavar="ID",
        help="pin a model by catalog id, as `fareway models` lists (default: the router picks)",
    )
    parser.add_argument(
        "--tier",
        default="",
        help="pin a tier, e.g. fast, balanced or powerful (default: the router picks)",
    )
    parser.add_argument(
        "--step-type",
        default="",
        metavar="TYPE",
        help="agent step type: planning, tool_call_decision, result_classification, "
        "summarization, final_synthesis, or one the server configures (default: none)",
    )
    parser.add_argument(
        "--capability",
        action="append",
        default=[],
        metavar="NAME",
        help="a capability the model must have, e.g. tools or vision (repeatable; default: none)",
    )
    parser.add_argument(
        "--latency-target-ms",
        type=arguments.positive_int,
        default=None,
        metavar="MS",
        help="time-to-first-token target in milliseconds, 1 or more; models predicted to miss "
        "it are skipped, and a first token that late is hedged on another model (default: "
        "the tenant's)",
    )
    parser.add_argument(
        "--cascade-mode",
        choices=[m.value for m in CascadeMode],
        default="",
        help="with the cascade strategy: buffered shows only the accepted answer, speculative "
        "streams at once and says when text is discarded (default: the tenant's)",
    )
    parser.add_argument(
        "--tool",
        action="append",
        type=arguments.tool_file,
        default=[],
        metavar="FILE",
        help='tools the model may call: a JSON file with a list of {"name", "description", '
        '"input_schema"} objects, or of OpenAI-style {"type": "function", "function": {...}} '
        "ones; only models with the tools capability are then eligible (repeatable; default: "
        "none)",
    )
    parser.add_argument(
        "--tool-choice",
        default="",
        metavar="auto|any|none|NAME",
        help="with --tool: auto lets the model decide, any makes it call one of the tools, none "
        "forbids calls, NAME makes it call that tool (default: auto)",
    )


def _tool_choice_validator(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], None]:
    """Refuses a --tool-choice without --tool, or naming a tool --tool did not give, as a usage
    error: the server would refuse it too, but only after connecting."""

    def validate(args: argparse.Namespace) -> None:
        choice = args.tool_choice
        if not choice:
            return
        names = [tool.name for tool in _tools(args)]
        if not names:
            parser.error("--tool-choice needs --tool")
        if choice not in TOOL_CHOICE_MODES and choice not in names:
            parser.error(
                f"--tool-choice {choice}: expected auto, any, none or a tool's name "
                f"({', '.join(names)})"
            )

    return validate


def _tools(args: argparse.Namespace) -> list[Tool]:
    """The tools of every --tool file, in order."""
    return [tool for tools in args.tool for tool in tools]


def _options(args: argparse.Namespace) -> RequestOptions:
    return RequestOptions(
        max_tokens=args.max_tokens,
        system=args.system,
        strategy=args.strategy,
        model=args.model,
        tier=args.tier,
        step_type=args.step_type,
        required_capabilities=args.capability,
        latency_target_ms=args.latency_target_ms,
        cascade_mode=args.cascade_mode,
        tools=_tools(args),
        tool_choice=args.tool_choice,
    )


def _chat(args: argparse.Namespace) -> int:
    with (
        arguments.connect(args) as client,
        closing(client.generate(args.prompt, **_options(args))) as events,
    ):
        mid_line = False  # stdout's last line is unfinished: the answer's text so far
        for event in events:
            match event:
                case Decision() as d:
                    print(f"[{d.model} · {d.tier} · {d.strategy}] {d.reason}", file=sys.stderr)
                case TextDelta(text=text):
                    print(text, end="", flush=True)
                    if text:
                        mid_line = not text.endswith("\n")
                case ToolCall() as call:
                    # On stdout, a line of its own: the calls are the answer, as its text is.
                    if mid_line:
                        print()
                    print(_tool_call_line(call), flush=True)
                    mid_line = False
                case Fallback() as f:
                    print(f"\n[fallback {f.from_model} → {f.to_model}: {f.error}]", file=sys.stderr)
                case Hedge() as h:
                    print(
                        f"\n[hedge {h.from_model} → {h.to_model} after {h.after_ms} ms: "
                        f"{h.winner} answers]",
                        file=sys.stderr,
                    )
                case Escalation() as e:
                    print(f"\n{_escalation_line(e)}", file=sys.stderr)
                case Done() as done:
                    if mid_line:
                        print()
                    print(_done_line(done), file=sys.stderr)
    return 0


def _tool_call_line(call: ToolCall) -> str:
    """`tool_call NAME ARGUMENTS (id ID)`: the arguments as the model sent them, one line."""
    return f"tool_call {call.name} {_one_line(call.arguments_json)} (id {call.id})"


def _done_line(done: Done) -> str:
    """Why the model stopped (end_turn, max_tokens, tool_use...), the usage, the cost and the
    first token's delay, and a cascade's confidence in the accepted answer."""
    total = done.total
    confidence = done.signals.get(CONFIDENCE_SIGNAL)
    accepted = "" if confidence is None else f" · confidence {confidence:.2f}"
    return (
        f"[{done.stop_reason} · {total.input_tokens} in / {total.output_tokens} out · "
        f"${total.cost_micros / 1e6:.6f} · first token {done.ttft_ms} ms{accepted}]"
    )


def _escalation_line(e: Escalation) -> str:
    """A cascade's move to a stronger model. In speculative mode the text already printed was
    the abandoned answer: the line says so, since a terminal cannot take it back."""
    dropped = " (discarding the text above: the answer that follows replaces it)"
    return (
        f"[↑ escalated {e.from_model} → {e.to_model}: {e.reason}"
        f"{dropped if e.discard_previous else ''}]"
    )


def _route(args: argparse.Namespace) -> int:
    with arguments.connect(args) as client:
        d = client.route(args.prompt, **_options(args))
    print(f"model:     {d.model} ({d.provider}, {d.tier} tier)")
    print(f"strategy:  {d.strategy}")
    print(f"why:       {d.reason}")
    print(f"estimate:  ${d.estimated_cost_micros / 1e6:.6f} at most")
    if d.budget_remaining_micros is not None:
        print(f"budget:    ${budget.usd(d.budget_remaining_micros)} left")
    if d.signals:
        print(f"signals:   {', '.join(f'{k}={v:g}' for k, v in sorted(d.signals.items()))}")
    print("candidates:")
    for c in d.candidates:
        verdict = f"excluded: {c.excluded_reason}" if c.excluded_reason else f"score {c.score:.2f}"
        print(f"  {c.model:<24} {c.tier:<10} {verdict}")
    return 0


def _models(args: argparse.Namespace) -> int:
    with arguments.connect(args) as client:
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


def _health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    tls = credentials(args)
    channel = (
        grpc.insecure_channel(args.target) if tls is None else grpc.secure_channel(args.target, tls)
    )
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=args.timeout
        )
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
