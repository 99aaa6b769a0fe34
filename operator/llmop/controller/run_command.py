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
    run = subparsers.add_parser("run", help="run the operator against the current kubeconfig")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=None, help="watch only this namespace (repeat)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    run.add_argument("--prometheus-url", default=None, help="Prometheus base URL (env LLMOP_PROMETHEUS_URL)")
    run.add_argument("--metrics-port", type=int, default=None, help="port of the operator's /metrics (0: off)")
    run.add_argument("--metrics-address", default=None, help="address of the operator's /metrics")
    run.add_argument("--health-port", type=int, default=None, help="port of the liveness endpoint (0: off)")
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
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)


def _config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from llmop.controller.settings import OperatorConfig

    config = OperatorConfig.from_env()
    overrides: dict[str, Any] = {}
    if args.prometheus_url:
        overrides["prometheus_url"] = args.prometheus_url
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    if args.metrics_address:
        overrides["metrics_address"] = args.metrics_address
    if args.health_port is not None:
        overrides["health_port"] = args.health_port
    if args.autoscale_interval:
        overrides["autoscale_interval_seconds"] = args.autoscale_interval
    if args.resync_interval:
        overrides["resync_seconds"] = args.resync_interval
    return replace(config, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    import kopf
    from kubernetes import client
    from kubernetes import config as kube_config
    from prometheus_client import start_http_server

    from llmop.controller.autoscaler import Autoscaler
    from llmop.controller.kube import Kube
    from llmop.controller.leader import LeaderElector
    from llmop.controller.plans import PlanCache
    from llmop.controller.reconcile import Reconciler
    from llmop.controller.runtime import Runtime, install

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # "Handler ... succeeded" on every event
    config = _config(args)
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
    plans = PlanCache(config.image_registry)  # one plan per spec generation, shared by both
    reconciler = Reconciler(kube, config, plans)
    install(Runtime(config, kube, reconciler, Autoscaler(kube, config, reconciler.locked, plans=plans)))
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_address)

    lost = threading.Event()
    elector = None
    if not args.no_leader_elect and not args.peering:
        identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        namespace = args.lease_namespace or os.environ.get("POD_NAMESPACE") or "default"
        elector = LeaderElector(api_client, namespace, args.lease_name, identity)
        if not elector.acquire():
            return 1
    namespaces = tuple(args.namespace or ())
    env_namespace = os.environ.get("LLMOP_NAMESPACE")
    if not namespaces and env_namespace and not args.all_namespaces:
        namespaces = (env_namespace,)
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None

    async def operate() -> None:
        # An asyncio future as kopf's stop flag: a threading.Event would park an executor thread that
        # asyncio.run() then waits for at exit (kopf's 10-minute ultimate timeout).
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def stop_once() -> None:
            if not stop.done():
                stop.set_result(None)

        def on_lost() -> None:
            lost.set()
            loop.call_soon_threadsafe(stop_once)

        if elector is not None:
            elector.keep_renewing(on_lost)
        # Peering: every replica runs kopf; a random priority makes exactly one the highest, which acts
        # while the others freeze (kopf only warns when peers share a priority).
        await kopf.operator(
            standalone=not args.peering,
            peering_name=args.peering,
            priority=random.randint(1, 2**30) if args.peering else None,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            stop_flag=stop,
        )

    try:
        asyncio.run(operate())
    finally:
        if elector is not None:
            elector.release()
    if lost.is_set():
        logging.getLogger("llmop").error("lost the leader Lease; exiting so another replica takes over")
        return 3
    return 0
