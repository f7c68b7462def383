"""Helpers the tests (and the benchmarks) share; import them as ``support.<module>``.

* ``needs``: what a group of tests needs from the machine (``pytest.mark.needs``).
* ``ports``, ``wait``, ``web``: free ports, bounded waits, one HTTP GET.
* ``git``: commits and pushes with a fixed author, ``AsyncPush``.
* ``saltcall``: a masterless ``salt-call --local``; ``corpus``: the project engine as
  the integration tests drive it (``Corpus``, tree digests, held pushes).
* ``services``: PowerDNS, an SMTP sink; ``postgresql``: a throwaway cluster;
  ``netns``: a host in a network namespace; ``lxc_cache``: the golden image and the
  wheelhouse; ``leftovers``: what the LXC tests leave, removed at their end.
* ``load``: a bounded request loop against an app.
"""
