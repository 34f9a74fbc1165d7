"""Device profiles: what a device is, from what it shows of itself (docs/profiles.md).

The knowledge is data, in ``device_profiles/*.yaml``; this package is the generic code around it:

- `schema` and `loader` validate profile files (every problem as ``FILE:LINE: where: what — fix``);
- `index` compiles them into ``gateway/data/profile_index.json`` (``mouchard profiles build``) and
  loads that file at run time;
- `evidence` is what one device has shown (mDNS, DHCP, MAC, destinations), built from parsed records;
- `matcher` scores the profiles against it: ``Matcher().match(evidence) -> Match | None``.
"""

from gateway.profiles.evidence import Evidence, ServiceSighting
from gateway.profiles.index import ProfileIndex, ProfileIndexError
from gateway.profiles.loader import Problem, ProfileError, check_profiles, load_profiles
from gateway.profiles.matcher import Match, Matcher
from gateway.profiles.model import Kind, Profile

__all__ = [
    "Evidence",
    "Kind",
    "Match",
    "Matcher",
    "Problem",
    "Profile",
    "ProfileError",
    "ProfileIndex",
    "ProfileIndexError",
    "ServiceSighting",
    "check_profiles",
    "load_profiles",
]
