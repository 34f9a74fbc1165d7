"""Synthetic captures for tests, demos and benchmarks.

`frames` builds real wire bytes (link, IP, transport headers with correct checksums, and the payloads
that carry names: DNS, mDNS, DHCP, TLS ClientHello, HTTP); `pcapwriter` writes them as pcap or pcapng
with several link types; `lab` writes a deterministic capture of a small home lab and says what it
contains (`python -m gateway.samples.lab OUT.pcap`). No traffic is ever sent: these are files.
"""
