"""Fake OpenAI- and Anthropic-compatible model server for demos, load tests and the integration suite."""

from llmproxy.fake_upstream.app import create_fake_upstream, run_fake_upstream
from llmproxy.fake_upstream.config import FakeUpstreamConfig

__all__ = ["FakeUpstreamConfig", "create_fake_upstream", "run_fake_upstream"]
