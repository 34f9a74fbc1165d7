"""The matcher: every committed profile wins its own evidence; scores follow specificity; reasons."""

from __future__ import annotations

from functools import cache

import pytest

from gateway.profiles import Evidence, Matcher, ProfileIndex
from gateway.profiles.matcher import Points
from tests.profiles.cases import CASES, both, dhcp, host, mac, mdns, talks_to


@cache
def matcher() -> Matcher:
    return Matcher(ProfileIndex.load())


@pytest.mark.parametrize("profile_id", sorted(CASES))
def test_each_profile_wins_its_evidence(profile_id: str) -> None:
    found = matcher().match(CASES[profile_id])
    assert found is not None, f"{profile_id}: nothing matched"
    assert found.profile.id == profile_id, f"{profile_id}: {found.profile.id} won ({found.reasons})"
    assert found.score > 0
    assert found.reasons


def test_at_least_80_percent_of_profiles_have_a_case() -> None:
    profiles = set(matcher().index.profiles)
    assert set(CASES) <= profiles, f"cases for unknown profiles: {sorted(set(CASES) - profiles)}"
    assert len(set(CASES) & profiles) >= 0.8 * len(profiles), f"no case yet: {sorted(profiles - set(CASES))}"


def test_points_follow_specificity() -> None:
    """TXT > instance name > host name > service type > vendor class > OUI > fingerprint > vendor, domains."""
    txt, name, service = (
        Points.MDNS_TYPE + Points.MDNS_TXT,
        Points.MDNS_TYPE + Points.MDNS_NAME,
        Points.MDNS_TYPE,
    )
    order = [txt, name, Points.HOSTNAME, service, Points.VENDOR_CLASS, Points.MAC_PREFIX]
    order += [Points.FINGERPRINT, Points.MAC_VENDOR, Points.DOMAIN_CAP]
    assert order == sorted(order, reverse=True)
    assert Points.DOMAIN_CAP < Points.MAC_PREFIX < Points.MDNS_TYPE < Points.MDNS_TYPE + Points.MDNS_TXT


def test_txt_model_beats_the_bare_service_type() -> None:
    ranked = matcher().rank(mdns("_shelly._tcp", "shellyplusplugs-1", app="PlusPlugS"))
    assert [m.profile.id for m in ranked[:2]] == ["shelly_plug", "shelly_relay"]
    assert ranked[0].score == Points.MDNS_TYPE + Points.MDNS_TXT
    assert ranked[1].score == Points.MDNS_TYPE


def test_service_type_beats_a_mac_prefix() -> None:
    evidence = both(mdns("_sonos._tcp", "Sonos-1"), mac("cc:f7:35:00:00:01"))  # an Echo's prefix
    assert [m.profile.id for m in matcher().rank(evidence)[:2]] == ["sonos_speaker", "amazon_echo"]


def test_a_mac_prefix_beats_the_vendor_name() -> None:
    evidence = mac("f0:27:2d:00:00:01", "Amazon")  # listed for Echo; the vendor says only "Amazon"
    assert [m.profile.id for m in matcher().rank(evidence)[:2]] == ["amazon_echo", "amazon_device"]


def test_destinations_tip_a_tie_but_never_make_a_match() -> None:
    nest = mac("18:b4:30:00:00:01")
    assert matcher().match(both(nest, talks_to("frontdoor.nest.com"))).profile.id == "nest_thermostat"
    assert matcher().match(both(nest, talks_to("nexusapi.dropcam.com"))).profile.id == "nest_cam"
    assert matcher().match(talks_to("bridge.meethue.com", "frontdoor.nest.com", "api.wyzecam.com")) is None


def test_destination_points_are_capped_and_counted_once_per_name() -> None:
    many = talks_to("api.xbcs.net", "nat.xbcs.net", "devices.xbcs.net", "www.belkin.com")
    found = matcher().match(both(mac("94:10:3e:00:00:01"), many))
    assert found is not None
    assert found.profile.id == "wemo_switch"
    assert found.score == Points.MAC_PREFIX + Points.DOMAIN_CAP
    single = matcher().match(
        both(mac("94:10:3e:00:00:01"), talks_to("api.xbcs.net"))
    )  # api.xbcs.net and xbcs.net
    assert single is not None
    assert single.score == Points.MAC_PREFIX + Points.DOMAIN


def test_equal_scores_name_the_alternatives() -> None:
    found = matcher().match(mac("74:da:38:00:00:01"))  # an Edimax camera or plug
    assert found is not None
    assert {found.profile.id, *found.alternatives} == {"edimax_camera", "edimax_plug"}


def test_reasons_say_what_matched_and_how_much() -> None:
    evidence = both(mdns("_googlecast._tcp", "x", md="Google Nest Mini"), mac("20:df:b9:00:00:01", "Google"))
    found = matcher().match(evidence)
    assert found is not None
    assert found.reasons == (
        "mDNS _googlecast._tcp md='Google Nest Mini' (+100)",
        "MAC prefix 20:DF:B9 (+30)",
    )
    assert found.score == 130


def test_instance_name_rules_check_the_name() -> None:
    assert matcher().match(mdns("_http._tcp", "shellydimmer2-a1b2c3d4e5f6")).profile.id == "shelly_light"
    assert matcher().match(mdns("_http._tcp", "my web server")) is None


def test_shared_service_types_need_their_pattern() -> None:
    assert matcher().match(mdns("_airplay._tcp", "Speaker", model="Unknown1,1")) is None
    assert matcher().match(mdns("_ipp._tcp", "Office", ty="Canon MF4400")) is None


def test_txt_patterns_match_the_whole_value_ignoring_case() -> None:
    assert matcher().match(mdns("_googlecast._tcp", "x", md="google home")).profile.id == "google_home"
    assert matcher().match(mdns("_googlecast._tcp", "x", md="Google Home Mini Fake")) is None


def test_longer_mac_blocks_are_looked_up() -> None:
    from gateway.profiles.model import Kind, Profile, Rules

    small = Profile(
        "lab_sensor", "Lab", None, "sensor", Kind.SENSOR, Rules(mac_prefixes=("70:b3:d5:2a:0",)), (), "n"
    )
    index = ProfileIndex.from_profiles([small])
    assert Matcher(index).match(mac("70:b3:d5:2a:01:02")).profile.id == "lab_sensor"
    assert Matcher(index).match(mac("70:b3:d5:2b:01:02")) is None


def test_nothing_known_gives_nothing() -> None:
    assert matcher().match(Evidence()) is None
    assert matcher().match(host("printer-3rd-floor")) is None
    assert matcher().match(dhcp("udhcp 1.21.1")) is None
    assert matcher().rank(Evidence()) == ()
