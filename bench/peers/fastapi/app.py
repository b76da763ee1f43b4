# The "seed" stack as a peer of `npm run bench`: FastAPI on uvicorn (uvloop,
# httptools), asyncpg and httpx, written the way the seed's write-ups
# (fastapi-async-patterns-2025.md, fastapi-async-patterns-resilience.md) do it,
# serving the same routes as bench/baseline/server.mjs with the same SQL text,
# the same pool size and the same JSON shapes:
#
#   GET  /health          the write-ups' health facts: status, uptime, memory and CPU via psutil
#   GET  /ready           SELECT 1 on the pool (the orchestrator's readiness wait)
#   GET  /users/{id}      one fixed SELECT on an asyncpg pool of DB_POOL_SIZE connections
#   POST /users           the baseline's INSERT ... RETURNING *; 201, 409 on a duplicate email
#   GET  /profiles/{id}   the user row, posts and comments fanned out by asyncio.gather
#                         (return_exceptions=True: a failed upstream degrades to []), both
#                         upstreams through ONE shared httpx.AsyncClient; no cache (the seed has none)
#
# Environment: DATABASE_URL, DB_POOL_SIZE (10), POSTS_SERVICE_URL, COMMENTS_SERVICE_URL,
# UPSTREAM_MAX_SOCKETS (64 keep-alive connections per upstream, as the baseline's two undici
# pools: the one client gets 64 per upstream), PROFILE_DEADLINE_MS (2000, the client's timeout).
# Run (Debian's uvicorn 0.17; one worker, access log off, as the write-ups' production server):
#
#   python3 -m uvicorn app:app --app-dir bench/peers/fastapi --loop uvloop --http httptools \
#     --workers 1 --no-access-log --host 127.0.0.1 --port 3002
import asyncio
import os
import time

import asyncpg
import httpx
import psutil
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, constr

POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
MAX_SOCKETS = int(os.environ.get("UPSTREAM_MAX_SOCKETS", "64"))
DEADLINE_S = int(os.environ.get("PROFILE_DEADLINE_MS", "2000")) / 1000
POSTS_URL = os.environ.get("POSTS_SERVICE_URL", "http://127.0.0.1:4010").rstrip("/")
COMMENTS_URL = os.environ.get("COMMENTS_SERVICE_URL", "http://127.0.0.1:4010").rstrip("/")

# The baseline's statements (the service's repository read and insert), verbatim.
SELECT_USER = "SELECT id, name, email, created_at, updated_at FROM users WHERE id = $1"
INSERT_USER = (
    "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email, created_at, updated_at"
)
MAX_ID = 2_147_483_647

app = FastAPI(title="seed peer", docs_url=None, redoc_url=None, openapi_url=None)
start_time = time.time()
state = {}


@app.on_event("startup")
async def startup():
    state["pool"] = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    state["client"] = httpx.AsyncClient(
        timeout=DEADLINE_S,
        headers={"accept": "application/json"},
        limits=httpx.Limits(
            max_connections=MAX_SOCKETS * 2, max_keepalive_connections=MAX_SOCKETS * 2
        ),
    )


@app.on_event("shutdown")
async def shutdown():
    await state["client"].aclose()
    await state["pool"].close()


def iso(d):
    # JavaScript's toISOString, as the baseline's JSON has it.
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_dto(r):
    return {
        "id": r["id"],
        "name": r["name"],
        "email": r["email"],
        "createdAt": iso(r["created_at"]),
        "updatedAt": iso(r["updated_at"]),
    }


async def find_user(user_id: int):
    row = await state["pool"].fetchrow(SELECT_USER, user_id)
    return None if row is None else user_dto(row)


@app.get("/health")
async def health_check():
    return {
        "status": "healthy",
        "uptime": time.time() - start_time,
        "memory_usage": psutil.virtual_memory().percent,
        "cpu_usage": psutil.cpu_percent(),
    }


@app.get("/ready")
async def readiness_check():
    try:
        await state["pool"].fetchval("SELECT 1")
        return {"status": "ready"}
    except Exception:
        return JSONResponse({"status": "not ready"}, status_code=503)


@app.get("/users/{user_id}")
async def get_user(user_id: int):
    if not 1 <= user_id <= MAX_ID:
        return JSONResponse({"code": "validation_failed"}, status_code=400)
    user = await find_user(user_id)
    if user is None:
        return JSONResponse({"code": "user_not_found"}, status_code=404)
    return user


class CreateUser(BaseModel):
    name: constr(strip_whitespace=True, min_length=1, max_length=100)
    email: constr(strip_whitespace=True, max_length=254, regex=r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


@app.post("/users", status_code=201)
async def create_user(body: CreateUser):
    try:
        row = await state["pool"].fetchrow(INSERT_USER, body.name, body.email)
    except asyncpg.UniqueViolationError:
        return JSONResponse({"code": "email_taken"}, status_code=409)
    return user_dto(row)


async def get_array(url: str):
    response = await state["client"].get(url)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, list):
        raise ValueError("not an array")
    return body


@app.get("/profiles/{user_id}")
async def get_profile(user_id: int):
    if not 1 <= user_id <= MAX_ID:
        return JSONResponse({"code": "validation_failed"}, status_code=400)
    user, posts, comments = await asyncio.gather(
        find_user(user_id),
        get_array(f"{POSTS_URL}/users/{user_id}/posts"),
        get_array(f"{COMMENTS_URL}/users/{user_id}/comments"),
        return_exceptions=True,
    )
    if isinstance(user, Exception):
        return JSONResponse({"code": "user_service_unavailable"}, status_code=503)
    if user is None:
        return JSONResponse({"code": "user_not_found"}, status_code=404)
    degraded = []
    if isinstance(posts, Exception):
        posts = []
        degraded.append("posts")
    if isinstance(comments, Exception):
        comments = []
        degraded.append("comments")
    return {"user": user, "posts": posts, "comments": comments, "degraded": degraded}
