"""The floor's reference: a plain Python csv-to-JSON loop doing a dry run's work.

For each row of a customers CSV made by benches/e2e.sh's gen_csv: the default request_id
(SHA-256 of campaign + lowercased email), the body of the e2e campaign (campaign name
dry1000000), one JSON line out: byte for byte what `run --dry-run` prints for it.

    python3 benches/python_baseline.py customers.csv > /dev/null
"""
import csv
import hashlib
import json
import sys

CAMPAIGN = "dry1000000"
with open(sys.argv[1], newline="") as f:
    out = sys.stdout
    for row, cells in enumerate(csv.DictReader(f), start=1):
        email = cells["email"].strip()
        digest = hashlib.sha256(f"{CAMPAIGN}\x1f{email.lower()}".encode()).hexdigest()[:16]
        request_id = f"{CAMPAIGN}-{digest}"
        body = {
            "product_id": "prod_6tW66i0oZM7w1qXReHJrwg",
            "request_id": request_id,
            "units": int(cells["seats"]),
            "discount_code": "SPRING2026",
            "success_url": "https://yourdomain.com/success",
            "customer": {"email": email},
            "metadata": {
                "userId": cells["user_id"].strip(),
                "segment": cells["segment"].strip(),
                "referrer": cells["referrer"].strip(),
                "source": "spring_campaign",
                "plan_type": "team_annual",
                "locale": cells["locale"].strip(),
            },
        }
        line = json.dumps({"request_id": request_id, "row": row, "body": body},
                          separators=(",", ":"))
        out.write(line + "\n")
