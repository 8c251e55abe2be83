#!/usr/bin/python3
"""A vendor SP built on pysaml2 (Debian's python3-pysaml2), for skolbro's
end-to-end test internal/e2e/pysaml2_test.go.

pysaml2 is a SAML implementation the project did not write: it signs the
AuthnRequest, and it verifies the bridge's signatures and decrypts its
EncryptedAssertion with xmlsec1. Nothing here relaxes its checks.

Subcommands (all state lives in WORKDIR; JSON on stdout, errors on stderr,
exit status 1 on failure):

  metadata WORKDIR BASEURL
      Writes WORKDIR/sp-metadata.xml and WORKDIR/sp.json (the base URL, so
      the other subcommands build the same configuration). Needs the PEM
      files sp-signing.{crt,key} and sp-encryption.{crt,key} in WORKDIR.
  login WORKDIR IDP_METADATA_FILE RELAYSTATE
      Prints {"url": ..., "request_id": ...}: a signed (RSA-SHA256)
      HTTP-Redirect AuthnRequest to the IdP in IDP_METADATA_FILE.
  acs WORKDIR IDP_METADATA_FILE REQUEST_ID SAMLRESPONSE_FILE
      Parses the base64 SAMLResponse in SAMLRESPONSE_FILE as an answer to
      REQUEST_ID, requiring signed assertions, and prints what it accepted.
  logout WORKDIR IDP_METADATA_FILE NAME_ID SESSION_INDEX RELAYSTATE
      Prints {"url": ..., "request_id": ...}: a signed (RSA-SHA256)
      HTTP-Redirect LogoutRequest for the session NAME_ID/SESSION_INDEX the
      IdP gave, to the IdP's SingleLogoutService.
  logout_response WORKDIR IDP_METADATA_FILE URL
      Verifies the query signature of the IdP's HTTP-Redirect
      LogoutResponse in URL against the IdP's metadata, parses it, and
      prints its status.
  slo WORKDIR IDP_METADATA_FILE URL NAME_ID
      Verifies and parses the IdP's HTTP-Redirect LogoutRequest in URL; if
      it names NAME_ID, answers Success, else UnknownPrincipal, with a
      signed HTTP-Redirect LogoutResponse; prints {"url": ..., ...}.

Run it with /usr/bin/python3: Debian's packages are not seen by other
interpreters.
"""

import base64
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import STATUS_SUCCESS, STATUS_UNKNOWN_PRINCIPAL
from saml2.s_utils import status_message_factory, success_status_factory
from saml2.sigver import RSACrypto, verify_redirect_signature
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

NS_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"


class UsageError(Exception):
    pass


def config_dict(workdir, base, idp_metadata=None):
    """The SP's configuration. The same dict serves metadata, login and acs,
    so the metadata the bridge trusts is the SP that runs."""
    path = lambda name: os.path.join(workdir, name)
    conf = {
        "entityid": base + "/pysaml2/metadata",
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
        "key_file": path("sp-signing.key"),
        "cert_file": path("sp-signing.crt"),
        "encryption_keypairs": [
            {"key_file": path("sp-encryption.key"), "cert_file": path("sp-encryption.crt")},
        ],
        "metadata_key_usage": "both",
        # Unknown attributes (sisSchoolUnitCode has no entry in pysaml2's
        # bundled maps) are kept under their SAML name instead of dropped.
        "allow_unknown_attributes": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
        "delete_tmpfiles": True,
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(base + "/pysaml2/acs", BINDING_HTTP_POST)],
                    "single_logout_service": [(base + "/pysaml2/slo", BINDING_HTTP_REDIRECT)],
                },
                "logout_requests_signed": True,
                "authn_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": True,
                "allow_unsolicited": False,
                "name_id_policy_format": NAMEID_FORMAT_PERSISTENT,
            },
        },
    }
    if idp_metadata is not None:
        # Local files only: the SP never fetches anything.
        conf["metadata"] = {"local": [idp_metadata]}
    return conf


