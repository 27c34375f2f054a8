"""The private names of other libraries that hf_lpselect relies on, in one place: one module per library.

Each patch says what it touches and why, and has a canary in ``tests/test_compat.py`` that fails, naming the
upstream version, when that version changes the thing patched. Like :mod:`hf_lpselect.core`, nothing here
imports a stage, and nothing imports the library it patches before it is used.
"""
