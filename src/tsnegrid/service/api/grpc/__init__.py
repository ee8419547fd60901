"""The v2 API over gRPC (``clarifai.api.V2``), beside the REST routes, for today's clients."""
