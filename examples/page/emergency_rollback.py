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