def load_config(workdir, idp_metadata=None, base=None):
    if base is None:
        with open(os.path.join(workdir, "sp.json")) as f:
            base = json.load(f)["base"]
    conf = SPConfig()
    conf.load(config_dict(workdir, base, idp_metadata))
    return conf


def idp_entity_id(idp_metadata):
    root = ET.parse(idp_metadata).getroot()
    eid = root.get("entityID")
    if not eid:
        raise UsageError("IdP metadata has no entityID")
    return eid


def cmd_metadata(workdir, base):
    conf = load_config(workdir, base=base)
    md = create_metadata_string(None, config=conf, sign=False)
    if isinstance(md, bytes):
        md = md.decode("utf-8")
    with open(os.path.join(workdir, "sp-metadata.xml"), "w") as f:
        f.write(md)
    with open(os.path.join(workdir, "sp.json"), "w") as f:
        json.dump({"base": base}, f)
    return {"entity_id": conf.entityid, "metadata": os.path.join(workdir, "sp-metadata.xml")}


def cmd_login(workdir, idp_metadata, relay_state):
    client = Saml2Client(config=load_config(workdir, idp_metadata))
    req_id, info = client.prepare_for_authenticate(
        entityid=idp_entity_id(idp_metadata),
        relay_state=relay_state,
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    location = dict(info["headers"]).get("Location")
    if not location:
        raise UsageError("pysaml2 made no redirect URL")
    return {"url": location, "request_id": req_id}


def raw_shape(xml_text):
    """Counts the Response's direct Assertion and EncryptedAssertion
    children in the XML as received, before pysaml2 touches it."""
    root = ET.fromstring(xml_text)
    if root.tag != "{%s}Response" % NS_PROTOCOL:
        raise UsageError("not a samlp:Response")
    plain = len(root.findall("{%s}Assertion" % NS_ASSERTION))
    enc = len(root.findall("{%s}EncryptedAssertion" % NS_ASSERTION))
    return plain, enc


def cmd_acs(workdir, idp_metadata, request_id, response_file):
    with open(response_file) as f:
        saml_response = f.read().strip()
    plain, enc = raw_shape(base64.b64decode(saml_response))

    client = Saml2Client(config=load_config(workdir, idp_metadata))
    resp = client.parse_authn_request_response(
        saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
    )
    if resp is None:
        raise UsageError("pysaml2 returned no response")
    assertion = resp.assertion
    if assertion is None:
        raise UsageError("pysaml2 found no assertion")

    # The attributes exactly as the (decrypted, verified) assertion carries
    # them, keyed by FriendlyName (or Name when there is none).
    attributes = {}
    names = {}
    for statement in assertion.attribute_statement:
        for a in statement.attribute:
            key = a.friendly_name or a.name
            vals = attributes.setdefault(key, [])
            for v in a.attribute_value:
                vals.append(v.text or "")
            names[key] = a.name
    name_id = resp.name_id
    session_index = None
    for st in assertion.authn_statement:
        session_index = st.session_index
    return {
        "session_index": session_index,
        "name_id": name_id.text if name_id is not None else None,
        "name_id_format": name_id.format if name_id is not None else None,
        "attributes": attributes,
        "attribute_names": names,
        # pysaml2's own view after its attribute converters.
        "ava": resp.ava,
        "issuer": resp.issuer(),
        "in_response_to": resp.in_response_to,
        "assertion_signed": assertion.signature is not None,
        "response_signed": resp.response.signature is not None,
        "encrypted": enc == 1 and plain == 0,
        "raw_assertions": plain,
        "raw_encrypted_assertions": enc,
    }


def idp_slo(client, idp):
    for srv in client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso"):
        return srv["location"]
    raise UsageError("the IdP has no HTTP-Redirect SingleLogoutService")


def cmd_logout(workdir, idp_metadata, name_id, session_index, relay_state):
    conf = load_config(workdir, idp_metadata)
    client = Saml2Client(config=conf)
    idp = idp_entity_id(idp_metadata)
    dest = idp_slo(client, idp)
    nid = NameID(text=name_id, format=NAMEID_FORMAT_PERSISTENT, name_qualifier=idp, sp_name_qualifier=conf.entityid)
    req_id, req = client.create_logout_request(
        dest, idp, name_id=nid, session_indexes=[session_index] if session_index else None, sign=False
    )
    # The Redirect binding signs the query, not the message.
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(req), dest, relay_state, sign=True, sigalg=SIG_RSA_SHA256)
    location = dict(info["headers"]).get("Location")
    if not location:
        raise UsageError("pysaml2 made no redirect URL")
    return {"url": location, "request_id": req_id}


