"""``modelcycle deploy``, ``rollout``, ``rollback``, ``deployments`` and ``controller``.

Each command migrates the operational store first (so it works on a fresh project), applies one
deployment command (:mod:`modelcycle.deployment.commands`) to the store and the registry aliases,
and prints the state it leaves. Defaults come from the spec's ``[deployment]`` section; without a
project the built-in defaults apply. A change made here reaches running servers within their
``deployment_poll_seconds``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from modelcycle.cli._shared import STATE, console, migrated_store
from modelcycle.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from modelcycle.config.spec import DeploymentSpec
    from modelcycle.deployment.compare import ArmComparison
    from modelcycle.deployment.rollout import Decision
    from modelcycle.deployment.state import DeploymentState, Event

rollout_app = typer.Typer(
    help="Watch and steer a running rollout: status, promote, pause, resume, abort, compare.",
    no_args_is_help=True,
)
deployments_app = typer.Typer(help="The deployment history of a model.", no_args_is_help=True)

NameArg = Annotated[
    str, typer.Argument(help="Registered model name (e.g. rent).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOpt = Annotated[
    str | None,
    typer.Option(help="Why, for the history (default: a description of the change)."),
]
StrategyName = Literal["direct", "canary", "ramp", "blue-green", "shadow"]
RECENT_EVENTS = 5
"""Events shown by ``rollout status``."""


# ---------------------------------------------------------------------------- context


def actor() -> str:
    """Who runs the command, for the history: ``<user>@cli``."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        user = "unknown"
    return f"{user}@cli"


def tracking_uri() -> str:
    """The MLflow registry of the current project."""
    uri = STATE.settings().mlflow_tracking_uri
    assert uri is not None  # derived from the project folder when unset
    return uri


store = migrated_store


def deployment_spec() -> DeploymentSpec:
    """The project's ``[deployment]`` section, or the defaults when there is no project."""
    from modelcycle.config.spec import DeploymentSpec
    from modelcycle.errors import ProjectError

    try:
        return STATE.project().spec.deployment
    except ProjectError:
        return DeploymentSpec()


def seconds(text: str, option: str) -> float:
    """A duration option in seconds.

    Raises:
        ConfigError: Not a duration, or not positive.
    """
    from modelcycle.config.spec import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as err:
        raise ConfigError(f"{option}: {err}", f"pass {option} like '30s', '10m' or '1h'") from None
    if value <= 0:
        raise ConfigError(f"{option} {text!r} must be longer than 0s", f"pass {option} like '10m'")
    return value


def parse_steps(text: str) -> tuple[float, ...]:
    """``"5,25,50,100"`` as percentages.

    Raises:
        ConfigError: Not numbers, or not increasing percentages in (0, 100].
    """
    try:
        steps = tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        steps = ()
    if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
        raise ConfigError(
            f"--steps {text!r} is not a list of increasing percentages in (0, 100]",
            "pass --steps like 5,25,50,100",
        )
    return steps


# ---------------------------------------------------------------------------- deploy


