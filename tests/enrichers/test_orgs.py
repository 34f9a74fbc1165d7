"""Destination attribution: real IoT destinations, the data file's checks, PSL edge cases, countries.

The destinations of the table are host names that real devices resolved in the Mon(IoT)r lab
(NEU-SNS/intl-iot, ``tshark_{us,uk}.hosts``) or that nextdns/native-tracking-domains lists as native
telemetry; `test_table_hosts_come_from_the_reference_data` checks that each one is there.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from gateway.enrichers.orgs import (
    DEFAULT_PATH,
    Category,
    Org,
    OrgDataError,
    OrgDB,
    Party,
    normalise_host,
    party,
    registrable_domain,
    server_country,
)
from tests.conftest import SHARED

REFERENCE = SHARED / "reference"
MONITR = REFERENCE / "monitr-intl-iot"
NEXTDNS = REFERENCE / "nextdns-native-tracking"

FIRST, SUPPORT, THIRD = Party.FIRST, Party.SUPPORT, Party.THIRD

# (host, device maker key or vendor name, registrable domain, organisation key, party)
CASES: list[tuple[str, str | None, str | None, str | None, Party]] = [
    # Amazon Echo / Fire TV (maker amazon): Amazon's own cloud is first party.
    ("ec2-100-24-213-197.compute-1.amazonaws.com", "amazon", "amazonaws.com", "amazon", FIRST),
    ("endpoint.prod.us-east-1.forester.a2z.com", "amazon", "a2z.com", "amazon", FIRST),
    ("device-metrics-us.amazon.com", "amazon", "amazon.com", "amazon", FIRST),
    ("device-metrics-us-2.amazon.com", "Amazon Technologies Inc.", "amazon.com", "amazon", FIRST),
    ("data.alexa.com", "amazon", "alexa.com", "amazon", FIRST),
    ("certify.alexametrics.com", "amazon", "alexametrics.com", "amazon", FIRST),
    ("wl.amazon-dss.com", "amazon", "amazon-dss.com", "amazon", FIRST),
    ("fireoscaptiveportal.com", "amazon", "fireoscaptiveportal.com", "amazon", FIRST),
    ("ocsp.sca1b.amazontrust.com", "amazon", "amazontrust.com", "amazon", FIRST),
    ("ftv-smp.ntp-fireos.com", "amazon", "ntp-fireos.com", "amazon", FIRST),
    ("kindle-time.amazon.com", "amazon", "amazon.com", "amazon", FIRST),
    ("pool.ntp.org", "amazon", "ntp.org", "ntppool", SUPPORT),
    ("e12930.ksd.akamaiedge.net", "amazon", "akamaiedge.net", "akamai", SUPPORT),
    ("ichnaea.us-west-2.prodaa.netflix.com", "amazon", "netflix.com", "netflix", THIRD),
    ("settings.crashlytics.com", "amazon", "crashlytics.com", "google", THIRD),
    # Ring and Blink belong to Amazon: Amazon's names are first party for them too.
    ("fw.ring.com", "ring", "ring.com", "ring", FIRST),
    ("es.ring.com", "Ring LLC", "ring.com", "ring", FIRST),
    ("api.ring.com.cdn.cloudflare.net", "ring", "cloudflare.net", "cloudflare", SUPPORT),
    ("prod1-api-xbcs-net-889336557.us-east-1.elb.amazonaws.com", "ring", "amazonaws.com", "amazon", FIRST),
    ("api.amplitude.com", "ring", "amplitude.com", "amplitude", THIRD),
    ("api.segment.io", "ring", "segment.io", "segment", THIRD),
    ("clientstream.launchdarkly.com", "ring", "launchdarkly.com", "launchdarkly", THIRD),
    ("rest-prde.immedia-semi.com", "blink", "immedia-semi.com", "blink", FIRST),
    ("us3p-alexa.immedia-semi.com", "blink", "immedia-semi.com", "blink", FIRST),
    ("ntp-g7g.amazon.com", "blink", "amazon.com", "amazon", FIRST),
    # Samsung TV and SmartThings hub (maker samsung).
    ("log-ingestion-eu.samsungacr.com", "samsung", "samsungacr.com", "samsung", FIRST),
    ("osb.samsungqbe.com", "samsung", "samsungqbe.com", "samsung", FIRST),
    ("fkp.samsungcloudsolution.com", "samsung", "samsungcloudsolution.com", "samsung", FIRST),
    ("ma.samsungcloud.tv", "samsung", "samsungcloud.tv", "samsung", FIRST),
    ("nmetrics.samsung.com", "samsung", "samsung.com", "samsung", FIRST),
    ("bigdata.ssp.samsung.com", "samsung", "samsung.com", "samsung", FIRST),
    ("analytics.samsungknox.com", "samsung", "samsungknox.com", "samsung", FIRST),
    ("api.smartthings.com", "samsung", "smartthings.com", "samsung", FIRST),
    ("ocfconnect-shard-na03-useast2.samsungiotcloud.com", "samsung", "samsungiotcloud.com", "samsung", FIRST),
    ("ec2-100-24-213-197.compute-1.amazonaws.com", "samsung", "amazonaws.com", "amazon", SUPPORT),
    ("auth2.samsungosp.com.cdngc.net", "samsung", "cdngc.net", "cdnetworks", SUPPORT),
    ("time.google.com", "samsung", "google.com", "google", SUPPORT),
    ("clients.l.google.com", "samsung", "google.com", "google", THIRD),
    ("dart.l.doubleclick.net", "Samsung Electronics Co.,Ltd", "doubleclick.net", "google", THIRD),
    # Roku TV (maker roku).
    ("scribe.logs.roku.com", "roku", "roku.com", "roku", FIRST),
    ("logs.roku.com", "roku", "roku.com", "roku", FIRST),
    ("i.ads.roku.com", "roku", "roku.com", "roku", FIRST),
    ("api.rokutime.com", "roku", "rokutime.com", "roku", FIRST),
    ("stats.l.doubleclick.net", "roku", "doubleclick.net", "google", THIRD),
    ("pagead.l.doubleclick.net", "Roku, Inc", "doubleclick.net", "google", THIRD),
    ("e15316.ci.akamaiedge.net", "roku", "akamaiedge.net", "akamai", SUPPORT),
    # LG TV (maker lg): a CDN is support, Google's ads are not.
    ("e12930.ksd.akamaiedge.net", "lg", "akamaiedge.net", "akamai", SUPPORT),
    ("dualstack.spotify.map.fastly.net", "LG Electronics", "fastly.net", "fastly", SUPPORT),
    ("rb.adnxs.com", "lg", "adnxs.com", "xandr", THIRD),
    # Google Home / Chromecast and Nest thermostat (Nest belongs to Google).
    ("connectivitycheck.gstatic.com", "google", "gstatic.com", "google", FIRST),
    ("clients.l.google.com", "google", "google.com", "google", FIRST),
    ("settings.crashlytics.com", "google", "crashlytics.com", "google", FIRST),
    ("logsink.devices.nest.com", "nest", "nest.com", "nest", FIRST),
    ("apigw.production.nest.com", "Nest Labs Inc.", "nest.com", "nest", FIRST),
    ("time.google.com", "nest", "google.com", "google", FIRST),
    # TP-Link Kasa plugs and bulb (maker tplink).
    ("use1-api.tplinkra.com", "tplink", "tplinkra.com", "tplink", FIRST),
    ("api.tplinkra.com", "TP-LINK TECHNOLOGIES CO.,LTD.", "tplinkra.com", "tplink", FIRST),
    ("n-use1-devs.tplinkcloud.com", "tplink", "tplinkcloud.com", "tplink", FIRST),
    ("ec2-100-24-213-197.compute-1.amazonaws.com", "tplink", "amazonaws.com", "amazon", SUPPORT),
    # Philips Hue bridge (maker signify).
    ("ws.meethue.com", "signify", "meethue.com", "signify", FIRST),
    ("bridge.meethue.com", "Philips Lighting BV", "meethue.com", "signify", FIRST),
    ("time.meethue.com", "signify", "meethue.com", "signify", FIRST),
    ("time.meethue.com", "tplink", "meethue.com", "signify", SUPPORT),
    # WeMo plug (maker belkin), D-Link camera, Wink hub, Sengled, Netatmo, Zmodo, Amcrest.
    ("xbcs.net", "Belkin International", "xbcs.net", "belkin", FIRST),
    ("api.auto.mydlink.com", "dlink", "mydlink.com", "dlink", FIRST),
    ("api-kubernetes-us-east-1.wink.com", "wink", "wink.com", "wink", FIRST),
    ("us.cloud.sengled.com", "sengled", "sengled.com", "sengled", FIRST),
    ("app.netatmo.net", "netatmo", "netatmo.net", "netatmo", FIRST),
    ("11-appaccess.myzmodo.com", "zmodo", "myzmodo.com", "zmodo", FIRST),
    ("app.meshare.com", "zmodo", "meshare.com", "zmodo", FIRST),
    ("p2p.amcrestview.com", "amcrest", "amcrestview.com", "amcrest", FIRST),
    ("wifi.magichue.net", "magichome", "magichue.net", "magichome", FIRST),
    ("a.tuyaus.com", "tuya", "tuyaus.com", "tuya", FIRST),
    # Xiaomi devices and Yi camera: Alibaba's cloud and CDN are support.
    ("ott.io.mi.com", "xiaomi", "mi.com", "xiaomi", FIRST),
    ("de.ott.io.mi.com", "Xiaomi Communications", "mi.com", "xiaomi", FIRST),
    ("resolver.msg.xiaomi.net", "xiaomi", "xiaomi.net", "xiaomi", FIRST),
    ("api.xmpush.xiaomi.com", "xiaomi", "xiaomi.com", "xiaomi", FIRST),
    ("tracking.miui.com", "xiaomi", "miui.com", "xiaomi", FIRST),
    ("data.mistat.intl.xiaomi.com", "xiaomi", "xiaomi.com", "xiaomi", FIRST),
    ("alog.umeng.com.gds.alibabadns.com", "xiaomi", "alibabadns.com", "alibaba", SUPPORT),
    ("static.home.mi.com.wsglb0.com", "xiaomi", "wsglb0.com", "wangsu", SUPPORT),
    ("0.cn.pool.ntp.org", "xiaomi", "ntp.org", "ntppool", SUPPORT),
    ("api.us.xiaoyi.com", "yi", "xiaoyi.com", "yi", FIRST),
    ("www.xiaoyi.com.w.kunlungr.com", "yi", "kunlungr.com", "alibaba", SUPPORT),
    ("danuoyins4.tbcache.com", "yi", "tbcache.com", "alibaba", SUPPORT),
    ("ios.bugly.qq.com", "yi", "qq.com", "tencent", THIRD),
    ("c.data.mob.com", "yi", "mob.com", "mobtech", THIRD),
    # Kitchen: the iKettle and the sous-vide use Google's Firebase and App Engine as their cloud.
    ("smarter-live.firebaseio.com", "smarter", "firebaseio.com", "google", SUPPORT),
    ("smarter-live.appspot.com", "smarter", "appspot.com", "google", SUPPORT),
    ("pc.anovaculinary.com", "anova", "anovaculinary.com", "anova", FIRST),
    ("anova-app.firebaseapp.com", "anova", "firebaseapp.com", "google", SUPPORT),
    # Sonos (first for its own telemetry, third for trackers).
    ("msmetrics.ws.sonos.com", "Sonos, Inc.", "sonos.com", "sonos", FIRST),
    ("api.mixpanel.com", "sonos", "mixpanel.com", "mixpanel", THIRD),
    ("cdn.branch.io", "sonos", "branch.io", "branch", THIRD),
    ("app.adjust.com", "sonos", "adjust.com", "adjust", THIRD),
    ("api.rlcdn.com", "sonos", "rlcdn.com", "liveramp", THIRD),
    # Apple, Huawei and Windows telemetry (nextdns native tracking lists).
    ("metrics.apple.com", "apple", "apple.com", "apple", FIRST),
    ("books-analytics-events.news.apple-dns.net", "apple", "apple-dns.net", "apple", FIRST),
    ("metrics.icloud.com", "apple", "icloud.com", "apple", FIRST),
    ("grs.dbankcloud.com", "huawei", "dbankcloud.com", "huawei", FIRST),
    ("metrics.data.hicloud.com", "huawei", "hicloud.com", "huawei", FIRST),
    ("vortex.data.microsoft.com", "microsoft", "microsoft.com", "microsoft", FIRST),
    ("telemetry.appex.bing.net", "microsoft", "bing.net", "microsoft", FIRST),
    ("vortex.data.microsoft.com.akadns.net", "microsoft", "akadns.net", "akamai", SUPPORT),
    ("time.microsoft.akadns.net", "xiaomi", "akadns.net", "akamai", SUPPORT),
    # Cameras whose maker is unknown: a P2P relay platform is support, an unknown name third.
    ("m2.iotcplatform.com", None, "iotcplatform.com", "throughtek", SUPPORT),
    ("cm.kalay.net.cn", "Espressif", "kalay.net.cn", "throughtek", SUPPORT),
    ("lbs1.goolink.org", None, "goolink.org", None, THIRD),
    ("ec2-100-24-213-197.compute-1.amazonaws.com", None, "amazonaws.com", "amazon", SUPPORT),
    ("stats.l.doubleclick.net", None, "doubleclick.net", "google", THIRD),
    ("nyidt.adsafeprotected.com", None, "adsafeprotected.com", "ias", THIRD),
    ("imp-32.electricimp.com", None, "electricimp.com", "electricimp", SUPPORT),
    ("srm-na-p01-lb02.arrayent.com", "xiaomi", "arrayent.com", "arrayent", SUPPORT),
    # Public time services, for any maker.
    ("ntp1.glb.nist.gov", "wink", "nist.gov", "nist", SUPPORT),
    ("cn.ntp.org.cn", "xiaomi", "ntp.org.cn", "ntpcn", SUPPORT),
    ("time.stdtime.gov.tw", "dlink", "stdtime.gov.tw", "stdtime_tw", SUPPORT),
    ("a.ntpns.org", "roku", "ntpns.org", "ntppool", SUPPORT),
    ("ntp.ubuntu.com", "sengled", "ubuntu.com", "canonical", SUPPORT),
]


@cache
def db() -> OrgDB:
    return OrgDB.load()


@cache
def reference_hosts() -> frozenset[str]:
    hosts: set[str] = set()
    for path in sorted(MONITR.glob("tshark_*.hosts")):
        hosts.update(line.partition("\t")[2].strip().lower() for line in path.open(encoding="utf-8"))
    for path in sorted(NEXTDNS.glob("*.txt")):
        hosts.update(line.strip().lower() for line in path.open(encoding="utf-8"))
    return frozenset(hosts)


def need_reference(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"reference data {folder} is absent (it lives next to the project, in shared/reference)")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "organisations.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> OrgDataError:
    path = write(tmp_path, text)
    with pytest.raises(OrgDataError) as caught:
        OrgDB.load(path)
    return caught.value


# ------------------------------------------------------------------------------------------------
# Real IoT destinations
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "maker", "domain", "org", "expected"), CASES)
def test_real_destinations(
    host: str, maker: str | None, domain: str, org: str | None, expected: Party
) -> None:
    found = db().attribute(host, maker)
    assert (found.domain, found.org_key, found.party) == (domain, org, expected)
    if org is not None:
        known = db().organisation(org)
        assert known is not None
        assert (found.org, found.org_country) == (known.name, known.country)
    else:
        assert found.org is None
        assert found.org_country is None


def test_the_table_is_wide() -> None:
    assert len(CASES) >= 80
    assert len({(host, maker) for host, maker, *_ in CASES}) == len(CASES)
    assert {party for *_, party in CASES} == {FIRST, SUPPORT, THIRD}


def test_table_hosts_come_from_the_reference_data() -> None:
    need_reference(MONITR)
    need_reference(NEXTDNS)
    missing = sorted({host for host, *_ in CASES} - reference_hosts())
    assert not missing, f"not in the Mon(IoT)r or nextdns lists: {missing}"


def test_share_of_monitr_names_attributed(record_property: Callable[[str, object], None]) -> None:
    """Most names the US lab's devices resolved have an organisation (a guard against regressions)."""
    need_reference(MONITR)
    names = {line.partition("\t")[2].strip() for line in (MONITR / "tshark_us.hosts").open(encoding="utf-8")}
    named = {name for name in names if registrable_domain(name) is not None}
    share = sum(db().lookup(name) is not None for name in named) / len(named)
    record_property("monitr_us_attributed", round(share, 3))
    print(f"Mon(IoT)r US lab: {share:.1%} of {len(named)} distinct names attributed")
    assert share >= 0.9


