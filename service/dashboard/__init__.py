"""The web dashboard: HTML pages, their JavaScript and CSS, and the bundled Plotly (no CDN)."""
