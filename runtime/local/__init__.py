"""The dev server: the embedded adapters wired together, file watching and
reloads, the call log (`python -m runtime dev`)."""