# ------------------------------------------------------------------------------------------------
# Party rules and lookups
# ------------------------------------------------------------------------------------------------


def make_org(key: str, *, owner: str | None = None, infrastructure: bool = False) -> Org:
    return Org(key, key.title(), "US", Category.PLATFORM, infrastructure, owner or key)


def test_party_rules() -> None:
    amazon, ring = make_org("amazon"), make_org("ring", owner="amazon")
    aws = make_org("amazon", infrastructure=True)
    assert party(None, None) is THIRD  # unknown destination, unknown maker: the cautious answer
    assert party(None, amazon) is THIRD
    assert party(aws, amazon) is FIRST
    assert party(aws, ring) is FIRST
    assert party(aws, make_org("samsung")) is SUPPORT
    assert party(aws, None) is SUPPORT
    assert party(amazon, make_org("samsung")) is THIRD
    assert party(amazon, None) is THIRD


def test_local_is_left_to_the_caller() -> None:
    for host in ("192.168.1.10", "fe80::1", "philips-hue.local", "printer"):
        found = db().attribute(host, "signify")
        assert (found.domain, found.org, found.party) == (None, None, THIRD)


def test_most_specific_name_wins() -> None:
    google = db().lookup("www.googleapis.com")
    storage = db().lookup("my-bucket.storage.googleapis.com")
    assert google is not None
    assert storage is not None
    assert (google.key, google.infrastructure) == ("google", False)
    assert (storage.key, storage.infrastructure) == ("google", True)
    login, blob = db().lookup("login.windows.net"), db().lookup("lab.blob.core.windows.net")
    assert login is not None
    assert blob is not None
    assert (login.infrastructure, blob.infrastructure) == (False, True)


