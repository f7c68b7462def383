"""What a domain and its records must be, checked with dnspython before anything changes.

Names are given in full (``www.example.org``, with or without the final dot; ``@`` is
the domain itself) and kept lower case without the final dot, as the controller keeps
the environments' records. A name outside the domain is refused rather than read as
relative: ``mail.other.org`` quietly becoming ``mail.other.org.example.org`` is the
classic zone file mistake. A record's content is parsed by dnspython for its type and
kept in dnspython's text form (names absolute, TXT quoted), which PowerDNS reads as is
and answers back unchanged, so both sides compare as written.
"""

import re

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from mc_project.errors import CorpusError

RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "MX", "SRV", "SSHFP")
NAME_ONLY_TYPES = ("CNAME", "MX", "SRV")
MAX_TTL = 2 ** 31 - 1  # RFC 2181
DEFAULT_TTL = 300
MAX_NAMESERVERS = 13
TXT_CHUNK = 255  # bytes in one character-string
# Host names' letters, and '_' for service names (_sip._tcp, DKIM's _domainkey).
LABEL_RE = re.compile(rb"[a-z0-9_-]+")


def _parse_name(text, what):
    if not isinstance(text, str) or not text.strip():
        raise CorpusError("The {} is empty.".format(what))
    try:
        name = dns.name.from_text(text.strip().lower(), origin=dns.name.root)
    except dns.exception.DNSException as exc:
        raise CorpusError("{!r} is not a valid {}: {}.".format(text, what, _reason(exc))) from None
    if name == dns.name.root:
        raise CorpusError("The {} cannot be the DNS root.".format(what))
    for label in name.labels[:-1]:
        if label != b"*" and not LABEL_RE.fullmatch(label):
            raise CorpusError("{!r} is not a valid {}: use letters, digits, '-' and '_' between the dots.".format(
                text, what))
    return name


def shown(name):
    """A dnspython name as the inventory keeps it: lower case, no final dot."""
    return name.to_text(omit_final_dot=True).lower()


def domain_name(text):
    """A domain's name (``example.org``): at least two labels, no wildcard."""
    name = _parse_name(text, "domain name")
    if len(name.labels) < 3:  # the last label is the root's empty one
        raise CorpusError("Domain {} is a top-level domain; give a domain under one, e.g. example.{}.".format(
            shown(name), shown(name)))
    if name.is_wild() or any(label == b"*" for label in name.labels):
        raise CorpusError("Domain name {} cannot hold a wildcard.".format(shown(name)))
    return shown(name)


def nameservers(names):
    """A domain's NS set: one or more host names, sorted, without repeats."""
    if not isinstance(names, (list, tuple)) or not names:
        raise CorpusError("A domain needs at least one name server (its NS set).")
    if len(names) > MAX_NAMESERVERS:
        raise CorpusError("A domain has at most {} name servers; {} were given.".format(MAX_NAMESERVERS, len(names)))
    found = set()
    for text in names:
        name = _parse_name(text, "name server")
        if name.is_wild():
            raise CorpusError("Name server {} cannot be a wildcard.".format(shown(name)))
        found.add(shown(name))
    return sorted(found)


def record_name(text, domain):
    """``text`` (``@``, or a full name inside ``domain``) as the inventory keeps it."""
    zone = dns.name.from_text(domain, origin=dns.name.root)
    if isinstance(text, str) and text.strip() == "@":
        return domain
    name = _parse_name(text, "record name")
    if not name.is_subdomain(zone):
        raise CorpusError("{} is not inside domain {}; give the full name, e.g. www.{}.".format(
            shown(name), domain, domain))
    if any(label == b"*" for label in name.labels[1:]):
        raise CorpusError("In {} the wildcard '*' may only be the first label.".format(shown(name)))
    return shown(name)


def record_type(text):
    rtype = text.strip().upper() if isinstance(text, str) else ""
    if rtype not in RECORD_TYPES:
        raise CorpusError("Record type {!r} is not one of {}.".format(text, ", ".join(RECORD_TYPES)))
    return rtype


def ttl(value):
    if value is None:
        return DEFAULT_TTL
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TTL:
        raise CorpusError("A TTL is a number of seconds from 1 to {}; got {!r}.".format(MAX_TTL, value))
    return value


def parse_content(rtype, text):
    """The dnspython rdata of ``text`` for ``rtype`` (names in it are absolute)."""
    try:
        rdtype = dns.rdatatype.from_text(rtype)
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False)
    except (dns.exception.DNSException, ValueError, TypeError) as exc:
        raise CorpusError("{!r} is not a valid {} record: {}.".format(text, rtype, _reason(exc))) from None


def content(rtype, text):
    """``text`` checked for ``rtype`` and written as dnspython (and PowerDNS) write it.

    A TXT content not in quotes is one text, quoted here (and cut in 255-byte strings)."""
    if not isinstance(text, str) or not text.strip():
        raise CorpusError("A record of type {} needs a content.".format(rtype))
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise CorpusError("A record's content is one line.")
    if rtype == "TXT" and not text.startswith('"'):
        data = text.encode("utf-8")
        chunks = [data[start:start + TXT_CHUNK] for start in range(0, len(data), TXT_CHUNK)]
        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
    else:
        rdata = parse_content(rtype, text)
    if rtype == "CNAME" and rdata.target == dns.name.root:
        raise CorpusError("A CNAME record cannot point at the DNS root.")
    # Only names are in these types' text, and names compare without case.
    return rdata.to_text().lower() if rtype in NAME_ONLY_TYPES else rdata.to_text()


def canonical(rtype, text):
    """One text per record of ``rtype``, whoever wrote it (case of names, spacing, final
    dots, AAAA zeros aside): what the drift check compares. A type or content dnspython
    cannot read is compared as its words."""
    try:
        rdata = parse_content(rtype, text)
    except (CorpusError, dns.exception.DNSException):
        return " ".join(str(text).split()).lower()
    return rdata.to_text().lower() if rtype in NAME_ONLY_TYPES + ("NS",) else rdata.to_text()


def check_srv_name(name):
    labels = name.split(".")
    if len(labels) < 3 or not labels[0].startswith("_") or not labels[1].startswith("_"):
        raise CorpusError("An SRV record's name is _service._protocol.name, e.g. _sip._tcp.example.org; "
                          "got {}.".format(name))


def check_cname_alone(name, rtype, domain, existing_types):
    """CNAME exclusivity (RFC 1034): a CNAME is the only record of its name.

    ``existing_types`` are the types the name holds already (the record changed aside)."""
    if rtype == "CNAME" and name == domain:
        raise CorpusError("Domain {} itself cannot be a CNAME: it holds the SOA and NS records.".format(domain))
    if rtype == "CNAME" and existing_types:
        raise CorpusError("{} already has {} record(s); a CNAME must be the only record of its name.".format(
            name, ", ".join(sorted(existing_types))))
    if rtype != "CNAME" and "CNAME" in existing_types:
        raise CorpusError("{} already is a CNAME; a CNAME must be the only record of its name.".format(name))


def _reason(exc):
    text = " ".join(str(exc).split()).rstrip(".")
    if not text or text == type(exc).__name__:
        text = (exc.__doc__ or type(exc).__name__).strip().splitlines()[0].rstrip(".")
    return text[:1].lower() + text[1:]
