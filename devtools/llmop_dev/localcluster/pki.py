"""Test PKI for the local control plane (CA, apiserver cert, admin client cert, SA keys) via openssl."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

API_SERVER_SANS = ("IP:127.0.0.1", "DNS:localhost", "IP:10.96.0.1", "DNS:kubernetes.default.svc")
ADMIN_SUBJECT = "/O=system:masters/CN=llmop-admin"
EC_CURVE = "ec_paramgen_curve:P-256"  # ECDSA keys: milliseconds to generate, unlike RSA


class PKIError(RuntimeError):
    """openssl is missing or one of its commands failed."""


@dataclass(frozen=True)
class PKI:
    """Paths of every key and certificate the control plane uses; all inside `directory`."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PKIError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _sign(pki: PKI, name: str, subject: str, extensions: str, days: int) -> None:
    cwd = pki.directory
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        EC_CURVE,
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=cwd,
    )
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        str(days),
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=cwd,
    )


def create_pki(directory: Path, days: int = 7) -> PKI:
    """Write a fresh CA, the apiserver serving cert, the admin client cert and the SA key pair."""
    if shutil.which("openssl") is None:
        raise PKIError("the openssl CLI is required (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    pki = PKI(directory)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        EC_CURVE,
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        str(days),
        "-subj",
        "/CN=llmop-dev-ca",
        cwd=directory,
    )
    sans = ",".join(API_SERVER_SANS)
    _sign(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
        days,
    )
    _sign(pki, "admin", ADMIN_SUBJECT, "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n", days)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", EC_CURVE, "-out", "sa.key", cwd=directory)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return pki