def test_a_subdomain_may_belong_to_another_organisation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "organisations:\n"
        "  example: {name: Example, country: FR, category: platform, domains: [example.com]}\n"
        "  adco: {name: AdCo, country: DE, category: advertising, domains: [ads.example.com]}\n",
    )
    orgs = OrgDB.load(path)
    assert orgs.attribute("www.example.com", "example").party is FIRST
    found = orgs.attribute("x.ads.example.com", "example")
    assert (found.domain, found.org, found.org_country, found.party) == ("example.com", "AdCo", "DE", THIRD)


def test_answers_are_cached() -> None:
    assert db().attribute("fw.ring.com", "ring") is db().attribute("fw.ring.com", "ring")


@pytest.mark.parametrize(
    ("vendor", "key"),
    [
        ("Amazon", "amazon"),
        ("Amazon Technologies Inc.", "amazon"),
        ("amazon", "amazon"),
        ("Google", "google"),
        ("Google, Inc.", "google"),
        ("Nest Labs Inc.", "nest"),
        ("Sonos, Inc.", "sonos"),
        ("Philips Lighting BV", "signify"),
        ("Signify", "signify"),
        ("Signify Netherlands B.V.", "signify"),
        ("TP-LINK TECHNOLOGIES CO.,LTD.", "tplink"),
        ("TP-LINK", "tplink"),
        ("Belkin International", "belkin"),
        ("Belkin International Inc.", "belkin"),
        ("Xiaomi Communications", "xiaomi"),
        ("Xiaomi Communications Co Ltd", "xiaomi"),
        ("Samsung Electronics Co.,Ltd", "samsung"),
        ("LG Electronics (Mobile Communications)", "lg"),
        ("Roku, Inc", "roku"),
        ("Apple, Inc.", "apple"),
        ("Shanghai Xiaoyi Technology Co.,Ltd.", "yi"),
        ("D-Link International", "dlink"),
        ("Hangzhou Hikvision Digital Technology Co.,Ltd.", "hikvision"),
        ("Espressif", None),
        ("Espressif Inc.", None),
        ("Murata Manufacturing Co., Ltd.", None),
        ("Shenzhen Bilian Electronic Co.，Ltd", None),
        ("", None),
        (None, None),
    ],
)
def test_maker_key(vendor: str | None, key: str | None) -> None:
    assert db().maker_key(vendor) == key


