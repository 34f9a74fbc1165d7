"""gateway.parsers.quic: RFC 9001/9369 test vectors, a real HTTP/3 capture against tshark, fuzzing."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.parsers.quic import (
    MAX_CRYPTO_BYTES,
    MAX_FRAGMENTS,
    QUIC_V1,
    QUIC_V2,
    QuicInitialReassembler,
    client_initial_keys,
    parse_quic_initial,
)
from tests.conftest import CAPTURES

QUIC_CAPTURE = CAPTURES / "zeek" / "quic_curl-8.1.2-dev-http3-www-google-de.pcap"
TSHARK_PREFS = ["-n", "-o", "quic.reassemble_crypto_out_of_order:TRUE"]

# --- RFC 9001 Appendix A and RFC 9369 Appendix A (public test vectors) ----------------------------

RFC_DCID = bytes.fromhex("8394c8f03e515708")

# A.2: the client's CRYPTO frame (a ClientHello for example.com), padded to 1162 bytes.
RFC_CLIENT_PLAINTEXT = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff"
) + bytes(917)

RFC9001_CLIENT_INITIAL = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
)

# A.3: the server's Initial, protected with the server's keys: never read as a client Initial.
RFC9001_SERVER_INITIAL = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
)

RFC9369_CLIENT_INITIAL = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
)

RFC_HELLO = RFC_CLIENT_PLAINTEXT[4 : 4 + 0xF1]  # the ClientHello inside the CRYPTO frame


# --- building Initials (checked against the vectors above before any other use) -------------------


def varint(value: int, size: int | None = None) -> bytes:
    size = size or (1 if value < 64 else 2 if value < 16384 else 4)
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    return ((prefix << (8 * size - 2)) | value).to_bytes(size, "big")


def protect(
    payload: bytes,
    *,
    version: int = QUIC_V1,
    dcid: bytes = RFC_DCID,
    scid: bytes = b"",
    packet_number: int = 2,
    pn_length: int = 4,
    token: bytes = b"",
) -> bytes:
    """A client Initial carrying `payload` (frames), protected as RFC 9001 §5 says."""
    keys = client_initial_keys(version, dcid)
    assert keys is not None
    key, iv, hp = keys
    packet_type = 0b00 if version == QUIC_V1 else 0b01
    first = 0xC0 | packet_type << 4 | (pn_length - 1)
    pn_bytes = packet_number.to_bytes(pn_length, "big")
    header = bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid
    header += bytes([len(scid)]) + scid + varint(len(token)) + token
    header += varint(pn_length + len(payload) + 16, 2) + pn_bytes
    nonce = (int.from_bytes(iv, "big") ^ packet_number).to_bytes(12, "big")
    ciphertext = AESGCM(key).encrypt(nonce, payload, header)
    sample = ciphertext[4 - pn_length : 20 - pn_length]
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)  # noqa: S305
    masked_pn = bytes(a ^ b for a, b in zip(pn_bytes, mask[1:], strict=False))
    protected_header = bytes([first ^ (mask[0] & 0x0F)]) + header[1:-pn_length] + masked_pn
    return protected_header + ciphertext


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def padded(frames: bytes, size: int = 1162) -> bytes:
    return frames + bytes(max(0, size - len(frames)))


def hello_message(name: bytes, padding: int = 0) -> bytes:
    """A ClientHello for `name`, made `padding` bytes longer by a padding extension."""
    names = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    server_name = b"\x00\x00" + struct.pack("!H", len(names)) + names
    alpn = b"\x00\x10\x00\x05\x00\x03\x02h3"
    extensions = server_name + alpn + b"\x00\x15" + struct.pack("!H", padding) + bytes(padding)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    return b"\x01" + len(body).to_bytes(3, "big") + body


def test_protect_helper_reproduces_the_rfc_packets() -> None:
    assert protect(RFC_CLIENT_PLAINTEXT) == RFC9001_CLIENT_INITIAL
    assert protect(RFC_CLIENT_PLAINTEXT, version=QUIC_V2) == RFC9369_CLIENT_INITIAL


# --- the vectors ----------------------------------------------------------------------------------


def test_rfc9001_client_initial_keys() -> None:
    keys = client_initial_keys(QUIC_V1, RFC_DCID)
    assert keys is not None
    assert [part.hex() for part in keys] == [
        "1f369613dd76d5467730efcbe3b1a22d",
        "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2",
    ]


def test_rfc9369_client_initial_keys() -> None:
    keys = client_initial_keys(QUIC_V2, RFC_DCID)
    assert keys is not None
    assert [part.hex() for part in keys] == [
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    ]
    assert client_initial_keys(0xFF00001D, RFC_DCID) is None


@pytest.mark.parametrize(
    ("packet", "version"),
    [(RFC9001_CLIENT_INITIAL, QUIC_V1), (RFC9369_CLIENT_INITIAL, QUIC_V2)],
    ids=["v1", "v2"],
)
def test_rfc_client_initial(packet: bytes, version: int) -> None:
    initial = parse_quic_initial(packet)
    assert initial is not None
    assert (initial.version, initial.dcid, initial.scid, initial.packet_number) == (version, RFC_DCID, b"", 2)
    assert initial.crypto == ((0, RFC_HELLO),)
    assert initial.hello is not None
    assert initial.server_name == "example.com"
    assert initial.hello.alpn == ("alpn",)
    assert initial.hello.version == 0x0304
    assert QuicInitialReassembler().feed(packet) == initial.hello


def test_rfc_server_initial_is_not_a_client_initial() -> None:
    assert parse_quic_initial(RFC9001_SERVER_INITIAL) is None


# --- hand-built Initials ---------------------------------------------------------------------------

LONG_HELLO = hello_message(b"split.example.org", padding=1500)  # more than one packet holds


def split_packets(dcid: bytes = b"\x11" * 8) -> list[bytes]:
    half = 1000
    first = protect(padded(crypto_frame(0, LONG_HELLO[:half])), dcid=dcid, packet_number=0)
    second = protect(padded(crypto_frame(half, LONG_HELLO[half:])), dcid=dcid, packet_number=1)
    return [first, second]


def test_hello_split_across_two_initials() -> None:
    first, second = split_packets()
    alone = parse_quic_initial(first)
    assert alone is not None
    assert alone.hello is None
    reassembler = QuicInitialReassembler()
    assert reassembler.feed(first) is None
    assert len(reassembler) == 1
    hello = reassembler.feed(second)
    assert hello is not None
    assert hello.server_name == "split.example.org"
    assert hello.alpn == ("h3",)
    assert len(reassembler) == 0


def test_split_hello_in_reverse_order_and_other_connections_between() -> None:
    first, second = split_packets()
    other_first, _ = split_packets(dcid=b"\x22" * 8)
    reassembler = QuicInitialReassembler()
    assert reassembler.feed(second) is None
    assert reassembler.feed(other_first) is None
    hello = reassembler.feed(first)
    assert hello is not None
    assert hello.server_name == "split.example.org"
    assert len(reassembler) == 1


def test_reassembler_forgets_the_oldest_connection() -> None:
    reassembler = QuicInitialReassembler(max_connections=3)
    firsts = [split_packets(dcid=bytes([index]) * 8) for index in range(5)]
    for first, _second in firsts:
        reassembler.feed(first)
    assert len(reassembler) == 3
    assert reassembler.feed(firsts[0][1]) is None  # evicted: its first half is gone
    assert reassembler.feed(firsts[4][1]) is not None


def test_reassembler_drops_what_is_no_client_hello() -> None:
    reassembler = QuicInitialReassembler()
    not_hello = protect(padded(crypto_frame(0, b"\x02\x00\x00\x10" + bytes(8))))
    assert reassembler.feed(not_hello) is None
    assert len(reassembler) == 0


def test_crypto_beyond_the_bound_is_ignored() -> None:
    reassembler = QuicInitialReassembler()
    huge = b"\x01" + (MAX_CRYPTO_BYTES + 10).to_bytes(3, "big")
    assert reassembler.feed(protect(padded(crypto_frame(0, huge)))) is None
    assert len(reassembler) == 0
    far = protect(padded(crypto_frame(MAX_CRYPTO_BYTES, b"x" * 100)))
    initial = parse_quic_initial(far)
    assert initial is not None
    assert initial.crypto == ()


def test_fragments_per_connection_are_bounded() -> None:
    """Tiny CRYPTO frames spread over many packets stop being kept at MAX_FRAGMENTS."""
    hello = hello_message(b"many.example", padding=1200)
    reassembler = QuicInitialReassembler()
    offsets = range(4, len(hello))  # every byte but the first four: the hello never completes
    per_packet = 200
    chunks = [list(offsets[i : i + per_packet]) for i in range(0, len(offsets), per_packet)]
    for number, chunk in enumerate(chunks):
        frames = b"".join(crypto_frame(offset, hello[offset : offset + 1]) for offset in chunk)
        assert reassembler.feed(protect(padded(frames), packet_number=number)) is None
    assert len(chunks) * per_packet > MAX_FRAGMENTS
    last = protect(padded(crypto_frame(0, hello[:4])), packet_number=99)
    assert reassembler.feed(last) is None  # the bytes past the bound were not kept


def test_chaos_protection_style_frames() -> None:
    """Chrome cuts its hello into CRYPTO frames sent out of order, between PING and PADDING."""
    hello = hello_message(b"chaos.example")
    pieces = [(offset, hello[offset : offset + 37]) for offset in range(0, len(hello), 37)]
    pieces = pieces[1::2][::-1] + pieces[::2]  # out of order, the first piece in the middle
    frames = b"".join(b"\x01" + bytes(3) + crypto_frame(offset, data) for offset, data in pieces)
    initial = parse_quic_initial(protect(padded(frames)))
    assert initial is not None
    assert initial.server_name == "chaos.example"


def test_overlapping_crypto_frames() -> None:
    hello = hello_message(b"overlap.example")
    frames = crypto_frame(20, hello[20:]) + crypto_frame(0, hello[:30]) + crypto_frame(10, hello[10:25])
    initial = parse_quic_initial(protect(padded(frames)))
    assert initial is not None
    assert initial.server_name == "overlap.example"


@pytest.mark.parametrize(
    "ack", [b"\x02\x05\x00\x00\x00", b"\x02\x40\x09\x01\x01\x00\x01\x02", b"\x03\x05\x00\x00\x00\x01\x02\x03"]
)
def test_ack_frames_are_walked(ack: bytes) -> None:
    initial = parse_quic_initial(protect(padded(ack + crypto_frame(0, hello_message(b"ack.example")))))
    assert initial is not None
    assert initial.server_name == "ack.example"


def test_walk_stops_at_a_frame_not_allowed_in_initials() -> None:
    stream_frame = b"\x08\x00\x05hello"
    initial = parse_quic_initial(protect(padded(stream_frame + crypto_frame(0, hello_message(b"x.example")))))
    assert initial is not None
    assert (initial.crypto, initial.hello) == ((), None)


def test_ack_with_too_many_ranges_stops_the_walk() -> None:
    ack = b"\x02\x05\x00" + varint(1000) + b"\x00"
    initial = parse_quic_initial(protect(padded(ack + crypto_frame(0, hello_message(b"x.example")))))
    assert initial is not None
    assert initial.crypto == ()


@pytest.mark.parametrize("pn_length", [1, 2, 3, 4])
def test_packet_number_lengths(pn_length: int) -> None:
    packet = protect(padded(crypto_frame(0, RFC_HELLO)), packet_number=7, pn_length=pn_length)
    initial = parse_quic_initial(packet)
    assert initial is not None
    assert (initial.packet_number, initial.server_name) == (7, "example.com")


def test_token_and_scid() -> None:
    packet = protect(
        padded(crypto_frame(0, RFC_HELLO)), scid=b"\xaa" * 5, token=b"\x99" * 70, dcid=b"\x01" * 20
    )
    initial = parse_quic_initial(packet)
    assert initial is not None
    assert (initial.scid, initial.dcid, initial.server_name) == (b"\xaa" * 5, b"\x01" * 20, "example.com")


def handshake_packet(version: int = QUIC_V1) -> bytes:
    packet_type = 0b10 if version == QUIC_V1 else 0b11
    body = bytes(40)
    return (
        bytes([0xC0 | packet_type << 4])
        + version.to_bytes(4, "big")
        + b"\x04abcd\x00"
        + varint(len(body), 2)
        + body
    )


def test_coalesced_packets() -> None:
    followed = RFC9001_CLIENT_INITIAL + handshake_packet()
    initial = parse_quic_initial(followed)
    assert initial is not None
    assert initial.server_name == "example.com"
    preceded = handshake_packet(QUIC_V2) + RFC9369_CLIENT_INITIAL
    initial = parse_quic_initial(preceded)
    assert initial is not None
    assert initial.server_name == "example.com"
    assert parse_quic_initial(handshake_packet() * 5 + RFC9001_CLIENT_INITIAL) is None  # past the bound


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x40" + RFC9001_CLIENT_INITIAL[1:],  # a short header
        RFC9001_CLIENT_INITIAL[:1] + b"\x00\x00\x00\x00" + RFC9001_CLIENT_INITIAL[5:],  # version negotiation
        RFC9001_CLIENT_INITIAL[:1] + b"\xff\x00\x00\x1d" + RFC9001_CLIENT_INITIAL[5:],  # draft-29
        RFC9001_CLIENT_INITIAL[:1] + QUIC_V2.to_bytes(4, "big") + RFC9001_CLIENT_INITIAL[5:],  # v2: a Retry
        RFC9001_CLIENT_INITIAL[:5] + b"\x15" + RFC9001_CLIENT_INITIAL[6:],  # DCID of 21 bytes
        RFC9001_CLIENT_INITIAL[:-1] + bytes([RFC9001_CLIENT_INITIAL[-1] ^ 1]),  # a bad tag
        RFC9001_CLIENT_INITIAL[:100] + b"\x00" + RFC9001_CLIENT_INITIAL[101:],  # altered ciphertext
        RFC9001_CLIENT_INITIAL[:16]
        + b"\x40\x10"
        + RFC9001_CLIENT_INITIAL[18:],  # Length too small for a sample
    ],
    ids=[
        "empty",
        "short",
        "negotiation",
        "draft29",
        "v2-retry",
        "long-dcid",
        "tag",
        "ciphertext",
        "no-sample",
    ],
)
def test_not_a_readable_client_initial(datagram: bytes) -> None:
    assert parse_quic_initial(datagram) is None
    assert QuicInitialReassembler().feed(datagram) is None


def test_every_truncation_never_raises() -> None:
    for packet in (RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL):
        for end in range(len(packet)):
            assert parse_quic_initial(packet[:end]) is None


# --- property tests -------------------------------------------------------------------------------


@given(st.binary(max_size=1500))
@settings(max_examples=500)
def test_random_bytes_never_raise(datagram: bytes) -> None:
    parse_quic_initial(datagram)
    parse_quic_initial(b"\xc0\x00\x00\x00\x01" + datagram)
    parse_quic_initial(b"\xd0\x6b\x33\x43\xcf" + datagram)


@given(st.binary(max_size=1300))
@settings(max_examples=300, deadline=None)
def test_random_frames_in_a_valid_packet_never_raise(frames: bytes) -> None:
    initial = parse_quic_initial(protect(padded(frames, 30)))
    assert initial is not None
    QuicInitialReassembler().feed(protect(padded(frames, 30)))


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), min_size=1, max_size=4))
@settings(max_examples=300)
def test_mutated_headers_never_raise(changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(RFC9001_CLIENT_INITIAL)
    for index, value in changes:
        mutated[index] = value
    parse_quic_initial(bytes(mutated))


# --- a real capture, with tshark as the oracle ----------------------------------------------------


def tshark_fields(capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is this test's oracle")
    command = ["tshark", *TSHARK_PREFS, "-r", str(capture), "-Y", display_filter, "-T", "fields"]
    command += [argument for field in fields for argument in ("-e", field)]
    command += ["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    out = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_http3_capture_matches_tshark() -> None:
    if not QUIC_CAPTURE.is_file():
        pytest.skip(f"real capture not found at {QUIC_CAPTURE} (captures sit beside the checkout)")
    hellos = tshark_fields(
        QUIC_CAPTURE,
        "quic && tls.handshake.type == 1",
        "udp.srcport",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "quic.dcid",
    )
    assert len(hellos) == 1
    client_port, name, protocols, dcid = hellos[0]
    datagrams = tshark_fields(QUIC_CAPTURE, "udp", "frame.number", "udp.srcport", "udp.payload")
    reassembler = QuicInitialReassembler()
    found = []
    for number, port, payload in datagrams:
        datagram = bytes.fromhex(payload)
        initial = parse_quic_initial(datagram)
        if initial is not None:
            assert port == client_port
            assert initial.dcid.hex() == dcid.split(",")[0]
        hello = reassembler.feed(datagram)
        if hello is not None:
            found.append((number, hello))
    assert len(found) == 1
    hello = found[0][1]
    assert hello.server_name == name
    assert hello.alpn == tuple(protocols.split(","))
    assert not hello.ech
