"""The AWS shell: Lambda entry points over the same core as the dev server.

- `http.py`: the Convex HTTP API and the HTTP actions behind API Gateway's
  HTTP API, through mangum (the same Starlette apps the dev server serves).

Each handler builds its backend on the first invocation of a container and
keeps it (`backend.py`); configuration comes from the environment
(`settings.py`).
"""
