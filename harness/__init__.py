"""Running Switchyard and its stand-ins as real processes, for the end-to-end tests and the
benchmarks alike: `switchyard up` and Envoy (stack.py), local providers that speak the OpenAI,
Anthropic and Responses APIs and check requests as the real services do (fake_provider/), the real
agent clients (agent_clients.py), live policy edits under traffic (live_policy.py), and waiting
for processes with a deadline (processes.py). Neither tests/ nor benchmarks/ reach into the other.
"""
