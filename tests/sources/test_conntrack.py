"""Router mode's conntrack source: ctnetlink and rtnetlink parsing (pyroute2 as the independent
encoder/decoder), the per-flow delta table, the device end of a flow, what the capture must count
(`split_untracked`, checked against libpcap's own BPF engine), naming without counting, and the
kernel set-up in a network namespace (root)."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg  # the oracle: a dev dependency
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from gateway.aggregators.traffic import KIND_IP, KIND_MAC
from gateway.app import Gateway
from gateway.config import default_config
from gateway.samples import frames as fr
from gateway.sources import conntrack as ct
from gateway.sources.capfile import PacketBatch
from gateway.sources.live import _batch
from tests.netns import NetnsLab, is_root

DEV, DEV2, GW, REMOTE = "192.168.77.2", "192.168.77.3", "192.168.77.1", "198.51.100.2"
DEV_MAC, GW_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"
NEW, DELETE = (1 << 8) | 0, (1 << 8) | 2


# ---------------------------------------------------------------- ctnetlink messages, by pyroute2


def _tuple(src: str, dst: str, proto: int, sport: int, dport: int) -> dict[str, Any]:
    v = "6" if ":" in src else "4"
    ports = [["CTA_PROTO_SRC_PORT", sport], ["CTA_PROTO_DST_PORT", dport]] if proto in (6, 17) else []
    return {
        "attrs": [
            ["CTA_TUPLE_IP", {"attrs": [[f"CTA_IP_V{v}_SRC", src], [f"CTA_IP_V{v}_DST", dst]]}],
            ["CTA_TUPLE_PROTO", {"attrs": [["CTA_PROTO_NUM", proto], *ports]}],
        ]
    }


def ct_message(
    src: str = DEV,
    dst: str = REMOTE,
    proto: int = 6,
    sport: int = 40000,
    dport: int = 443,
    counters: tuple[int, int, int, int] | None = (10, 1000, 20, 30000),
    mtype: int = NEW,
    ct_id: int = 7,
    status: int = 0x0E,
    reply: tuple[str, str, int, int] | None = None,
) -> bytes:
    """A ctnetlink message as the kernel would send it (encoded by pyroute2)."""
    msg = nfct_msg()
    msg["nfgen_family"] = socket.AF_INET6 if ":" in src else socket.AF_INET
    attrs: list[list[Any]] = [
        ["CTA_TUPLE_ORIG", _tuple(src, dst, proto, sport, dport)],
        [
            "CTA_TUPLE_REPLY",
            _tuple(*(reply or (dst, src, dport, sport))[:2], proto, *(reply or (dst, src, dport, sport))[2:]),
        ],
        ["CTA_STATUS", status],
        ["CTA_ID", ct_id],
    ]
    if counters is not None:
        po, bo, pr, br = counters
        attrs += [
            ["CTA_COUNTERS_ORIG", {"attrs": [["CTA_COUNTERS_PACKETS", po], ["CTA_COUNTERS_BYTES", bo]]}],
            ["CTA_COUNTERS_REPLY", {"attrs": [["CTA_COUNTERS_PACKETS", pr], ["CTA_COUNTERS_BYTES", br]]}],
        ]
    msg["attrs"] = attrs
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = 0
    msg.encode()
    return bytes(msg.data)


def parse_one(data: bytes) -> ct.CtFlow | None:
    msgs = list(ct.split_messages(data))
    assert len(msgs) == 1
    return ct.parse_conntrack(msgs[0])


def test_parses_an_ipv4_tcp_entry_with_counters() -> None:
    flow = parse_one(ct_message())
    assert flow is not None
    assert flow.orig == ct.CtTuple(socket.inet_aton(DEV), socket.inet_aton(REMOTE), 6, 40000, 443)
    assert flow.reply == ct.CtTuple(socket.inet_aton(REMOTE), socket.inet_aton(DEV), 6, 443, 40000)
    assert flow.counters == ct.Counters(10, 1000, 20, 30000)
    assert (flow.ct_id, flow.status, flow.destroyed) == (7, 0x0E, False)


def test_parses_ipv6_udp_destroy_and_icmp() -> None:
    v6 = parse_one(ct_message("fd00::2", "2001:db8::1", 17, 5000, 53, mtype=DELETE))
    assert v6 is not None
    assert v6.destroyed
    assert v6.orig.src == socket.inet_pton(socket.AF_INET6, "fd00::2")
    assert (v6.orig.proto, v6.orig.sport, v6.orig.dport) == (17, 5000, 53)
    icmp = parse_one(ct_message(proto=1))
    assert icmp is not None
    assert (icmp.orig.proto, icmp.orig.sport, icmp.orig.dport) == (1, 0, 0)


def test_entry_without_counters_and_other_messages() -> None:
    flow = parse_one(ct_message(counters=None))
    assert flow is not None
    assert flow.counters is None
    assert parse_one(ct_message(mtype=(1 << 8) | 1)) is None  # a GET request, not an entry
    assert parse_one(ct_message(mtype=(2 << 8) | 0)) is None  # another subsystem (expectations)


def test_several_messages_in_one_datagram() -> None:
    data = ct_message(ct_id=1) + ct_message(ct_id=2, mtype=DELETE) + ct_message(ct_id=3)
    flows = [ct.parse_conntrack(m) for m in ct.split_messages(data)]
    assert [(f.ct_id, f.destroyed) for f in flows if f is not None] == [(1, False), (2, True), (3, False)]


def test_agrees_with_pyroute2_decoding() -> None:
    data = ct_message("fd00::2", "2001:db8::1", 6, 1234, 443, counters=(1, 2, 3, 4))
    theirs = nfct_msg(data)
    theirs.decode()
    ours = parse_one(data)
    assert ours is not None
    orig = theirs.get_attr("CTA_TUPLE_ORIG")
    assert socket.inet_ntop(socket.AF_INET6, ours.orig.src) == orig.get_attr("CTA_TUPLE_IP").get_attr(
        "CTA_IP_V6_SRC"
    )
    assert ours.orig.dport == orig.get_attr("CTA_TUPLE_PROTO").get_attr("CTA_PROTO_DST_PORT")
    assert ours.counters is not None
    reply = theirs.get_attr("CTA_COUNTERS_REPLY")
    assert ours.counters.bytes_reply == reply.get_attr("CTA_COUNTERS_BYTES")


@given(st.data())
def test_damaged_messages_never_raise(data: st.DataObject) -> None:
    good = ct_message()
    cut = data.draw(st.integers(0, len(good)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=8))
    damaged = bytearray(good[:cut] if data.draw(st.booleans()) else good)
    for pos, value in flips:
        if pos < len(damaged):
            damaged[pos] = value
    for msg in ct.split_messages(bytes(damaged)):
        flow = ct.parse_conntrack(msg)
        if flow is not None:
            assert len(flow.orig.src) in (4, 16)


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(blob: bytes) -> None:
    for msg in ct.split_messages(blob):
        ct.parse_conntrack(msg)
        ct.parse_address(msg)
        ct.parse_neighbour(msg)


# ---------------------------------------------------------------- rtnetlink messages


def test_parses_addresses_and_neighbours() -> None:
    addr = ifaddrmsg()
    addr["family"], addr["prefixlen"], addr["index"] = socket.AF_INET, 24, 5
    addr["attrs"] = [["IFA_ADDRESS", GW], ["IFA_LOCAL", GW]]
    addr["header"]["type"] = ct.RTM_NEWADDR
    addr.encode()
    neigh = ndmsg()
    neigh["family"], neigh["ifindex"], neigh["state"] = socket.AF_INET, 5, 0x02  # NUD_REACHABLE
    neigh["attrs"] = [["NDA_DST", DEV], ["NDA_LLADDR", DEV_MAC]]
    neigh["header"]["type"] = ct.RTM_NEWNEIGH
    neigh.encode()
    failed = ndmsg()
    failed["family"], failed["ifindex"], failed["state"] = socket.AF_INET, 5, 0x20  # NUD_FAILED
    failed["attrs"] = [["NDA_DST", DEV2]]
    failed["header"]["type"] = ct.RTM_NEWNEIGH
    failed.encode()
    msgs = list(ct.split_messages(bytes(addr.data) + bytes(neigh.data) + bytes(failed.data)))
    assert ct.parse_address(msgs[0]) == (5, 24, socket.inet_aton(GW))
    assert ct.parse_neighbour(msgs[1]) == (5, socket.inet_aton(DEV), 0x020000000002)
    assert ct.parse_neighbour(msgs[2]) is None


# ---------------------------------------------------------------- deltas


def flow(
    counters: tuple[int, int, int, int] | None, destroyed: bool = False, ct_id: int = 7, **kw: Any
) -> ct.CtFlow:
    f = parse_one(ct_message(counters=counters, ct_id=ct_id, mtype=DELETE if destroyed else NEW, **kw))
    assert f is not None
    return f


def test_each_byte_is_reported_once() -> None:
    table = ct.FlowTable()
    assert table.update(flow((2, 200, 1, 100))) == (2, 200, 1, 100)
    assert table.update(flow((2, 200, 1, 100))) is None  # nothing new since the last dump
    assert table.update(flow((5, 500, 3, 900))) == (3, 300, 2, 800)
    assert table.update(flow((6, 560, 4, 960), destroyed=True)) == (1, 60, 1, 60)  # final minus reported
    assert not table.last


def test_a_flow_first_seen_when_it_ends_reports_everything() -> None:
    table = ct.FlowTable()
    assert table.update(flow((3, 300, 2, 200), destroyed=True)) == (3, 300, 2, 200)


def test_zeroed_counters_count_from_zero_again() -> None:
    table = ct.FlowTable()
    table.update(flow((5, 500, 5, 500)))
    assert table.update(flow((1, 40, 0, 0))) == (1, 40, 0, 0)


def test_dying_entries_wait_for_their_destroy_event() -> None:
    table = ct.FlowTable()
    table.update(flow((1, 100, 1, 100)))
    assert table.update(flow((2, 200, 2, 200), status=0x0E | ct.IPS_DYING)) is None
    assert table.update(flow((2, 200, 2, 200), destroyed=True)) == (1, 100, 1, 100)


def test_uncounted_entries_and_baseline() -> None:
    table = ct.FlowTable()
    assert table.update(flow(None)) is None
    assert table.stats.uncounted == 1
    table.baseline(flow((9, 900, 9, 900)))  # before Mouchard started: no bin of this run
    assert table.update(flow((10, 1000, 9, 900))) == (1, 100, 0, 0)


def test_a_full_table_reports_new_flows_when_they_end_never_twice() -> None:
    table = ct.FlowTable(max_flows=1)
    table.update(flow((1, 100, 0, 0), ct_id=1))
    assert table.update(flow((1, 100, 0, 0), ct_id=2)) is None  # no room: nothing from dumps
    assert table.stats.untracked == 1
    assert table.update(flow((4, 400, 1, 10), ct_id=2, destroyed=True)) == (4, 400, 1, 10)
    assert table.update(flow((2, 150, 0, 0), ct_id=3), final=True) == (2, 150, 0, 0)  # on exit
    assert len(table.last) == 1


def test_sweep_forgets_flows_gone_without_their_event() -> None:
    table = ct.FlowTable()
    a, b = flow((1, 100, 0, 0), ct_id=1), flow((1, 100, 0, 0), ct_id=2)
    table.update(a)
    table.update(b)
    table.sweep({a.key})
    assert set(table.last) == {a.key}
    assert table.stats.swept == 1


# ---------------------------------------------------------------- the device end, and flow columns


def lan_view() -> ct.LanView:
    view = ct.LanView()
    view.add_subnet(socket.inet_aton(GW), 24)
    view.own.add(socket.inet_aton(GW))
    view.add_neighbour(socket.inet_aton(DEV), 0x020000000002)
    return view


def source(view: ct.LanView) -> ct.ConntrackSource:
    """A ConntrackSource without sockets: only its flow-to-rows logic is exercised."""
    src = ct.ConntrackSource.__new__(ct.ConntrackSource)
    src.link_header = ct.ETHERNET_HEADER
    src.table = ct.FlowTable()
    src.stats = src.table.stats
    src.lan = view
    src._lan_read = float("inf")  # never re-read the kernel's tables in these tests
    src.interface = "lan0"
    return src


def rows_of(src: ct.ConntrackSource, *flows: ct.CtFlow) -> dict[str, list[int]]:
    rows = ct.FlowRows(src.link_header)
    for f in flows:
        src._add(rows, f, final=False)
    return {k: v.tolist() for k, v in rows.columns().items()}


def test_outbound_flow_is_the_lan_device_sending_with_link_headers_added() -> None:
    cols = rows_of(source(lan_view()), flow((10, 1000, 20, 30000)))
    assert cols["kind"] == [KIND_MAC]
    assert (cols["dhi"], cols["dlo"]) == ([0], [0x020000000002])
    assert cols["rlo"] == [0xFFFF_0000_0000 | int.from_bytes(socket.inet_aton(REMOTE), "big")]
    assert (cols["lport"], cols["rport"], cols["proto"]) == ([40000], [443], [6])
    assert cols["bytes_out"] == [1000 + 14 * 10]
    assert cols["bytes_in"] == [30000 + 14 * 20]
    assert (cols["packets_out"], cols["packets_in"]) == ([10], [20])


def test_inbound_flow_counts_the_reply_as_sent() -> None:
    """From outside to a LAN device through port forwarding: after DNAT the device sends the reply."""
    inbound = flow(
        (3, 300, 5, 5000),
        src=REMOTE,
        dst="203.0.113.9",
        sport=51000,
        dport=8080,
        reply=(DEV, REMOTE, 80, 51000),
    )
    cols = rows_of(source(lan_view()), inbound)
    assert cols["dlo"] == [0x020000000002]
    assert cols["rlo"] == [0xFFFF_0000_0000 | int.from_bytes(socket.inet_aton(REMOTE), "big")]
    assert (cols["lport"], cols["rport"]) == ([80], [51000])
    assert (cols["bytes_out"], cols["bytes_in"]) == ([5000 + 14 * 5], [300 + 14 * 3])


def test_lan_to_lan_counts_for_both_unresolved_is_an_ip_key_own_is_skipped() -> None:
    src = source(lan_view())
    cols = rows_of(src, flow((1, 100, 1, 100), dst=DEV2))
    assert cols["kind"] == [KIND_MAC, KIND_IP]  # DEV2 has no neighbour entry: its address
    assert cols["dlo"][1] == 0xFFFF_0000_0000 | int.from_bytes(socket.inet_aton(DEV2), "big")
    assert rows_of(src, flow((1, 100, 1, 100), src=GW, dst=REMOTE))["kind"] == []
    assert src.stats.skipped == 1


def test_multicast_and_broadcast_entries_are_left_to_the_capture() -> None:
    src = source(lan_view())
    for group in ("224.0.0.251", "255.255.255.255", "192.168.77.255"):
        assert rows_of(src, flow((1, 100, 0, 0), dst=group, proto=17, dport=5353))["kind"] == []
    assert src.stats.group == 3
    assert lan_view().is_group(socket.inet_pton(socket.AF_INET6, "ff02::fb"))


# ---------------------------------------------------------------- what the capture counts


def frames() -> dict[str, bytes]:
    dev, gw = fr.mac_bytes(DEV_MAC), fr.mac_bytes(GW_MAC)
    mdns_mac = fr.ipv4_multicast_mac("224.0.0.251")
    unreachable = bytes([3, 3, 0, 0, 0, 0, 0, 0]) + fr.ipv4(DEV, REMOTE, 17, fr.udp(DEV, REMOTE, 1, 2, b"x"))
    return {
        "tcp": fr.ethernet(gw, dev, fr.ETH_P_IPV4, fr.ipv4(DEV, REMOTE, 6, fr.tcp(DEV, REMOTE, 1, 443))),
        "dns": fr.ethernet(
            gw, dev, fr.ETH_P_IPV4, fr.ipv4(DEV, REMOTE, 17, fr.udp(DEV, REMOTE, 9, 53, b"q"))
        ),
        "echo": fr.ethernet(gw, dev, fr.ETH_P_IPV4, fr.ipv4(DEV, REMOTE, 1, fr.icmp_echo(1, 1))),
        "v6echo": fr.ethernet(
            gw,
            dev,
            fr.ETH_P_IPV6,
            fr.ipv6("fd00::2", "fd00::1", 58, fr.icmpv6("fd00::2", "fd00::1", 128, 0, b"1234")),
        ),
        "mdns": fr.ethernet(
            mdns_mac,
            dev,
            fr.ETH_P_IPV4,
            fr.ipv4(DEV, "224.0.0.251", 17, fr.udp(DEV, "224.0.0.251", 5353, 5353, b"m")),
        ),
        "broadcast": fr.ethernet(
            b"\xff" * 6,
            dev,
            fr.ETH_P_IPV4,
            fr.ipv4("0.0.0.0", "255.255.255.255", 17, fr.udp("0.0.0.0", "255.255.255.255", 68, 67, b"d")),
        ),
        "unreachable": fr.ethernet(dev, gw, fr.ETH_P_IPV4, fr.ipv4(REMOTE, DEV, 1, unreachable)),
        "v6unreachable": fr.ethernet(
            dev,
            gw,
            fr.ETH_P_IPV6,
            fr.ipv6("fd00::1", "fd00::2", 58, fr.icmpv6("fd00::1", "fd00::2", 1, 4, bytes(8))),
        ),
        "neighbour_advert": fr.ethernet(
            dev,
            gw,
            fr.ETH_P_IPV6,
            fr.ipv6("fd00::1", "fd00::2", 58, fr.icmpv6("fd00::1", "fd00::2", 136, 0, bytes(20))),
        ),
    }


UNTRACKED = {"mdns", "broadcast", "unreachable", "v6unreachable", "neighbour_advert"}


def batch_of(packets: list[bytes]) -> PacketBatch:
    return _batch(
        [(1_700_000_000, i) for i in range(len(packets))],
        [len(p) for p in packets],
        [len(p) for p in packets],
        packets,
        1,
    )


def test_untracked_packets_match_the_bpf_filter_libpcap_runs() -> None:
    import pcapy  # type: ignore[import-not-found]

    program = pcapy.compile(1, 65535, ct.UNTRACKED_BPF, 1, 0)
    named = frames()
    batch = batch_of(list(named.values()))
    mask = ct.untracked(batch, ct.decode(batch)).tolist()
    ours = {name for name, m in zip(named, mask, strict=True) if m}
    bpf = {name for name, data in named.items() if program.filter(data)}
    assert ours == bpf == UNTRACKED
    names_program = pcapy.compile(1, 65535, ct.names_filter(), 1, 0)
    assert not names_program.filter(named["tcp"])  # a bare ACK: conntrack counts it, nobody names it
    assert names_program.filter(named["dns"])


def test_split_untracked_keeps_every_packet_once() -> None:
    named = frames()
    counted, names = ct.split_untracked(batch_of(list(named.values())))
    assert counted is not None
    assert names is not None
    assert len(counted) == len(UNTRACKED)
    assert len(counted) + len(names) == len(named)
    only_tcp = batch_of([named["tcp"]])
    assert ct.split_untracked(only_tcp) == (None, only_tcp)


def test_observe_names_names_without_counting() -> None:
    sink_lines: list[str] = []

    class Sink:
        def write(self, lines: list[str]) -> None:
            sink_lines.extend(lines)

        def close(self) -> None: ...

        def describe(self) -> str:
            return "list"

    gw = Gateway(default_config(), Sink())
    dev, router = fr.mac_bytes(DEV_MAC), fr.mac_bytes(GW_MAC)
    answer = fr.dns_response(1, "cloud.example", fr.DNS_A, [fr.address_record("cloud.example", REMOTE)])
    frame = fr.ethernet(
        dev,
        router,
        fr.ETH_P_IPV4,
        fr.ipv4("192.168.77.1", DEV, 17, fr.udp("192.168.77.1", DEV, 53, 3333, answer)),
    )
    gw.observe_names(batch_of([frame]))
    gw.finish()
    assert gw.stats.packets == 0
    assert not any(line.startswith("traffic") for line in sink_lines)
    assert gw.namer.stats.dns_answers == 1


# ---------------------------------------------------------------- the kernel, in a namespace


@pytest.mark.root
@pytest.mark.skipif(not is_root(), reason="network namespaces need root (CI is root)")
def test_set_up_turns_tracking_on_and_dumps_agree_with_pyroute2() -> None:
    """In a fresh namespace nothing is tracked until the nft rule exists; then a dump parsed here
    equals pyroute2's decoding of the same table."""
    with NetnsLab() as lab:
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.veth(a, "a0", b, "b0")
        a.ip("addr", "add", f"{GW}/24", "dev", "a0")
        b.ip("addr", "add", f"{DEV}/24", "dev", "b0")
        notes = a.call(ct.prepare_kernel)
        assert any("created nftables table inet mouchard" in n for n in notes)
        assert any("nf_conntrack_acct=1" in n for n in notes)
        assert a.call(ct.prepare_kernel) == []  # the second time there is nothing to do
        traffic = (
            "import socket\n"
            f"socket.socket(2, 2).sendto(b'x' * 100, ('{GW}', 9999))\n"
            f"socket.socket(2, 2).sendto(b'y' * 200, ('{GW}', 9998))\n"
        )
        b.run(sys.executable, "-c", traffic)
        script = (
            "from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket\n"
            "for m in NFCTSocket().dump():\n"
            "    o = m.get_attr('CTA_COUNTERS_ORIG')\n"
            "    t = m.get_attr('CTA_TUPLE_ORIG').get_attr('CTA_TUPLE_PROTO').get_attr('CTA_PROTO_NUM')\n"
            "    n, b = o.get_attr('CTA_COUNTERS_PACKETS'), o.get_attr('CTA_COUNTERS_BYTES')\n"
            "    print(m.get_attr('CTA_ID'), t, n, b)\n"
        )
        theirs = sorted(a.run(sys.executable, "-c", script).stdout.split("\n")[:-1])

        def ours() -> list[str]:
            body = ct._NFGENMSG.pack(0, 0, 0)
            msgs = ct._dump(
                ct.NETLINK_NETFILTER, (ct.NFNL_SUBSYS_CTNETLINK << 8) | ct.IPCTNL_MSG_CT_GET, body
            )
            out = []
            for m in msgs:
                f = ct.parse_conntrack(m)
                assert f is not None
                assert f.counters is not None
                out.append(f"{f.ct_id} {f.orig.proto} {f.counters.packets_orig} {f.counters.bytes_orig}")
            return sorted(out)

        mine = a.call(ours)
        assert mine == theirs
        # two datagrams: payload + UDP 8 + IPv4 20 bytes each (the kernel counts IP bytes)
        assert sorted(line.split(maxsplit=1)[1] for line in mine) == ["17 1 128", "17 1 228"]
