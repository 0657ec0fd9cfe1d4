import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaleenv_site.settings")
django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does

from scaleenv_site.handlers import SessionCallsFirstHandler  # noqa: E402 - needs the apps loaded

# Django's WSGIHandler, with the agents' plain session calls answered through a short middleware chain.
application = SessionCallsFirstHandler()

# Django, DRF and the project's modules are loaded now and live as long as the process: take them out
# of the cyclic collector's sight, and run its youngest generation less often (a request allocates
# thousands of short-lived objects). With the defaults the collector took ~5 % of a server's CPU under
# load (bench_sessions, profiled with perf), mostly re-scanning these long-lived objects.
gc.freeze()
gc.set_threshold(20_000, 20, 20)