def test_every_organisation_is_complete() -> None:
    orgs = db().organisations
    assert len(orgs) >= 150
    assert len(db().names) >= 500
    for org in orgs:
        assert len(org.country) == 2, org
        assert org.country.isupper(), org
        assert org.category in Category, org
        assert org.name, org
        assert db().organisation(org.owner) is not None, org
    assert {org.category for org in orgs} == set(Category)


def test_every_listed_name_is_registrable() -> None:
    for name, org in db().names.items():
        assert normalise_host(name) == name, name
        assert registrable_domain(name) is not None, (name, org.key)


# ------------------------------------------------------------------------------------------------
# The data file's checks
# ------------------------------------------------------------------------------------------------

GOOD = "  good: {name: Good, country: US, category: platform, domains: [good.example.com]}\n"


def test_duplicate_across_organisations(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "organisations:\n"
        "  one: {name: One, country: US, category: platform, domains: [shared.com]}\n"
        "  two:\n"
        "    name: Two\n"
        "    country: US\n"
        "    category: cdn\n"
        "    domains: [two.com, shared.com]\n",
    )
    assert str(error) == (
        f"{error.path}:7: two: 'shared.com' is already listed for 'one' at line 2; a name belongs to "
        "one organisation (and to one of domains/infrastructure_domains): keep one"
    )


