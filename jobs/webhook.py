"""WebhookJob: POSTs the job's pub_kwargs as a JSON object to pub_args[0].

Only http and https URLs are accepted; redirects are not followed. The request times
out after `Settings.extra["webhook_timeout"]` (10 s). The status code, latency and the
first 2 KB of the response are printed and returned; a status outside 2xx fails the
execution after its excerpt has been printed.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from jobs.base import Argument, BaseJob, JobError
from jobs.params import ANY_KWARGS, check_signature, required_text, setting_seconds
from jobs.web import check_http_url, http_request


class WebhookJob(BaseJob):
    description: ClassVar[str] = "Job to send webhook notifications"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument("url", "string", "http(s) URL to POST to", required=True, source="pub_args"),
        Argument(ANY_KWARGS, "object", "Custom data, sent as the JSON body", source="pub_kwargs"),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        url = check_http_url(required_text(args, 0, "url", type(self).__name__))
        try:
            body = json.dumps(kwargs).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise JobError(f"pub_kwargs cannot be sent as JSON: {exc}") from None
        timeout = setting_seconds(self.context.settings.extra, "webhook_timeout", 10.0)
        result = http_request(
            "POST", url, timeout=timeout, body=body, headers={"Content-Type": "application/json"}
        )
        print(
            f"POST {url} -> HTTP {result.status} in {result.latency_ms} ms ({len(body)} bytes sent)"
        )
        if result.excerpt:
            more = " [truncated]" if result.truncated else ""
            print(f"Response{more}: {result.excerpt}")
        if not result.ok:
            raise JobError(f"Webhook {url} answered HTTP {result.status}")
        return {"url": url, **result.as_dict()}