def verified_query(client, idp, url):
    """The Redirect-binding parameters of url, after the query signature
    verified with one of the IdP's signing certificates."""
    q = dict(parse_qsl(urlparse(url).query, keep_blank_values=True))
    if "Signature" not in q or "SigAlg" not in q:
        raise UsageError("the message is not signed")
    for cert in client.metadata.certs(idp, "idpsso", "signing"):
        if verify_redirect_signature(q, RSACrypto(None), cert=cert):
            return q
    raise UsageError("the query signature does not verify")


def cmd_logout_response(workdir, idp_metadata, url):
    client = Saml2Client(config=load_config(workdir, idp_metadata))
    q = verified_query(client, idp_entity_id(idp_metadata), url)
    resp = client.parse_logout_request_response(q["SAMLResponse"], BINDING_HTTP_REDIRECT)
    if resp is None:
        raise UsageError("pysaml2 returned no logout response")
    code = resp.response.status.status_code
    sub = code.status_code.value if code.status_code is not None else None
    return {"status": code.value, "sub_status": sub, "in_response_to": resp.in_response_to, "issuer": resp.issuer()}


def cmd_slo(workdir, idp_metadata, url, name_id):
    client = Saml2Client(config=load_config(workdir, idp_metadata))
    idp = idp_entity_id(idp_metadata)
    q = verified_query(client, idp, url)
    req = client.parse_logout_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
    if req is None:
        raise UsageError("pysaml2 returned no logout request")
    msg = req.message
    if msg.name_id is not None and msg.name_id.text == name_id:
        status = success_status_factory()
    else:
        status = status_message_factory("Wrong user", STATUS_UNKNOWN_PRINCIPAL)
    resp = client.create_logout_response(msg, [BINDING_HTTP_REDIRECT], status=status, sign=False)
    dest = idp_slo(client, idp)
    info = client.apply_binding(
        BINDING_HTTP_REDIRECT, str(resp), dest, q.get("RelayState", ""), response=True, sign=True, sigalg=SIG_RSA_SHA256
    )
    return {
        "url": dict(info["headers"]).get("Location"),
        "request_id": msg.id,
        "name_id": msg.name_id.text if msg.name_id is not None else None,
        "session_indexes": [si.text for si in msg.session_index],
        "answered": status.status_code.value,
    }


COMMANDS = {
    "metadata": (cmd_metadata, 2),
    "login": (cmd_login, 3),
    "acs": (cmd_acs, 4),
    "logout": (cmd_logout, 5),
    "logout_response": (cmd_logout_response, 3),
    "slo": (cmd_slo, 4),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print("usage: sp.py metadata|login|acs|logout|logout_response|slo WORKDIR ...", file=sys.stderr)
        return 2
    fn, nargs = COMMANDS[argv[1]]
    if len(argv) != 2 + nargs:
        print("usage: sp.py %s needs %d arguments" % (argv[1], nargs), file=sys.stderr)
        return 2
    try:
        out = fn(*argv[2:])
    except Exception as exc:  # report every refusal by its type and message
        print("%s: %s" % (type(exc).__name__, exc), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
