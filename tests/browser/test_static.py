"""The dashboard's routes without a browser: HTML shells, static files (no path tricks), plotly.js from
the installed package with cache headers, and none of them in the OpenAPI schema."""

from __future__ import annotations

import importlib.resources

import httpx
from harness import OfflineService


def test_pages_static_files_and_plotly_are_served(offline_service: OfflineService) -> None:
    with httpx.Client(base_url=offline_service.url, timeout=30) as client:
        for path, script in [
            ("/", "searches.js"),
            ("/searches/" + "a" * 32, "search.js"),
            ("/searches/" + "a" * 32 + "/trials/3", "trial.js"),
        ]:
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert f'src="/static/{script}"' in page.text
            assert "http://" not in page.text and "https://" not in page.text  # no CDN, no external fonts

        script = client.get("/static/search.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert script.headers["cache-control"] == "no-cache"
        again = client.get("/static/search.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

        for bad in ["/static/..%2Fpages.py", "/static/.hidden", "/static/missing.js", "/static/pages.py"]:
            response = client.get(bad)
            assert response.status_code == 404, bad
            assert response.headers["content-type"].startswith("application/problem+json")

        shipped = (importlib.resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
        raw = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"}, follow_redirects=True)
        assert raw.status_code == 200 and raw.content == shipped  # httpx decompresses
        assert raw.headers["content-encoding"] == "gzip"
        assert "max-age=" in raw.headers["cache-control"]
        plain = httpx.get(
            f"{offline_service.url}/static/plotly.min.js", headers={"Accept-Encoding": "identity"}
        )
        assert plain.content == shipped and "content-encoding" not in plain.headers

        paths = set(client.get("/openapi.json").json()["paths"])
        dashboard = {"/", "/searches/{search_id}", "/searches/{search_id}/trials/{number}", "/static/{name}"}
        assert not paths & (dashboard | {"/static/plotly.min.js"}), paths