def deploy(
    name: NameArg,
    version: Annotated[
        str, typer.Option("--version", help="The registered version to deploy.", show_default=False)
    ],
    strategy: Annotated[
        StrategyName | None,
        typer.Option(
            help="direct: switch at once; canary: a fixed share; ramp: gated steps to 100%; "
            "blue-green: warm, then switch all traffic; shadow: predict beside stable, never "
            "answer. Default: the spec's deployment.strategy (ramp).",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option(
            help="Canary: percent of traffic for the candidate (default: the spec's "
            "canary_weight, 10).",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Ramp: percentages of traffic per step, e.g. 5,25,50,100 (default: the spec's).",
            show_default=False,
        ),
    ] = None,
    step_duration: Annotated[
        str | None,
        typer.Option(
            help="Ramp: least time per step, e.g. 30s, 10m (default: the spec's, 10m).",
            show_default=False,
        ),
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ramp: least candidate requests per step before it can pass (default: the "
            "spec's, 200).",
            show_default=False,
        ),
    ] = None,
    failure_limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Failed gate evaluations in a row that roll the candidate back automatically "
            "(default: the spec's, 2).",
            show_default=False,
        ),
    ] = None,
    routing_key: Annotated[
        str | None,
        typer.Option(
            help="A feature whose hash picks the arm, so a key always lands on the same "
            "version (default: the spec's; random when unset; X-Routing-Key overrides).",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOpt = None,
) -> None:
    """Deploy a registered version with a strategy; the stable version keeps serving meanwhile.

    The first deployment of a model starts from its champion; a model with no champion gets
    the version directly.
    """
    from modelcycle.deployment import commands

    spec = deployment_spec()
    if weight is not None and not 0 < weight < 100:
        raise ConfigError(
            f"--weight {weight:g} is not a percentage in (0, 100)", "pass --weight 10"
        )
    plan = commands.plan_from_spec(
        spec,
        canary_weight=weight,
        steps=parse_steps(steps) if steps is not None else None,
        step_seconds=seconds(step_duration, "--step-duration") if step_duration else None,
        min_requests=min_requests,
        failure_limit=failure_limit,
        routing_key=routing_key,
    )
    with store() as engine:
        state, event = commands.deploy(
            engine,
            name,
            version,
            strategy or spec.strategy,
            plan,
            tracking_uri=tracking_uri(),
            actor=actor(),
            reason=reason,
        )
    print_change(event)
    console.print(state_table(state))
    for line in next_steps(state):
        console.print(line, highlight=False)


def next_steps(state: DeploymentState) -> list[str]:
    """What happens after a deploy, and the commands that steer it."""
    name, candidate = state.model_name, state.candidate_version
    stable = f"v{state.stable_version}"
    steer = (
        f"Promote with `modelcycle rollout promote {name}`, or stop with `rollout abort {name}`."
    )
    if state.status == "promoted":
        return [
            f"v{state.stable_version} is the stable version ({name}@champion) now; servers "
            "switch within seconds. Undo with `modelcycle rollback " + name + "`."
        ]
    if state.status == "canary":
        return [
            f"v{candidate} answers {state.weight:g}% of requests; {stable} answers the rest.",
            f"Compare the arms with `modelcycle rollout compare {name}`. {steer}",
        ]
    if state.status == "ramping":
        plan = state.plan
        ladder = " → ".join(f"{s:g}%" for s in plan.steps)
        return [
            f"v{candidate} ramps {ladder}; each step lasts at least "
            f"{duration(plan.step_seconds)} and {plan.min_requests:,} candidate requests, and "
            "advances only if the gates pass.",
            f"After {plan.failure_limit} failed evaluations in a row it rolls back by itself. "
            "The server's controller drives it (or `modelcycle controller`, with "
            "MODELCYCLE_CONTROLLER=false).",
            f"Watch with `modelcycle rollout status {name}`. {steer}",
        ]
    if state.status == "blue_green":
        return [
            f"v{candidate} (green) answers every request once warmed; {stable} (blue) stays "
            f"loaded, so `modelcycle rollback {name}` switches back at once.",
            f"Finalise with `modelcycle rollout promote {name}`.",
        ]
    return [
        f"{stable} answers every request; v{candidate} predicts the same requests off the "
        "response path (arm shadow).",
        f"Compare them with `modelcycle rollout compare {name}`. {steer}",
    ]


# ---------------------------------------------------------------------------- rollout


@rollout_app.command("status")
def rollout_status(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show the deployment state: versions, strategy, weight, step, gates' failures, events."""
    from modelcycle.deployment import commands

    with store() as engine:
        state = commands.status(engine, name)
        events = commands.history(engine, name, RECENT_EVENTS)
    if as_json:
        print(json.dumps({**state.as_dict(), "events": [e.as_dict() for e in events]}, indent=2))
        return
    console.print(state_table(state))
    if state.status == "idle" and state.stable_version is None:
        console.print(
            f"{name} was never deployed. Start with `modelcycle deploy {name} --version V`.",
            highlight=False,
        )
    if events:
        console.print(events_table(events, f"last {len(events)} events"))


@rollout_app.command("promote")
def rollout_promote(name: NameArg, reason: ReasonOpt = None) -> None:
    """Make the candidate the stable version now (champion; the old one becomes previous)."""
    from modelcycle.deployment import commands

    with store() as engine:
        state, event = commands.promote(
            engine, name, tracking_uri=tracking_uri(), actor=actor(), reason=reason
        )
    print_change(event)
    console.print(
        f"{name}@champion → v{state.stable_version}; {name}@previous → "
        f"v{state.previous_version}. Undo with `modelcycle rollback {name}`.",
        highlight=False,
    )


@rollout_app.command("pause")
def rollout_pause(name: NameArg) -> None:
    """Freeze the rollout at its current weight (the controller stops moving it)."""
    from modelcycle.deployment import commands

    with store() as engine:
        state, event = commands.pause(engine, name, actor=actor())
    print_change(event)
    console.print(
        f"v{state.candidate_version} keeps {state.weight:g}% of traffic until "
        f"`modelcycle rollout resume {name}`.",
        highlight=False,
    )


@rollout_app.command("resume")
def rollout_resume(name: NameArg) -> None:
    """Let the controller move a paused rollout again (the step's clock restarts)."""
    from modelcycle.deployment import commands

    with store() as engine:
        state, event = commands.resume(engine, name, actor=actor())
    print_change(event)
    console.print(state_table(state))


@rollout_app.command("abort")
def rollout_abort(name: NameArg) -> None:
    """Stop the rollout: the stable version answers every request again."""
    from modelcycle.deployment import commands

    with store() as engine:
        state, event = commands.abort(engine, name, actor=actor())
    print_change(event)
    console.print(f"v{state.stable_version} answers every request.", highlight=False)


@rollout_app.command("compare")
def rollout_compare(
    name: NameArg,
    window: Annotated[
        str, typer.Option(help="How far back to read the prediction log: 30m, 1h, 1d.")
    ] = "1h",
    report: Annotated[
        Path,
        typer.Option(help="Where to write the HTML report (relative to the project folder)."),
    ] = Path("reports/rollout.html"),
    as_json: JsonOpt = False,
) -> None:
    """Compare the arms over the prediction log: traffic, errors, latency, predictions, metrics.

    A shadow arm is paired with stable row by row (mean absolute difference, agreement, PSI); a
    canary is compared by distribution. Realised metrics appear once labels arrive.
    """
    from modelcycle.deployment.compare import compare_arms, write_report
    from modelcycle.store import store_errors

    since = datetime.now(UTC) - timedelta(seconds=seconds(window, "--window"))
    task = _spec_task()
    with (
        store() as engine,
        store_errors(engine, "reading the prediction log"),
        engine.connect() as conn,
    ):
        comparison = compare_arms(conn, name, since, task=task)
    target = report if report.is_absolute() else STATE.settings().project_dir / report
    path = write_report(comparison, target)
    if as_json:
        print(json.dumps({**comparison.to_dict(), "report": str(path)}, indent=2))
        return
    print_comparison(comparison, window)
    console.print(f"Report: {path}", highlight=False)


def _spec_task() -> Any:
    from modelcycle.errors import ProjectError

    try:
        return STATE.project().spec.task
    except ProjectError:
        return None


# ---------------------------------------------------------------------------- rollback, history


def rollback(
    name: NameArg,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The version to make stable (default: the previous stable version).",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOpt = None,
) -> None:
    """Roll back at once: stop a running candidate, or restore the previous stable version."""
    from modelcycle.deployment import commands

    with store() as engine:
        state, event = commands.rollback(
            engine, name, tracking_uri=tracking_uri(), actor=actor(), to=to, reason=reason
        )
    print_change(event)
    console.print(
        f"v{state.stable_version} answers every request ({name}@champion).", highlight=False
    )


@deployments_app.command("history")
def deployments_history(
    name: NameArg,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Only the newest N events (default: all).", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List every deployment event, oldest first: who did what, from which version to which, why."""
    from modelcycle.deployment import commands

    with store() as engine:
        events = commands.history(engine, name, limit)
    if as_json:
        print(json.dumps([e.as_dict() for e in events], indent=2))
        return
    if not events:
        console.print(
            f"No deployment events for {name}. Start with `modelcycle deploy {name} --version V`.",
            highlight=False,
        )
        return
    console.print(events_table(events, f"{name}: deployment history"))


# ---------------------------------------------------------------------------- controller


def controller(
    interval: Annotated[
        str | None,
        typer.Option(
            help="Time between evaluations, e.g. 15s (default: the spec's "
            "deployment.evaluation_interval).",
            show_default=False,
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate once, print the decision and its gates, exit.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(help="The model to drive (default: the project's name).", show_default=False),
    ] = None,
) -> None:
    """Drive a running rollout: evaluate its gates, then advance, promote, hold or roll back.

    Servers run the same controller in the background (MODELCYCLE_CONTROLLER, on by default);
    run this one when they do not, or to see a decision and its gates (--once). Controllers may
    run side by side: a lock and the state's version counter make each decision apply once.
    Ctrl+C stops it.
    """
    import threading

    from modelcycle.deployment import controller as ctl
    from modelcycle.deployment.rollout import GatePolicy

    spec = deployment_spec()
    name = model or _project_name()
    every = seconds(interval or spec.evaluation_interval, "--interval")
    policy = GatePolicy.from_spec(spec)
    uri = tracking_uri()
    with store() as engine:
        if once:
            print_decision(name, ctl.evaluate(engine, name, policy, tracking_uri=uri))
            return
        console.print(
            f"Controller for [bold]{name}[/]: evaluating every {duration(every)}; decisions are "
            "logged and recorded in `modelcycle deployments history`. Ctrl+C stops.",
            highlight=False,
        )
        stop = threading.Event()
        try:
            ctl.run(engine, [name], lambda _: policy, tracking_uri=uri, interval=every, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            console.print("Controller stopped.")


def _project_name() -> str:
    from modelcycle.errors import ProjectError

    try:
        return STATE.project().spec.name
    except ProjectError as err:
        raise ProjectError(err.message, "pass --model NAME, or run inside a project") from None


def print_decision(name: str, decision: Decision | None) -> None:
    """A controller decision: its kind and reason, and every gate's outcome."""
    from rich.table import Table

    if decision is None:
        console.print(
            f"{name}: nothing to evaluate (no rollout running, it is paused, or another "
            "controller changed it meanwhile).",
            highlight=False,
        )
        return
    console.print(f"{name}: [bold]{decision.kind}[/] — {decision.reason}", highlight=False)
    if not decision.gates:
        return
    table = Table(title="gates")
    for header in ("gate", "outcome", "value", "limit", "detail"):
        table.add_column(header, overflow="fold")
    outcome = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[dim]not enough data[/]"}
    for gate in decision.gates:
        value = f"{gate.value:.4g}" if gate.value is not None else "–"
        table.add_row(gate.name, outcome[gate.passed], value, f"{gate.threshold:g}", gate.detail)
    console.print(table)


# ---------------------------------------------------------------------------- output


def print_change(event: Event) -> None:
    """One line saying what a command did."""
    console.print(
        f"[green]{event.model_name}[/]: [bold]{event.action}[/] {versions(event)} — "
        f"{event.reason or ''}",
        highlight=False,
    )


def versions(event: Event) -> str:
    """``v1 → v2`` for an event (``–`` for no version)."""
    before = f"v{event.from_version}" if event.from_version else "–"
    after = f"v{event.to_version}" if event.to_version else "–"
    return f"{before} → {after}"


def duration(total: float) -> str:
    """``"4m 12s"``, ``"2h 5m"``, ``"45s"``: a duration for people."""
    rest = round(total)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"


def step_text(state: DeploymentState) -> str:
    """``"2 of 4"`` for a ramp, ``–`` otherwise."""
    if state.strategy != "ramp" or not state.active:
        return "–"
    return f"{state.step + 1} of {len(state.plan.steps)}"


def state_table(state: DeploymentState) -> Table:
    """The state as a two-column table."""
    from rich.table import Table

    table = Table(title=f"{state.model_name}: deployment", show_header=False)
    table.add_column("field", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    in_step = state.seconds_in_step()
    plan = state.plan
    rows = [
        ("status", state.status + (" (paused)" if state.paused else "")),
        ("stable", _version(state.stable_version)),
        ("candidate", _version(state.candidate_version)),
        ("strategy", state.strategy or "–"),
        ("weight", _weight(state)),
        ("step", step_text(state)),
        ("paused", "yes" if state.paused else "no"),
        ("failures", f"{state.failures} of {plan.failure_limit}" if state.active else "–"),
        ("time in step", duration(in_step) if in_step is not None and state.active else "–"),
        ("previous", _version(state.previous_version)),
        ("routing key", plan.routing_key or "random"),
        ("updated", _time(state.updated_at)),
    ]
    if state.strategy == "ramp" and state.active:
        rows.insert(6, ("steps", " → ".join(f"{s:g}%" for s in plan.steps)))
        rows.insert(7, ("step needs", f"{duration(plan.step_seconds)}, {plan.min_requests:,} req"))
    for field, value in rows:
        table.add_row(field, value)
    return table


def events_table(events: list[Event], title: str) -> Table:
    """Events as a table: time, actor, action, from → to, reason."""
    from rich.table import Table

    table = Table(title=title)
    for header in ("time (UTC)", "actor", "action", "from → to", "reason"):
        table.add_column(header, overflow="fold")
    for event in events:
        table.add_row(
            _time(event.created_at), event.actor, event.action, versions(event), event.reason or ""
        )
    return table


def print_comparison(comparison: ArmComparison, window: str) -> None:
    """The comparison's arms and agreements as tables."""
    from rich.table import Table

    from modelcycle.htmlreport import format_percent, format_value

    if not comparison.arms:
        console.print(
            f"No predictions of {comparison.model_name} in the last {window}.", highlight=False
        )
        return
    table = Table(title=f"{comparison.model_name}: arms over the last {window}")
    for header in ("arm", "requests", "errors", "p50 ms", "p99 ms", "mean prediction", "labelled"):
        table.add_column(header, justify="left" if header == "arm" else "right")
    for arm in comparison.arms:
        table.add_row(
            arm.key,
            f"{arm.requests:,}",
            f"{arm.errors:,} ({format_percent(arm.error_rate, 2)})",
            format_value(arm.latency_ms["p50"]),
            format_value(arm.latency_ms["p99"]),
            format_value(arm.prediction.get("mean")),
            f"{arm.labelled:,}",
        )
    console.print(table)
    for item in comparison.agreements:
        psi = f"PSI {format_value(item.psi)}"
        if not item.pairs:
            line = f"{psi} over the distributions (no paired rows)"
        elif item.mean_abs_diff is not None:
            line = (
                f"{psi}, mean |difference| {format_value(item.mean_abs_diff)} over "
                f"{item.pairs:,} paired rows"
            )
        else:
            line = (
                f"{psi}, agreement {format_percent(item.agreement_rate)} over {item.pairs:,} "
                "paired rows"
            )
        console.print(f"{item.other} vs {item.reference}: {line}", highlight=False)


def _weight(state: DeploymentState) -> str:
    if not state.active:
        return "–"
    if state.status == "shadow":
        return "0% (predicts every request beside stable, answers none)"
    return f"{state.weight:g}%"


def _version(version: str | None) -> str:
    return f"v{version}" if version else "–"


def _time(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when else "–"
