"""The benchmark server's URLs: every URL of the portal, plus ``/bench/floor`` (bench.floor).

Mounted only by ``bench.settings``; production never routes to the floor view.
"""

from django.urls import include, path

from bench.floor import floor

urlpatterns = [
    path("bench/floor", floor, name="bench_floor"),
    path("", include("blacklist_portal.urls")),
]
