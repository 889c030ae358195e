"""``switchboard up``: run every service as its own process on one machine.

Each service is started as ``python -m runtime.cli serve <name>`` with the same
environment, exactly as a container or a Dapr sidecar deployment would start it;
the supervisor only waits for readiness, prints where things are, and stops them
all (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or when one dies.

With ``--dapr`` it first starts Redis (or uses one already answering on
``redis_port``), and each service but the bundled LLM runs as ``serve <name> --dapr``
beside its own ``daprd``, on the components of ``dapr/components``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from runtime import metrics, phoenix, sidecar
from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.extra_agents import Launch, plan_extra_agents
from runtime.span_attributes import PROJECT
from runtime.tools.config import ToolsConfig, load_tools_config

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    ready_url: str
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    """The whole command line of a service that is not ``switchboard serve`` (an agent in another language)."""
    env: Mapping[str, str] | None = None
    """Its whole environment, when not this process's (Phoenix)."""
    ready_later: bool = False
    """Started first, waited for last: the services do not need it to start (Phoenix takes ~20 s)."""


def platform_services(settings: Settings, *, dapr: bool = False, extra: tuple[Launch, ...] = ()) -> list[ServiceSpec]:
    host = settings.advertise_host
    services = []
    if settings.uses_local_llm:
        services.append(ServiceSpec("llm", f"http://{host}:{settings.llm_port}/healthz"))
    args = ("--dapr",) if dapr else ()
    services += [
        ServiceSpec("reasoning", f"http://{host}:{settings.reasoning_http_port}/readyz", args),
        ServiceSpec("planner", f"http://{host}:{settings.planner_http_port}/readyz", args),
        ServiceSpec("knowledge", f"http://{host}:{settings.knowledge_http_port}/readyz", args),
        # Agents in other languages, before the orchestrator so that its discovery finds them.
        *(ServiceSpec(launch.agent.name, launch.ready_url, command=launch.command) for launch in extra),
        ServiceSpec("orchestrator", f"http://{host}:{settings.orchestrator_http_port}/readyz", args),
        ServiceSpec("gateway", f"http://{host}:{settings.gateway_port}/readyz", args),
    ]
    return services


