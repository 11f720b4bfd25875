app_version = "2.1.0"
packages    = ["curl", "jq"]
