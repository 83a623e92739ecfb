"""The ASGI apps both shells serve: the Convex HTTP API (`api.py`, with the
admin routes) and the HTTP actions (`site.py`). The dev server runs them on
uvicorn; the AWS shell runs them behind API Gateway through mangum."""