class Supervisor:
    def __init__(self, settings: Settings, services: list[ServiceSpec], ready_timeout: float = 180.0) -> None:
        self.settings = settings
        self.services = services
        self.ready_timeout = ready_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def start(self) -> None:
        later = [spec for spec in self.services if spec.ready_later]
        for spec in later:
            self._spawn(spec, wait=False)
        for spec in self.services:
            # Start in dependency order so each service finds the ones it calls.
            if not spec.ready_later:
                self._spawn(spec)
        for spec in later:
            self._wait_ready(spec)

    def _spawn(self, spec: ServiceSpec, *, wait: bool = True) -> None:
        argv = list(spec.command) or [sys.executable, "-m", "runtime.cli", "serve", spec.name, *spec.args]
        env = dict(spec.env) if spec.env is not None else os.environ.copy()
        self.procs[spec.name] = subprocess.Popen(argv, env=env)
        if wait:
            self._wait_ready(spec)

    def _wait_ready(self, spec: ServiceSpec) -> None:
        deadline = time.monotonic() + self.ready_timeout
        proc = self.procs[spec.name]
        while time.monotonic() < deadline:
            if self._stopping:
                raise RuntimeError(f"stopped while waiting for {spec.name}")
            if proc.poll() is not None:
                raise RuntimeError(f"{spec.name} exited with code {proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(spec.ready_url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{spec.name} was not ready at {spec.ready_url} within {self.ready_timeout:.0f}s")

    def wait(self) -> int:
        """Block until a signal, restarting services that die; return the exit code to use.

        A service that died is started again (its tasks are in the state store, and it
        recovers them on start), unless it died :data:`MAX_RESTARTS` times within
        :data:`RESTART_WINDOW_SECONDS`: then something is wrong that restarting will not fix.
        """
        restarts: dict[str, list[float]] = {}
        while not self._stopping:
            for spec in self.services:
                proc = self.procs[spec.name]
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                recent = [t for t in restarts.get(spec.name, []) if now - t < RESTART_WINDOW_SECONDS]
                if len(recent) >= MAX_RESTARTS:
                    print(
                        f"switchboard: {spec.name} exited with code {proc.returncode} {len(recent) + 1} times "
                        f"within {RESTART_WINDOW_SECONDS:.0f}s; stopping the rest",
                        file=sys.stderr,
                    )
                    return 1
                restarts[spec.name] = [*recent, now]
                print(f"switchboard: {spec.name} exited with code {proc.returncode}; restarting it", file=sys.stderr)
                try:
                    self._spawn(spec)
                except RuntimeError as exc:
                    if self._stopping:
                        return 0
                    print(f"switchboard: {exc}; stopping the rest", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds + 5
        for proc in self.procs.values():
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def phoenix_service(settings: Settings) -> ServiceSpec:
    """Phoenix from ``.tools/phoenix``, keeping its traces under the data dir; raises ConfigError when not installed."""
    command = (str(phoenix.executable()), "serve")
    data = (settings.data_dir / "phoenix").resolve()
    data.mkdir(parents=True, exist_ok=True)
    return ServiceSpec(
        "phoenix",
        f"{phoenix.url(settings.advertise_host, settings.phoenix_port)}/healthz",
        command=command,
        env=phoenix.server_env(data, settings.host, settings.phoenix_port, settings.phoenix_grpc_port),
        ready_later=True,
    )


def up(settings: Settings, *, dapr: bool = False, with_phoenix: bool = False) -> int:
    tools: ToolsConfig | None = None
    if settings.mcp_config:
        # Checked here, once, rather than by a reasoning agent restarting in a loop on a typo. The
        # services inherit this environment, SWITCHBOARD_MCP_CONFIG included, and this working directory.
        try:
            tools = load_tools_config(settings.mcp_config)
        except ConfigError as exc:
            print(f"switchboard: {exc}", file=sys.stderr)
            return 2
    try:
        extra, skipped = plan_extra_agents(settings)
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    for line in skipped:
        print(f"switchboard: {line}", file=sys.stderr)
    if skipped:
        # The services inherit this environment: what did not start is not discovered either.
        os.environ["SWITCHBOARD_EXTRA_AGENTS"] = ",".join(launch.agent.name for launch in extra)
        settings = Settings.from_env()
    services: list[ServiceSpec] = []
    if with_phoenix:
        try:
            services.append(phoenix_service(settings))
        except ConfigError as exc:
            print(f"switchboard: {exc}", file=sys.stderr)
            return 2
        # Every service inherits this environment: their spans go to Phoenix.
        os.environ.update(phoenix.exporter_env(settings.advertise_host, settings.phoenix_grpc_port))
    redis: subprocess.Popen[bytes] | None = None
    if dapr and not sidecar.redis_answers(settings.redis_port):
        try:
            redis = sidecar.start_redis(settings.redis_port, (settings.data_dir / "redis").resolve(), persistent=True)
        except sidecar.SidecarError as exc:
            print(f"switchboard: {exc}", file=sys.stderr)
            return 1
    sup = Supervisor(settings, [*services, *platform_services(settings, dapr=dapr, extra=tuple(extra))])
    signal.signal(signal.SIGINT, sup.request_stop)
    signal.signal(signal.SIGTERM, sup.request_stop)
    try:
        try:
            sup.start()
        except (RuntimeError, KeyboardInterrupt) as exc:
            print(f"switchboard: {exc}", file=sys.stderr)
            sup.stop()
            return 1
        access = keys_required(settings)
        print(
            banner(
                settings,
                dapr=dapr,
                tools=tools,
                extra=tuple(extra),
                skipped=tuple(skipped),
                keys=access,
                phoenix=with_phoenix,
            ),
            flush=True,
        )
        code = sup.wait()
        print("switchboard: stopping", file=sys.stderr, flush=True)
        sup.stop()
        return code
    finally:
        if redis is not None:
            sidecar.stop(redis)


def banner(
    settings: Settings,
    *,
    dapr: bool = False,
    tools: ToolsConfig | None = None,
    extra: tuple[Launch, ...] = (),
    skipped: tuple[str, ...] = (),
    keys: bool | None = None,
    phoenix: bool = False,
) -> str:
    host = settings.advertise_host
    card = "/.well-known/agent-card.json"
    llm = "bundled SmolLM2-135M (tiny demo model)" if settings.uses_local_llm else settings.llm_base_url
    stores = f"Dapr sidecars, Redis on 127.0.0.1:{settings.redis_port}" if dapr else f"embedded, in {settings.data_dir}"
    return "\n".join(
        [
            "",
            "Switchboard is up.",
            f"  OpenAI API     http://{host}:{settings.gateway_port}/v1   (GET /v1/models lists them)",
            f"  orchestrator   grpc {host}:{settings.orchestrator_grpc_port}   card {settings.orchestrator_url}{card}",
            f"  reasoning      grpc {host}:{settings.reasoning_grpc_port}   card {settings.reasoning_url}{card}",
            f"  planner        grpc {host}:{settings.planner_grpc_port}   card {settings.planner_url}{card}",
            f"  knowledge      grpc {host}:{settings.knowledge_grpc_port}   card {settings.knowledge_url}{card}"
            f"   (switchboard ingest PATH --collection {settings.knowledge_collection})",
            *(_extra_line(settings, launch) for launch in extra),
            *(f"  {line}" for line in skipped),
            f"  LLM            {llm}",
            f"  tools          {_tools_line(tools)}",
            f"  state, events  {stores}",
            f"  access         {_access_line(settings, keys)}",
            f"  traces         {_traces_line(settings, phoenix)}",
            f"  metrics        {_metrics_line(settings)}",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def _metrics_line(settings: Settings) -> str:
    if not settings.metrics:
        return "off (SWITCHBOARD_METRICS=false)"
    host = settings.advertise_host
    return (
        f"http://{host}:{settings.gateway_port}/metrics, and /metrics on each agent's card port "
        f"(e.g. http://{host}:{settings.orchestrator_http_port}/metrics); Prometheus text"
        + (", also over OTLP" if metrics.otlp_configured() else "")
    )


def keys_required(settings: Settings) -> bool | None:
    """Whether the running gateway wants an API key: asked of it, so the answer is what clients meet."""
    url = f"http://{settings.advertise_host}:{settings.gateway_port}/v1/models"
    try:
        with urllib.request.urlopen(url, timeout=5):
            return False
    except urllib.error.HTTPError as exc:
        return True if exc.code == 401 else None
    except OSError:
        return None


def _access_line(settings: Settings, keys: bool | None) -> str:
    if keys is None:
        return "unknown (the gateway did not answer GET /v1/models)"
    if not keys:
        return "open: no API key needed (the first 'switchboard keys create' turns keys on, docs/operations.md)"
    admin = "" if settings.admin_api_key else "; no SWITCHBOARD_ADMIN_API_KEY: keys are managed with 'switchboard keys'"
    return f"API keys required (Authorization: Bearer; 'switchboard keys list'){admin}"


def _traces_line(settings: Settings, with_phoenix: bool) -> str:
    if with_phoenix:
        ui = phoenix.url(settings.advertise_host, settings.phoenix_port)
        return (
            f"Phoenix {ui}   (project {PROJECT}; OTLP/gRPC on "
            f"{settings.advertise_host}:{settings.phoenix_grpc_port}; data in {settings.data_dir / 'phoenix'})"
        )
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return f"OTLP to {endpoint}"
    return "not exported ('switchboard up --phoenix' shows them in Phoenix, docs/operations.md)"


def _extra_line(settings: Settings, launch: Launch) -> str:
    host, agent = settings.advertise_host, launch.agent
    card = f"{agent.url(settings)}/.well-known/agent-card.json"
    return f"  {agent.name:<14} grpc {host}:{agent.ports(settings)[0]}   card {card}   ({agent.language})"


def _tools_line(tools: ToolsConfig | None) -> str:
    if tools is None:
        return "none (SWITCHBOARD_MCP_CONFIG names an MCP servers file, docs/tools.md)"
    if not tools.servers:
        return f"no MCP servers in {tools.path}"
    names = ", ".join(f"{s.name} ({s.transport})" for s in tools.servers)
    return f"MCP servers {names} from {tools.path}"