def test_duplicate_within_an_organisation(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "organisations:\n"
        "  one:\n"
        "    name: One\n"
        "    country: US\n"
        "    category: platform\n"
        "    domains: [one.com, cloud.com]\n"
        "    infrastructure_domains:\n"
        "      - cloud.com\n",
    )
    assert str(error).startswith(f"{error.path}:8: one: 'cloud.com' is already listed for 'one' at line 6")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: X, country: UK, category: platform, domains: [x.com]}", "UK is not ISO 3166; use GB"),
        ("{name: X, country: usa, category: platform, domains: [x.com]}", "must be two capital letters"),
        (
            "{name: X, country: US, category: ads, domains: [x.com]}",
            "category 'ads' is not one of platform |",
        ),
        ("{country: US, category: platform, domains: [x.com]}", "name is missing; add `name:`"),
        ("{name: X, category: platform, domains: [x.com]}", "country is missing; add `country:`"),
        ("{name: X, country: US, category: platform}", "list its names under domains"),
        (
            "{name: X, country: US, category: platform, domain: [x.com]}",
            "unknown field 'domain'; did you mean 'domains'?",
        ),
        ("{name: X, country: US, category: platform, domains: x.com}", "domains must be a list"),
        ("{name: X, country: US, category: platform, domains: [co.uk]}", "'co.uk' is a public suffix"),
        ("{name: X, country: US, category: platform, domains: [printer.local]}", "unknown top-level domain"),
        ("{name: X, country: US, category: platform, domains: [Example.COM]}", "write it 'example.com'"),
        ("{name: X, country: US, category: platform, domains: [1.2.3.4]}", "list a host name such as"),
        (
            "{name: X, country: US, category: platform, parent: nobody, domains: [x.com]}",
            "parent 'nobody' is no",
        ),
        ("{name: X, country: US, category: platform, aliases: ['---'], domains: [x.com]}", "has no letters"),
        (
            "{name: X, country: US, category: platform, aliases: [Good Inc.], domains: [x.com]}",
            "already names",
        ),
        ("[x.com]", "expected a mapping of name, country"),
    ],
)
def test_bad_entry_names_file_line_and_fix(tmp_path: Path, entry: str, message: str) -> None:
    error = load_error(tmp_path, f"organisations:\n{GOOD}  bad_one: {entry}\n")
    assert {problem.line for problem in error.problems} == {3}, str(error)
    assert str(error).startswith(f"{error.path}:3: ")
    assert message in str(error)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "organisations:\n"
        "  a: {name: A, country: UK, category: platform, domains: [a.com]}\n"
        "  b: {name: B, country: US, category: nope, domains: [a.com]}\n"
        "  C: {name: C, country: US, category: platform, domains: [c.com]}\n",
    )
    assert [problem.line for problem in error.problems] == [2, 3, 4, 3]


