# Sourced by the bench scripts: the customers file they generate and the campaign they send,
# written once so that every script measures the same rows and the same bodies.

gen_customers() { # rows file: ROWS spring-campaign customers, seven columns
  python3 - "$1" "$2" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,first_name,seats,segment,referrer,locale,user_id\n")
    for i in range(rows):
        f.write(f"user{i}@example.com,Name {i},{i % 5 + 1},{['smb','enterprise','consumer'][i % 3]},aff_{i % 17},{['en','fr','zh-CN'][i % 3]},u_{i}\n")
PY
}

write_campaign() { # yaml name customers output rate concurrency [max_attempts]
  cat > "$1" <<YAML
campaign: $2
customers: $3
output: $4
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  discount_code: SPRING2026
  locale: "{{ locale }}"
  plan_type: team_annual
  success_url: https://yourdomain.com/success
  customer:
    email: "{{ email }}"
  metadata:
    userId: "{{ user_id }}"
    segment: "{{ segment }}"
    referrer: "{{ referrer }}"
    source: spring_campaign
send:
  rate: $5
  concurrency: $6
  max_attempts: ${7:-5}
  timeout: 30s
YAML
}
