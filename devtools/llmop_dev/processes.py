"""Child processes and ports of the local tooling: free 127.0.0.1 ports, and stopping a child SIGTERM-then-SIGKILL."""

from __future__ import annotations

import signal
import socket
import subprocess

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (bind port 0, read it, close)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def stop_process(process: subprocess.Popen[bytes] | None, kill: bool = False, timeout: float = 20.0) -> None:
    """SIGTERM (SIGKILL when `kill`), wait `timeout` seconds, then SIGKILL; only this child's own pid."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
