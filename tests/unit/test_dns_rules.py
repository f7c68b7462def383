"""What a domain and its records must be (dnspython's reading of each type), and the
drift check's comparison of contents written in different ways."""

import pytest

from mc_project.errors import CorpusError
from mc_project.inventory import dns_rules


def refused(function, *args):
    with pytest.raises(CorpusError) as info:
        function(*args)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")
    return message


@pytest.mark.parametrize("rtype, given, kept", [
    ("A", "192.0.2.1", "192.0.2.1"),
    ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
    ("CNAME", "Target.Example.org", "target.example.org."),
    ("MX", "10 Mail.example.org.", "10 mail.example.org."),
    ("SRV", "10 5 5060 sip.example.org", "10 5 5060 sip.example.org."),
    ("SSHFP", "1 2 " + "AB" * 32, "1 2 " + "ab" * 32),
    ("TXT", "v=spf1 -all", '"v=spf1 -all"'),
    ("TXT", 'say "hi"', '"say \\"hi\\""'),
    ("TXT", '"two" "strings"', '"two" "strings"'),
])
def test_contents_are_kept_as_dnspython_writes_them(rtype, given, kept):
    assert dns_rules.content(rtype, given) == kept


def test_a_long_txt_is_cut_in_strings_of_255_bytes():
    kept = dns_rules.content("TXT", "x" * 300)
    assert kept == '"{}" "{}"'.format("x" * 255, "x" * 45)


@pytest.mark.parametrize("rtype, given, expected", [
    ("A", "192.0.2.300", "'192.0.2.300' is not a valid A record"),
    ("A", "www.example.org", "is not a valid A record"),
    ("AAAA", "192.0.2.1", "is not a valid AAAA record"),
    ("MX", "mail.example.org", "'mail.example.org' is not a valid MX record"),
    ("SRV", "1 2 sip.example.org", "is not a valid SRV record"),
    ("SSHFP", "1 2 abcd", "is not a valid SSHFP record: fingerprint length inconsistent"),
    ("SSHFP", "1 2 zz", "is not a valid SSHFP record"),
    ("CNAME", ".", "A CNAME record cannot point at the DNS root"),
    ("A", "   ", "A record of type A needs a content"),
    ("TXT", "a\nb", "A record's content is one line"),
])
def test_bad_contents_are_one_sentence(rtype, given, expected):
    assert expected in refused(dns_rules.content, rtype, given)


def test_names_are_full_and_inside_the_domain():
    assert dns_rules.record_name("WWW.Example.org.", "example.org") == "www.example.org"
    assert dns_rules.record_name("@", "example.org") == "example.org"
    assert dns_rules.record_name("*.dev.example.org", "example.org") == "*.dev.example.org"
    assert dns_rules.record_name("_sip._tcp.example.org", "example.org") == "_sip._tcp.example.org"
    assert refused(dns_rules.record_name, "www", "example.org") == (
        "www is not inside domain example.org; give the full name, e.g. www.example.org.")
    assert "mail.other.org is not inside" in refused(dns_rules.record_name, "mail.other.org", "example.org")
    assert "not inside" in refused(dns_rules.record_name, "badexample.org", "example.org")
    assert "may only be the first label" in refused(dns_rules.record_name, "a.*.example.org", "example.org")
    assert "a DNS label is empty" in refused(dns_rules.record_name, "a..example.org", "example.org")
    assert "> 63 octets" in refused(dns_rules.record_name, "x" * 64 + ".example.org", "example.org")
    assert "use letters, digits" in refused(dns_rules.record_name, "a b.example.org", "example.org")
    assert "is empty" in refused(dns_rules.record_name, "", "example.org")


def test_domains_nameservers_types_and_ttls():
    assert dns_rules.domain_name("Example.ORG.") == "example.org"
    assert "top-level domain" in refused(dns_rules.domain_name, "org")
    assert "wildcard" in refused(dns_rules.domain_name, "*.example.org")
    assert "DNS root" in refused(dns_rules.domain_name, ".")
    assert dns_rules.nameservers(["NS2.example.net.", "ns1.example.net", "ns2.example.net"]) == [
        "ns1.example.net", "ns2.example.net"]
    assert "at least one name server" in refused(dns_rules.nameservers, [])
    assert "at most 13" in refused(dns_rules.nameservers, ["ns{}.example.net".format(i) for i in range(14)])
    assert dns_rules.record_type(" aaaa ") == "AAAA"
    assert refused(dns_rules.record_type, "NS") == (
        "Record type 'NS' is not one of A, AAAA, CNAME, TXT, MX, SRV, SSHFP.")
    assert dns_rules.ttl(None) == 300 and dns_rules.ttl(60) == 60
    for bad in (0, -1, 2 ** 31, True, "60"):
        assert "A TTL is a number of seconds" in refused(dns_rules.ttl, bad)
    assert "_service._protocol" in refused(dns_rules.check_srv_name, "sip.example.org")


def test_cname_is_alone_at_its_name():
    dns_rules.check_cname_alone("www.example.org", "CNAME", "example.org", set())
    dns_rules.check_cname_alone("www.example.org", "A", "example.org", {"A", "TXT"})
    assert refused(dns_rules.check_cname_alone, "www.example.org", "CNAME", "example.org", {"A"}) == (
        "www.example.org already has A record(s); a CNAME must be the only record of its name.")
    assert "already is a CNAME" in refused(dns_rules.check_cname_alone, "www.example.org", "TXT", "example.org",
                                           {"CNAME"})
    assert "already has CNAME" in refused(dns_rules.check_cname_alone, "www.example.org", "CNAME", "example.org",
                                          {"CNAME"})
    assert "itself cannot be a CNAME" in refused(dns_rules.check_cname_alone, "example.org", "CNAME",
                                                 "example.org", set())


def test_contents_compare_as_records_not_as_text():
    assert dns_rules.canonical("AAAA", "2001:DB8:0::1") == dns_rules.canonical("AAAA", "2001:db8::1")
    assert dns_rules.canonical("MX", "10 Mail.Example.org.") == dns_rules.canonical("MX", "10  mail.example.org.")
    assert dns_rules.canonical("NS", "NS1.example.net.") == dns_rules.canonical("NS", "ns1.example.net.")
    assert dns_rules.canonical("TXT", '"A"') != dns_rules.canonical("TXT", '"a"')
    # A type dnspython does not know (PowerDNS's LUA) is compared as its words.
    assert dns_rules.canonical("LUA", "A  \"ifportup(443, {'192.0.2.1'})\"") == "a \"ifportup(443, {'192.0.2.1'})\""
