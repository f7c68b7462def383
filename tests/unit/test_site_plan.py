"""A site's blueprint checked (one sentence per mistake, naming its place) and compared with
the inventory: + for what is missing, ~ for a size, projects, pillar or records, -/+ for a
type, node or image, - for what the site owns and the blueprint dropped; the fingerprint
changes with the rows the plan read; the plan reads in a fixed number of queries."""

import pytest
from sqlalchemy import event

from mc_project.controller import site_blueprint, site_plan
from mc_project.inventory import db
from mc_project.inventory.fleet_rules import Conflict
from mc_project.inventory.models import ComputeNode, Environment, Pillar, Project, Tenant
from mc_project.inventory.site_models import SiteObject

SITE = """
site: shop
environments:
  - {name: web, type: dev, node: "node*", size: 1G, projects: [{name: web, pillar: {workers: 2}}]}
  - {name: api, type: dev, size: 1024}
  - {name: db, type: prod}
domains:
  - name: shop.example
    nameservers: [ns1.example.net]
    records: [{name: www, type: A, content: 192.0.2.1}]
"""


@pytest.fixture
def url(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "inventory.sqlite")
    db.init(url)
    with db.session(url) as sess:
        sess.add(Tenant(name="alpha"))
        sess.add(ComputeNode(name="node1", address="192.0.2.100", slots=5, minion_id="node1"))
        sess.add(ComputeNode(name="other", address="192.0.2.101", slots=5, minion_id="other"))
    yield url
    db.dispose()


def add_env(sess, name, node="node1", env_type="dev", size=1024, projects=("web",), owned=True, spec=None):
    node_id = sess.scalar(ComputeNode.__table__.select().with_only_columns(ComputeNode.id)
                          .where(ComputeNode.name == node))
    env = Environment(name=name, env_type=env_type, node_id=node_id, disk_size_mb=size, status="active",
                      minion_id=name + ".corpus.test", tenant_id=1, project=projects[0])
    env.projects = [Project(name=p) for p in projects]
    sess.add(env)
    sess.add(Pillar(minion_id=name + ".corpus.test", data={"makina-projects": {
        p: {"env": env_type, "bind": "0.0.0.0", "port": 8000} for p in projects}}))
    if owned:
        sess.add(SiteObject(site="shop", tenant_id=1, kind="environment", name=name, spec=spec or {
            "name": name, "type": env_type, "node": None, "size": size, "image": None,
            "projects": [{"name": p, "git": None, "pillar": {}} for p in projects]}))


def plan(url, text=SITE):
    with db.session(url) as sess:
        return site_plan.make(sess, site_blueprint.parse(text), 1)


def ops(actions):
    return [(action["op"], action["kind"], action["name"]) for action in actions]


def test_an_empty_inventory_gets_everything_added(url):
    actions, _print = plan(url)
    assert ops(actions) == [("+", "environment", "web"), ("+", "environment", "api"), ("+", "environment", "db"),
                            ("+", "domain", "shop.example")]
    assert site_plan.summary_line(actions) == "Plan: 4 to add, 0 to change, 0 to destroy."
    assert actions[0]["step"] == "site:create_env" and actions[0]["spec"]["size"] == 1024


def test_changes_in_place_replacements_and_destroys(url):
    with db.session(url) as sess:
        add_env(sess, "web", size=512)  # size and pillar differ: ~
        add_env(sess, "api", projects=("api",))  # same
        add_env(sess, "db", env_type="dev", projects=("db",))  # type differs: -/+
        add_env(sess, "old")  # owned, dropped from the blueprint: -
    actions, _print = plan(url)
    assert ops(actions) == [("-", "environment", "old"), ("-/+", "environment", "db"), ("~", "environment", "web"),
                            ("+", "domain", "shop.example")]
    web = actions[2]
    assert web["changes"] == {"size": [512, 1024], "pillar:web": [{}, {"workers": 2}]}
    assert actions[1]["changes"] == {"type": ["dev", "prod"]}
    assert site_plan.summary_line(actions) == "Plan: 2 to add, 1 to change, 2 to destroy."


