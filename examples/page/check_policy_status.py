import os
import requests

BASE = "https://api.hebbrix.com/v1"
H = {"Authorization": f"Bearer {os.environ['HEBBRIX_API_KEY']}"}

# GET /v1/policies/status — current production policy
r = requests.get(f"{BASE}/policies/status", headers=H)
status = r.json()

prod = status.get("production")
if prod:
    print(f"Current production version: {prod['version']}")
    print(f"Promoted at: {prod.get('promoted_at')}")
    print(f"Metrics: {prod.get('metrics', {})}")
print(f"Total versions: {status['total_versions']}")

# GET /v1/policies — paginated list of trained policy versions
r = requests.get(f"{BASE}/policies", headers=H)
page = r.json()
for policy in page["items"]:
    tag = "ACTIVE" if policy["status"] == "production" else policy["status"].upper()
    print(f"Version {policy['version']}{tag}")
if page["has_more"]:
    # Fetch next page with ?cursor=page["next_cursor"]
    pass
