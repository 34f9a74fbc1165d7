"""What the atheris harnesses and the hypothesis property tests share: batches, seeds, a memory sink.

Nothing here imports atheris, so tests/fuzz/ can use it with hypothesis alone.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.parsers.quic import QUIC_V1, client_initial_keys
from gateway.samples import frames as fr
from gateway.samples.frames import FrameTemplate, LinkType
from gateway.sources.capfile import PAD, PacketBatch

# Link types a fuzzed batch is decoded as: every supported one, plus one the decoder must refuse.
LINK_TYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147)
# The DCID every seed Initial is protected with (RFC 9001 Appendix A's).
SEED_DCID = bytes.fromhex("8394c8f03e515708")


def batch_of(packets: Sequence[bytes], linktypes: Sequence[int]) -> PacketBatch:
    """A PacketBatch holding `packets` back to back (as a capture reader lays them out), zero padded."""
    offsets, pos = [], 0
    for packet in packets:
        offsets.append(pos)
        pos += len(packet)
    buf = np.frombuffer(b"".join(packets) + bytes(PAD), dtype=np.uint8).copy()
    n = len(packets)
    caplen = np.array([len(p) for p in packets], dtype=np.int64)
    return PacketBatch(
        buf=buf,
        offset=np.array(offsets, dtype=np.int64),
        caplen=caplen,
        wirelen=caplen.copy(),
        ts_ns=np.arange(n, dtype=np.int64) * 1_000_000,
        linktype=np.array([linktypes[i % len(linktypes)] for i in range(n)], dtype=np.int32),
    )


def split_packets(data: bytes, sizes: bytes) -> list[bytes]:
    """Cut `data` into packets whose lengths are read from `sizes` (2 bytes each, big-endian)."""
    packets, pos = [], 0
    for (size,) in struct.iter_unpack(">H", sizes[: len(sizes) // 2 * 2]):
        packets.append(data[pos : pos + size % 1600])
        pos += size % 1600
    if pos < len(data):
        packets.append(data[pos:])
    return packets


def encode_batch(packets: Sequence[bytes], links: Sequence[int]) -> bytes:
    """The input layout check_headers reads: count-1, link type indices, 2-byte sizes, then the bytes."""
    count = len(packets)
    head = bytes([count - 1]) + bytes(LINK_TYPES.index(link) for link in links[:count])
    sizes = b"".join(struct.pack(">H", len(p)) for p in packets)
    return head + sizes + b"".join(packets)


def headers_seeds() -> list[bytes]:
    """Batches of up to 8 frames: Ethernet (with VLAN), and the same IP packets raw and cooked."""
    frames = frame_seeds()
    raw = [frame[14:] for frame in frames[:4]]
    sll = [fr.sll_header(0, "02:00:00:00:00:01", 0x0800) + frame[14:] for frame in frames[:4]]
    return [
        encode_batch(frames[:8], [LinkType.ETHERNET] * 8),
        encode_batch(frames[8:16], [LinkType.ETHERNET] * 8),
        encode_batch(raw, [LinkType.RAW] * 4),
        encode_batch(sll, [LinkType.LINUX_SLL] * 4),
    ]


def _varint(value: int) -> bytes:
    return bytes([0x40 | value >> 8, value & 0xFF]) if value >= 64 else bytes([value])


def protect_initial(frames: bytes, *, dcid: bytes = SEED_DCID, packet_number: int = 2) -> bytes:
    """A QUIC v1 client Initial carrying `frames` (padded to 1162 bytes), protected per RFC 9001 §5."""
    keys = client_initial_keys(QUIC_V1, dcid)
    if keys is None:  # pragma: no cover - v1 is always known
        raise ValueError("QUIC v1 keys")
    key, iv, hp = keys
    payload = frames + bytes(max(0, 1162 - len(frames)))
    pn = packet_number.to_bytes(4, "big")
    header = bytes([0xC3]) + QUIC_V1.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + b"\x00\x00"
    length = len(pn) + len(payload) + 16
    header += bytes([0x40 | length >> 8, length & 0xFF]) + pn
    nonce = (int.from_bytes(iv, "big") ^ packet_number).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    # Header protection (RFC 9001 §5.4): AES-ECB of one sample block is what the RFC defines.
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[:16])  # noqa: S305
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    masked_pn = bytes(a ^ b for a, b in zip(pn, mask[1:5], strict=True))
    return first + header[1:-4] + masked_pn + sealed


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + _varint(offset) + _varint(len(data)) + data


def tls_handshake(server_name: str) -> bytes:
    """The handshake message of a ClientHello (no record header), as QUIC CRYPTO frames carry it."""
    return fr.tls_client_hello(server_name)[5:]


def _flow(sport: int, dport: int, *, v6: bool = False) -> FrameTemplate:
    if v6:
        return FrameTemplate(
            "02:00:00:00:00:01", "02:00:00:00:00:fe", "fd00::10", "2001:db8::1", sport=sport, dport=dport
        )
    return FrameTemplate(
        "02:00:00:00:00:01", "02:00:00:00:00:fe", "192.168.1.10", "93.184.216.34", sport=sport, dport=dport
    )


def dns_seeds() -> list[bytes]:
    chain = fr.dns_answer_chain("www.example.com", ["edge.example.net"], ["93.184.216.34", "2001:db8::1"])
    response = fr.dns_response(7, "www.example.com", fr.DNS_A, chain)
    return [response, fr.dns_query(7, "www.example.com"), struct.pack(">H", len(response)) + response]


def mdns_seeds() -> list[bytes]:
    announcement = fr.mdns_announcement(
        "Kitchen",
        "_googlecast._tcp.local",
        "Kitchen-3f9a.local",
        8009,
        txt=["md=Google Home", "fn=Kitchen", "id=3f9a"],
        addresses=["192.168.1.10", "fe80::1"],
    )
    return [announcement, fr.mdns_query(["_googlecast._tcp.local", "_airplay._tcp.local"])]


def dhcp_seeds() -> list[bytes]:
    request = fr.dhcp_request(1, "02:00:00:00:00:01", hostname="esp-kettle", vendor_class="udhcp 1.21.1")
    reply = fr.dhcp_reply(
        1,
        "02:00:00:00:00:01",
        fr.DHCP_ACK,
        "192.168.1.10",
        "192.168.1.1",
        router="192.168.1.1",
        dns=["9.9.9.9"],
    )
    return [request, reply]


def tls_seeds() -> list[bytes]:
    hello = fr.tls_client_hello("www.example.com", ech=b"\x00" * 8)
    return [hello, hello[:300], fr.tls_client_hello(None, alpn=())]


def quic_seeds() -> list[bytes]:
    return [protect_initial(crypto_frame(0, tls_handshake("www.example.com")))]


def http_seeds() -> list[bytes]:
    return [
        fr.http_get("www.example.com", "/index.html"),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n\r\n',
    ]


def ndp_seeds() -> list[bytes]:
    return [fr.router_advertisement("fe80::1", "ff02::1", "02:00:00:00:00:fe", "2001:db8:1::")]


def frame_seeds() -> list[bytes]:
    """Ethernet frames of every kind the pipeline reads names from, IPv4 and IPv6."""
    out: list[bytes] = []
    for v6 in (False, True):
        out.append(_flow(40000, 53, v6=v6).udp(fr.dns_query(1, "www.example.com")))
        out.append(_flow(53, 40000, v6=v6).udp(dns_seeds()[0]))
        out.append(_flow(41000, 443, v6=v6).tcp(1, 1, fr.PSH | fr.ACK, fr.tls_client_hello("a.example")))
        out.append(_flow(41001, 80, v6=v6).tcp(1, 1, fr.PSH | fr.ACK, fr.http_get("b.example")))
        out.append(_flow(41002, 443, v6=v6).udp(quic_seeds()[0]))
        out.append(_flow(5353, 5353, v6=v6).udp(mdns_seeds()[0]))
    out.append(_flow(68, 67).udp(dhcp_seeds()[0]))
    out.append(_flow(67, 68).udp(dhcp_seeds()[1]))
    ra = fr.router_advertisement("fe80::1", "ff02::1", "02:00:00:00:00:fe", "2001:db8:1::")
    out.append(
        fr.ethernet(
            "33:33:00:00:00:01", "02:00:00:00:00:fe", fr.ETH_P_IPV6, fr.ipv6("fe80::1", "ff02::1", 58, ra)
        )
    )
    out.append(
        fr.ethernet(
            "02:00:00:00:00:fe", "02:00:00:00:00:01", fr.ETH_P_8021Q, b"\x00\x05\x08\x00" + out[0][14:]
        )
    )
    return out


def pcap_bytes(packets: Sequence[bytes], linktype: int = LinkType.ETHERNET) -> bytes:
    """A little-endian microsecond pcap file of `packets`, one millisecond apart."""
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    records = b"".join(
        struct.pack("<IIII", 1_700_000_000, i * 1000, len(p), len(p)) + p for i, p in enumerate(packets)
    )
    return head + records


def _block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def pcapng_bytes(packets: Sequence[bytes], linktype: int = LinkType.ETHERNET) -> bytes:
    """A little-endian pcapng file: section, one interface (ns resolution), EPBs, an SPB, a custom block."""
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += _block(1, struct.pack("<HHI", linktype, 0, 65535) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0")
    for i, p in enumerate(packets):
        ts = 1_700_000_000_000_000_000 + i * 1_000_000
        out += _block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(p), len(p)) + p)
    if packets:
        out += _block(3, struct.pack("<I", len(packets[0])) + packets[0])
    return out + _block(0x00000BAD, struct.pack("<I", 32473) + b"skip me")


def capture_seeds() -> list[bytes]:
    packets = frame_seeds()
    return [pcap_bytes(packets), pcapng_bytes(packets), pcap_bytes(packets[:3])[:-7]]


SEEDS = {
    "dns": dns_seeds,
    "mdns": mdns_seeds,
    "dhcp": dhcp_seeds,
    "tls": tls_seeds,
    "quic": quic_seeds,
    "http": http_seeds,
    "ndp": ndp_seeds,
    "headers": headers_seeds,
    "capfile": capture_seeds,
    "gateway": capture_seeds,
}
