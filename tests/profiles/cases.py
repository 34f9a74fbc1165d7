"""Evidence that each committed profile must win: one case per profile (synthetic, realistic values)."""

from __future__ import annotations

from gateway.profiles.evidence import Evidence, ServiceSighting


def mdns(service_type: str, instance: str = "", **txt: str) -> Evidence:
    sighting = ServiceSighting.of(service_type, instance, txt)
    return Evidence(services=(sighting,), service_types=frozenset({sighting.service_type}))


def host(*names: str) -> Evidence:
    return Evidence(hostnames=frozenset(names))


def dhcp(vendor_class: str | None = None, fingerprint: str | None = None) -> Evidence:
    return Evidence(vendor_class=vendor_class, dhcp_fingerprint=fingerprint)


def mac(address: str | None = None, vendor: str | None = None) -> Evidence:
    return Evidence(mac=address, mac_vendor=vendor)


def talks_to(*names: str) -> Evidence:
    return Evidence().with_domains(names)


def both(*parts: Evidence) -> Evidence:
    combined = Evidence()
    for part in parts:
        combined = combined.merge(part)
    return combined


# profile id -> evidence it must win with
CASES: dict[str, Evidence] = {
    # amazon.yaml
    "amazon_echo": both(host("amazon-4e5b8a1c2"), mac("cc:f7:35:12:34:56", "Amazon")),
    "amazon_fire_tv": both(
        mdns("_amzn-wplay._tcp", "Fire TV Stick"), dhcp("android-dhcp-9"), mac(None, "Amazon")
    ),
    "amazon_device": mac(None, "Amazon"),
    "ring_doorbell": both(mac("9c:76:13:aa:bb:cc", "Ring"), talks_to("es.ring.com")),
    "blink_camera": both(host("blink-sync-module"), mac("b8:5f:98:01:02:03", "Amazon")),
    # google.yaml, nest.yaml
    "google_home": mdns("_googlecast._tcp", "Google-Home-0a1b", md="Google Home", fn="Kitchen"),
    "google_nest_mini": mdns("_googlecast._tcp", "Google-Nest-Mini-3f", md="Google Nest Mini", fn="Bedroom"),
    "google_nest_audio": mdns("_googlecast._tcp", "Nest-Audio-77", md="Google Nest Audio"),
    "google_nest_hub": mdns("_googlecast._tcp", "Google-Nest-Hub-Max-1", md="Google Nest Hub Max"),
    "chromecast": mdns("_googlecast._tcp", "Chromecast-Ultra-5e", md="Chromecast Ultra", fn="TV"),
    "android_tv": both(mdns("_androidtvremote2._tcp", "Living room TV"), dhcp("android-dhcp-11")),
    "google_device": mac("f4:f5:d8:00:00:01", "Google"),
    "nest_thermostat": both(mac("18:b4:30:c8:d8:28", "Nest Labs"), talks_to("frontdoor.nest.com")),
    "nest_cam": both(mac("18:b4:30:11:22:33", "Nest Labs"), talks_to("nexusapi.dropcam.com")),
    # apple.yaml
    "apple_homepod": mdns("_airplay._tcp", "Living Room", model="AudioAccessory1,1"),
    "apple_homepod_mini": mdns("_raop._tcp", "D0D2B0A1B2C3@Kitchen", am="AudioAccessory5,1"),
    "apple_tv": mdns("_airplay._tcp", "Apple TV", model="AppleTV11,1"),
    "apple_airport": mdns("_airport._tcp", "Base Station"),
    "apple_mac": mdns("_device-info._tcp", "Ada's MacBook Pro", model="MacBookPro18,3"),
    "apple_iphone": both(host("Lucas-iPhone"), dhcp(None, "1,121,3,6,15,119,252")),
    "apple_ipad": host("Christys-iPad"),
    "apple_device": mac("9c:58:3c:a7:ee:cc", "Apple"),
    # sonos.yaml, roku.yaml
    "sonos_speaker": mdns("_sonos._tcp", "Sonos-542A1BC9220E", vers="3"),
    "roku_player": mdns("_hap._tcp", "Roku Express 4K", md="3820X"),
    # samsung.yaml, lg.yaml
    "samsung_tv": both(host("tizen"), mac("64:1c:ae:50:57:2a", "Samsung Electronics")),
    "samsung_smartthings_hub": mdns("_smartthings._tcp", "D052A8A4E6960001"),
    "samsung_galaxy": both(host("Galaxy-S21"), dhcp("android-dhcp-13")),
    "samsung_device": mac(None, "Samsung Electronics"),
    "lg_tv": host("LGwebOSTV"),
    "lg_thinq_appliance": both(mac("34:e6:e6:01:02:03"), talks_to("eic.lgthinq.com")),
    # philips_hue.yaml, ikea.yaml
    "hue_bridge": mdns("_hue._tcp", "Philips Hue - 2476FF", bridgeid="001788FFFE2476FF"),
    "wiz_light": host("wiz_a1b2c3"),
    "ikea_tradfri_gateway": mdns("_hap._tcp", "TRADFRI gateway", md="TRADFRI gateway"),
    "ikea_dirigera_hub": mdns("_ihsp._tcp", "gw2-3d437fc68e68"),
    # tplink.yaml
    "kasa_plug": host("HS110(UK)"),
    "kasa_bulb": host("KL130(EU)"),
    "tapo_plug": host("P110"),
    "tapo_light": host("L530"),
    "tapo_hub": host("H100"),
    "tplink_device": mac(None, "TP-LINK"),
    # shelly.yaml, tuya.yaml, sonoff.yaml
    "shelly_relay": mdns("_shelly._tcp", "shellyplus1pm-a8032ab12345", gen="2", app="Plus1PM"),
    "shelly_plug": mdns("_shelly._tcp", "shellyplusplugs-80646fd61f2c", gen="2", app="PlusPlugS"),
    "shelly_sensor": host("shellyht-A1B2C3"),
    "shelly_light": mdns("_http._tcp", "shellydimmer2-a1b2c3d4e5f6"),
    "tuya_device": both(mac("10:d5:61:01:02:03", "Tuya Smart"), talks_to("a1.tuyaeu.com")),
    "sonoff_ewelink": mdns("_ewelink._tcp", "eWeLink_1000abcdef", type="plug"),
    # xiaomi.yaml
    "xiaomi_gateway": mdns("_miio._udp", "lumi-gateway-v3_miio12345678"),
    "xiaomi_air_purifier": mdns("_miio._udp", "zhimi-airpurifier-m1_miio23456789"),
    "xiaomi_camera": mdns("_miio._udp", "chuangmi-camera-ipc009_miio34567890"),
    "yeelight_light": mdns("_miio._udp", "yeelink-light-color1_miio45678901"),
    "roborock_vacuum": mdns("_miio._udp", "roborock-vacuum-s5e_miio56789012"),
    "xiaomi_device": mdns("_miio._udp", "dmaker-fan-p5_miio67890123"),
    # wyze.yaml, eufy.yaml, netatmo.yaml
    "wyze_cam": both(mac("2c:aa:8e:01:02:03", "Wyze Labs"), talks_to("api.wyzecam.com")),
    "eufy_homebase": mdns("_hap._tcp", "eufy HomeBase2-2464", md="T8010"),
    "eufy_camera": mdns("_hap._tcp", "eufy Indoor Cam", md="T8400"),
    "eufy_doorbell": mdns("_hap._tcp", "eufy Doorbell", md="T8200"),
    "netatmo_weather_station": both(mac("70:ee:50:36:98:da", "Netatmo"), talks_to("netcom.netatmo.net")),
    "netatmo_camera": mdns("_hap._tcp", "Welcome 1A2B", md="Welcome"),
    "netatmo_thermostat": mdns("_hap._tcp", "Netatmo Relay 3C4D", md="Netatmo Relay"),
    # diy.yaml
    "esphome_device": mdns("_esphomelib._tcp", "kitchen-sensor", platform="ESP32", friendly_name="Kitchen"),
    "tasmota_device": host("tasmota-1A2B3C-4567"),
    "home_assistant": mdns("_home-assistant._tcp", "Home", version="2024.6.0"),
    "espressif_device": both(host("ESP_07AEFB"), mac("5c:cf:7f:07:ae:fb", "Espressif")),
    "hiflying_device": host("HF-LPB100"),
    # thread_matter.yaml
    "thread_border_router": mdns("_meshcop._udp", "MyHome54", nn="MyHome54"),
    "matter_device": mdns("_matter._tcp", "A3604AF531F86DB7-0000000000000066"),
    "matter_light": mdns("_matterc._udp", "DD5A7B9E1F2A3C4D", DT="257", D="3840"),
    "matter_plug": mdns("_matterc._udp", "AA5A7B9E1F2A3C4D", DT="266"),
    "matter_sensor": mdns("_matterc._udp", "BB5A7B9E1F2A3C4D", DT="770"),
    "matter_thermostat": mdns("_matterc._udp", "CC5A7B9E1F2A3C4D", DT="769"),
    "matter_bridge": mdns("_matterc._udp", "EE5A7B9E1F2A3C4D", DT="14"),
    # printers.yaml
    "hp_printer": mdns("_ipp._tcp", "HP LaserJet Pro M404dn", ty="HP LaserJet Pro M404dn", usb_MFG="HP"),
    "brother_printer": host("BRW0080927AFBCE"),
    "epson_printer": mdns("_ipp._tcp", "EPSON ET-2750 Series", ty="EPSON ET-2750 Series", usb_MFG="EPSON"),
    # phones.yaml, computers.yaml
    "android_phone": dhcp("android-dhcp-11", "1,3,6,15,26,28,51,58,59,43"),
    "google_pixel": both(host("Pixel-7"), dhcp("android-dhcp-13")),
    "windows_pc": both(host("DESKTOP-4F2K9QX"), dhcp("MSFT 5.0")),
    "linux_computer": mdns("_workstation._tcp", "skynet [00:1a:ef:17:c3:05]"),
    "raspberry_pi": both(mdns("_workstation._tcp", "octopi [dc:a6:32:01:02:03]"), mac("dc:a6:32:01:02:03")),
    "dell_computer": mac("90:b1:1c:99:49:29", "Dell"),
    "intel_nic_computer": mac(None, "Intel"),
    # dlink.yaml, belkin.yaml, edimax.yaml, eq3.yaml, fitbit.yaml, harman.yaml
    "dlink_camera": host("DCS-932L"),
    "dlink_plug": mdns("_dhnap._tcp", "D-Link HNAP Service", model_number="DSP-W115"),
    "dlink_sensor": host("DCH-S150"),
    "dlink_device": mac(None, "D-Link International"),
    "wemo_switch": both(mac("94:10:3e:35:01:c1", "Belkin International"), talks_to("api.xbcs.net")),
    "edimax_camera": both(host("localcam"), mac("74:da:38:80:7a:08", "Edimax")),
    "edimax_plug": both(mac("74:da:38:23:22:7b", "Edimax"), talks_to("www.myedimax.com")),
    "eq3_max_cube": host("KEQ0817541"),
    "fitbit_aria": both(host("GainSpanca9152"), talks_to("www.fitbit.com")),
    "harman_kardon_invoke": mac(None, "Harman/Becker Automotive Systems"),
}
