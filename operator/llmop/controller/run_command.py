"""`llmop run`: start the operator (kopf) against the current kubeconfig, with Lease leader election."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import socket
import threading
import uuid
from typing import Any


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the operator against the current kubeconfig",
        description="Run the operator (kopf) against the in-cluster config or the current kubeconfig: plan, render "
        "and apply each LLMDeployment, report status, autoscale on decode latency from Prometheus. Flags override "
        "the LLMOP_* variables the Helm chart sets.",
        epilog="examples:\n  llmop run --prometheus-url http://127.0.0.1:9090 -n ml\n"
        "  llmop run --peering llmop --prometheus-url http://prometheus-operated.monitoring.svc:9090",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=None, help="watch only this namespace (repeat)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    run.add_argument("--prometheus-url", default=None, help="Prometheus base URL (env LLMOP_PROMETHEUS_URL)")
    run.add_argument("--metrics-port", type=int, default=None, help="port of the operator's /metrics (0: off)")
    run.add_argument("--metrics-address", default=None, help="address of the operator's /metrics")
    run.add_argument("--health-port", type=int, default=None, help="port of /healthz and /readyz (0: off)")
    run.add_argument("--health-address", default=None, help="address of /healthz and /readyz")
    run.add_argument(
        "--loop-stall-seconds", type=float, default=None, help="event loop silence that fails /healthz (30)"
    )
    _add_outbound_arguments(run)
    run.add_argument("--autoscale-interval", type=float, default=None, help="seconds between autoscaler passes")
    run.add_argument(
        "--resync-interval", type=float, default=None, help="seconds between full reconciles of each object (300)"
    )
    run.add_argument("--no-leader-elect", action="store_true", help="act without holding the Lease")
    run.add_argument(
        "--peering",
        default=os.environ.get("LLMOP_PEERING") or None,
        help="use kopf peering with this (Cluster)KopfPeering name instead of the Lease (env LLMOP_PEERING)",
    )
    run.add_argument("--lease-name", default="llmop-operator", help="Lease used for leader election")
    run.add_argument(
        "--lease-namespace", default=None, help="namespace of the Lease (default: POD_NAMESPACE or default)"
    )
    run.add_argument(
        "--prices", default=None, metavar="FILE",
        help="USD per GPU-hour for gpu.type auto, YAML/JSON {GPU: price} (env LLMOP_PRICES_FILE; default: the "
        "dated list prices of llmop/catalog/prices.py)",
    )  # fmt: skip
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)


LOST_EXIT_GRACE_SECONDS = 5.0  # after losing the Lease, exit hard unless kopf has stopped by then


def _add_outbound_arguments(run: Any) -> None:
    """What a spec may point the operator at, and how it talks to Prometheus (env LLMOP_* as named)."""
    run.add_argument(
        "--allow-prometheus-url-prefix", action="append", default=None, dest="prometheus_prefixes",
        help="spec.autoscaling.prometheusUrl may lie under this prefix (repeat; env "
        "LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES, comma-separated); default: only --prometheus-url",
    )  # fmt: skip
    run.add_argument(
        "--allow-custom-probe-endpoints", action="store_true", default=None,
        help="probe spec.autoscaling.probe.endpoint, not only the deployment's Service "
        "(env LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS)",
    )  # fmt: skip
    run.add_argument("--prometheus-ca-file", default=None, help="CA bundle for https (LLMOP_PROMETHEUS_CA_FILE)")
    run.add_argument(
        "--prometheus-insecure-skip-verify", action="store_true", default=None,
        help="do not check Prometheus' certificate (LLMOP_PROMETHEUS_INSECURE_SKIP_VERIFY)",
    )  # fmt: skip
    for kind, env in (("bearer-token", "BEARER_TOKEN"), ("basic-auth-username", "BASIC_AUTH_USERNAME"),
                      ("basic-auth-password", "BASIC_AUTH_PASSWORD")):  # fmt: skip
        run.add_argument(
            f"--prometheus-{kind}-file", default=None,
            help=f"file with the Prometheus {kind.replace('-', ' ')}, re-read on change (LLMOP_PROMETHEUS_{env}_FILE)",
        )  # fmt: skip


# argparse dest -> OperatorConfig field, for flags that override their LLMOP_* variable when given
_OVERRIDES = {
    "prometheus_url": "prometheus_url",
    "metrics_port": "metrics_port",
    "metrics_address": "metrics_address",
    "health_port": "health_port",
    "health_address": "health_address",
    "loop_stall_seconds": "loop_stall_seconds",
    "autoscale_interval": "autoscale_interval_seconds",
    "resync_interval": "resync_seconds",
    "allow_custom_probe_endpoints": "allow_custom_probe_endpoints",
    "prometheus_ca_file": "prometheus_ca_file",
    "prometheus_insecure_skip_verify": "prometheus_insecure_skip_verify",
    "prometheus_bearer_token_file": "prometheus_bearer_token_file",
    "prometheus_basic_auth_username_file": "prometheus_basic_auth_username_file",
    "prometheus_basic_auth_password_file": "prometheus_basic_auth_password_file",
}


def _config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from llmop.controller.settings import OperatorConfig

    config = OperatorConfig.from_env()
    given = {dest: getattr(args, dest) for dest in _OVERRIDES}
    overrides = {_OVERRIDES[dest]: value for dest, value in given.items() if value not in (None, "")}
    if args.prometheus_prefixes:
        overrides["allowed_prometheus_url_prefixes"] = tuple(args.prometheus_prefixes)
    return replace(config, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    import kopf
    from kubernetes import client
    from kubernetes import config as kube_config
    from prometheus_client import start_http_server

    from llmop.controller.autoscaler import Autoscaler
    from llmop.controller.health import Health, exit_after, heartbeat
    from llmop.controller.health_server import serve
    from llmop.controller.kube import Kube
    from llmop.controller.leader import LeaderElector
    from llmop.controller.plans import PlanCache
    from llmop.controller.reconcile import Reconciler
    from llmop.controller.runtime import Runtime, install
    from llmop.controller.settings import SettingError

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # "Handler ... succeeded" on every event
    try:
        config = _config(args)
        config.validate()
    except SettingError as error:
        logging.getLogger("llmop").error("%s", error)
        return 2
    from llmop.controller import handlers  # registers the kopf handlers

    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    # one pooled connection per worker thread: a smaller pool drops and re-handshakes TLS under load
    configuration.connection_pool_maxsize = handlers.RECONCILE_WORKERS + handlers.RESYNC_WORKERS + 4
    api_client = client.ApiClient(configuration)
    kube = Kube(api_client)
    from llmop.controller.checkpoints import HubResolver
    from llmop.controller.gpu_choice import NodeGpus, load_prices

    try:
        prices = load_prices(args.prices or os.environ.get("LLMOP_PRICES_FILE") or None)
    except ValueError as error:
        logging.getLogger("llmop").error("%s", error)
        return 2
    # one plan per spec generation, shared by both; models outside the catalog are planned from config.json
    plans = PlanCache(config.image_registry, checkpoints=HubResolver(kube.core), gpus=NodeGpus(kube), prices=prices)
    reconciler = Reconciler(kube, config, plans)
    install(Runtime(config, kube, reconciler, Autoscaler(kube, config, reconciler.locked, plans=plans)))
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address)
    health = Health(config.loop_stall_seconds)  # served from its own thread: it answers while the loop is stuck
    if config.health_port:
        serve(health, config.health_address, config.health_port)

    lost = threading.Event()
    elector = None
    if not args.no_leader_elect and not args.peering:
        identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        namespace = args.lease_namespace or os.environ.get("POD_NAMESPACE") or "default"
        elector = LeaderElector(api_client, namespace, args.lease_name, identity)
        health.standby()
        if not elector.acquire():
            return 1
    namespaces = tuple(args.namespace or ())
    env_namespace = os.environ.get("LLMOP_NAMESPACE")
    if not namespaces and env_namespace and not args.all_namespaces:
        namespaces = (env_namespace,)

    async def operate() -> None:
        # An asyncio future as kopf's stop flag: a threading.Event would park an executor thread that
        # asyncio.run() then waits for at exit (kopf's 10-minute ultimate timeout).
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def stop_once() -> None:
            if not stop.done():
                stop.set_result(None)

        def on_lost() -> None:
            why = (elector.lost_reason if elector is not None else None) or "lost"
            health.lose(why)
            lost.set()
            loop.call_soon_threadsafe(stop_once)
            exit_after(LOST_EXIT_GRACE_SECONDS, f"lost the leader Lease ({why})")  # a wedged loop never stops

        beating = loop.create_task(heartbeat(health), name="llmop-heartbeat")
        if elector is not None:
            elector.keep_renewing(on_lost, health.stalled)
        # Peering: every replica runs kopf; a random priority makes exactly one the highest, which acts
        # while the others freeze (kopf only warns when peers share a priority).
        await kopf.operator(
            standalone=not args.peering,
            peering_name=args.peering,
            priority=random.randint(1, 2**30) if args.peering else None,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=None,  # /healthz and /readyz are llmop's own (controller/health_server.py)
            stop_flag=stop,
        )
        beating.cancel()

    try:
        asyncio.run(operate())
    finally:
        if elector is not None:
            elector.release()
    if lost.is_set():
        logging.getLogger("llmop").error("lost the leader Lease; exiting so another replica takes over")
        return 3
    return 0
