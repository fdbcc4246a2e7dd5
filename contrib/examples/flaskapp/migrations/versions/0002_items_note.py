"""items: add the nullable column note

An additive change (seed 16.8.1): the column is nullable and has no
default to backfill, so code that does not know it keeps working while a
rolling update replaces the old replicas.

Revision ID: 0002_items_note
Revises: 0001_create_items
Create Date: 2025-10-21 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_items_note"
down_revision = "0001_create_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("note", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("items", "note")
