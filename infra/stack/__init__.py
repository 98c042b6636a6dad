"""The policyhub CDK stack and its constructs (one per capability)."""

from .stack import PolicyHubStack, output_key

__all__ = ["PolicyHubStack", "output_key"]
