"""A user's own module, as the tests use it: plug-ins named ``tests.plugins.user:<function>``."""
