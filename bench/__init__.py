"""`python -m bench`: one end-to-end performance run of tales-api.

Real PostgreSQL (a fresh database, dropped at the end), a throwaway redis-server, real uvicorn
processes, wrk (or a Python load generator) in separate processes. See `bench/runner.py`.
"""
