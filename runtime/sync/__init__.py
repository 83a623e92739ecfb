"""Reactivity: the sync protocol's sessions, live queries and their read
sets, invalidated from the change feed (in-process hub for the dev server,
store-backed state for the Lambdas)."""
