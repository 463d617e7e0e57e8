"""AI caption generation: providers (OpenAI-compatible, Anthropic, offline), the prompt, the output
contract. docs/generation.md."""
