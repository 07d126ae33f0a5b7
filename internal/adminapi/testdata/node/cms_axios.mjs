// A CMS API client as Node tools for CMS are: axios with its defaults (its Accept is
// "application/json, text/plain, */*"), Basic auth, URLSearchParams bodies, xml2js to read
// the answers (from internal/adminapi's TestAxiosXml2js).
//
// Environment: CONFAB_API (https://host:port), CONFAB_USER, CONFAB_PASS, CONFAB_CALL (a call
// in progress). Prints one JSON document.
import https from "node:https";
import axios from "axios";
import { parseStringPromise } from "xml2js";

const api = axios.create({
  baseURL: process.env.CONFAB_API + "/api/v1",
  auth: { username: process.env.CONFAB_USER, password: process.env.CONFAB_PASS },
  httpsAgent: new https.Agent({ rejectUnauthorized: false }),
  timeout: 10000,
});
const out = {};

// Create a space; read it back.
let r = await api.post("/coSpaces", new URLSearchParams({ name: "From axios", uri: "axios.room", callId: "7770001" }));
out.created = r.status;
const location = r.headers.location;
r = await api.get(location.replace("/api/v1", ""));
out.contentType = r.headers["content-type"];
const space = await parseStringPromise(r.data);
out.spaceName = space.coSpace.name[0];
out.spaceId = space.coSpace.$.id;

// A JSON body (axios's default for an object) is not a form: the failure says so.
try {
  await api.post("/coSpaces", { name: "json" });
  out.jsonStatus = 200;
} catch (e) {
  out.jsonStatus = e.response.status;
  const fd = await parseStringPromise(e.response.data);
  out.jsonFailure = fd.failureDetails.parameterError[0].$;
}

// Page the calls' legs and mute them all at once, then read one back.
const call = process.env.CONFAB_CALL;
r = await api.get(`/calls/${call}/callLegs/`);
const legs = await parseStringPromise(r.data);
out.legs = Number(legs.callLegs.$.total);
const legIds = (legs.callLegs.callLeg || []).map((l) => l.$.id);
r = await api.put(`/calls/${call}/participants/*`, new URLSearchParams({ rxAudioMute: "true", layout: "allEqual" }));
out.muteAll = r.status;
r = await api.get(`/callLegs/${legIds[0]}`);
const leg = await parseStringPromise(r.data);
out.legMuted = leg.callLeg.configuration[0].rxAudioMute[0];
out.legLayout = leg.callLeg.status[0].layout[0];

// The errors a tool branches on.
try {
  await api.get("/callLegs/nope");
} catch (e) {
  out.missingStatus = e.response.status;
  out.missingFailure = Object.keys((await parseStringPromise(e.response.data)).failureDetails);
}
console.log(JSON.stringify(out));
