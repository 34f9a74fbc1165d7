"""mDNS parser: real device captures against tshark's dissection, hand-built messages, fuzzing."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.parsers.mdns import (
    MAX_MESSAGE,
    MAX_RECORDS,
    MAX_TXT_KEYS,
    MdnsMessage,
    MdnsQuestion,
    MdnsService,
    parse_mdns,
    txt_properties,
    unescape_instance,
)
from tests.conftest import CAPTURES

ZEROCONF = CAPTURES / "mdns" / "zeroconf_real_device_mdns.pcap"
APPLE = CAPTURES / "nfstream" / "mdns_apple_2011.pcap"
ZEEK = CAPTURES / "zeek" / "dns_mdns.pcap"
SECTIONS = ("Answers", "Authoritative nameservers", "Additional records")
# Frames of zeroconf_real_device_mdns.pcap that tshark reports as "[Malformed Packet]" (bad name
# compression, extended label types); the .json beside the capture says which device sent each.
MALFORMED_FRAMES = {4, 5, 7, 9}


def need_captures() -> None:
    if not CAPTURES.is_dir():
        pytest.skip(f"real captures not found at {CAPTURES} (the shared folder beside the checkout)")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): it is the independent oracle")


# -- tshark as the oracle ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dissected:
    """tshark's reading of one mDNS packet."""

    frame: int
    payload: bytes
    malformed: bool
    layer: dict[str, Any]

    @property
    def is_response(self) -> bool:
        return bool(self.layer["dns.flags_tree"]["dns.flags.response"] == "1")

    def questions(self) -> list[tuple[str, int, bool]]:
        return [
            (q["dns.qry.name"], int(q["dns.qry.type"]), q.get("dns.qry.qu") == "1")
            for q in entries(self.layer.get("Queries", {}))
        ]

    def records(self, sections: tuple[str, ...] = SECTIONS) -> list[dict[str, Any]]:
        return [r for section in sections for r in entries(self.layer.get(section, {}))]


