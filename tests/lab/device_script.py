"""Run inside the device namespace of the live lab: resolve names, then HTTPS, HTTP, UDP and mDNS.

Usage: python device_script.py RESOLVER DEVICE_IP
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import time

from zeroconf import ServiceInfo, Zeroconf

from gateway.parsers.dns import parse_dns_response
from gateway.samples import frames as fr


def resolve(resolver: str, name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(fr.dns_query(0x4D43, name), (resolver, 53))
        answer = parse_dns_response(s.recv(4096))
    assert answer is not None, f"no answer for {name}"
    return answer.addresses[0][0]


def main() -> None:
    resolver, me = sys.argv[1], sys.argv[2]
    zc = Zeroconf(interfaces=[me])
    info = ServiceInfo(
        "_googlecast._tcp.local.",
        "Lab Speaker._googlecast._tcp.local.",
        addresses=[socket.inet_aton(me)],
        port=8009,
        properties={"md": "Google Home Mini", "fn": "Lab Speaker"},
        server="lab-speaker.local.",
    )
    zc.register_service(info)
    ip = resolve(resolver, "secure.lab.test")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(3):
        with (
            socket.create_connection((ip, 443), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="secure.lab.test") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: secure.lab.test\r\nConnection: close\r\n\r\n")
            while tls.recv(65536):
                pass
    ip = resolve(resolver, "plain.lab.test")
    conn2 = http.client.HTTPConnection(ip, 80, timeout=5)
    conn2.request("GET", "/", headers={"Host": "plain.lab.test"})
    conn2.getresponse().read()
    conn2.close()
    ip = resolve(resolver, "udp.lab.test")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(20):
            s.sendto(bytes([i]) * 500, (ip, 4433))
    time.sleep(0.5)
    zc.unregister_service(info)
    zc.close()


if __name__ == "__main__":
    main()
