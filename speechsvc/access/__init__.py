"""Access: API keys, scopes, ownership, rate limits and the keys CLI."""