def test_a_node_no_longer_matching_or_a_new_image_replaces(url):
    with db.session(url) as sess:
        add_env(sess, "web", node="other", projects=("web",))
        add_env(sess, "api", projects=("api",), spec={"name": "api", "type": "dev", "node": None, "size": 1024,
                                                     "image": "old", "projects": []})
    actions, _print = plan(url, SITE.replace("size: 1024", "size: 1024, image: new"))
    by_name = {action["name"]: action for action in actions}
    assert by_name["web"]["op"] == "-/+" and by_name["web"]["changes"]["node"] == ["other", "node*"]
    assert by_name["api"]["op"] == "-/+" and by_name["api"]["changes"]["image"] == ["old", "new"]


def test_objects_of_others_are_refused(url):
    with db.session(url) as sess:
        add_env(sess, "web", owned=False)
    with pytest.raises(Conflict, match="The environment web exists and is not site shop's"):
        plan(url)
    with db.session(url) as sess:
        sess.add(SiteObject(site="blog", tenant_id=1, kind="environment", name="web", spec={}))
    with pytest.raises(Conflict, match="belongs to site blog"):
        plan(url)


def test_a_selector_matching_no_node_is_refused(url):
    with pytest.raises(Exception, match="matches no compute node"):
        plan(url, SITE.replace('"node*"', '"gpu*"'))


def test_the_fingerprint_follows_the_rows_read(url):
    _actions, first = plan(url)
    assert plan(url)[1] == first
    with db.session(url) as sess:
        add_env(sess, "unrelated", owned=False)
    assert plan(url)[1] == first  # a row the plan did not read
    with db.session(url) as sess:
        add_env(sess, "api", owned=True, projects=("api",))
    assert plan(url)[1] != first


def test_the_plan_reads_in_a_fixed_number_of_queries(url):
    with db.session(url) as sess:
        for number in range(40):
            add_env(sess, "env{}".format(number), projects=("p{}".format(number),))
    text = "site: shop\nenvironments:\n" + "".join(
        "  - {{name: env{0}, projects: [{{name: p{0}}}]}}\n".format(number) for number in range(40))
    statements = []
    engine = db.engine(url)
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        actions, _print = plan(url, text)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert actions == []
    assert len(statements) <= 8


@pytest.mark.parametrize("text, sentence", [
    ("site: shop\nenvironments:\n  - {name: web, type: test}\n",
     "environments[0].type: 'test' is not one of dev, staging, prod."),
    ("site: shop\nenvironments:\n  - {name: web, size: 2X}\n",
     "environments[0].size: '2X' is not a size: give MiB, or 512M, 2G, 1.5G."),
    ("site: shop\nenvironments:\n  - {name: web, colour: red}\n", "environments[0].colour: is not a known key."),
    ("site: shop\nenvironments:\n  - {name: web}\n  - {name: web}\n",
     "environments[1].name: web is also environments[0]."),
    ("site: shop\ndomains:\n  - {name: shop.example, nameservers: [ns1.example.net], records: "
     "[{type: A, content: 300.1.1.1}]}\n", "domains[0].records[0]: '300.1.1.1' is not a valid A record"),
    ("site: shop\nchecks:\n  - {name: up, kind: http, host: web}\n",
     "checks[0].host: web is not an environment of this site."),
    ("site: Shop\n", "site: 'Shop' is not a site name"),
    ("- a\n", "The blueprint is a mapping"),
])
def test_each_mistake_is_one_sentence_naming_its_place(text, sentence):
    with pytest.raises(site_blueprint.BlueprintError) as raised:
        site_blueprint.parse(text)
    assert len(raised.value.mistakes) == 1
    assert raised.value.mistakes[0].startswith(sentence)


def test_every_mistake_is_told_at_once():
    with pytest.raises(site_blueprint.BlueprintError) as raised:
        site_blueprint.parse("site: shop\nenvironments:\n  - {name: Web, type: test, size: -1}\n")
    assert len(raised.value.mistakes) == 3