def test_duplicate_key_and_parent_loop(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "organisations:\n"
        "  a: {name: A, country: US, category: platform, parent: b, domains: [a.com]}\n"
        "  b: {name: B, country: US, category: platform, parent: a, domains: [b.com]}\n"
        "  a: {name: A2, country: US, category: platform, domains: [a2.com]}\n",
    )
    text = str(error)
    assert f"{error.path}:4: organisation 'a' is defined twice (first at line 2); merge them" in text
    assert f"{error.path}:2: a: parents loop (a -> b -> a)" in text


def test_not_yaml_or_not_the_expected_shape(tmp_path: Path) -> None:
    error = load_error(tmp_path, "organisations:\n  a: {name: A\n  b: [\n")
    assert error.problems[0].line is not None
    assert "not valid YAML" in str(error)
    error = load_error(tmp_path, "- just\n- a list\n")
    assert "must hold one mapping, `organisations:`" in str(error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OrgDataError, match=r"missing\.yaml: cannot read the file"):
        OrgDB.load(tmp_path / "missing.yaml")


def test_norway_is_a_country(tmp_path: Path) -> None:
    path = write(tmp_path, "organisations:\n  n: {name: N, country: NO, category: other, domains: [n.no]}\n")
    found = OrgDB.load(path).attribute("www.n.no")
    assert found.org_country == "NO"


