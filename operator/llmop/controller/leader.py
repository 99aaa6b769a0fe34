"""Leader election on a coordination.k8s.io Lease, so only one of several operator replicas acts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.times import rfc3339

log = logging.getLogger("llmop.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    return rfc3339(moment, digits=6)  # a Lease's MicroTime


class LeaderElector:
    """Acquire and renew a Lease. The leader stops acting (`on_lost`) when it has not renewed for
    `renew_deadline_seconds`, which is shorter than the lease: it steps down before any other replica may take
    the lease over, so two replicas never act at once (client-go's leaderelection uses 15 s / 10 s / 2 s too)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = 15,
        renew_seconds: float = 2.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
    ) -> None:
        if not 0 < renew_deadline_seconds < lease_seconds:
            raise ValueError(f"renew deadline {renew_deadline_seconds} s must be below the lease {lease_seconds} s")
        self.api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.renew_deadline_seconds = renew_deadline_seconds
        self.retry_seconds = retry_seconds
        self._timeout = max(1.0, retry_seconds)  # per request, so a hung API server cannot outlast the deadline
        self._stop = threading.Event()
        self.lost_reason: str | None = None  # why `on_lost` was called

    def _try_acquire(self) -> bool:
        now = _now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=self.lease_seconds,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self._timeout)
                return True
            except ApiException as create_error:
                if create_error.status == 409:
                    return False
                raise
        spec = lease.spec
        if spec is None:
            spec = lease.spec = client.V1LeaseSpec()
        holder = spec.holder_identity
        renewed = spec.renew_time
        duration = spec.lease_duration_seconds or self.lease_seconds
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder not in (None, "", self.identity) and not expired:
            return False
        if holder != self.identity:
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.acquire_time = now
        spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = self.lease_seconds
        try:
            # replace carries the resourceVersion: a concurrent candidate gets 409 and stays a follower.
            self.api.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=self._timeout)
            return True
        except ApiException as error:
            if error.status == 409:
                return False
            raise

    def acquire(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Block until this process leads (True) or `should_stop` says to give up (False)."""
        announced = False
        while not should_stop():
            try:
                if self._try_acquire():
                    log.info("leading as %s (lease %s/%s)", self.identity, self.namespace, self.name)
                    return True
            except ApiException as error:
                log.warning("lease %s/%s: %s", self.namespace, self.name, error.reason)
            except Exception as error:  # API server unreachable (restarting): keep waiting, as renewal does
                log.warning("lease %s/%s: %s", self.namespace, self.name, str(error).splitlines()[0][:300])
            if not announced:
                log.info("waiting for lease %s/%s held by another replica", self.namespace, self.name)
                announced = True
            time.sleep(self.renew_seconds)
        return False

    def keep_renewing(
        self, on_lost: Callable[[], None], wedged: Callable[[], str | None] = lambda: None
    ) -> threading.Thread:
        """Renew in the background; when the lease is taken or not renewed within the renew deadline, or when
        `wedged` says why the process cannot act (its event loop is stuck), stop renewing and call `on_lost` once
        (`lost_reason` says why). A wedged leader does not hand the lease over: its worker threads may still
        finish a write, so the others wait for the lease to run out."""

        def loop() -> None:
            renewed_at = time.monotonic()  # start of the last attempt that renewed: the lease runs from there
            wait = self.renew_seconds
            while not self._stop.wait(wait):
                attempt = time.monotonic()
                stuck = wedged()
                if stuck is not None:
                    self.lost_reason = f"stepped down: {stuck}"
                    log.error("lease %s/%s: %s", self.namespace, self.name, self.lost_reason)
                    on_lost()
                    return
                try:
                    if self._try_acquire():
                        renewed_at, wait = attempt, self.renew_seconds
                        continue
                    self.lost_reason = "taken by another replica"
                    log.error("lease %s/%s taken by another replica", self.namespace, self.name)
                except Exception as error:
                    behind = time.monotonic() - renewed_at
                    log.warning("lease renewal failed (%.1f s since the last renewal): %s", behind,
                                str(error).splitlines()[0][:300])  # fmt: skip
                    if behind < self.renew_deadline_seconds:
                        wait = min(self.retry_seconds, self.renew_deadline_seconds - behind)
                        continue
                    self.lost_reason = f"not renewed within {self.renew_deadline_seconds:.0f} s"
                    log.error("lease %s/%s not renewed within %.0f s; stepping down", self.namespace, self.name,
                              self.renew_deadline_seconds)  # fmt: skip
                on_lost()
                return

        thread = threading.Thread(target=loop, name="llmop-lease", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Stop renewing and hand the lease back so another replica can take over at once."""
        self._stop.set()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except Exception as error:
            log.debug("lease release failed: %s", error)
