"""Pseudonymous exports: every MAC replaced by a stable keyed pseudonym, so a lab can share its data.

A pseudonym is HMAC-SHA256(lab key, MAC) cut to 6 bytes, with the locally administered bit set and
the multicast bit cleared: it still looks like a MAC (``device`` tags stay valid MACs, dashboards
and `mouchard devices` work on them), cannot be a maker's address, and names the same object the same
way in every export of one lab, while another lab (another key) gives it another name. Without the
key nobody can tell which MAC is behind a pseudonym, nor test a guess.

The key is 32 random bytes in ``<state_dir>/pseudonym.key`` (0600), made on first use. Deleting it
makes every pseudonym change; keep it to compare exports over time, never share it.

What is rewritten, anywhere in a line or field: MACs written ``aa:bb:cc:dd:ee:ff`` or
``AA-BB-CC-DD-EE-FF``; a MAC already met written without separators (``aabbccddeeff``, as in DHCP
host names); and IPv6 addresses whose interface identifier is made from a MAC (EUI-64, ``...ff:fe...``),
whose identifier is remade from the pseudonym. Counts, times and other text are left as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.sinks.inventory import DeviceRecord
from gateway.sinks.lineproto import LineFileSink
from gateway.sinks.private import FILE_MODE, private_folder

if TYPE_CHECKING:
    from gateway.app import LineSink
    from gateway.config import Config

KEY_FILE = "pseudonym.key"
_KEY_BYTES = 32
# MACs met so far, remembered to find them written without separators; a lab has tens of devices, and
# beyond this bound only the separated forms are rewritten.
MAX_KNOWN = 100_000
_HEX = "0-9A-Fa-f"
_MAC = re.compile(
    rf"(?<![{_HEX}:])[{_HEX}]{{2}}(?::[{_HEX}]{{2}}){{5}}(?![{_HEX}:])"
    rf"|(?<![{_HEX}-])[{_HEX}]{{2}}(?:-[{_HEX}]{{2}}){{5}}(?![{_HEX}-])"
)
_BARE = re.compile(rf"(?<![{_HEX}])[{_HEX}]{{12}}(?![{_HEX}])")
_IPV6 = re.compile(rf"(?<![{_HEX}:])[{_HEX}:]*::?[{_HEX}:]*[{_HEX}](?![{_HEX}:])")
_EUI64_MARK = b"\xff\xfe"


class PseudonymError(Exception):
    """The lab's pseudonym key cannot be made or read; says which file and what to do."""


def load_key(state_dir: Path) -> bytes:
    """The lab's key, made (0600) on first use."""
    path = state_dir / KEY_FILE
    try:
        private_folder(state_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return _read_key(path)
    except OSError as exc:
        raise PseudonymError(f"cannot create the pseudonym key {path}: {exc.strerror}") from None
    try:
        os.write(fd, secrets.token_bytes(_KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise PseudonymError(f"cannot read the pseudonym key {path}: {exc.strerror}") from None
    if len(key) != _KEY_BYTES:
        raise PseudonymError(
            f"the pseudonym key {path} is damaged ({len(key)} bytes, not {_KEY_BYTES}); delete it to make a "
            "new one (every pseudonym will change)"
        )
    return key


class Pseudonymiser:
    """Replaces MACs in text by the lab's pseudonyms (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._known: dict[str, str] = {}  # bare lowercase hex of a real MAC -> its pseudonym

    def __repr__(self) -> str:
        return f"Pseudonymiser(known={len(self._known)})"  # never the key

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Pseudonymiser:
        return cls(load_key(state_dir))

    def mac(self, mac: str) -> str:
        """The pseudonym of ``mac`` (any case, ``:`` or ``-``): lowercase, colon-separated."""
        bare = mac.lower().replace(":", "").replace("-", "")
        found = self._known.get(bare)
        if found is not None:
            return found
        digest = hmac.new(self._key, b"mac:" + bare.encode("ascii"), hashlib.sha256).digest()
        octets = bytearray(digest[:6])
        octets[0] = (octets[0] | 0x02) & 0xFE  # locally administered, unicast
        pseudonym = ":".join(f"{b:02x}" for b in octets)
        if len(self._known) < MAX_KNOWN:
            self._known[bare] = pseudonym
        return pseudonym

    def learn(self, texts: Iterable[str]) -> None:
        """Note the MACs in ``texts``, so their unseparated forms are found in later text too."""
        for text in texts:
            for m in _MAC.finditer(text):
                self.mac(m.group())

    def text(self, text: str) -> str:
        """``text`` with every MAC, known bare MAC and EUI-64 IPv6 address pseudonymised."""
        out = _MAC.sub(lambda m: self.mac(m.group()), text)
        if ":" in out:
            out = _IPV6.sub(self._ipv6, out)
        if self._known:
            out = _BARE.sub(self._bare, out)
        return out

    def _bare(self, m: re.Match[str]) -> str:
        found = self._known.get(m.group().lower())
        return found.replace(":", "") if found is not None else m.group()

    def _ipv6(self, m: re.Match[str]) -> str:
        try:
            address = ipaddress.IPv6Address(m.group())
        except ValueError:
            return m.group()
        packed = address.packed
        if packed[11:13] != _EUI64_MARK:
            return m.group()
        mac = bytes([packed[8] ^ 0x02, *packed[9:11], *packed[13:16]])
        fake = bytes.fromhex(self.mac(mac.hex()).replace(":", ""))
        iid = bytes([fake[0] ^ 0x02, *fake[1:3]]) + _EUI64_MARK + fake[3:]
        return str(ipaddress.IPv6Address(packed[:8] + iid))

    def record(self, r: DeviceRecord) -> DeviceRecord:
        """An inventory record with its id and every text field pseudonymised."""
        self.learn([r.id])
        t = self.text
        return replace(
            r,
            id=t(r.id),
            name=t(r.name),
            kind=t(r.kind),
            vendor=t(r.vendor),
            model=t(r.model),
            profile=t(r.profile),
            ip=t(r.ip),
            services=tuple(t(s) for s in r.services),
        )


def output_sink(target: str, cfg: Config, *, pseudonymise: bool) -> LineSink:
    """`replay --output`'s sink: the file (or ``-``), behind the lab's pseudonyms when asked.

    Raises PseudonymError (before the file is opened) when the key cannot be made or read.
    """
    if not pseudonymise:
        return LineFileSink(target)
    pseudonymiser = Pseudonymiser.for_state_dir(cfg.state_dir)
    return PseudonymisingSink(LineFileSink(target), pseudonymiser)


@dataclass(slots=True)
class PseudonymisingSink:
    """Line protocol with every MAC pseudonymised, then written to ``inner`` (replay --output)."""

    inner: LineSink
    pseudonymiser: Pseudonymiser

    def write(self, lines: list[str]) -> None:
        self.pseudonymiser.learn(lines)  # a batch's device tags first, so their bare forms are found too
        self.inner.write([self.pseudonymiser.text(line) for line in lines])

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return f"{self.inner.describe()} (MACs pseudonymised)"
