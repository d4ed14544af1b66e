"""Finish the collection openapi-to-postmanv2 generates from our OpenAPI schema: stable
ids, variables for the base URL, the key and the ids it needs, and the checks every
response must pass when newman runs it.

    python tools/postman/build.py GENERATED.json OUTPUT.json
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

EXAMPLE_IDS = {
    "acct_01jf3k2v8y6q4m7c9d0e5f1g2h": "{{accountId}}",
    "acct_01jf3k2v8y6q4m7c9d0e5f1g2j": "{{destinationAccountId}}",
}
PATH_VARIABLES = {"account_id": "{{accountId}}", "transfer_id": "{{transferId}}"}
VARIABLES = {
    "baseUrl": "http://127.0.0.1:8000",
    "bearerToken": "sk_test_…",
    "accountId": "acct_…",
    "destinationAccountId": "acct_…",
    "transferId": "tr_…",
}
# Run after every request: the contract's promises about every response.
CHECKS = """
const status = pm.response.code;
pm.test("no server error", () => pm.expect(status).to.be.below(500));
pm.test("Request-Id header", () => pm.expect(pm.response.headers.get("Request-Id")).to.match(/^req_/));
if (status >= 400) {
  pm.test("errors are problem+json", () => {
    pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");
    const body = pm.response.json();
    pm.expect(body).to.include.keys("type", "title", "status", "detail", "code", "request_id");
    pm.expect(body.status).to.equal(status);
  });
} else {
  pm.test("success is JSON", () => pm.expect(pm.response.headers.get("Content-Type")).to.include("application/json"));
}
if (pm.request.method === "POST" && pm.request.url.getPath() === "/v1/transfers" && status === 201) {
  pm.collectionVariables.set("transferId", pm.response.json().id);
}
""".strip().splitlines()


def finish(collection: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(collection)
    for example, variable in EXAMPLE_IDS.items():
        text = text.replace(example, variable)
    collection = json.loads(text)
    collection["variable"] = [{"key": k, "value": v} for k, v in VARIABLES.items()]
    collection["auth"] = {
        "type": "bearer",
        "bearer": [{"key": "token", "value": "{{bearerToken}}"}],
    }
    collection["event"] = [
        {"listen": "test", "script": {"type": "text/javascript", "exec": CHECKS}}
    ]
    collection["info"]["_postman_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "openpay/v1"))
    for item in _requests(collection["item"]):
        item.pop("response", None)
        for variable in item["request"]["url"].get("variable", []):
            variable["value"] = PATH_VARIABLES.get(variable["key"], variable.get("value"))
        item["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, item["name"]))
    return collection


def _requests(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        if "item" in item:
            found.extend(_requests(item["item"]))
            item["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, item["name"]))
        else:
            found.append(item)
    return found


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.write_text(json.dumps(finish(json.loads(source.read_text())), indent=2) + "\n")
