"""The project engine: everything that happens for one project on one host."""
