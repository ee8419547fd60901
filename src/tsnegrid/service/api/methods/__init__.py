"""The v2 methods, each implemented once and free of any transport: a REST route
(``api/routes``) and a gRPC method (``api/grpc``) parse their request into the same schema, call
the same function here and send back what it answers (a Clarifai JSON body and its HTTP status).
"""
