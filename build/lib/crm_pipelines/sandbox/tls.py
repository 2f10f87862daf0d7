"""A self-signed certificate for the sandbox, and a CA bundle that trusts it.

msal accepts only an https authority and simple-salesforce always builds https:// URLs, so
the sandbox speaks TLS. Clients trust it through a bundle = the system CAs + this certificate
(point REQUESTS_CA_BUNDLE at it; hubspot-api-client takes it as ``ssl_ca_cert``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class SandboxTls:
    certfile: Path
    keyfile: Path
    ca_bundle: Path


SUBJECT_PREFIX = "crm-pipelines sandbox"
MARKER = "# crm-pipelines sandbox certificate\n"
_OWN_BLOCK = re.compile(re.escape(MARKER) + r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


def _system_bundle() -> str:
    """The CAs clients trust today, less any earlier sandbox certificate (a bundle from a
    previous run may be what REQUESTS_CA_BUNDLE points at)."""
    for candidate in (os.environ.get("REQUESTS_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE")):
        if candidate and Path(candidate).is_file():
            return _OWN_BLOCK.sub("", Path(candidate).read_text())
    import certifi

    return Path(certifi.where()).read_text()


def ensure_certificate(directory: str | Path) -> SandboxTls:
    """Create (once) a certificate for 127.0.0.1/localhost and the bundle that trusts it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tls = SandboxTls(directory / "sandbox.crt", directory / "sandbox.key", directory / "ca-bundle.pem")
    if not (tls.certfile.exists() and tls.keyfile.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        # A distinct subject per certificate: TLS finds the issuer by name, and two sandboxes'
        # certificates under one name in a bundle would make the wrong one be tried.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{SUBJECT_PREFIX} {secrets.token_hex(6)}")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        tls.keyfile.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        tls.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.ca_bundle.write_text(_system_bundle().rstrip("\n") + "\n" + MARKER + tls.certfile.read_text())
    return tls
