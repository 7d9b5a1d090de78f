"""A real OpenLDAP ``slapd`` for the console's directory sign-in, started by the test.

Debian's slapd (deploy/dev-deps.sh), run in the foreground as the test's own
user on a free loopback port, with a temporary config file and an MDB
database filled by ``slapadd``; with ``tls`` it also answers ldaps:// with a
self-signed certificate for 127.0.0.1 (``Slapd.ca_file``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=example,dc=gov,dc=cn"
PEOPLE = f"ou=people,{SUFFIX}"
SERVICE_DN = f"cn=jiancha,{SUFFIX}"
SERVICE_PASSWORD = "service account secret"

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
{tls}
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
directory {dir}/db
maxsize 10485760
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""


@dataclass(frozen=True)
class Slapd:
    url: str  # ldap://127.0.0.1:PORT
    ldaps_url: str | None  # ldaps://127.0.0.1:PORT with tls
    ca_file: str | None  # the self-signed certificate, to verify it
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ldif(people: Mapping[str, tuple[str, str]]) -> str:
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "o: example\ndc: example\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: jiancha\nsn: jiancha\n"
        f"userPassword: {SERVICE_PASSWORD}\n",
    ]
    for uid, (name, password) in people.items():
        parts.append(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\n"
            f"sn: {name[:1]}\nuserPassword: {password}\n"
        )
    return "\n".join(parts)


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "ldap.crt", folder / "ldap.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def running_slapd(folder: Path, people: Mapping[str, tuple[str, str]],
                  tls: bool = False) -> Iterator[Slapd]:  # fmt: skip
    """slapd with ``people`` (uid -> (cn, password)) under `PEOPLE`, until the block ends."""
    slapd, slapadd = (
        shutil.which("slapd", path="/usr/sbin:/usr/bin"),
        shutil.which("slapadd", path="/usr/sbin:/usr/bin"),
    )
    whoami = shutil.which("ldapwhoami")
    assert slapd and slapadd and whoami, (
        "slapd or ldapwhoami missing: deploy/dev-deps.sh installs slapd and ldap-utils"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir()
    tls_lines, ca = "", None
    if tls:
        cert, key = _certificate(folder)
        tls_lines = f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}"
        ca = str(cert)
    conf = folder / "slapd.conf"
    conf.write_text(_CONF.format(dir=folder, suffix=SUFFIX, tls=tls_lines))
    (folder / "seed.ldif").write_text(_ldif(people), encoding="utf-8")
    subprocess.run([slapadd, "-f", str(conf), "-l", str(folder / "seed.ldif")],
                   check=True, capture_output=True)  # fmt: skip
    port = _free_port()
    urls = [f"ldap://127.0.0.1:{port}/"]
    tls_port = _free_port() if tls else None
    if tls_port is not None:
        urls.append(f"ldaps://127.0.0.1:{tls_port}/")
    log = (folder / "slapd.log").open("wb")
    process = subprocess.Popen([slapd, "-f", str(conf), "-h", " ".join(urls), "-d", "0"],
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:  # ready when the service account can bind (ldap-utils' ldapwhoami)
            ready = subprocess.run(
                [whoami, "-x", "-H", urls[0], "-D", SERVICE_DN, "-w", SERVICE_PASSWORD],
                capture_output=True,
            )  # fmt: skip
            if ready.returncode == 0:
                break
            assert process.poll() is None, (folder / "slapd.log").read_text()
            assert time.monotonic() < deadline, "slapd did not start"
            time.sleep(0.05)
        yield Slapd(f"ldap://127.0.0.1:{port}",
                    f"ldaps://127.0.0.1:{tls_port}" if tls_port else None, ca, process)  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
