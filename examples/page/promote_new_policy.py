# POST /v1/policies/compare — side-by-side eval of baseline vs candidate
r = requests.post(
    f"{BASE}/policies/compare",
    headers=H,
    json={
        "baseline_version": "v1.2.4",
        "candidate_version": "v1.2.5",
        "agent_type": "memory_manager",
    },
)
comparison = r.json()

print(f"Improvement: {comparison['is_improvement']}")
print(f"Recommendation: {comparison['recommendation']}")

# If the candidate wins, promote it (POST /v1/policies/promote)
if comparison["is_improvement"]:
    r = requests.post(
        f"{BASE}/policies/promote",
        headers=H,
        json={"version": "v1.2.5", "agent_type": "memory_manager"},
    )
    print("Promoted v1.2.5 to production!")
else:
    print("New version doesn't perform better — keeping current.")