def entries(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of a section; --no-duplicate-keys turns records with the same summary into lists."""
    found: list[dict[str, Any]] = []
    for value in section.values():
        found.extend(value if isinstance(value, list) else [value])
    return found


def values(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key, [])
    return value if isinstance(value, list) else [value]


def rtype(record: dict[str, Any]) -> int:
    return int(values(record, "dns.resp.type")[0])  # NSEC lists its bitmap's types after its own


def owner(record: dict[str, Any]) -> str:
    if "dns.srv.service" in record:
        return f"{record['dns.srv.service']}.{record['dns.srv.proto']}.{record['dns.srv.name']}"
    return str(record["dns.resp.name"])


@cache
def dissect(pcap: Path) -> tuple[Dissected, ...]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "udp.port == 5353", "-T", "json", "--no-duplicate-keys"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    packets = []
    for packet in json.loads(out or "[]"):
        layers = packet["_source"]["layers"]
        packets.append(
            Dissected(
                frame=int(layers["frame"]["frame.number"]),
                payload=bytes.fromhex(layers["udp"]["udp.payload"].replace(":", "")),
                malformed="_ws.malformed" in layers,
                layer=layers.get("mdns", {}),
            )
        )
    return tuple(packets)


def parsed(payload: bytes) -> MdnsMessage:
    message = parse_mdns(payload)
    assert message is not None
    return message


def bare(name: str) -> str:
    return name.removesuffix(".")


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def expected_properties(strings: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    for string in strings[:MAX_TXT_KEYS]:
        key, _, value = printable(string).partition("=")
        if key:
            properties.setdefault(key.lower(), value)
    return properties


def check_against_tshark(packet: Dissected) -> int:
    """Compare one packet; returns how many records took part, so that no test passes on nothing."""
    message = parsed(packet.payload)
    assert message.malformed == packet.malformed, f"frame {packet.frame}"
    assert message.is_response == packet.is_response
    if packet.malformed:
        return 0
    assert [(bare(q.name), q.qtype, q.unicast) for q in message.questions] == packet.questions()
    records = packet.records() if packet.is_response else packet.records(("Authoritative nameservers",))
    srv = {(owner(r), r["dns.srv.target"], int(r["dns.srv.port"])) for r in records if rtype(r) == 33}
    assert {(bare(s.name), bare(s.target), s.port) for s in message.services} == srv
    txt = [(owner(r), expected_properties(values(r, "dns.txt"))) for r in records if rtype(r) == 16]
    assert [(bare(t.name), t.properties) for t in message.texts] == txt
    addresses = {(owner(r), a) for r in records for a in values(r, "dns.a") + values(r, "dns.aaaa")}
    assert {(bare(host), a) for host, found in message.addresses.items() for a in found} == addresses
    pointers = [(owner(r), r["dns.ptr.domain_name"]) for r in records if rtype(r) == 12]
    instances = {bare(i.name) for i in message.instances}
    types = {bare(t) for t in message.service_types}
    for name, alias in pointers:
        if name == "_services._dns-sd._udp.local":
            assert alias in types
        elif name.endswith(("._tcp.local", "._udp.local")):
            assert alias in instances
            assert "._sub." in name or name in types
    return len(records)


@pytest.mark.parametrize("pcap", [ZEROCONF, APPLE, ZEEK], ids=lambda p: p.name)
def test_every_packet_matches_tshark(pcap: Path) -> None:
    need_captures()
    packets = dissect(pcap)
    assert packets, f"no mDNS in {pcap}"
    compared = sum(check_against_tshark(packet) for packet in packets)
    assert compared >= len(packets) // 2


# -- what real devices say -----------------------------------------------------------------------


def zeroconf_frame(number: int) -> MdnsMessage:
    need_captures()
    return parsed(next(p.payload for p in dissect(ZEROCONF) if p.frame == number))


def test_capture_notes_agree_with_the_pcap() -> None:
    need_captures()
    notes = json.loads(ZEROCONF.with_suffix(".json").read_text())
    by_frame = {p.frame: p.payload for p in dissect(ZEROCONF)}
    assert {n["frame_no"]: bytes.fromhex(n["dns_payload_hex"]) for n in notes} == by_frame


def test_malformed_payloads_are_flagged_and_keep_what_decodes() -> None:
    need_captures()
    flagged = {p.frame for p in dissect(ZEROCONF) if parsed(p.payload).malformed}
    assert flagged == MALFORMED_FRAMES
    eufy = zeroconf_frame(7)  # an NSEC record with a bad name; the rest is sound
    assert eufy.properties()["md"] == "T8010"
    assert eufy.addresses == {"Eufy.local.": ("192.168.68.112",)}
    probe = zeroconf_frame(4)  # records unreadable: questions only
    assert probe.questions[0].name == "homeassistant1128.local."
    assert (probe.instances, probe.addresses) == ((), {})


def test_sonos() -> None:
    sonos = zeroconf_frame(9)
    assert sonos.service_types == ("_sonos._tcp.local.",)
    assert [(i.instance, i.service_type) for i in sonos.instances] == [
        ("Sonos-542A1BC9220E", "_sonos._tcp.local.")
    ]
    assert sonos.services == (
        MdnsService("Sonos-542A1BC9220E._sonos._tcp.local.", "Sonos-542A1BC9220E.local.", 1443),
    )
    properties = sonos.properties()
    assert properties["location"] == "http://192.168.2.58:1400/xml/device_description.xml"
    assert properties["info"].endswith("RINCON_542A1BC9220E01400/info")
    assert sonos.addresses == {"Sonos-542A1BC9220E.local.": ("192.168.2.58",)}
    spotify = zeroconf_frame(11)  # another Sonos, enumerating its services
    assert spotify.service_types == ("_spotify-connect._tcp.local.",)


def test_android_tv() -> None:
    tv = zeroconf_frame(8)
    assert [i.instance for i in tv.instances] == ["TV Beneden (2)"]
    assert tv.service_types == ("_androidtvremote._tcp.local.",)
    assert tv.services[0].target == "Android-3.local."
    assert tv.services[0].port == 6466
    assert tv.properties() == {"bt": "D8:13:99:AC:98:F1"}


def test_thread_border_router_and_matter_nodes() -> None:
    border_router = zeroconf_frame(3)
    assert [i.instance for i in border_router.instances] == ["MyHome54 (2)"]
    assert border_router.properties()["nn"] == "MyHome54"
    matter = zeroconf_frame(10)
    assert len(matter.instances) == 10
    assert {i.service_type for i in matter.instances} == {"_matter._tcp.local."}


def test_queries_say_what_a_device_looks_for() -> None:
    assert zeroconf_frame(1).questions == (MdnsQuestion("_raop._tcp.local.", 12, unicast=False),)
    assert zeroconf_frame(2).questions == (MdnsQuestion("_companion-link._tcp.local.", 12, unicast=True),)
    assert not zeroconf_frame(2).malformed  # its EDNS0 OPT record is skipped, not damage


def test_apple_devices_give_their_models() -> None:
    need_captures()
    messages = [parsed(p.payload) for p in dissect(APPLE)]
    models = {t.properties.get("model") for m in messages for t in m.texts} - {None}
    assert {"AppleTV2,1", "K66AP", "AirPort4,107", "iMac12,1", "MacBookPro5,4", "TimeCapsule6,113"} <= models
    assert "AppleTV2,1" in {t.properties.get("am") for m in messages for t in m.texts}
    instances = {(i.instance, i.service_type) for m in messages for i in m.instances}
    assert ("Apple TV (2)", "_airplay._tcp.local.") in instances
    assert ("Bryan’s iMac", "_afpovertcp._tcp.local.") in instances
    assert ("Preetesh Patel's Time Capsule", "_device-info._tcp.local.") in instances
    assert ("X86_64", "LINUX") in {(h.cpu, h.os) for m in messages for h in m.host_infos}
    asked = {q.name for m in messages for q in m.questions}
    assert {"_raop._tcp.local.", "_airplay._tcp.local.", "_afpovertcp._tcp.local."} <= asked
    assert not any(m.malformed for m in messages)


def test_known_answers_of_a_query_are_not_the_senders() -> None:
    need_captures()
    query = next(p for p in dissect(APPLE) if p.frame == 28)  # an iPhone listing AirPlay devices it knows
    assert query.records(("Answers",)), "the capture changed"
    message = parsed(query.payload)
    assert (message.instances, message.services, message.texts) == ((), (), ())
    assert {q.name for q in message.questions} >= {"_raop._tcp.local.", "_airplay._tcp.local."}


def test_a_probe_claims_its_own_records() -> None:
    need_captures()
    probe = next(p for p in dissect(ZEEK) if p.frame == 12)  # a Linux host claiming its names
    message = parsed(probe.payload)
    assert message.addresses["johanna-QEMU-Virtual-Machine.local."] == (
        "10.0.2.7",
        "fd52:429e:c03c:8235:5968:5bc6:1563:f82f",
        "fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4",
    )


def pcap_frames(path: Path) -> list[bytes]:
    """Frames of a classic little-endian pcap file (the one the zeroconf notes were written into)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "expected a little-endian microsecond pcap"
    frames, offset = [], 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        frames.append(data[offset + 16 : offset + 16 + caplen])
        offset += 16 + caplen
    return frames


def test_an_ethernet_frame_is_not_a_dns_payload() -> None:
    # zeroconf's own test feeds this whole Sonos frame to its parser and expects "invalid"; as a
    # DNS message its header counts come from the Ethernet and IP headers, and decoding runs off
    # into nonsense. The UDP payload alone (frame 11 above) is sound.
    need_captures()
    whole = pcap_frames(ZEROCONF)[10]
    assert whole.endswith(next(p.payload for p in dissect(ZEROCONF) if p.frame == 11))
    message = parsed(whole)
    assert message.malformed
    assert (message.instances, message.services, message.addresses) == ((), (), {})


# -- hand-built messages (written here, not by zeroconf) -----------------------------------------

IN, CACHE_FLUSH = 0x0001, 0x8000


def name(*labels: bytes | str) -> bytes:
    raw = [label.encode() if isinstance(label, str) else label for label in labels]
    return b"".join(bytes([len(label)]) + label for label in raw) + b"\x00"


def dotted(text: str) -> bytes:
    return name(*text.split("."))


def rr(owner: bytes, rtype: int, rdata: bytes, rclass: int = IN) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, 120, len(rdata)) + rdata