def test_default_path_is_the_shipped_file() -> None:
    assert DEFAULT_PATH.is_file()
    assert len(OrgDB.load(DEFAULT_PATH)) == len(db())


# ------------------------------------------------------------------------------------------------
# Public Suffix List edge cases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("foo.s3.amazonaws.com", "amazonaws.com"),  # a private-section suffix is not a boundary
        ("ec2-1-2-3-4.compute-1.amazonaws.com", "amazonaws.com"),
        ("lab.github.io", "github.io"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("ntp1.glb.nist.gov", "nist.gov"),
        ("api.amazonaws.com.cn", "amazonaws.com.cn"),
        ("WWW.Example.COM", "example.com"),
        ("www.example.com.", "example.com"),
        ("  www.example.com  ", "example.com"),
        ("www.münchen.de", "xn--mnchen-3ya.de"),
        ("WWW.MÜNCHEN.DE", "xn--mnchen-3ya.de"),
        ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("_googlecast._tcp.example.com", "example.com"),
        ("example.com", "example.com"),
        ("com", None),
        ("co.uk", None),
        ("localhost", None),
        ("printer", None),
        ("philips-hue.local", None),
        ("android-2.local", None),
        ("router.lan", None),
        ("ip-10-0-0-1.ec2.internal", None),
        ("amazonaws.c", None),  # truncated in the Mon(IoT)r data
        ("4.3.2.1.in-addr.arpa", None),
        ("nas.home.arpa", None),
        ("192.168.1.1", None),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("[2001:db8::1]", None),
        ("fe80::1%eth0", None),
        ("", None),
        (".", None),
        ("a..b.com", None),
        ("bad host.com", None),
        ("x" * 64 + ".com", None),
        ("a." * 127 + "com", None),
    ],
)
def test_registrable_domain(host: str, domain: str | None) -> None:
    assert registrable_domain(host) == domain


def test_ip_literals_have_no_organisation() -> None:
    for host in ("8.8.8.8", "2001:4860:4860::8888", "[2606:4700:4700::1111]"):
        assert normalise_host(host) is None
        assert db().lookup(host) is None


# ------------------------------------------------------------------------------------------------
# Server country
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:8.8.8.8", "US"),
        ("10.0.0.1", None),
        ("192.168.1.20", None),
        ("172.16.5.4", None),
        ("100.64.0.1", None),  # shared address space (carrier-grade NAT)
        ("127.0.0.1", None),
        ("169.254.1.1", None),
        ("224.0.0.251", None),
        ("fe80::1", None),
        ("fd00::1", None),
        ("2001:db8::1", None),
        ("0.0.0.0", None),
        ("not an address", None),
        ("", None),
    ],
)
def test_server_country(ip: str, country: str | None) -> None:
    assert server_country(ip) == country


def monitr_countries() -> Iterator[tuple[str, str]]:
    with (MONITR / "ipToOrg.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["country"] not in {"", "None"}:
                yield row["ip"], row["country"]


def test_server_country_agrees_with_monitr(record_property: Callable[[str, object], None]) -> None:
    """An independent cross-check: Mon(IoT)r's own IP-to-country column (where it has one).

    The two are different sources of different dates (the study's lookups, today's RIR files), and
    addresses move between countries, so they agree for most addresses, not all.
    """
    need_reference(MONITR)
    outcome: Counter[bool] = Counter()
    for ip, country in monitr_countries():
        outcome[server_country(ip) == country] += 1
    rate = outcome[True] / outcome.total()
    record_property("monitr_country_agreement", round(rate, 3))
    print(f"iptocc agrees with Mon(IoT)r's country for {rate:.1%} of {outcome.total()} addresses")
    assert outcome.total() > 10_000
    assert rate >= 0.9
