"""A local web page for editing a photo's semantic map and seeing the
colorization follow (the Qt application of "Semantic-Driven Colorization",
as a web page): `python -m colorjax.editor --workdir=W`.

engine.py: what the server asks of a model; server.py: the Flask app;
static/: the page (one HTML file, one style sheet, its script as native ES
modules by concern with editor.js the entry; no build step and nothing
fetched from the network).
"""
