"""Evidence records: built from parsed mDNS and DHCP, merged over time, bounded against hostile devices."""

from __future__ import annotations

import dataclasses

from gateway.parsers.dhcp import DhcpMessage, DhcpMessageType
from gateway.parsers.mdns import MdnsInstance, MdnsMessage, MdnsQuestion, MdnsService, MdnsText
from gateway.profiles import Evidence, ServiceSighting
from gateway.profiles.evidence import MAX_DOMAINS, MAX_HOSTNAMES, MAX_SERVICES, MAX_TEXT, host_label


def message(**fields: object) -> MdnsMessage:
    base = MdnsMessage(True, False, (), (), (), (), (), {}, ())
    return dataclasses.replace(base, **fields)


def dhcp(message_type: DhcpMessageType = DhcpMessageType.REQUEST, **fields: object) -> DhcpMessage:
    base = DhcpMessage(
        xid=1, message_type=message_type, client_mac="50:c7:bf:00:fc:a3", ciaddr=None, yiaddr=None,
        requested_ip=None, hostname="HS100(EU)", vendor_class="udhcp 0.9.9-pre", param_request_list=(1, 3, 6),
        client_fqdn=None, routers=(), server_id=None, dns_servers=(), malformed=False,
    )  # fmt: skip
    return dataclasses.replace(base, **fields)


def test_from_mdns_takes_services_types_and_host_names() -> None:
    name = "Kitchen._googlecast._tcp.local."
    found = Evidence.from_mdns(
        message(
            service_types=("_googlecast._tcp.local.", "_spotify-connect._tcp.local."),
            instances=(MdnsInstance(name, "Kitchen", "_googlecast._tcp.local."),),
            services=(MdnsService(name, "Google-Home-Mini-1a2b.local.", 8009),),
            texts=(MdnsText(name, {"md": "Google Home Mini", "fn": "Kitchen"}),),
            addresses={"Google-Home-Mini-1a2b.local.": ("192.168.1.20",)},
        )
    )
    assert found.services == (
        ServiceSighting("_googlecast._tcp", "Kitchen", (("fn", "Kitchen"), ("md", "Google Home Mini"))),
    )
    assert found.service_types == {"_googlecast._tcp", "_spotify-connect._tcp"}
    assert found.hostnames == {"Google-Home-Mini-1a2b"}


def test_probes_name_the_host_but_lookups_and_reverse_names_do_not() -> None:
    questions = (
        MdnsQuestion("Android.local.", 255, False),  # a probe for its own name
        MdnsQuestion("printer.local.", 1, False),  # a lookup of someone else
        MdnsQuestion("1.2.168.192.in-addr.arpa.", 255, False),
        MdnsQuestion("Android._googlecast._tcp.local.", 255, False),  # an instance, not a host
    )
    assert Evidence.from_mdns(message(is_response=False, questions=questions)).hostnames == {"Android"}


def test_from_dhcp_takes_the_client_request_only() -> None:
    found = Evidence.from_dhcp(dhcp(client_fqdn="desktop-4f2k9qx.lab.example"))
    assert found.hostnames == {"HS100(EU)", "desktop-4f2k9qx"}
    assert (found.vendor_class, found.dhcp_fingerprint, found.mac) == (
        "udhcp 0.9.9-pre",
        "1,3,6",
        "50:c7:bf:00:fc:a3",
    )
    assert Evidence.from_dhcp(dhcp(DhcpMessageType.ACK)) == Evidence()
    assert Evidence.from_dhcp(dhcp(param_request_list=())).dhcp_fingerprint is None


def test_service_sighting_of_bytes_properties() -> None:
    """python-zeroconf's ServiceInfo.properties: bytes keys, bytes or None values."""
    sighting = ServiceSighting.of(
        "_IPP._tcp.local.", "Office", {b"ty": b"HP LaserJet", b"Color": None, b"": b"x"}
    )
    assert sighting == ServiceSighting("_ipp._tcp", "Office", (("color", ""), ("ty", "HP LaserJet")))
    assert sighting.txt() == {"color": "", "ty": "HP LaserJet"}


def test_merge_keeps_the_newest_values() -> None:
    old = Evidence(
        services=(ServiceSighting("_hap._tcp", "Hue", (("c#", "1"),)),),
        vendor_class="a",
        mac="aa:bb:cc:00:00:01",
    )
    new = Evidence(services=(ServiceSighting("_hap._tcp", "Hue", (("c#", "2"),)),), vendor_class="b")
    merged = old.merge(new)
    assert merged.services == (ServiceSighting("_hap._tcp", "Hue", (("c#", "2"),)),)
    assert (merged.vendor_class, merged.mac) == ("b", "aa:bb:cc:00:00:01")


def test_everything_a_device_can_grow_is_bounded() -> None:
    evidence = Evidence()
    for n in range(3 * MAX_SERVICES):
        sighting = ServiceSighting.of(
            f"_s{n}._tcp", f"instance {n}", {f"k{i}": "v" * 999 for i in range(200)}
        )
        evidence = evidence.merge(Evidence(services=(sighting,), hostnames=frozenset({f"host-{n}"})))
    evidence = evidence.with_domains(f"n{n}.example.com" for n in range(3 * MAX_DOMAINS))
    assert len(evidence.services) == MAX_SERVICES
    assert len(evidence.hostnames) == MAX_HOSTNAMES
    assert len(evidence.domains) == MAX_DOMAINS
    assert all(len(value) <= MAX_TEXT for s in evidence.services for _, value in s.properties)
    assert max(len(s.properties) for s in evidence.services) == 64


def test_texts_are_cleaned_and_names_normalised() -> None:
    sighting = ServiceSighting.of("_http._tcp", "bad\x07name", {"MD": "x\x00y"})
    assert sighting.instance == "bad\ufffdname"
    assert sighting.properties == (("md", "x\ufffdy"),)
    assert host_label("Caitlins-iPhone.local.") == "Caitlins-iPhone"
    assert host_label("btest.is.cool") == "btest.is.cool"
    assert Evidence().with_domains(["API.Example.COM."]).domains == {"api.example.com"}
