"""A second renderer of real people, for evaluation only (never for training).

It shares no code with sdk/sim: its own rasteriser (raster.py), sensor models (sensor.py),
scenes (scene.py) and real face data (assets.py, people.py; licences in data/ and in
docs/independent_renderer.md). Recordings go through the SDK's own capture writer and session.
"""
