"""A local stand-in for a third-party LLM provider (OpenAI chat completions, Anthropic Messages and
the Responses API from one process): server.py serves, answers.py decides what it answers,
checks.py refuses what the real services refuse, responses.py speaks the Responses API.

Run it: `python -m harness.fake_provider --name NAME --port PORT [--tls CERT KEY] [--models ...] [--key K]`.
"""
