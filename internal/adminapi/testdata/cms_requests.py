"""A CMS API client as the Python scripts written for CMS are: requests sessions with Basic
auth, certificate checks off, URLs in lower case, xmltodict to read the answers, and paging
by offset until total (from internal/adminapi's TestPythonRequestsXmltodict).

Environment: CONFAB_API (https://host:port), CONFAB_USER, CONFAB_PASS, CONFAB_SPACE (a
space with access methods), CONFAB_LEG (a call leg to mute). Prints one JSON document.
"""
import json
import os

import requests
import urllib3
import xmltodict

urllib3.disable_warnings()
API = os.environ["CONFAB_API"] + "/api/v1/"
out = {}

s = requests.session()
s.auth = (os.environ["CONFAB_USER"], os.environ["CONFAB_PASS"])


def get(path):
    r = s.get(API + path, verify=False, timeout=10)
    return r.status_code, xmltodict.parse(r.text)


def as_list(x):
    # xmltodict gives a dict for one element and a list for several.
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


# Every space, paged by offset as get_spaces() in the CMS scripts does.
_, first = get("cospaces")
total = int(first["coSpaces"]["@total"])
out["firstPage"] = len(as_list(first["coSpaces"].get("coSpace")))
offset, seen, rounds = 0, [], 0
while offset != total and rounds < 100:
    rounds += 1
    _, page = get("cospaces?offset=%d&limit=10" % offset)
    for space in as_list(page["coSpaces"].get("coSpace")):
        offset += 1
        seen.append(space["@id"])
out["total"] = total
out["seen"] = seen

# Access methods, with the trailing slash of get_space_accessmethods().
space = os.environ["CONFAB_SPACE"]
r = s.post(API + "cospaces/" + space + "/accessmethods/", verify=False, timeout=10,
           data={"uri": "py.host", "callID": "5550100", "passcode": "4321", "name": "python"})
out["amCreated"] = r.status_code
out["amLocation"] = r.headers.get("Location", "")
_, ams = get("cospaces/" + space + "/accessmethods/")
out["accessMethods"] = int(ams["accessMethods"]["@total"])
out["amUris"] = sorted(a.get("uri", "") for a in as_list(ams["accessMethods"].get("accessMethod")))

# set_am() on an access method that does not exist: the status and the failure's name.
r = s.put(API + "cospaces/" + space + "/accessmethods/00000000-0000-0000-0000-000000000000",
          data={"name": "x"}, verify=False, timeout=10)
out["missingStatus"] = r.status_code
out["missingFailure"] = list(xmltodict.parse(r.text)["failureDetails"].keys())

# set_all_calllegprofile_properties(): PUT the same settings on every call leg profile.
for i in range(3):
    s.post(API + "calllegprofiles", data={"name": "p%d" % i}, verify=False, timeout=10)
_, clps = get("calllegprofiles")
for p in as_list(clps["callLegProfiles"].get("callLegProfile")):
    s.put(API + "calllegprofiles/" + p["@id"], data={"muteSelfAllowed": "false"}, verify=False, timeout=10)
_, clps = get("calllegprofiles")
out["profilesMuteSelf"] = [p.get("muteSelfAllowed") for p in as_list(clps["callLegProfiles"]["callLegProfile"])]

# mod_leg(): mute a call leg of a meeting in progress.
leg = os.environ["CONFAB_LEG"]
r = s.put(API + "calllegs/" + leg, data={"rxAudioMute": "true"}, verify=False, timeout=10)
out["muteStatus"] = r.status_code
_, detail = get("calllegs/" + leg)
out["legMuted"] = detail["callLeg"]["configuration"]["rxAudioMute"]

# conf_count(): the number of calls.
_, calls = get("calls")
out["calls"] = int(calls["calls"]["@total"])

print(json.dumps(out))