def question(owner: bytes, qtype: int, qu: bool = False) -> bytes:
    return owner + struct.pack("!HH", qtype, IN | (0x8000 if qu else 0))


def txt(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


def srv(port: int, target: bytes) -> bytes:
    return struct.pack("!HHH", 0, 0, port) + target


def dns(
    *,
    response: bool = True,
    questions: tuple[bytes, ...] = (),
    answers: tuple[bytes, ...] = (),
    authority: tuple[bytes, ...] = (),
    additional: tuple[bytes, ...] = (),
) -> bytes:
    flags = 0x8400 if response else 0
    counts = (len(questions), len(answers), len(authority), len(additional))
    header = struct.pack("!HH4H", 0, flags, *counts)
    return header + b"".join(questions + answers + authority + additional)


CAST = "Kitchen speaker._googlecast._tcp.local"


def chromecast() -> bytes:
    instance = dotted(CAST)
    return dns(
        answers=(rr(dotted("_googlecast._tcp.local"), 12, instance),),
        additional=(
            rr(
                instance,
                16,
                txt(b"id=4b1c", b"md=Google Home Mini", b"fn=Kitchen speaker", b"ca=199172"),
                0x8001,
            ),
            rr(instance, 33, srv(8009, dotted("4b1c.local")), 0x8001),
            rr(dotted("4b1c.local"), 1, bytes([192, 168, 1, 40]), 0x8001),
            rr(dotted("4b1c.local"), 28, bytes.fromhex("fe80000000000000020000fffe000001"), 0x8001),
            rr(dotted("_services._dns-sd._udp.local"), 12, dotted("_googlecast._tcp.local")),
        ),
    )


def test_chromecast_announcement() -> None:
    message = parsed(chromecast())
    assert message.is_response
    assert not message.malformed
    assert [(i.name, i.instance, i.service_type) for i in message.instances] == [
        (CAST + ".", "Kitchen speaker", "_googlecast._tcp.local.")
    ]
    assert message.service_types == ("_googlecast._tcp.local.",)
    assert message.properties()["md"] == "Google Home Mini"
    assert message.properties()["fn"] == "Kitchen speaker"
    assert message.services == (MdnsService(CAST + ".", "4b1c.local.", 8009),)
    assert message.addresses == {"4b1c.local.": ("192.168.1.40", "fe80::200:ff:fe00:1")}


@pytest.mark.parametrize(
    ("label", "instance"),
    [
        (b"Living\\032Room", "Living Room"),
        (b"TV\\.Salon", "TV.Salon"),
        (b"back\\\\slash", "back\\slash"),
        (b"Bryan\\226\\128\\153s iMac", "Bryan’s iMac"),
        (b"My.TV", "My.TV"),  # a dot inside the label itself
        (b"bad\\999escape", "bad\\999escape"),
        ("Salle à manger".encode(), "Salle à manger"),
    ],
)
def test_instance_names_are_unescaped(label: bytes, instance: str) -> None:
    owner = name(label, "_airplay", "_tcp", "local")
    message = parsed(dns(answers=(rr(dotted("_airplay._tcp.local"), 12, owner),)))
    assert [i.instance for i in message.instances] == [instance]


def test_unescape_is_identity_without_backslash() -> None:
    assert unescape_instance("Kitchen speaker") == "Kitchen speaker"


def test_subtype_pointer_names_an_instance_of_the_parent_type() -> None:
    owner = dotted("Office printer._http._tcp.local")
    message = parsed(dns(answers=(rr(dotted("_printer._sub._http._tcp.local"), 12, owner),)))
    assert [(i.instance, i.service_type) for i in message.instances] == [
        ("Office printer", "_http._tcp.local.")
    ]
    assert message.service_types == ("_http._tcp.local.",)


def test_reverse_pointers_are_not_services() -> None:
    message = parsed(dns(answers=(rr(dotted("40.1.168.192.in-addr.arpa"), 12, dotted("4b1c.local")),)))
    assert (message.instances, message.service_types) == ((), ())


def test_txt_rules() -> None:
    rdata = txt(b"MD=Echo", b"md=second", b"=ignored", b"flag", b"ctl=a\x07b", b"bad=\xff\xfe", b"eq=a=b")
    assert txt_properties(rdata) == {
        "md": "Echo",
        "flag": "",
        "ctl": "a\ufffdb",
        "bad": "\ufffd\ufffd",
        "eq": "a=b",
    }


def test_txt_is_bounded_and_lenient() -> None:
    many = txt(*(f"k{i}=v".encode() for i in range(200)))
    assert len(txt_properties(many)) == MAX_TXT_KEYS
    assert txt_properties(b"\x00") == {}
    assert txt_properties(b"\x10short=cut") == {"short": "cut"}  # length byte past the end


def test_records_per_message_are_bounded() -> None:
    first = rr(dotted("flood.local"), 1, bytes([10, 0, 0, 0]))
    pointer = b"\xc0\x0c"  # the first record's name, at the end of the header
    more = tuple(rr(pointer, 1, bytes([10, 0, i // 256, i % 256])) for i in range(1, MAX_RECORDS + 100))
    message = parsed(dns(answers=(first, *more)))
    assert len(message.addresses["flood.local."]) == MAX_RECORDS


def test_unknown_record_types_are_not_damage() -> None:
    opt = rr(b"\x00", 41, b"", rclass=1440)
    message = parsed(
        dns(answers=(rr(dotted("_hap._tcp.local"), 12, dotted("Bridge._hap._tcp.local")),), additional=(opt,))
    )
    assert not message.malformed
    assert [i.instance for i in message.instances] == ["Bridge"]


def test_a_bad_record_flags_the_message_but_keeps_the_others() -> None:
    good = rr(dotted("_hap._tcp.local"), 12, dotted("Bridge._hap._tcp.local"))
    bad = rr(dotted("Bridge._hap._tcp.local"), 12, b"\xc0\xff")  # pointer beyond the message
    message = parsed(dns(answers=(good, bad)))
    assert message.malformed
    assert [i.instance for i in message.instances] == ["Bridge"]


def test_a_query_keeps_its_authority_records_only() -> None:
    known = rr(dotted("_airplay._tcp.local"), 12, dotted("Neighbour TV._airplay._tcp.local"))
    claimed = rr(dotted("MyMac.local"), 1, bytes([10, 0, 0, 9]))
    message = parsed(
        dns(
            response=False,
            questions=(question(dotted("MyMac.local"), 255, qu=True),),
            answers=(known,),
            authority=(claimed,),
        )
    )
    assert not message.is_response
    assert message.instances == ()
    assert message.addresses == {"MyMac.local.": ("10.0.0.9",)}
    assert message.questions == (MdnsQuestion("MyMac.local.", 255, unicast=True),)


def test_a_damaged_query_gives_no_records() -> None:
    claimed = rr(dotted("MyMac.local"), 1, bytes([10, 0, 0, 9]))
    bad = rr(dotted("MyMac.local"), 12, b"\xc0\xff")
    message = parsed(
        dns(response=False, questions=(question(dotted("MyMac.local"), 255),), authority=(bad, claimed))
    )
    assert message.malformed
    assert message.addresses == {}


def test_host_info() -> None:
    message = parsed(dns(answers=(rr(dotted("nas.local"), 13, txt(b"ARMV7L", b"LINUX")),)))
    assert [(h.name, h.cpu, h.os) for h in message.host_infos] == [("nas.local.", "ARMV7L", "LINUX")]


def test_control_characters_never_reach_names() -> None:
    owner = name(b"evil\x1b[2J", "_http", "_tcp", "local")
    message = parsed(dns(answers=(rr(dotted("_http._tcp.local"), 12, owner),)))
    assert message.instances[0].instance == "evil\ufffd[2J"
    assert all(i.name.isprintable() for i in message.instances)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 11, b"\x00" * (MAX_MESSAGE + 1)])
def test_not_a_dns_message_is_none(payload: bytes) -> None:
    assert parse_mdns(payload) is None


def test_empty_header_is_a_message() -> None:
    message = parsed(bytes(12))
    assert (message.is_response, message.malformed, message.questions) == (False, False, ())


def test_records_are_hashable() -> None:
    message = parsed(chromecast())
    assert len({message, message}) == 1
    assert len(set(message.texts)) == 1


# -- fuzzing -------------------------------------------------------------------------------------


def real_payloads() -> list[bytes]:
    need_captures()
    return [p.payload for pcap in (ZEROCONF, APPLE, ZEEK) for p in dissect(pcap)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(payload: bytes) -> None:
    message = parse_mdns(payload)
    assert message is None or isinstance(message, MdnsMessage)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_payloads_never_raise(data: st.DataObject) -> None:
    payload = bytearray(data.draw(st.sampled_from(real_payloads())))
    for _ in range(data.draw(st.integers(1, 10))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(
            st.sampled_from([0x00, 0xC0, 0xFF, 0x3F, 0x40, data.draw(st.integers(0, 255))])
        )
    message = parse_mdns(bytes(payload))
    assert message is not None
    for text in message.texts:
        assert len(text.properties) <= MAX_TXT_KEYS
        assert all(len(value.encode()) <= 255 * 3 for value in text.properties.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncated_real_payloads_are_malformed(data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from([p for p in real_payloads() if not parsed(p).malformed]))
    cut = data.draw(st.integers(12, len(payload) - 1))
    assert parsed(payload[:cut]).malformed
