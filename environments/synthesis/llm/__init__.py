"""The ``llm`` synthesis backend (Django-free): the paper's phase-1 roles over any OpenAI-compatible model."""
