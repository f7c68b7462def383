"""corpus-api over HTTPS when its settings name a certificate and a key."""

import subprocess
import sys

import httpx
import yaml

from support.ports import LOOPBACK, free_port
from support.wait import wait_for


def test_the_api_speaks_tls_with_a_certificate_and_a_key(master, inventory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    with open(master.config_file, encoding="utf-8") as fh:
        options = yaml.safe_load(fh)
    port = free_port()
    options["corpus_api"] = dict(options["corpus_api"], port=port, tls_cert=str(cert), tls_key=str(key))
    config = tmp_path / "master"
    config.write_text(yaml.safe_dump(options))
    process = subprocess.Popen([sys.executable, "-m", "mc_project.api.server", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "https://{}:{}/v1/health".format(LOOPBACK, port)

        def answers():
            try:
                return httpx.get(url, verify=str(cert), timeout=1).json() == {"status": "ok"}
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=30, what="corpus-api over HTTPS")
        plain = "http://{}:{}/v1/health".format(LOOPBACK, port)
        try:
            refused = httpx.get(plain, timeout=2).status_code != 200
        except httpx.HTTPError:
            refused = True
        assert refused
    finally:
        process.terminate()
        process.wait(15)
