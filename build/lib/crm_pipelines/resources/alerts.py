"""Where alerts go besides the Dagster UI: a Slack incoming webhook, when one is configured.

The webhook URL is itself the secret (anyone holding it can post), so it comes from an
environment variable and never appears in a log line or an exception, including the ones
requests would raise with the URL in their text.
"""

import dagster as dg
import requests
from pydantic import Field
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

SLACK_WEBHOOK_ENV = "SLACK_WEBHOOK_URL"


class AlertDeliveryError(RuntimeError):
    """Slack did not take the alert; the message says why without the webhook URL."""


class _Retryable(AlertDeliveryError):
    pass


class SlackWebhook(dg.ConfigurableResource):
    """Posts alerts to a Slack channel through an incoming webhook; does nothing without a URL."""

    url: str = Field("", description=f"the incoming webhook URL; bind it to {SLACK_WEBHOOK_ENV}")
    attempts: int = 3

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def post(self, text: str) -> bool:
        """Send ``text``; False when no webhook is configured. Retries Slack's 429 and 5xx."""
        if not self.url:
            return False

        @retry(retry=retry_if_exception_type(_Retryable), stop=stop_after_attempt(self.attempts),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True)
        def send() -> None:
            try:
                response = requests.post(self.url, json={"text": text}, timeout=10)
            except requests.RequestException as exc:
                raise _Retryable(f"could not reach the Slack webhook ({type(exc).__name__})") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"the Slack webhook answered {response.status_code}")
            if response.status_code >= 400:
                raise AlertDeliveryError(f"the Slack webhook refused the alert ({response.status_code}: "
                                         f"{response.text[:200]})")

        send()
        return True
