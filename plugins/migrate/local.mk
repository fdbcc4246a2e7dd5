# migrate plugin: Alembic migrations on PostgreSQL (libpq)
if BUILD_PLUGIN_MIGRATE
plugin_PROGRAMS += plugins/migrate_plugin.so
plugins_migrate_plugin_so_SOURCES = plugins/migrate/migrate.c
plugins_migrate_plugin_so_CFLAGS = $(PLUGIN_CC_FLAGS) $(MIGRATE_DEPS_CFLAGS)
plugins_migrate_plugin_so_LDFLAGS = $(PLUGIN_LD_FLAGS)
plugins_migrate_plugin_so_LDADD = $(MIGRATE_DEPS_LIBS)
endif

# the example app's migrations (used by the tests)
EXTRA_DIST += \
	contrib/examples/flaskapp/migrations/README \
	contrib/examples/flaskapp/migrations/alembic.ini \
	contrib/examples/flaskapp/migrations/env.py \
	contrib/examples/flaskapp/migrations/script.py.mako \
	contrib/examples/flaskapp/migrations/versions/0001_create_items.py \
	contrib/examples/flaskapp/migrations/versions/0002_items_note.py
EXTRA_DIST += plugins/migrate/README.md
