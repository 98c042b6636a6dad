# The product page's "Emergency Rollback" example, unchanged but for BASE.
# Local stack: HEBBRIX_API_KEY=$(cat .local/admin-key) .venv/bin/python examples/emergency_rollback.py
import os

import requests

BASE = os.environ.get("POLICYHUB_BASE", "http://127.0.0.1:3000/v1")
H = {"Authorization": f"Bearer {os.environ['HEBBRIX_API_KEY']}"}

# POST /v1/policies/rollback — restore a previous version to production
# Requires admin role + Pro tier. Both version and agent_type are required.
r = requests.post(
    f"{BASE}/policies/rollback",
    headers=H,
    json={
        "version": "v1.2.4",
        "agent_type": "memory_manager",
        "reason": "regression in retrieval quality",  # optional, logged for audit
    },
)
result = r.json()

print(f"Rolled back to version: {result['version']}")
print(f"Promoted at: {result.get('promoted_at')}")
