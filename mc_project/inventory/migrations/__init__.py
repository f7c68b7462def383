"""Alembic migrations of the inventory (run through ``mc_project.inventory.db.init``)."""
