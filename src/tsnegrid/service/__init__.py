"""The visualization service: a Clarifai-v2-shaped HTTP API over the pipeline library.

Nothing heavy is imported here; ``tsnegrid.service.app.create_app`` builds the ASGI app.
"""
